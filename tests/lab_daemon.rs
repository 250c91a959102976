//! The failover daemon against the real kernel and the real network managers, in the lab: a
//! silent upstream failure moves new connections within a second at the default settings,
//! failback waits for recovery and does not flap, carrier loss still loses nothing, kill -9
//! mid-failover converges after restart, SIGTERM leaves the plain policy, and `multihome
//! status` shows all of it. Every probe target is a lab address (examples/seed.conf).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::lab::{QUICK, require, spawned_logs, transitions_to};
use common::status::{self, State};
use multihome::lab::policies::DHCP_WLAN0;
use multihome::lab::probe::{Prober, outage};
use multihome::lab::{self, INTERNET, Lab, Manager, seed_address};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

#[allow(dead_code)]
mod common;

/// A bound that catches a broken detector (FailAfter ignored, no switch at all) without
/// flaking on a loaded CI machine. The figure, at most 1 s at the defaults, is
/// measured by `cargo bench --bench failover` (docs/BENCHMARKS.md: about 0.7 s).
const RESTORE_WITHIN: Duration = Duration::from_millis(1500);
/// How often the application-like prober opens a new connection.
const PROBE_EVERY: Duration = Duration::from_millis(10);

/// Rules of multihome's protocol: the daemon adds none (the static uplinks' rules are networkd's
/// or NetworkManager's).
fn protocol_77_rules(lab: &Lab) -> Vec<String> {
    lab.ip_host(&["-4", "rule"]).unwrap_or_default().lines().filter(|l| l.contains("proto 77")).map(str::to_string).collect()
}

/// Signals a daemon the test started, with everything in its process group (nsenter and the
/// daemon it forked): never anything else.
fn signal_daemon(pgid: u32, signal: Signal) -> anyhow::Result<()> {
    killpg(Pid::from_raw(pgid as i32), signal)?;
    Ok(())
}

/// Starts the daemon in the lab host; returns its process group.
fn start_daemon(lab: &mut Lab) -> anyhow::Result<u32> {
    let pid = lab.spawn_multihome(&["daemon"])?.id();
    // Ready when the bus answers and every uplink has its verdict: up, so main decides alone.
    lab.wait_for(Duration::from_secs(10), || status::all_up(lab, &["eth0", "wlan1", "wlan0"]))
        .map_err(|e| anyhow::anyhow!("the daemon did not judge every uplink up: {e}\n{}", spawned_logs(lab)))?;
    assert!(lab.daemon_copies("-4").is_empty(), "copies in main with nothing demoted: {:?}", lab.daemon_copies("-4"));
    Ok(pid)
}

/// The daemon's resident memory in KiB and CPU time so far, from /proc of the process nsenter
/// forked in the daemon's process group.
fn daemon_usage(pgid: u32) -> Option<(u64, Duration)> {
    let children = std::fs::read_to_string(format!("/proc/{pgid}/task/{pgid}/children")).ok()?;
    let pid: u32 = children.split_whitespace().next()?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some((rss, Duration::from_millis(ticks * 1000 / hz)))
}

