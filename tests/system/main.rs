//! System tests: multihome installed from its .deb on a real Debian machine (systemd as PID 1,
//! Debian's own kernel, the real systemd-networkd and NetworkManager), booted under qemu with its
//! NICs in the lab's network, driven over a serial port. What the lab in namespaces cannot show:
//! the unit under systemd (READY, STATUS, the watchdog, the sandbox, reload, ExecStopPost), apply
//! against a running system, a reboot, and the package's install, remove and purge.
//!
//! Each test is one machine, booted twice (a reboot; a boot takes 1-2 minutes under software
//! emulation); the first run also builds the machine, a few minutes (tests/system/image.sh).
//! Needs root, qemu-system-x86, debootstrap, busybox and the .deb (`cargo deb --locked`);
//! without them a test skips, with CI=true it fails.
//! `MULTIHOME_KEEP_LAB=1` keeps the machine's directory (console, journals, overlay disk).

/// One machine at a time. Under software emulation on a two-core host, two or three guests
/// starve each other: a CI run saw RCU stalls in the guest and networkd giving up on eth0 ("Failed
/// to wait for the interface to be initialized") after a reboot. Every test that boots holds this.
pub fn one_machine_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

mod base64;
mod bond;
mod image;
mod machine;
mod network;
mod networkd;
mod networkmanager;
mod policy;
mod seeded;
mod suspend;
mod upgrade;
mod wifi;
mod wifi_bond;
mod wifi_networkmanager;
mod wifi_nm_routes;
mod wifi_roam;
mod wifi_routes;
mod wifi_silent;
