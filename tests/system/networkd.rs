//! One Debian machine run by systemd-networkd, from a fresh install of the package to its purge:
//! the unit under systemd, apply against the running networkd, a silent failure the daemon
//! demotes from inside its sandbox, reload, stop and kill -9, the watchdog, a reboot, remove and
//! purge.

use std::time::Duration;

use multihome::daemon::events::Kind;

use super::image;
use super::machine::Machine;
use super::network::{self, Network};
use super::policy::{DAEMON_LEFTOVERS, SEED_ROUTES, assert_seed_holds};
use super::seeded::{self, ENDPOINTS};

/// The package's one conffile (tests/package.rs).
const CONFFILE: &str = "/etc/multihome/events.d/README";

const SHOW: &str = "systemctl show -p ActiveState -p SubState -p MainPID -p NRestarts -p StatusText multihome";

fn property(show: &str, key: &str) -> String {
    show.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_default().to_string()
}

/// An event hook: one journal line per event, with what systemd says of networkd (a hook's
/// systemctl works from inside the daemon's sandbox).
const HOOK: &str = "#!/bin/sh\necho \"event $MULTIHOME_EVENT $MULTIHOME_UPLINK $MULTIHOME_FAMILY ${MULTIHOME_NEW_STATE:-} active=$MULTIHOME_ACTIVE networkd=$(systemctl is-active systemd-networkd)\"\n";

/// eth0 was demoted: the hook ran for it, the journal holds the event with its MESSAGE_ID and
/// fields and explains it from the package's catalog, and the metrics say so on loopback.
fn events_and_metrics_in_the_sandbox(vm: &mut Machine) -> anyhow::Result<()> {
    vm.wait_for(
        "the event hook's line for eth0 down",
        "journalctl -b -u multihome --no-pager | grep -q '50-record: event state eth0 ipv4 down .*networkd=active'",
        Duration::from_secs(30),
    )?;
    vm.wait_for(
        "the event hook's line for the active uplink",
        "journalctl -b -u multihome --no-pager | grep -q '50-record: event active wlan1 ipv4 .*networkd=active'",
        Duration::from_secs(30),
    )?;
    let down = Kind::Down.message_id();
    let entry = vm.ok(&format!("journalctl -b MESSAGE_ID={down} UPLINK=eth0 -o verbose --no-pager"))?;
    for field in ["FAMILY=ipv4", "STATE=down", "_SYSTEMD_UNIT=multihome.service"] {
        assert!(entry.lines().any(|l| l.trim() == field), "the journal's eth0-down entry has no {field}:\n{entry}");
    }
    // The package's catalog, compiled by systemd's dpkg trigger, explains the entry (`-x`).
    let catalog = vm.ok("journalctl --list-catalog --no-pager")?;
    assert!(catalog.contains(down), "the journal's catalog has no {down}:\n{catalog}");
    let explained = vm.ok(&format!("journalctl -b -x MESSAGE_ID={down} --no-pager"))?;
    let entry_only = vm.ok(&format!("journalctl -b MESSAGE_ID={down} --no-pager"))?;
    assert!(explained.lines().count() > entry_only.lines().count(), "journalctl -x shows no catalog text:\n{explained}");
    // The metrics, served from inside the sandbox, read over loopback with bash alone.
    let metrics = vm.ok("exec 3<>/dev/tcp/127.0.0.1/9469 && printf 'GET /metrics HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && cat <&3")?;
    for series in ["multihome_uplink_up{uplink=\"eth0\",family=\"ipv4\"} 0", "multihome_uplink_active{uplink=\"wlan1\",family=\"ipv4\"} 1"] {
        assert!(metrics.lines().any(|l| l == series), "the metrics have no `{series}`:\n{metrics}");
    }
    Ok(())
}