fn silent_failure_and_failback(manager: Manager) -> anyhow::Result<()> {
    let mut lab = common::lab::seed(manager)?;
    let pgid = start_daemon(&mut lab)?;
    let started = Instant::now();

    // Silent failure of eth0: carrier stays, nothing behind its switch answers.
    let prober = Prober::start(&lab.host(), INTERNET, PROBE_EVERY)?;
    std::thread::sleep(Duration::from_millis(500));
    let fault = prober.now();
    let t0 = Instant::now();
    lab.set_upstream("eth0", false)?;
    let mut detected = None;
    lab.wait_for(Duration::from_secs(3), || {
        let c = lab.daemon_copies("-4");
        let gone = !c.is_empty() && !c.contains(&"eth0".to_string());
        if gone && detected.is_none() {
            detected = Some(t0.elapsed());
        }
        gone
    })
    .map_err(|e| anyhow::anyhow!("eth0 was not demoted: {e}\n{}", spawned_logs(&lab)))?;
    std::thread::sleep(Duration::from_millis(1500));
    let records = prober.stop()?;
    let o = outage(&records, fault);
    eprintln!(
        "{manager:?}: silent failure detected (route withdrawn) after {:?}; new connections restored after {:?}, {} probes lost",
        detected.unwrap(),
        o.restore,
        o.lost
    );
    assert!(o.restore <= RESTORE_WITHIN, "new connections restored only after {:?} ({} lost)\n{}", o.restore, o.lost, spawned_logs(&lab));
    assert_eq!(records.last().and_then(|r| r.source), Some(seed_address("wlan1")), "after the failover new connections leave via wlan1");
    assert_eq!(lab.outbound_source(QUICK), Some(seed_address("wlan1")));

    let s = status::read(&lab)?;
    assert_eq!(s.active, "wlan1", "{s}");
    assert_eq!(s.state("eth0"), Some(State::Down), "{s}");
    assert_eq!(s.state("wlan1"), Some(State::Up), "{s}");
    let table = lab.multihome_ok(&["status"])?;
    assert!(table.contains("New connections leave via wlan1"), "{table}");
    eprintln!("multihome status during the failover:\n{table}");

    // Repair: eth0 comes back once, after RecoverAfter good rounds and the hold, and stays.
    let t1 = Instant::now();
    lab.set_upstream("eth0", true)?;
    lab.wait_for(Duration::from_secs(10), || lab.daemon_copies("-4").is_empty())
        .map_err(|e| anyhow::anyhow!("eth0 did not come back: {e}\n{}", spawned_logs(&lab)))?;
    let failback = t1.elapsed();
    eprintln!("{manager:?}: failback after {failback:?}");
    // Five good rounds 200 ms apart span at least 800 ms.
    assert!(failback >= Duration::from_millis(780), "failback after {failback:?}: faster than RecoverAfter=5 rounds of 200 ms");
    assert_eq!(lab.outbound_source(QUICK), Some(seed_address("eth0")));
    std::thread::sleep(Duration::from_secs(3));
    let log = spawned_logs(&lab);
    assert_eq!(transitions_to(&log, "eth0", "down"), 1, "eth0 went down more than once:\n{log}");
    assert_eq!(transitions_to(&log, "eth0", "up"), 2, "eth0 came up other than at start and once after repair:\n{log}");
    assert_eq!(transitions_to(&log, "wlan1", "down"), 0, "wlan1 never failed:\n{log}");
    assert!(lab.daemon_copies("-4").is_empty(), "copies left with nothing demoted: {:?}", lab.daemon_copies("-4"));
    assert!(protocol_77_rules(&lab).is_empty(), "{:?}", protocol_77_rules(&lab));
    let (rss_kib, cpu) = daemon_usage(pgid).expect("the daemon's /proc entry");
    let per_hour = cpu.as_secs_f64() * 3600.0 / started.elapsed().as_secs_f64();
    eprintln!("{manager:?}: daemon resident {rss_kib} KiB, CPU {cpu:?} in {:?} (~{per_hour:.0} s per hour with a failover)", started.elapsed());
    Ok(())
}

both_managers! {
    networkd_silent_failure_moves_new_connections_within_a_second_and_fails_back_once,
    networkmanager_silent_failure_moves_new_connections_within_a_second_and_fails_back_once
        => silent_failure_and_failback
}

