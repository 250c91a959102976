//! What only the daemon sees on real Wi-Fi (issue 25, items 2 and 5), routes mode with the
//! package's daemon under its unit, with each manager: systemd-networkd on the host of
//! tests/system/wifi_routes.rs (`networkd_host_without_eth0`: hwsim stations wlan1 and wlan0
//! associated by wpa_supplicant@wlanN, DHCP leases through their access points), and
//! NetworkManager on the host of tests/system/wifi_nm_routes.rs (the administrator's Wi-Fi
//! profiles, which multihome amends); eth0's cable pulled so that wlan1 carries new connections:
//!
//! 1. a silent upstream behind wlan1's access point: its bridge loses its wired port
//!    (tests/system/wifi.rs' `set_upstream`), while wlan1 stays associated with its carrier up,
//!    so neither the kernel nor networkd nor wpa_supplicant notices. The daemon's probes demote
//!    wlan1 and new connections (one every 100 ms, each on its own thread, so that those hanging
//!    on the dead path do not hold the others back) leave via wlan0; after the repair wlan1
//!    carries them again;
//! 2. an open MPTCP connection (an echo every 20 ms) with subflows through wlan1 and wlan0 (the
//!    endpoints multihome gives the uplinks) through that silent fault and then through wlan1's
//!    disassociation (its access point stopped): it must go on over wlan0, and get a subflow
//!    through wlan1 again when wlan1 is back.
//!
//! The figures are printed, one line per fault. The faults are the same under both managers;
//! what differs is who associates the stations again and how long that takes.

use std::time::Duration;

use multihome::lab::netns::ip;
use multihome::lab::stream::{self, STREAM_PORT};
use serde_json::Value;

use super::bond::INTERNET;
use super::image;
use super::machine::Machine;
use super::wifi::{self, Echoes};
use super::wifi_nm_routes::{apply_the_seed_without_eth0, networkmanager_host, reassociated};
use super::wifi_routes::{cost, lease, networkd_host_without_eth0, now, probes, rules_for, start_concurrent_prober, wlan1_carries};

/// How long each fault lasts: longer than the daemon's hold (HoldTime=2s), so that the repair
/// is judged by RecoverAfter alone, and long enough that a plain TCP connection's stall would
/// stand out from MPTCP's.
const FAULT: Duration = Duration::from_secs(6);

/// The daemon's verdict on a silent path, at the seed's probe settings (the defaults:
/// Interval=200ms, Timeout=200ms, FailAfter=3): the first echo that goes unanswered leaves at
/// most one interval after the fault, and once it is four round trips late the suspect rounds'
/// echoes go out at once, so wlan1 is down about one Timeout after it: 0.4 s, 0.6 s with a
/// late round (docs/daemon.md; the lab measures 0.42 s). Twice that leaves room for the
/// emulated machine's scheduling.
const DEMOTION_BOUND: f64 = 1.2;
/// New connections leave via wlan0 with the demotion (the daemon's copies of wlan0's default
/// route go in front in the same step); the prober starts one every 100 ms.
const FALLBACK_BOUND: f64 = DEMOTION_BOUND + 0.3;
/// After the repair: RecoverAfter=5 good rounds of 200 ms (1 s), the hold already served during
/// the fault, and the round in progress; twice that for the emulated machine.
const RESTORE_BOUND: f64 = 2.5;

/// `multihome status --json`, as a user's program reads it.
fn status(vm: &mut Machine) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(&vm.ok("multihome status --json")?)?)
}

fn uplink<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["uplinks"].as_array().and_then(|u| u.iter().find(|u| u["interface"] == name)).unwrap_or(&Value::Null)
}

/// How many open MPTCP connections have a subflow through `name` (the daemon reads the kernel's
/// socket diagnostics at most once a second).
fn mptcp_connections(status: &Value, name: &str) -> u64 {
    uplink(status, name)["mptcp_connections"].as_u64().unwrap_or(0)
}