#[test]
fn networkd_machine_from_install_to_purge() -> anyhow::Result<()> {
    let _one = crate::one_machine_at_a_time();
    if !image::require() {
        return Ok(());
    }
    let nics = network::seed_and_bond_nics();
    let net = Network::build(&nics)?;
    let mut vm = seeded::boot(&net, &nics, &[("multihome.deb", &image::deb())])?;
    let links = vm.ok("ip -br link show")?;
    for name in ["eth0", "wlan1", "wlan0", "eth3", "eth4", "eth5"] {
        assert!(links.lines().any(|l| l.starts_with(name)), "the machine has no {name}:\n{links}");
    }
    // Debian's kernel has the bonding driver the lab's lacks, and qemu's carrier loss moves an
    // active-backup bond to its backup: the harness can run a bond's failover test.
    vm.ok("modprobe bonding && ip link add mhbond0 type bond mode active-backup miimon 50 primary eth3 \
           && ip link set eth3 master mhbond0 && ip link set eth4 master mhbond0 && ip link set mhbond0 up")?;
    vm.wait_for("the bond on eth3", "grep -q 'Currently Active Slave: eth3' /proc/net/bonding/mhbond0", Duration::from_secs(30))?;
    vm.set_link("eth3", false)?;
    vm.wait_for("the bond on eth4", "grep -q 'Currently Active Slave: eth4' /proc/net/bonding/mhbond0", Duration::from_secs(30))?;
    vm.set_link("eth3", true)?;
    vm.wait_for("the bond back on eth3", "grep -q 'Currently Active Slave: eth3' /proc/net/bonding/mhbond0", Duration::from_secs(30))?;
    vm.ok("ip link del mhbond0")?;

    // Install, as the README and docs/package.md say: enabled, not started, nothing applied.
    seeded::install(&mut vm, "multihome.deb")?;
    let shipped = vm.ok("dpkg -L multihome | while read -r f; do [ -f \"$f\" ] && echo \"$f\"; done")?;
    assert!(shipped.lines().any(|l| l == "/usr/sbin/multihome"), "{shipped}");
    assert_eq!(vm.ok("systemctl is-enabled multihome")?.trim(), "enabled");
    assert_eq!(vm.sh("systemctl is-active multihome")?.output.trim(), "inactive");
    let rules = vm.ok("ip -4 rule show")?;
    assert!(!rules.contains("lookup 101"), "installing applied something:\n{rules}");

    // apply with the running networkd: files, a reload and the restart its networkd.conf.d
    // drop-in needs, over the real system bus.
    seeded::apply_seed(&mut vm)?;
    // networkd-dispatcher skipped its start at boot (no hook existed; installing starts nothing);
    // apply starts it, so a DHCP lease's rules come from its hooks from now on, not at the next boot.
    vm.wait_for("networkd-dispatcher started by apply", "systemctl is-active networkd-dispatcher", Duration::from_secs(30))?;

    // Issue 26 under the shipped unit's sandbox: an event hook (which asks systemd, as a hook
    // that restarts a VPN would) and the metrics on loopback.
    vm.ok(&format!("printf '%s' '{HOOK}' > /etc/multihome/events.d/50-record && chmod 0755 /etc/multihome/events.d/50-record"))?;
    vm.ok("printf '\\n[Metrics]\\nListen=127.0.0.1:9469\\n' >> /etc/multihome/multihome.conf && multihome check")?;

    // The unit: Type=notify returns once READY=1 came; STATUS= is the daemon's summary.
    vm.ok("systemctl start multihome")?;
    let show = vm.ok(SHOW)?;
    assert_eq!(property(&show, "ActiveState"), "active", "{show}");
    vm.wait_for("STATUS= with eth0 up", "systemctl show -p StatusText --value multihome | grep 'leave via eth0; eth0 up'", Duration::from_secs(30))?;
    let status = vm.ok("multihome status")?;
    assert!(status.contains("New connections leave via eth0"), "multihome status over the system bus:\n{status}");

    // The sandbox lets it probe and route: eth0 fails silently upstream, the daemon demotes it
    // and adds its copies (protocol 77), and new connections leave via wlan1.
    net.set_upstream("eth0", false)?;
    vm.wait_for("eth0 demoted", "multihome status | grep -q 'New connections leave via wlan1'", Duration::from_secs(60))?;
    let copies = vm.ok("ip -4 route show proto 77")?;
    assert!(copies.contains("dev wlan1"), "the daemon's routes:\n{copies}");
    assert!(vm.ok("ip -4 route get 198.51.100.10")?.contains("dev wlan1 "));
    vm.wait_for("the internet host answering", "ping -n -c1 -W2 198.51.100.10", Duration::from_secs(30))?;
    let denied = vm.sh("journalctl -b -u multihome --no-pager | grep -iE 'permission denied|operation not permitted|seccomp'")?;
    assert_ne!(denied.code, 0, "the sandbox refused the daemon something:\n{}", denied.output);
    events_and_metrics_in_the_sandbox(&mut vm)?;

    // reload: the same process reads the policy again.
    let pid = property(&vm.ok(SHOW)?, "MainPID");
    vm.ok("systemctl reload multihome")?;
    vm.wait_for("the daemon's reload", "journalctl -b -u multihome --no-pager | grep -q 'reloaded /etc/multihome/multihome.conf'", Duration::from_secs(30))?;
    let show = vm.ok(SHOW)?;
    assert_eq!((property(&show, "ActiveState"), property(&show, "MainPID")), ("active".to_string(), pid), "{show}");

    // stop: its routes go with it, the policy's stay, and so do the plan's MPTCP endpoints:
    // ExecStopPost runs in the unit's sandbox, where ProcSubset=pid hides net.mptcp.enabled,
    // and "cannot tell" is not "off" (issue 22).
    vm.ok("systemctl stop multihome")?;
    assert_eq!(vm.ok(DAEMON_LEFTOVERS)?.trim(), "", "stop left routes of the daemon");
    assert_seed_holds(&mut vm)?;
    assert_eq!(vm.ok(ENDPOINTS)?.trim(), "3", "the plan's MPTCP endpoints after a stop:\n{}", vm.ok("ip mptcp endpoint show")?);
    let off = vm.sh("journalctl -b -u multihome --no-pager | grep 'MPTCP is not enabled'")?;
    assert_ne!(off.code, 0, "the cleanup took the sandbox's hidden /proc/sys for MPTCP off:\n{}", off.output);

    // kill -9: ExecStopPost removes what the daemon left, Restart= brings it back, stop.
    vm.ok("systemctl start multihome")?;
    vm.wait_for("the daemon's copies", "ip -4 route show proto 77 | grep -q .", Duration::from_secs(60))?;
    vm.ok("kill -9 $(systemctl show -p MainPID --value multihome)")?;
    vm.wait_for(
        "ExecStopPost's cleanup",
        "journalctl -b -u multihome --no-pager | grep -E 'removed [1-9][0-9]* route\\(s\\) the daemon left'",
        Duration::from_secs(60),
    )?;
    vm.wait_for("the restart", "systemctl show -p NRestarts --value multihome | grep -qx 1 && systemctl is-active multihome", Duration::from_secs(60))?;
    vm.ok("systemctl stop multihome")?;
    assert_eq!(vm.ok(DAEMON_LEFTOVERS)?.trim(), "", "kill -9 and stop left routes of the daemon");

    // The watchdog: a daemon that stops answering is killed and restarted.
    vm.ok("systemctl start multihome")?;
    // Stopped (SIGSTOP) it neither pings nor dies of the SIGABRT systemd sends on the timeout;
    // SIGCONT then makes it the hung-but-running process the watchdog is for.
    vm.ok("kill -STOP $(systemctl show -p MainPID --value multihome)")?;
    vm.wait_for("the watchdog's timeout", "journalctl -b -u multihome --no-pager | grep -q 'Watchdog timeout'", Duration::from_secs(60))?;
    vm.ok("kill -CONT $(systemctl show -p MainPID --value multihome)")?;
    // (NRestarts counts automatic restarts since the last explicit start.)
    vm.wait_for(
        "the watchdog's restart",
        "systemctl show -p NRestarts --value multihome | grep -qx 1 && systemctl is-active multihome",
        Duration::from_secs(60),
    )?;
    vm.ok("journalctl -b -u multihome --no-pager | grep -q 'status=6/ABRT'")?;
    assert_eq!(vm.ok(ENDPOINTS)?.trim(), "3", "the MPTCP endpoints after the watchdog's restart:\n{}", vm.ok("ip mptcp endpoint show")?);

    // A reboot: the policy holds and the daemon is back, without apply.
    net.set_upstream("eth0", true)?;
    let first_boot = vm.boot_id().to_string();
    vm.journal()?;
    vm.reboot()?;
    assert_ne!(vm.boot_id(), first_boot);
    vm.ok("mount -o ro /dev/vdb /mnt")?;
    vm.wait_for("the daemon after the reboot", "systemctl is-active multihome", Duration::from_secs(120))?;
    vm.wait_for("the seed's routes after the reboot", SEED_ROUTES, Duration::from_secs(60))?;
    assert_seed_holds(&mut vm)?;
    vm.wait_for("eth0 up after the reboot", "multihome status | grep -q 'New connections leave via eth0'", Duration::from_secs(60))?;
    // No apply and no networkd-dispatcher: the daemon makes the endpoints itself (issue 22).
    vm.wait_for("every uplink's MPTCP endpoint after the reboot", &format!("test $({ENDPOINTS}) -eq 3"), Duration::from_secs(10))?;
    vm.wait_for("the internet host answering", "ping -n -c1 -W2 198.51.100.10", Duration::from_secs(30))?;
    // Carrier loss (the cable, in qemu): the kernel skips eth0's routes at once
    // (ignore_routes_with_linkdown), and they are used again when it returns.
    vm.set_link("eth0", false)?;
    vm.wait_for("eth0's carrier loss", "ip -4 route get 198.51.100.10 | grep -q 'dev wlan1 '", Duration::from_secs(30))?;
    vm.set_link("eth0", true)?;
    vm.wait_for("eth0's carrier back", "ip -4 route get 198.51.100.10 | grep -q 'dev eth0 '", Duration::from_secs(30))?;

    // remove: the daemon (with routes to remove: eth0 demoted again) stops, its files go;
    // purge: the enablement goes too; the administrator's configuration stays.
    net.set_upstream("eth0", false)?;
    vm.wait_for("eth0 demoted", "ip -4 route show proto 77 | grep -q .", Duration::from_secs(60))?;
    vm.ok("DEBIAN_FRONTEND=noninteractive apt-get remove -y multihome")?;
    assert_eq!(vm.sh("systemctl is-active multihome")?.output.trim(), "inactive");
    assert_eq!(vm.ok(DAEMON_LEFTOVERS)?.trim(), "", "remove left routes of the daemon");
    let left = vm.ok(&format!("for f in {}; do [ -e \"$f\" ] && echo \"$f\"; done; true", shipped.split_whitespace().collect::<Vec<_>>().join(" ")))?;
    // A conffile stays until the purge, as dpkg keeps every conffile on remove.
    assert_eq!(left.trim(), CONFFILE, "remove left the package's files other than its conffile");
    vm.ok("DEBIAN_FRONTEND=noninteractive apt-get purge -y multihome")?;
    assert_ne!(vm.sh(&format!("test -e {CONFFILE}"))?.code, 0, "purge left the conffile {CONFFILE}");
    assert_ne!(vm.sh("dpkg -s multihome")?.code, 0, "purged, dpkg still knows multihome");
    let enablement = vm.ok("find /etc/systemd /var/lib/systemd -name 'multihome.service*'; true")?;
    assert_eq!(enablement.trim(), "", "purge left the unit's enablement");
    vm.ok("test -f /etc/multihome/multihome.conf && test -f /etc/sysctl.d/60-multihome.conf")?;
    assert_seed_holds(&mut vm)?;
    vm.journal()?;
    vm.passed();
    Ok(())
}