#[test]
fn carrier_loss_with_the_daemon_loses_no_connection() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let mut lab = common::lab::seed(Manager::Networkd)?;
    start_daemon(&mut lab)?;
    let prober = Prober::start(&lab.host(), INTERNET, Duration::from_millis(5))?;
    std::thread::sleep(Duration::from_millis(300));
    // Probes sent before the host's kernel has processed the carrier loss (its link watch marks
    // the routes linkdown and announces the change) leave through eth0 into the dead port: no
    // routing can save them. Count from the moment the kernel shows the link down.
    let t0 = Instant::now();
    lab.set_carrier("eth0", false)?;
    lab.wait_for(Duration::from_secs(2), || {
        let link = lab.ip_host(&["link", "show", "dev", "eth0"]).unwrap_or_default();
        link.contains("state LOWERLAYERDOWN") || link.contains("state DOWN")
    })?;
    let fault = prober.now();
    eprintln!("the host's kernel showed eth0 down {:?} after the fault", t0.elapsed());
    std::thread::sleep(Duration::from_millis(1000));
    let records = prober.stop()?;
    let o = outage(&records, fault);
    let lost: Vec<String> = records.iter().filter(|r| r.sent >= fault && r.source.is_none()).map(|r| format!("{:?}", r.sent - fault)).collect();
    assert_eq!(
        o.lost,
        0,
        "carrier loss lost {} new connections (sent after the fault at {})\n{}\n{}\n{}",
        o.lost,
        lost.join(" "),
        lab.ip_host(&["-4", "route", "show", "table", "all"]).unwrap_or_default(),
        lab::netns::ip(&lab.router(), &["neigh"]).map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
            + &lab.ip_host(&["link"]).unwrap_or_default(),
        spawned_logs(&lab)
    );
    assert_eq!(records.last().and_then(|r| r.source), Some(seed_address("wlan1")));
    lab.wait_for(Duration::from_secs(2), || status::state(&lab, "eth0") == Some(State::NoCarrier))?;
    lab.set_carrier("eth0", true)?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    Ok(())
}

#[test]
fn kill_9_mid_failover_then_restart_converges_and_sigterm_leaves_the_plain_policy() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let mut lab = common::lab::seed(Manager::Networkd)?;
    let first = start_daemon(&mut lab)?;
    lab.set_upstream("eth0", false)?;
    lab.wait_for(Duration::from_secs(3), || lab.daemon_copies("-4").first().map(String::as_str) == Some("wlan1"))?;

    // kill -9: the kernel keeps the copies as they were; nothing cleans up.
    signal_daemon(first, Signal::SIGKILL)?;
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.daemon_copies("-4"), ["wlan1", "wlan0"], "the copies outlive the daemon");
    assert_eq!(status::code(&lab), 5, "status says no daemon runs");

    // Restart: it adopts the copies (eth0 stays out, wlan1 stays in) instead of starting blind.
    let second = lab.spawn_multihome(&["daemon"])?.id();
    let prober = Prober::start(&lab.host(), INTERNET, PROBE_EVERY)?;
    lab.wait_for(Duration::from_secs(5), || status::code(&lab) == 0)?;
    std::thread::sleep(Duration::from_secs(1));
    let records = prober.stop()?;
    let lost = records.iter().filter(|r| r.source.is_none()).count();
    assert_eq!(lost, 0, "the restart lost {lost} new connections\n{}", spawned_logs(&lab));
    assert!(records.iter().all(|r| r.source == Some(seed_address("wlan1"))), "a connection left via another uplink during the restart");
    let s = status::read(&lab)?;
    assert_eq!(s.state("eth0"), Some(State::Down), "{s}");
    assert_eq!(s.active, "wlan1");
    assert!(spawned_logs(&lab).contains("adopted the routes of a previous daemon"), "{}", spawned_logs(&lab));

    // It converges: eth0 back after repair.
    lab.set_upstream("eth0", true)?;
    lab.wait_for(Duration::from_secs(10), || lab.daemon_copies("-4").is_empty())?;

    // SIGTERM while something is demoted: the copies go; the plain policy (main, metric order)
    // remains.
    lab.multihome_ok(&["force", "down", "wlan0"])?;
    lab.wait_for(Duration::from_secs(3), || lab.daemon_copies("-4") == ["eth0", "wlan1"])?;
    signal_daemon(second, Signal::SIGTERM)?;
    lab.wait_for(Duration::from_secs(5), || lab.daemon_copies("-4").is_empty())
        .map_err(|e| anyhow::anyhow!("the daemon left its routes: {e}\n{}", spawned_logs(&lab)))?;
    assert!(protocol_77_rules(&lab).is_empty(), "{:?}", protocol_77_rules(&lab));
    assert_eq!(lab.outbound_source(QUICK), Some(seed_address("eth0")));
    assert_eq!(status::code(&lab), 5);
    Ok(())
}

