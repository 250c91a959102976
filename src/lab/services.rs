//! The network manager under test, started inside the lab host: its own mount, UTS and PID
//! namespaces, a private /run (system bus, networkd state), a read-only /sys (networkd then
//! configures links without udev), a read-only overlay over /etc with the lab's directories
//! bound over the few places a manager or multihome writes (systemd, sysctl.d, NetworkManager,
//! multihome, resolv.conf) and over /var/lib/NetworkManager, so
//! neither networkd nor NetworkManager can write anything of the machine's (../shared/LAB.md).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{INSTALLED_NM_HOOK, LabOptions, Manager};

const DAEMON_BUS_POLICY: &str = include_str!("../../dbus/org.multihome1.conf");

const NM_CONF: &str = "\
# The lab's NetworkManager: never the machine's resolver, hostname or devices.
[main]
plugins=keyfile
no-auto-default=*
dns=none
rc-manager=unmanaged
hostname-mode=none

[keyfile]
path=/etc/NetworkManager/system-connections

[logging]
level=INFO
";

/// Prepares the lab's private directories and returns the script that the host's PID 1 runs.
/// The script holds only paths the lab made; nothing from outside reaches a shell.
pub fn prepare(dir: &Path, opts: &LabOptions, multihome: &Path) -> anyhow::Result<String> {
    // The script quotes paths in '...'; a quote in $TMPDIR must not become shell syntax.
    if dir.to_string_lossy().contains(['\'', '\\', '\n']) {
        anyhow::bail!("the lab directory {} contains a quote, backslash or newline; set TMPDIR to a plain path", dir.display());
    }
    let d = |p: &str| dir.join(p);
    for sub in [
        // Not networkd.conf.d: multihome makes it, as on a host that has none (its mode is
        // multihome's, which networkd, reading as systemd-network, must be able to enter).
        "etc/systemd/network",
        "etc/sysctl.d",
        "etc/NetworkManager/conf.d",
        "etc/NetworkManager/dispatcher.d",
        "etc/NetworkManager/system-connections",
        "etc/dbus-1/system.d",
        "etc/multihome",
        "var/lib/NetworkManager",
        "sbin",
        "networkd-dispatcher",
        "log",
    ] {
        fs::create_dir_all(d(sub)).with_context(|| format!("cannot create {sub} in the lab"))?;
    }
    fs::write(d("etc/resolv.conf"), "# The lab's own resolv.conf: NetworkManager may write here.\n")?;
    fs::write(d("etc/NetworkManager/NetworkManager.conf"), NM_CONF)?;
    // The machine's bus policies, plus the daemon's (so it may own org.multihome1).
    if let Ok(entries) = fs::read_dir("/etc/dbus-1/system.d") {
        for e in entries.flatten() {
            let _ = fs::copy(e.path(), d("etc/dbus-1/system.d").join(e.file_name()));
        }
    }
    fs::write(d("etc/dbus-1/system.d/org.multihome1.conf"), DAEMON_BUS_POLICY)?;
    // /usr/sbin/multihome inside the lab is the binary under test (dispatcher scripts call it
    // there), unless the lab runs the installed package.
    if !opts.installed {
        std::os::unix::fs::symlink(multihome, d("sbin/multihome")).context("cannot link the multihome binary into the lab")?;
    }
    if let Some(policy) = &opts.policy {
        fs::write(d("etc/multihome/multihome.conf"), policy)?;
    }
    if let Some(scripts) = &opts.networkd_dispatcher_scripts {
        copy_tree(scripts, &d("networkd-dispatcher"))?;
    }

    let q = |p: PathBuf| p.display().to_string();
    let mut s = String::from("set -e\nmount -t tmpfs tmpfs /run\nmkdir -p /run/dbus /run/systemd/network /run/systemd/netif\n");
    s.push_str("mount -o remount,ro,bind /sys\n");
    // A read-only overlay over /etc adds the mount points the machine may lack (/etc/multihome,
    // sysctl.d) and makes every other write to /etc fail instead of reaching the machine.
    for extra in ["etc-extra/multihome", "etc-extra/systemd", "etc-extra/sysctl.d", "etc-extra/NetworkManager", "etc-extra/dbus-1/system.d"] {
        fs::create_dir_all(d(extra))?;
    }
    s.push_str(&format!("mount -t overlay overlay -o lowerdir='{}':/etc /etc\n", q(d("etc-extra"))));
    let mut binds = vec![
        // All of /etc/systemd: networkd reads nothing of the machine's there either.
        ("etc/systemd", "/etc/systemd"),
        ("etc/sysctl.d", "/etc/sysctl.d"),
        ("etc/dbus-1/system.d", "/etc/dbus-1/system.d"),
        ("etc/multihome", "/etc/multihome"),
        ("etc/resolv.conf", "/etc/resolv.conf"),
        ("etc/NetworkManager", "/etc/NetworkManager"),
    ];
    if opts.manager == Manager::NetworkManager {
        binds.push(("var/lib/NetworkManager", "/var/lib/NetworkManager"));
    }
    for (from, to) in binds {
        s.push_str(&format!("mount --bind '{}' '{to}'\n", q(d(from))));
    }
    if !opts.installed {
        s.push_str(&format!("mount -t overlay overlay -o lowerdir='{}':/usr/sbin /usr/sbin\n", q(d("sbin"))));
        // An installed package's hook would run beside the binary under test.
        s.push_str(&format!("if [ -e {INSTALLED_NM_HOOK} ]; then mount --bind /dev/null {INSTALLED_NM_HOOK}; fi\n"));
    }
    s.push_str("dbus-daemon --system --fork --nopidfile\n");
    match opts.manager {
        Manager::None => s.push_str("exec sleep infinity\n"),
        Manager::Networkd => {
            if opts.policy.is_some() {
                match opts.umask {
                    Some(umask) => s.push_str(&format!("(umask {umask:03o} && /usr/sbin/multihome apply --no-reload)\n")),
                    None => s.push_str("/usr/sbin/multihome apply --no-reload\n"),
                }
            }
            if opts.networkd_dispatcher_scripts.is_some() {
                s.push_str(&format!("networkd-dispatcher -S '{}' -T >'{}' 2>&1 &\n", q(d("networkd-dispatcher")), q(d("log/networkd-dispatcher.log"))));
            } else if opts.installed {
                // Its default script directories (/etc/networkd-dispatcher, /usr/lib/networkd-dispatcher).
                s.push_str(&format!(
                    "if command -v networkd-dispatcher >/dev/null; then networkd-dispatcher -T >'{}' 2>&1 & fi\n",
                    q(d("log/networkd-dispatcher.log"))
                ));
            }
            // networkd drops to systemd-network and writes its state files there.
            s.push_str("mkdir -p /run/systemd/netif/links /run/systemd/netif/leases /run/systemd/netif/lldp\n");
            s.push_str("chown -R systemd-network:systemd-network /run/systemd/netif\n");
            // Not exec'd: networkd drops to systemd-network, and a change of user clears the
            // parent-death signal `unshare --kill-child` gave PID 1. The shell keeps it, so the
            // namespace ends even when the lab's owner is killed before it can clean up.
            s.push_str("SYSTEMD_LOG_LEVEL=debug SYSTEMD_LOG_TARGET=console /lib/systemd/systemd-networkd &\nwait $!\n");
        }
        Manager::NetworkManager => s.push_str(&format!(
            "exec NetworkManager --no-daemon --debug --config /etc/NetworkManager/NetworkManager.conf --state-file '{}'\n",
            q(d("var/lib/NetworkManager/NetworkManager.state"))
        )),
    }
    Ok(s)
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &target)?;
        } else {
            fs::copy(e.path(), &target)?;
        }
    }
    Ok(())
}
