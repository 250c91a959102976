//! Issue 22, items 1-3: the daemon owns the runtime state while it runs, in the lab with the
//! real kernel and systemd-networkd.
//! - A networkd host with a DHCP uplink and no networkd-dispatcher: the daemon gives the lease
//!   its `from`/`to` rules as soon as the kernel has it, and after a reboot-like start (no
//!   endpoints, no `apply`) every uplink has its MPTCP endpoint.
//! - A restart as the shipped unit does it (SIGTERM, then `daemon --cleanup` with /proc/sys
//!   hidden as `ProcSubset=pid` hides it): the plan's endpoints are still there after the stop,
//!   and the new daemon changes no endpoint's flag at start.
//! - `daemon --cleanup` with /proc/sys hidden puts the plan's endpoints and flags back from the
//!   state the daemon steered them to, and does not say MPTCP is off.

use std::net::Ipv4Addr;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::lab::{dhcp_wlan0_rules, lease, our_rules, require_for, spawned_logs};
use common::status;
use multihome::lab::policies::{DHCP_WLAN0, SEED};
use multihome::lab::{Lab, LabOptions, Manager};

#[allow(dead_code)]
mod common;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A shell line that hides /proc/sys as the unit's `ProcSubset=pid` does (an empty tmpfs over
/// it, in a mount namespace of its own), checks that net.mptcp.enabled cannot be read, then
/// runs multihome with `args`.
fn sandboxed(lab: &Lab, args: &str) -> String {
    format!(
        "mount -t tmpfs tmpfs /proc/sys || exit 98; if cat /proc/sys/net/mptcp/enabled >/dev/null 2>&1; then echo 'net.mptcp.enabled is readable' >&2; exit 99; fi; exec {} {args}",
        lab.multihome_path().display()
    )
}

/// `multihome daemon --cleanup` as the unit's ExecStopPost runs it: /proc/sys hidden.
fn cleanup_sandboxed(lab: &Lab) -> anyhow::Result<Output> {
    lab.run_in_host("unshare", &["--mount", "sh", "-c", &sandboxed(lab, "daemon --cleanup")])
}

/// `ip mptcp endpoint show`, a line each, sorted (the kernel lists them in insertion order).
fn endpoints(host: &str) -> Vec<String> {
    let out = Command::new("ip").args(["-n", host, "mptcp", "endpoint", "show"]).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let mut lines: Vec<String> = out.unwrap_or_default().lines().map(|l| l.trim().to_string()).collect();
    lines.sort();
    lines
}

/// Waits for `cond`; how long it took. The error shows the rules, endpoints and daemon logs.
fn within(lab: &Lab, limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> anyhow::Result<Duration> {
    let start = Instant::now();
    lab.wait_for(limit, &mut cond).map_err(|e| {
        anyhow::anyhow!(
            "{what}: {e}\nrules:\n{}\nendpoints: {:?}\naddresses:\n{}\ndaemon:\n{}",
            lab.ip_host(&["rule", "show"]).unwrap_or_else(|e| format!("{e:#}")),
            endpoints(&lab.host()),
            lab.ip_host(&["-4", "-br", "addr"]).unwrap_or_default(),
            spawned_logs(lab)
        )
    })?;
    Ok(start.elapsed())
}

#[test]
fn networkd_without_dispatcher_the_daemon_gives_the_lease_its_rules_and_every_uplink_its_endpoint() -> anyhow::Result<()> {
    // The policy applied before networkd starts, as at boot; no networkd-dispatcher.
    let options = LabOptions { dhcp: true, policy: Some(DHCP_WLAN0.to_string()), ..LabOptions::new(Manager::Networkd, common::binary()) };
    if !require_for(&options) {
        return Ok(());
    }
    let mut lab = Lab::start(options)?;
    let host = lab.host();
    let mut a = None;
    within(&lab, Duration::from_secs(30), "wlan0 got no lease", || {
        a = lease(&lab);
        a.is_some()
    })?;
    let a = a.expect("checked");
    assert!(our_rules(&lab).is_empty(), "rules with neither dispatcher nor daemon: {:?}", our_rules(&lab));
    // As after a reboot without `apply`: the kernel has forgotten the endpoints and limits.
    lab.ip_host(&["mptcp", "endpoint", "flush"])?;
    lab.ip_host(&["mptcp", "limits", "set", "subflows", "0"])?;

    lab.spawn_multihome(&["daemon"])?;
    let want_endpoints = |a: Ipv4Addr| {
        let mut want = vec!["192.168.178.99 id 240 subflow dev eth0".to_string(), format!("{a} id 241 subflow dev wlan0")];
        want.sort();
        want
    };
    // From the process's start, its connection to the bus included.
    let started = within(&lab, Duration::from_secs(1), "no rules and endpoints within a second of the daemon's start", || {
        our_rules(&lab) == dhcp_wlan0_rules(a) && endpoints(&host) == want_endpoints(a)
    })?;
    let limits = lab.ip_host(&["mptcp", "limits", "show"])?;
    assert!(limits.contains("subflows 2"), "the plan's subflow limit: {limits}");
    let table = lab.ip_host(&["route", "show", "table", "103"])?;
    assert!(table.contains(&format!("192.168.178.0/24 dev wlan0 proto 77 scope link src {a}")), "table 103:\n{table}");

    // Carrier loss: the daemon does what networkd-dispatcher's no-carrier does with the hook.
    lab.set_carrier("wlan0", false)?;
    let gone = within(&lab, Duration::from_secs(2), "the rules stayed after carrier loss", || our_rules(&lab).is_empty())?;
    // Back: the lease's rules within a second of the kernel having the lease again.
    lab.set_carrier("wlan0", true)?;
    let mut back = None;
    within(&lab, Duration::from_secs(30), "no lease after the carrier returned", || {
        back = lease(&lab).filter(|_| lab.operstate("wlan0") == "UP");
        back.is_some()
    })?;
    let b = back.expect("checked");
    let rules_after_lease =
        within(&lab, Duration::from_secs(1), &format!("no rules within a second of the lease {b}"), || our_rules(&lab) == dhcp_wlan0_rules(b))?;
    within(&lab, Duration::from_secs(5), "wlan0's endpoint did not come back", || endpoints(&host) == want_endpoints(b))?;
    eprintln!("rules and endpoints {started:?} after the daemon's start; rules gone {gone:?} after carrier loss; back {rules_after_lease:?} after the lease");
    Ok(())
}

/// Every change of `ip mptcp endpoint show` while it runs, polled as fast as `ip` answers.
struct FlagWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(Vec<Vec<String>>, usize)>,
}