/// The unit's ExecStopPost: after kill -9 (no SIGTERM handler ran), `multihome daemon
/// --cleanup` removes the copies, and main's own order decides again.
#[test]
fn cleanup_after_kill_9_leaves_no_routing_of_the_daemon() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let mut lab = common::lab::seed(Manager::Networkd)?;
    let pgid = start_daemon(&mut lab)?;
    lab.multihome_ok(&["force", "down", "eth0"])?;
    lab.wait_for(Duration::from_secs(3), || lab.daemon_copies("-4") == ["wlan1", "wlan0"])?;
    signal_daemon(pgid, Signal::SIGKILL)?;
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(lab.daemon_copies("-4"), ["wlan1", "wlan0"], "kill -9 leaves the copies");
    let out = lab.multihome(&["daemon", "--cleanup"])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("removed 4 route(s)"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(lab.ip_host(&["-4", "route", "show", "table", "all", "proto", "77"])?.is_empty());
    assert_eq!(lab.outbound_source(QUICK), Some(seed_address("eth0")), "the plain policy: eth0 first");
    let again = lab.multihome(&["daemon", "--cleanup"])?;
    assert!(again.status.success() && String::from_utf8_lossy(&again.stderr).contains("no routes of the daemon were left"));
    Ok(())
}

/// A maintenance order survives a restart (kill -9, the unit's cleanup, a new daemon) when the
/// daemon has a runtime directory, as the unit gives it.
#[test]
fn a_forced_down_uplink_stays_down_across_a_restart() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let mut lab = common::lab::seed(Manager::Networkd)?;
    lab.run_in_host("mkdir", &["-p", "/run/multihome"])?;
    let daemon = ["RUNTIME_DIRECTORY=/run/multihome", "/usr/sbin/multihome", "daemon"];
    let first = lab.spawn_in_host("env", &daemon)?.id();
    lab.wait_for(Duration::from_secs(10), || status::all_up(&lab, &["eth0", "wlan1", "wlan0"]))?;
    lab.multihome_ok(&["force", "down", "eth0"])?;
    signal_daemon(first, Signal::SIGKILL)?;
    lab.wait_for(Duration::from_secs(5), || status::code(&lab) == 5)?;
    lab.multihome_ok(&["daemon", "--cleanup"])?;
    assert_eq!(lab.outbound_source(QUICK), Some(seed_address("eth0")), "without a daemon the plain policy decides");
    lab.spawn_in_host("env", &daemon)?;
    lab.wait_for(Duration::from_secs(10), || status::state(&lab, "eth0") == Some(State::ForcedDown) && lab.daemon_copies("-4") == ["wlan1", "wlan0"])
        .map_err(|e| anyhow::anyhow!("the order was not kept: {e}\n{}", spawned_logs(&lab)))?;
    assert_eq!(lab.outbound_source(QUICK), Some(seed_address("wlan1")));
    assert!(spawned_logs(&lab).contains("eth0: keeping the maintenance order from before the restart"), "{}", spawned_logs(&lab));
    lab.multihome_ok(&["force", "release", "eth0"])?;
    let kept = lab.run_in_host("cat", &["/run/multihome/forced"])?;
    assert_eq!(String::from_utf8_lossy(&kept.stdout), "", "a released order is not kept");
    Ok(())
}

