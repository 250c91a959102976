//! `multihome try` with the real systemd-networkd in the lab: not confirmed, the previous
//! generation of files comes back and networkd takes it again; confirmed by SIGUSR1, the new
//! files stay. (The NetworkManager half is in lab_nm.rs.)

use std::fs;
use std::time::Duration;

use common::lab::{has_address, require};
use common::policy::Policy;
use multihome::lab::policies::SEED;
use multihome::lab::{Lab, LabOptions, Manager};

#[allow(dead_code)]
mod common;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// What a try may change: multihome's files, and the kernel's addresses, rules and routes.
fn state(lab: &Lab) -> String {
    let dir = lab.dir().join("etc/systemd/network");
    let mut names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    let mut s = String::new();
    for n in names {
        s.push_str(&format!("== {}\n{}", n.to_string_lossy(), fs::read_to_string(dir.join(&n)).unwrap()));
    }
    s.push_str(&lab.kernel_state().unwrap());
    s
}

#[test]
fn networkd_try_reverts_unless_confirmed() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let mut lab = Lab::start(LabOptions::new(Manager::Networkd, common::binary()))?;
    lab.write_policy(SEED)?;
    lab.multihome_ok(&["apply", "--backend", "networkd"])?;
    lab.wait_for(Duration::from_secs(15), || has_address(&lab, "eth0", "192.168.178.99"))?;
    let before = state(&lab);
    lab.write_policy(Policy::seed().uplink("eth0", "Address", "192.168.178.95/24").text())?;

    // Not confirmed: stdin is /dev/null, and the hangup of the session does not count.
    let (group, log) = {
        let t = lab.spawn_multihome(&["try", "--backend", "networkd", "--timeout", "4s"])?;
        (t.id(), t.log.clone())
    };
    lab.wait_for_log(&log, "Press Enter", Duration::from_secs(10))?;
    lab.wait_for(Duration::from_secs(10), || has_address(&lab, "eth0", "192.168.178.95"))?;
    killpg(Pid::from_raw(group as i32), Signal::SIGHUP)?;
    lab.wait_for_log(&log, "Not confirmed", Duration::from_secs(15))?;
    let mut now = String::new();
    let back = lab.wait_for(Duration::from_secs(15), || {
        now = state(&lab);
        now == before
    });
    assert!(
        back.is_ok(),
        "the state before is not back:\n{}",
        similar::TextDiff::from_lines(before.as_str(), now.as_str()).unified_diff().header("before", "now")
    );

    // Confirmed by SIGUSR1: kept.
    let (group, log) = {
        let t = lab.spawn_multihome(&["try", "--backend", "networkd", "--timeout", "60s"])?;
        (t.id(), t.log.clone())
    };
    lab.wait_for_log(&log, "Press Enter", Duration::from_secs(10))?;
    killpg(Pid::from_raw(group as i32), Signal::SIGUSR1)?;
    lab.wait_for_log(&log, "Kept.", Duration::from_secs(10))?;
    lab.wait_for(Duration::from_secs(15), || has_address(&lab, "eth0", "192.168.178.95"))?;
    let file = fs::read_to_string(lab.dir().join("etc/systemd/network/10-multihome-eth0.network"))?;
    assert!(file.contains("Address=192.168.178.95/24"), "{file}");
    Ok(())
}

/// A live apply that fails half-way (the kernel refuses a sysctl: here eth0's are made read-only
/// in the lab host) puts the files it already wrote back, so networkd never sees a half-applied
/// generation: the files and the kernel's state are as before, and apply says so and fails.
#[test]
fn a_live_apply_that_fails_half_way_puts_the_previous_files_back() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let lab = Lab::start(LabOptions { policy: Some(SEED.to_string()), ..LabOptions::new(Manager::Networkd, common::binary()) })?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    // A value the next apply must write, then its key made read-only.
    let run = |program: &str, args: &[&str]| {
        let out = lab.run_in_host(program, args).expect("runs in the lab host");
        assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run("sysctl", &["-q", "-w", "net.ipv4.conf.eth0.arp_ignore=0"]);
    let before = state(&lab);
    run("mount", &["--bind", "-o", "ro", "/proc/sys/net/ipv4/conf/eth0", "/proc/sys/net/ipv4/conf/eth0"]);
    run("mount", &["-o", "remount,bind,ro", "/proc/sys/net/ipv4/conf/eth0"]);
    lab.write_policy(Policy::seed().uplink("eth0", "Address", "192.168.178.95/24").text())?;
    let out = lab.multihome(&["apply"])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "apply succeeded with a read-only sysctl:\n{stderr}");
    assert!(stderr.contains("arp_ignore"), "{stderr}");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(state(&lab), before, "the failed apply left something changed");
    assert!(has_address(&lab, "eth0", "192.168.178.99"));
    Ok(())
}
