//! sd_notify without libsystemd: one datagram to `$NOTIFY_SOCKET` (READY=1, WATCHDOG=1,
//! STATUS=..., STOPPING=1). Without the variable (not started by systemd) it does nothing.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Sends `state` to the service manager, if there is one. Errors are ignored on purpose: a lost
/// notification must never stop the daemon (systemd's own sd_notify behaves the same).
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let path = path.to_string_lossy().into_owned();
    let addr = match path.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None => SocketAddr::from_pathname(&path),
    };
    let (Ok(addr), Ok(socket)) = (addr, UnixDatagram::unbound()) else { return };
    let _ = socket.send_to_addr(state.as_bytes(), &addr);
}

/// How often to send WATCHDOG=1: half of `$WATCHDOG_USEC` (as sd_watchdog_enabled advises),
/// if the watchdog is on and meant for this process.
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var("WATCHDOG_PID").ok().and_then(|p| p.parse::<u32>().ok())
        && pid != std::process::id()
    {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_arrives_as_one_datagram() {
        let dir = std::env::temp_dir().join(format!("mh-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        // SAFETY: this test is the only one touching NOTIFY_SOCKET.
        unsafe { std::env::set_var("NOTIFY_SOCKET", &path) };
        notify("READY=1\nSTATUS=probing");
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        let mut buf = [0u8; 64];
        server.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=probing");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