#[test]
fn maintenance_forces_an_uplink_down_and_releases_it() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let mut lab = common::lab::seed(Manager::Networkd)?;
    start_daemon(&mut lab)?;
    // A second daemon refuses to start, before it touches a route; the first keeps its name.
    let second = lab.run_in_host("timeout", &["5", lab.multihome_path().to_str().unwrap(), "daemon"])?;
    assert_eq!(second.status.code(), Some(1), "{}", String::from_utf8_lossy(&second.stderr));
    assert!(String::from_utf8_lossy(&second.stderr).contains("another multihome daemon is running"), "{}", String::from_utf8_lossy(&second.stderr));
    lab.multihome_ok(&["force", "down", "eth0"])?;
    assert_eq!(lab.outbound_source(QUICK), Some(seed_address("wlan1")));
    assert_eq!(status::state(&lab, "eth0"), Some(State::ForcedDown));
    let unknown = lab.multihome(&["force", "down", "eth9"])?;
    assert!(!unknown.status.success(), "an interface outside the policy is refused");

    // Anyone may read; only root may change anything (the bus policy, and the daemon itself).
    let bin = lab.multihome_path().display().to_string();
    let nobody = |args: &[&str]| {
        let mut all = vec!["--reuid=65534", "--regid=65534", "--clear-groups", bin.as_str()];
        all.extend_from_slice(args);
        lab.run_in_host("setpriv", &all).expect("run as nobody")
    };
    let read = nobody(&["status", "--json"]);
    assert!(read.status.success(), "nobody cannot read the status: {}", String::from_utf8_lossy(&read.stderr));
    let denied = nobody(&["force", "release", "eth0"]);
    assert!(!denied.status.success(), "nobody released a forced uplink");
    assert!(String::from_utf8_lossy(&denied.stderr).contains("AccessDenied"), "{}", String::from_utf8_lossy(&denied.stderr));
    assert_eq!(status::state(&lab, "eth0"), Some(State::ForcedDown));
    lab.multihome_ok(&["force", "release", "eth0"])?;
    assert_eq!(lab.outbound_source(QUICK), Some(seed_address("eth0")));
    assert_eq!(status::state(&lab, "eth0"), Some(State::Up));
    lab.multihome_ok(&["reload"])?;
    assert_eq!(status::state(&lab, "eth0"), Some(State::Up), "a reload keeps the states");
    Ok(())
}

/// wlan0 by DHCP (dnsmasq in the lab) behind a static eth0: the daemon learns wlan0's gateway
/// from the kernel's routes of wlan0.
#[test]
fn a_dhcp_uplink_takes_over_with_the_gateway_of_its_lease() -> anyhow::Result<()> {
    let options = common::lab::dhcp_options(Manager::Networkd);
    if !common::lab::require_for(&options) {
        return Ok(());
    }
    let mut lab = Lab::start(options)?;
    lab.write_policy(&format!("[Probe]\nTarget=198.51.100.10\n\n{DHCP_WLAN0}"))?;
    lab.multihome_ok(&["apply"])?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    lab.spawn_multihome(&["daemon"])?;
    lab.wait_for(Duration::from_secs(20), || status::all_up(&lab, &["eth0", "wlan0"])).map_err(|e| {
        anyhow::anyhow!("wlan0 was never judged up: {e}\n{}\n{}", lab.ip_host(&["route", "show", "table", "all"]).unwrap_or_default(), spawned_logs(&lab))
    })?;
    let s = status::read(&lab)?;
    let wlan0 = s.uplink("wlan0").expect("wlan0 in the status");
    assert_eq!(wlan0.gateway, "192.168.178.1", "the lease's router: {s}");
    let lease: Ipv4Addr = wlan0.address.split('/').next().and_then(|a| a.parse().ok()).expect("wlan0's leased address");

    lab.set_upstream("eth0", false)?;
    let mut last = None;
    lab.wait_for(Duration::from_secs(2), || {
        last = lab.outbound_source(QUICK);
        last == Some(lease)
    })
    .map_err(|e| anyhow::anyhow!("new connections did not move to wlan0's lease {lease}: {e}; last {last:?}\n{}", spawned_logs(&lab)))?;
    assert_eq!(lab.daemon_copies("-4"), ["wlan0"]);
    Ok(())
}

