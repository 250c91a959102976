//! What the daemon tells systemd (`Type=notify`): ready, its status line (the active uplink and
//! every uplink's state, as `systemctl status` shows it), watchdog pings and stopping, through
//! the `sd-notify` crate. Without `$NOTIFY_SOCKET` (not started by systemd) nothing is sent.

use std::time::Duration;

use sd_notify::NotifyState;

/// Errors are ignored on purpose: a lost notification must never stop the daemon (systemd's own
/// sd_notify behaves the same).
fn send(states: &[NotifyState]) {
    let _ = sd_notify::notify(false, states);
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// How often to ping the watchdog: half of `$WATCHDOG_USEC` (as sd_watchdog_enabled advises),
/// if the watchdog is on and meant for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0;
    (sd_notify::watchdog_enabled(false, &mut usec) && usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn ready_and_the_status_arrive_as_one_datagram() {
        let dir = std::env::temp_dir().join(format!("mh-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        // SAFETY: this test is the only one touching NOTIFY_SOCKET.
        unsafe { std::env::set_var("NOTIFY_SOCKET", &path) };
        ready("new connections leave via eth0; eth0 up");
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        let mut buf = [0u8; 128];
        server.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let n = server.recv(&mut buf).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), "READY=1\nSTATUS=new connections leave via eth0; eth0 up\n");
    }

    #[test]
    fn without_watchdog_variables_there_is_no_ping() {
        assert_eq!(watchdog_interval(), None);
    }
}
