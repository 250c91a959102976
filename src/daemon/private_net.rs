//! For the probe sockets' tests: a closure run on a thread of its own in a network namespace of
//! its own (`unshare(CLONE_NEWNET)` on that thread alone), so tests open raw sockets, make veths
//! and send crafted packets against the real kernel without touching the machine's namespace.
//! The namespace goes away with the thread; commands the closure runs (`ip`) start from that
//! thread and so run inside it.

use std::process::Command;

/// Runs `f` in a fresh network namespace whose loopback is up.
pub fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: unshare changes only the calling thread's namespaces.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error());
        ip(&["link", "set", "lo", "up"]);
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Runs `ip ARGS` in the calling thread's namespace; panics with its output if it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// A veth pair `va` (10.9.0.1/24, 2001:db8:9::1/64) – `vb` (10.9.0.2/24, 2001:db8:9::2/64), both
/// up, the IPv6 addresses without duplicate address detection (usable at once).
pub fn veth_pair() {
    ip(&["link", "add", "name", "va", "type", "veth", "peer", "name", "vb"]);
    for (dev, n) in [("va", 1), ("vb", 2)] {
        ip(&["addr", "add", &format!("10.9.0.{n}/24"), "dev", dev]);
        ip(&["addr", "add", &format!("2001:db8:9::{n}/64"), "dev", dev, "nodad"]);
        ip(&["link", "set", dev, "up"]);
    }
    // The veths carry frames once the kernel has them running (a few ms after "up").
    for _ in 0..100 {
        // Asked of `ip`, not /sys: /sys shows the namespace it was mounted in, not this thread's.
        let up = |dev: &str| {
            Command::new("ip").args(["-br", "link", "show", "dev", dev]).output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(" UP "))
        };
        if up("va") && up("vb") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the veths va and vb did not come up within a second");
}
