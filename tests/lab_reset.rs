//! `multihome reset` on a running host: after the seed was applied (and a killed daemon left its
//! routes), the host is as it was before multihome — the same addresses,
//! rules, routes and sysctls — with an administrator's own file untouched; `--dry-run` first
//! lists exactly that and changes nothing; a second reset finds nothing.

use std::fs;
use std::time::Duration;

use multihome::lab::policies::SEED;
use multihome::lab::{Lab, LabOptions, Manager};

#[allow(dead_code)]
mod common;

const SYSCTLS: [&str; 5] = [
    "net/ipv4/conf/default/ignore_routes_with_linkdown",
    "net/ipv4/conf/eth0/ignore_routes_with_linkdown",
    "net/ipv4/conf/eth0/arp_ignore",
    "net/ipv4/conf/wlan1/arp_announce",
    "net/ipv4/conf/wlan0/rp_filter",
];

/// Addresses, rules, routes and the sysctls multihome sets, as the host sees them.
fn host_state(lab: &Lab) -> String {
    let mut s = lab.kernel_state().unwrap();
    s.push_str(&lab.ip_host(&["-6", "rule"]).unwrap());
    s.push_str(&lab.ip_host(&["mptcp", "endpoint", "show"]).unwrap());
    for key in SYSCTLS {
        let out = lab.run_in_host("cat", &[&format!("/proc/sys/{key}")]).unwrap();
        s.push_str(&format!("\n{key} = {}", String::from_utf8_lossy(&out.stdout).trim()));
    }
    s
}

fn reset_leaves_the_host_as_before(manager: Manager) -> anyhow::Result<()> {
    let mut lab = Lab::start(LabOptions::new(manager, common::binary()))?;
    // What the host looks like without multihome: the lab's links, no configuration of theirs.
    std::thread::sleep(Duration::from_secs(2));
    let before = host_state(&lab);
    let admin = lab.dir().join("etc/systemd/network/90-admin.network");
    fs::write(&admin, "[Match]\nName=nothing-here\n")?;

    lab.write_policy(SEED)?;
    lab.multihome_ok(&["apply"])?;
    lab.outbound_settles_on("eth0", Duration::from_secs(30))?;
    // The daemon demotes eth0 and is killed before it could take its routes away.
    let daemon = lab.spawn_multihome(&["daemon"])?.id();
    lab.wait_for(Duration::from_secs(10), || lab.multihome(&["status"]).is_ok_and(|o| o.status.success()))?;
    let refused = lab.multihome(&["reset"])?;
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("stop it first"), "{refused:?}");
    lab.set_upstream("eth0", false)?;
    lab.wait_for(Duration::from_secs(5), || lab.ip_host(&["-4", "route", "show", "proto", "77"]).is_ok_and(|r| !r.trim().is_empty()))?;
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(daemon as i32), nix::sys::signal::Signal::SIGKILL)?;
    lab.set_upstream("eth0", true)?;
    std::thread::sleep(Duration::from_millis(500));
    // What the hook adds for a SLAAC address (the lab's uplinks here are IPv4 only).
    let hook_rule = ["-6", "rule", "add", "from", "2001:db8:178::99", "lookup", "101", "priority", "10000", "proto", "77"];
    assert!(lab.run_in_host("ip", &hook_rule)?.status.success());
    let applied = host_state(&lab);
    assert!(lab.ip_host(&["-4", "route", "show", "proto", "77"])?.contains("default"), "{applied}");
    assert_ne!(applied, before, "apply changed nothing");

    let dry = lab.multihome_ok(&["reset", "--dry-run"])?;
    assert!(dry.contains("sysctl net/ipv4/conf/default/ignore_routes_with_linkdown: 1 -> "), "{dry}");
    assert!(dry.contains("60-multihome.conf"), "{dry}");
    assert!(dry.contains("# kernel: route default via 192.168.178.1 dev wlan1"), "the daemon's route is not listed:\n{dry}");
    assert!(dry.contains("2001:db8:178::99"), "the hook's IPv6 rule is not listed:\n{dry}");
    assert!(dry.contains("# kernel: mptcp endpoint 192.168.178.99 id 240"), "eth0's MPTCP endpoint is not listed:\n{dry}");
    assert!(!dry.contains("90-admin"), "{dry}");
    assert_eq!(host_state(&lab), applied, "--dry-run changed something");

    let out = lab.multihome_ok(&["reset"])?;
    assert!(out.contains("Reset: nothing of multihome's is left"), "{out}");
    let mut now = String::new();
    let back = lab.wait_for(Duration::from_secs(15), || {
        now = host_state(&lab);
        now == before
    });
    assert!(back.is_ok(), "after reset:\n{}", similar::TextDiff::from_lines(&before, &now).unified_diff().header("before multihome", "after reset"));
    assert!(admin.exists(), "the administrator's file went");
    assert_eq!(lab.multihome_ok(&["reset", "--dry-run"])?.trim(), "Nothing of multihome's is on this host.");
    Ok(())
}

both_managers! {
    networkd_reset_leaves_the_host_as_before, networkmanager_reset_leaves_the_host_as_before => reset_leaves_the_host_as_before
}