/// The manager reloads and reconfigures the uplinks while the daemon runs with eth0 demoted: its
/// copies in main are the same once the uplinks are configured again (an address the manager
/// drops and re-adds takes the kernel's routes from it with it; the daemon puts them back).
fn manager_leaves_the_copies_alone(manager: Manager, commands: &[&[&str]]) -> anyhow::Result<()> {
    let mut lab = common::lab::seed(manager)?;
    start_daemon(&mut lab)?;
    lab.multihome_ok(&["force", "down", "eth0"])?;
    let table = |lab: &Lab| lab.ip_host(&["-4", "route", "show", "table", "main", "proto", "77"]).unwrap_or_default();
    lab.wait_for(Duration::from_secs(3), || lab.daemon_copies("-4") == ["wlan1", "wlan0"])?;
    let before = table(&lab);
    let t0 = Instant::now();
    for c in commands {
        let out = lab.run_in_host(c[0], &c[1..])?;
        assert!(out.status.success(), "{}: {}", c.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    std::thread::sleep(Duration::from_millis(200));
    lab.wait_for(Duration::from_secs(8), || table(&lab) == before).map_err(|e| {
        anyhow::anyhow!("{manager:?}: the daemon's copies did not return: {e}\nbefore:\n{before}\nnow:\n{}\n{}", table(&lab), spawned_logs(&lab))
    })?;
    assert_eq!(lab.outbound_source(QUICK), Some(seed_address("wlan1")), "eth0 is forced down");
    eprintln!("{manager:?}: copies as before {:?} after the reconfiguration; daemon log:\n{}", t0.elapsed(), spawned_logs(&lab));
    Ok(())
}

#[test]
fn networkd_leaves_the_daemons_routes_alone() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    manager_leaves_the_copies_alone(Manager::Networkd, &[&["networkctl", "reload"], &["networkctl", "reconfigure", "eth0", "wlan1", "wlan0"]])
}

#[test]
fn networkmanager_leaves_the_daemons_routes_alone() -> anyhow::Result<()> {
    if !require(Manager::NetworkManager) {
        return Ok(());
    }
    manager_leaves_the_copies_alone(
        Manager::NetworkManager,
        &[&["nmcli", "general", "reload"], &["nmcli", "device", "reapply", "wlan1"], &["nmcli", "device", "reapply", "eth0"]],
    )
}

/// The daemon's cost at rest: resident memory and CPU time per hour at the default probe
/// interval (seed policy: two targets and ARP on three uplinks). A measurement, not a check of
/// behaviour, so it runs on request: `cargo test --test lab_daemon idle_cost -- --ignored
/// --nocapture` (MULTIHOME_TEST_BIN=target/release/multihome for release figures).
#[test]
#[ignore]
fn idle_cost() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let mut lab = common::lab::seed(Manager::Networkd)?;
    let pgid = start_daemon(&mut lab)?;
    let (_, cpu0) = daemon_usage(pgid).expect("the daemon's /proc entry");
    let tx0 = lab.tx_packets("eth0")?;
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(60));
    let (rss, cpu1) = daemon_usage(pgid).expect("the daemon's /proc entry");
    let tx = lab.tx_packets("eth0")? - tx0;
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "idle daemon: resident {rss} KiB, CPU {:.1} s per hour, {:.1} packets/s out of eth0 (probes)",
        (cpu1 - cpu0).as_secs_f64() * 3600.0 / secs,
        tx as f64 / secs
    );
    assert!(rss <= 20 * 1024, "resident {rss} KiB");
    Ok(())
}