impl FlagWatch {
    fn start(host: String) -> FlagWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut seen, mut polls) = (vec![endpoints(&host)], 0);
            while !flag.load(Ordering::Relaxed) {
                let now = endpoints(&host);
                polls += 1;
                if seen.last() != Some(&now) {
                    seen.push(now);
                }
            }
            (seen, polls)
        });
        FlagWatch { stop, thread }
    }

    /// The distinct states seen, in order, and how many times it looked.
    fn stop(self) -> (Vec<Vec<String>>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the watch thread")
    }
}

#[test]
fn a_daemon_restart_keeps_the_endpoints_and_changes_no_flag_at_start() -> anyhow::Result<()> {
    let options = LabOptions { policy: Some(SEED.to_string()), ..LabOptions::new(Manager::Networkd, common::binary()) };
    if !require_for(&options) {
        return Ok(());
    }
    let mut lab = Lab::start(options)?;
    let host = lab.host();
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    let planned = endpoints(&host);
    assert_eq!(
        planned,
        ["192.168.178.97 id 242 subflow backup dev wlan0", "192.168.178.98 id 241 subflow dev wlan1", "192.168.178.99 id 240 subflow dev eth0"],
        "the endpoints apply made"
    );

    let first = lab.spawn_multihome(&["daemon"])?.id();
    within(&lab, Duration::from_secs(10), "the first daemon did not judge every uplink up", || status::all_up(&lab, &["eth0", "wlan1", "wlan0"]))?;
    // The unit's stop: SIGTERM, then ExecStopPost in its sandbox.
    killpg(Pid::from_raw(first as i32), Signal::SIGTERM)?;
    within(&lab, Duration::from_secs(5), "the first daemon did not stop", || lab.log("spawned-0.log").contains("stopped:"))?;
    let out = cleanup_sandboxed(&lab)?;
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "daemon --cleanup failed: {said}");
    assert!(!said.contains("not enabled"), "the cleanup took a hidden /proc/sys for MPTCP off: {said}");
    assert_eq!(endpoints(&host), planned, "after the stop and its cleanup: {said}");

    // The restart, in the same sandbox: no endpoint's flag changes while it judges the uplinks.
    let watch = FlagWatch::start(host.clone());
    lab.spawn_in_host("unshare", &["--mount", "sh", "-c", &sandboxed(&lab, "daemon")])?;
    within(&lab, Duration::from_secs(10), "the restarted daemon did not judge every uplink up", || status::all_up(&lab, &["eth0", "wlan1", "wlan0"]))?;
    std::thread::sleep(Duration::from_secs(1));
    let (seen, polls) = watch.stop();
    eprintln!("{polls} looks at the endpoints during the restart");
    assert!(polls >= 20, "too few looks at the endpoints to see a change: {polls}");
    assert_eq!(seen, [planned], "the endpoints changed at start:\n{seen:#?}\n{}", spawned_logs(&lab));
    Ok(())
}

#[test]
fn cleanup_with_proc_sys_hidden_restores_the_plans_endpoints_and_flags() -> anyhow::Result<()> {
    let options = LabOptions { policy: Some(SEED.to_string()), ..LabOptions::new(Manager::Networkd, common::binary()) };
    if !require_for(&options) {
        return Ok(());
    }
    let lab = Lab::start(options)?;
    let host = lab.host();
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    let planned = endpoints(&host);
    assert_eq!(planned.len(), 3, "{planned:?}");
    // As a daemon that ended without its goodbye left them: eth0 demoted (backup), wlan1's
    // endpoint removed at a carrier loss.
    lab.ip_host(&["mptcp", "endpoint", "change", "id", "240", "backup"])?;
    lab.ip_host(&["mptcp", "endpoint", "delete", "id", "241"])?;
    let out = cleanup_sandboxed(&lab)?;
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "daemon --cleanup failed: {said}");
    assert!(!said.contains("not enabled"), "the cleanup took a hidden /proc/sys for MPTCP off: {said}");
    assert_eq!(endpoints(&host), planned, "after the cleanup: {said}");
    assert!(said.contains("MPTCP endpoints: added 192.168.178.98 id 241"), "{said}");
    Ok(())
}
