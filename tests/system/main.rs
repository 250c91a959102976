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

pub use machine::one_machine_at_a_time;