/// A shell test that holds while `status --json` satisfies the python expression `cond` over
/// `s` (the status) and `u` (the uplinks by name); it prints the status when it does not.
pub fn status_holds(cond: &str) -> String {
    format!(
        "multihome status --json | python3 -c 'import json,sys
s=json.load(sys.stdin); u={{x[\"interface\"]: x for x in s[\"uplinks\"]}}
ok = {cond}
sys.exit(0 if ok else print(json.dumps(s)) or 1)'"
    )
}

/// The times (CLOCK_MONOTONIC, which equals the prober's CLOCK_BOOTTIME on a machine that did
/// not sleep) at which the daemon logged wlan1 going to `to`.
fn transitions(vm: &mut Machine, to: &str) -> anyhow::Result<Vec<f64>> {
    let out =
        vm.ok(&format!("journalctl -b -u multihome -o short-monotonic --no-pager | sed -n 's/^\\[ *\\([0-9.]*\\)\\].* wlan1: [a-z-]* -> {to} .*/\\1/p'"))?;
    Ok(out.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

fn first_after(times: &[f64], from: f64) -> Option<f64> {
    times.iter().copied().find(|t| *t >= from).map(|t| t - from)
}

fn secs(t: Option<f64>) -> String {
    t.map_or("never".to_string(), |t| format!("{t:.2} s"))
}

fn kept(e: &Echoes) -> String {
    if e.broken { format!("broken ({})", e.why) } else { "kept".to_string() }
}

/// Who runs the stations.
#[derive(Clone, Copy, Debug)]
enum Manager {
    Networkd,
    NetworkManager,
}

impl Manager {
    /// The unit whose wpa_supplicant drives wlan1.
    fn supplicant(self) -> &'static str {
        match self {
            Manager::Networkd => "wpa_supplicant@wlan1",
            Manager::NetworkManager => "wpa_supplicant",
        }
    }

    /// A shell line printing how many times wpa_supplicant has seen wlan1 disconnected.
    fn disconnects(self) -> String {
        wifi::disconnects(self.supplicant(), "wlan1")
    }

    /// A shell test that holds once the manager has wlan1 associated (and, for NetworkManager,
    /// its profile activated) again.
    fn reassociated(self) -> String {
        match self {
            Manager::Networkd => wifi::associated("wlan1"),
            Manager::NetworkManager => reassociated("wlan1"),
        }
    }
}

#[test]
fn the_daemon_sees_a_silent_upstream_behind_an_access_point_and_mptcp_rides_out_a_disassociation() -> anyhow::Result<()> {
    silent_upstream_and_disassociation(Manager::Networkd)
}

#[test]
fn with_networkmanager_the_daemon_sees_a_silent_upstream_and_mptcp_rides_out_a_disassociation() -> anyhow::Result<()> {
    silent_upstream_and_disassociation(Manager::NetworkManager)
}

fn silent_upstream_and_disassociation(manager: Manager) -> anyhow::Result<()> {
    let _one = crate::one_machine_at_a_time();
    if !image::require() {
        return Ok(());
    }
    let (net, _servers) = wifi::network_with_servers()?;
    // The server's path manager accepts a joining subflow from each of the machine's uplinks.
    ip(&net.names.internet(), &["mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8"])?;
    let _mptcp_echo = stream::mptcp_echo(&net.names.internet(), INTERNET)?;
    // eth0's cable pulled: new connections, and the MPTCP connection's first subflow, leave via
    // wlan1; the path manager adds a subflow through wlan0 (its endpoint: backup).
    let (mut vm, wlan1, wlan0) = match manager {
        Manager::Networkd => networkd_host_without_eth0(&net)?,
        Manager::NetworkManager => {
            let mut vm = networkmanager_host(&net)?;
            let (wlan1, wlan0) = apply_the_seed_without_eth0(&mut vm)?;
            (vm, wlan1, wlan0)
        }
    };
    let vm = &mut vm;
    assert_eq!(vm.ok("sysctl -n net.mptcp.enabled")?.trim(), "1", "Debian's kernel has MPTCP on");
    vm.wait_for("the daemon: wlan1 first", &status_holds("s[\"active\"] == \"wlan1\""), Duration::from_secs(30))?;
    start_concurrent_prober(vm)?;
    wifi::start_mptcp_echo(vm, &INTERNET.to_string(), STREAM_PORT)?;
    vm.wait_for("the MPTCP echo answering", "test $(grep -c '^[0-9]' /run/mh-echo.log) -ge 50", Duration::from_secs(60))?;
    let mptcp = vm.ok(&format!("ss -nMH dst {INTERNET}"))?;
    assert!(mptcp.contains(&format!("{INTERNET}:{STREAM_PORT}")), "the echo's connection is not an MPTCP one (ss -M):\n{mptcp}");
    vm.wait_for(
        "the MPTCP connection's subflows through wlan1 and wlan0",
        &status_holds("u[\"wlan1\"][\"mptcp_connections\"] == 1 and u[\"wlan0\"][\"mptcp_connections\"] == 1"),
        Duration::from_secs(30),
    )?;
    let endpoints_before = vm.ok("ip mptcp endpoint show")?;

    // 1. The silent upstream: the station stays associated, its carrier up.
    let disconnects = vm.ok(&manager.disconnects())?.trim().to_string();
    let echoed_before = Echoes::read(vm)?.answered();
    let fault = wifi::set_upstream(vm, "wlan1", false)?;
    let demoted = vm.wait_for(
        "the daemon demoting wlan1",
        &status_holds("s[\"active\"] == \"wlan0\" and u[\"wlan1\"][\"state\"] in (\"down\", \"recovering\")"),
        Duration::from_secs(30),
    );
    if let Err(e) = demoted {
        eprintln!("{}", vm.ok("journalctl -b -u multihome --no-pager -o short-monotonic | tail -n 30")?);
        return Err(e);
    }
    vm.wait_for("new connections via wlan0", &format!("ip -4 route get {INTERNET} | grep -q 'dev wlan0 '"), Duration::from_secs(5))?;
    let during = status(vm)?;
    let endpoints_during = vm.ok("ip mptcp endpoint show")?;
    // Nothing below the daemon saw it: still associated, carrier up, no disconnection.
    let associated = vm.sh(&wifi::linked("wlan1"))?.code == 0;
    let carrier = vm.ok("cat /sys/class/net/wlan1/carrier")?.trim() == "1";
    let disconnects_during = vm.ok(&manager.disconnects())?.trim().to_string();
    let since_fault = now(vm)? - fault;
    std::thread::sleep(FAULT.saturating_sub(Duration::from_secs_f64(since_fault.max(0.0))));
    let back = wifi::set_upstream(vm, "wlan1", true)?;
    vm.wait_for("the daemon trusting wlan1 again", &status_holds("s[\"active\"] == \"wlan1\""), Duration::from_secs(30))?;
    wlan1_carries(vm, &wlan1, back)?;
    // wlan1's endpoint gets its flag back (no longer backup) and the connection data through it.
    vm.wait_for("wlan1's endpoint without backup", "ip mptcp endpoint show | grep ' id 241 ' | grep -qv backup", Duration::from_secs(30))?;
    std::thread::sleep(Duration::from_secs(2));
    let end = now(vm)?;
    let silent = cost(&probes(vm)?, fault, back, end, &wlan1, &wlan0);
    let demotion = first_after(&transitions(vm, "down")?, fault);
    let recovery = first_after(&transitions(vm, "up")?, back);
    let silent_echoes = Echoes::read(vm)?;

    // 2. wlan1's access point stops: wlan1 is disassociated, its carrier goes, the daemon takes
    // its endpoint away, and the MPTCP connection must carry on over wlan0.
    vm.wait_for(
        "the MPTCP connection's subflow through wlan1",
        &status_holds("u[\"wlan1\"][\"mptcp_connections\"] == 1 and u[\"wlan0\"][\"mptcp_connections\"] == 1"),
        Duration::from_secs(30),
    )?;
    let echoed_before_stop = Echoes::read(vm)?.answered();
    let stop = now(vm)?;
    wifi::stop_access_point(vm, "wlan1")?;
    vm.wait_for("wlan1 disassociated", &format!("! {}", wifi::linked("wlan1")), Duration::from_secs(30))?;
    std::thread::sleep(FAULT);
    let stopped = status(vm)?;
    let during_stop = Echoes::read(vm)?;
    let restart = now(vm)?;
    wifi::start_access_point(vm, "wlan1")?;
    vm.wait_for("wlan1 associated again", &manager.reassociated(), Duration::from_secs(90))?;
    let reassociated = now(vm)? - restart;
    let wlan1_again = lease(vm, "wlan1")?;
    rules_for(vm, &wlan1_again, 102)?;
    // The daemon adds wlan1's endpoint back on its lease's address, and the open connection gets
    // a subflow through it.
    let rejoined = vm.wait_for(
        "the MPTCP connection's subflow through wlan1 again",
        &status_holds("u[\"wlan1\"][\"mptcp_connections\"] == 1 and u[\"wlan1\"][\"state\"] == \"up\""),
        Duration::from_secs(60),
    );
    let rejoined = rejoined.is_ok().then(|| now(vm)).transpose()?.map(|t| t - restart);
    let up_again = first_after(&transitions(vm, "up")?, restart);
    std::thread::sleep(Duration::from_secs(1));
    let after = Echoes::read(vm)?;
    let endpoints_after = vm.ok("ip mptcp endpoint show")?;
    vm.ok("systemctl stop mh-probe mh-echo; true")?;

    println!(
        "{manager:?}: silent upstream behind wlan1's access point for {:.1} s (wlan1 associated: {associated}, carrier: {carrier}, wpa_supplicant disconnections {disconnects} -> {disconnects_during}): \
         the daemon demoted wlan1 {} after the fault; {} of {} new connections failed; first through wlan0 {} after the fault; \
         wlan1 up again {} and carried new connections again {} after the repair",
        back - fault,
        secs(demotion),
        silent.failed,
        silent.attempts,
        secs(silent.to_fallback),
        secs(recovery),
        secs(silent.restored)
    );
    println!(
        "{manager:?}: MPTCP echo (every 20 ms) across the silent upstream: longest wait for an answer {:.3} s, {} 20 ms ticks missed; connection {}",
        silent_echoes.max_gap_after(echoed_before),
        silent_echoes.ticks_missed_after(echoed_before),
        kept(&silent_echoes)
    );
    println!(
        "{manager:?}: MPTCP echo (every 20 ms) across wlan1's disassociation (access point stopped for {:.1} s): longest wait for an answer {:.3} s, {} 20 ms ticks missed, {} answers while wlan1 was gone; connection {}; \
         after the access point's restart wlan1 associated within {reassociated:.1} s, up again {} (the daemon's journal) and the connection had a subflow through it again {} (lease {wlan1} -> {wlan1_again})",
        restart - stop,
        after.max_gap_after(echoed_before_stop),
        after.ticks_missed_after(echoed_before_stop),
        during_stop.answered().saturating_sub(echoed_before_stop),
        kept(&after),
        secs(up_again),
        secs(rejoined)
    );
    eprintln!("{}", vm.ok("journalctl -b -u multihome --no-pager -o short-monotonic | grep -E ' wlan1: |MPTCP' | tail -n 20")?);
    // What the reassociation's time went on, wpa_supplicant's side.
    eprintln!("{}", vm.ok(&format!("journalctl -b -u {} --no-pager -o short-monotonic | grep wlan1 | tail -n 25", manager.supplicant()))?);
    eprintln!("MPTCP endpoints before:\n{endpoints_before}during the silent fault:\n{endpoints_during}after:\n{endpoints_after}");

    // 1: only the daemon could see the fault, and it did, in its probes' time.
    assert!(
        associated && carrier && disconnects == disconnects_during,
        "the silent fault was not silent: associated {associated}, carrier {carrier}, disconnections {disconnects} -> {disconnects_during}"
    );
    assert_eq!(uplink(&during, "wlan1")["carrying"], false, "wlan1 still carrying during the fault: {during}");
    let demotion = demotion.ok_or_else(|| anyhow::anyhow!("the daemon's journal has no demotion of wlan1"))?;
    assert!(demotion <= DEMOTION_BOUND, "the daemon demoted wlan1 {demotion:.2} s after the fault (bound {DEMOTION_BOUND} s)");
    let to_wlan0 = silent.to_fallback.ok_or_else(|| anyhow::anyhow!("no new connection left via wlan0 during the silent fault"))?;
    assert!(to_wlan0 <= FALLBACK_BOUND, "new connections left via wlan0 {to_wlan0:.2} s after the fault (bound {FALLBACK_BOUND} s)");
    // Those started before the demotion wait on the dead path: about one per 100 ms of it.
    let bound = ((FALLBACK_BOUND / 0.1).ceil() as usize) + 1;
    assert!(silent.failed <= bound, "{} new connections failed during the silent fault (bound {bound})", silent.failed);
    let restored = silent.restored.ok_or_else(|| anyhow::anyhow!("wlan1 did not carry new connections again after the repair"))?;
    assert!(restored <= RESTORE_BOUND, "wlan1 carried new connections again {restored:.2} s after the repair (bound {RESTORE_BOUND} s)");
    assert!(
        endpoints_during.lines().any(|l| l.contains(" id 241 ") && l.contains("backup")),
        "wlan1's endpoint not steered to backup while wlan1 was demoted:\n{endpoints_during}"
    );

    // 2: the MPTCP connection outlived both faults, each costing it far less than the fault (a
    // plain TCP connection through wlan1 would wait out the whole of it).
    assert!(!silent_echoes.broken && !after.broken, "the MPTCP connection broke: {}", after.why);
    assert_eq!(mptcp_connections(&stopped, "wlan1"), 0, "a subflow through wlan1 while it was disassociated: {stopped}");
    assert_eq!(mptcp_connections(&stopped, "wlan0"), 1, "no subflow through wlan0 while wlan1 was disassociated: {stopped}");
    assert!(during_stop.answered() > echoed_before_stop + 100, "the MPTCP connection answered little while wlan1 was gone");
    for (what, gap) in [("the silent upstream", silent_echoes.max_gap_after(echoed_before)), ("the disassociation", after.max_gap_after(echoed_before_stop))] {
        assert!(gap < FAULT.as_secs_f64() / 3.0, "the MPTCP connection waited {gap:.2} s for an answer across {what}");
    }
    assert!(rejoined.is_some(), "the MPTCP connection got no subflow through wlan1 after its return");

    vm.set_link("eth0", true)?;
    vm.journal()?;
    vm.passed();
    Ok(())
}
