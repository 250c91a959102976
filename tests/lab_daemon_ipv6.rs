//! The failover daemon over IPv6, in the lab with the real systemd-networkd and NetworkManager
//! (issue 12): each family of an uplink is judged on its own. A silent failure of eth0's IPv6
//! alone (its router drops everything for eth0's IPv6 addresses; carrier, IPv4, neighbour
//! discovery and the advertisements go on) moves new IPv6 connections to wlan1 and back after the repair,
//! while IPv4 stays on eth0 throughout. And a new IPv6 address (SLAAC, temporary) gets its
//! `from`/`to` rules from the daemon, which watches the kernel's address events, with no
//! dispatcher running at all (the lab starts none unless asked). And where every uplink has a
//! global IPv6 router (whose routes the kernel keeps using at carrier loss), a carrier loss of
//! eth0 loses no new IPv6 connection with either manager (issue 22): the daemon takes eth0's
//! IPv6 routes out of use the moment the kernel reports it.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use common::lab::spawned_logs;
use common::status::{self, State};
use multihome::lab::ipv6::{INTERNET6, STATIC_ADDRESSES6};
use multihome::lab::notice::CarrierNotice;
use multihome::lab::policies::{dual_stack_probed, seed_dual_stack, seed_global_router6};
use multihome::lab::probe::{Prober, outage};
use multihome::lab::{Lab, LabOptions, Manager, seed_address};

#[allow(dead_code)]
mod common;

/// Bounds that catch a daemon that never judges IPv6 apart (no switch at all, or IPv4 moved
/// too) without flaking on a loaded machine; the figures are measured by the benchmark.
const SWITCH_WITHIN: Duration = Duration::from_secs(5);
/// The hold (2 s) and RecoverAfter (5 rounds) at the defaults, with room for a loaded machine.
const FAILBACK_WITHIN: Duration = Duration::from_secs(15);
/// New IPv6 connections around a carrier loss: a new unbound socket this often.
const PROBE_INTERVAL: Duration = Duration::from_millis(5);
/// How long new connections are watched after a carrier loss: past NetworkManager's ~6 s
/// carrier grace, during which it keeps the link's routes.
const CARRIER_WATCH: Duration = Duration::from_secs(8);

/// A dual-stack lab with the daemon running and every family of every uplink judged up: with
/// networkd the dual-stack policy with advertisements (applied before networkd starts, as at
/// boot), with NetworkManager the lab's static dual-stack seed over D-Bus (its backend takes no
/// advertisements yet).
/// The lab and the daemon's process group.
fn start_with(manager: Manager) -> anyhow::Result<Option<(Lab, u32)>> {
    start_policy(manager, if manager == Manager::Networkd { dual_stack_probed() } else { seed_dual_stack() })
}

/// [`start_with`] for `policy` (with networkd applied before it starts, with NetworkManager
/// over D-Bus).
fn start_policy(manager: Manager, policy: String) -> anyhow::Result<Option<(Lab, u32)>> {
    let options = LabOptions { ipv6: true, ..LabOptions::new(manager, common::binary()) };
    if !common::lab::require_for(&options) {
        return Ok(None);
    }
    let mut lab = common::lab::applied(options, &policy)?;
    lab.outbound6_settles_on("eth0", Duration::from_secs(15))?;
    let pgid = lab.spawn_multihome(&["daemon"])?.id();
    lab.wait_for(Duration::from_secs(15), || status::all_up_both_families(&lab, &["eth0", "wlan1", "wlan0"]))
        .map_err(|e| anyhow::anyhow!("the daemon did not judge both families of every uplink up: {e}\n{}\n{}", status::show(&lab), spawned_logs(&lab)))?;
    assert!(lab.daemon_copies("-6").is_empty(), "IPv6 copies with nothing demoted: {:?}", lab.daemon_copies("-6"));
    Ok(Some((lab, pgid)))
}

fn start() -> anyhow::Result<Option<(Lab, u32)>> {
    start_with(Manager::Networkd)
}

#[test]
fn a_silent_ipv6_failure_moves_ipv6_alone_and_back() -> anyhow::Result<()> {
    let Some((lab, _)) = start()? else { return Ok(()) };
    silent_ipv6_failure_and_back(&lab)
}

#[test]
fn networkmanager_a_silent_ipv6_failure_moves_ipv6_alone_and_back() -> anyhow::Result<()> {
    let Some((lab, _)) = start_with(Manager::NetworkManager)? else { return Ok(()) };
    silent_ipv6_failure_and_back(&lab)
}

fn silent_ipv6_failure_and_back(lab: &Lab) -> anyhow::Result<()> {
    let eth0_v4 = seed_address("eth0");

    lab.set_upstream6("eth0", false)?;
    let cut = Instant::now();
    lab.outbound6_settles_on("wlan1", SWITCH_WITHIN).map_err(|e| anyhow::anyhow!("{e}\n{}\n{}", status::show(lab), spawned_logs(lab)))?;
    let moved = cut.elapsed();
    // IPv4 stays where it was: eth0's IPv4 side was never at fault.
    for _ in 0..20 {
        assert_eq!(lab.outbound_source(Duration::from_millis(500)), Some(eth0_v4), "IPv4 left eth0 during eth0's IPv6 failure\n{}", spawned_logs(lab));
    }
    let s = status::read(lab)?;
    let carrying6 = |iface: &str| s.uplink(iface).and_then(|u| u.ipv6.as_ref()).map(|v6| v6.carrying);
    assert_eq!(s.state("eth0"), Some(State::Up), "eth0's IPv4 was judged by IPv6's failure: {s}");
    assert_eq!(s.state6("eth0"), Some(State::Down), "{s}");
    assert_eq!(carrying6("eth0"), Some(false), "{s}");
    assert_eq!(carrying6("wlan1"), Some(true), "{s}");
    assert_eq!(s.active, "eth0", "{s}");
    assert_eq!(s.active6, "wlan1", "{s}");
    assert_eq!(lab.daemon_copies("-6"), ["wlan1", "wlan0"], "the IPv6 copies, in the uplinks' order");
    let copies4 = lab.ip_host(&["-4", "route", "show", "table", "main", "proto", "77"])?;
    assert!(copies4.is_empty(), "IPv4 copies while only IPv6 failed:\n{copies4}");
    // The text status shows both families, each with its own mark.
    let text = String::from_utf8_lossy(&lab.multihome(&["status"])?.stdout).into_owned();
    assert!(text.contains("New connections leave via eth0 (*).") && text.contains("New IPv6 connections leave via wlan1"), "{text}");

    lab.set_upstream6("eth0", true)?;
    lab.outbound6_settles_on("eth0", FAILBACK_WITHIN).map_err(|e| anyhow::anyhow!("{e}\n{}\n{}", status::show(lab), spawned_logs(lab)))?;
    lab.wait_for(Duration::from_secs(5), || lab.daemon_copies("-6").is_empty())
        .map_err(|_| anyhow::anyhow!("IPv6 copies left after failback: {:?}", lab.daemon_copies("-6")))?;
    assert_eq!(lab.outbound_source(Duration::from_millis(500)), Some(eth0_v4));
    let log = spawned_logs(lab);
    assert!(log.lines().any(|l| l.contains("eth0 IPv6: ") && l.contains("-> down")), "no IPv6 transition of eth0 logged:\n{log}");
    assert!(!log.lines().any(|l| l.starts_with("eth0: ") && l.contains("-> down")), "eth0's IPv4 side went down:\n{log}");
    eprintln!("new IPv6 connections moved to wlan1 {moved:?} after the cut (bounded by {SWITCH_WITHIN:?} here; figures in docs/BENCHMARKS.md)");
    Ok(())
}

#[test]
fn a_new_ipv6_address_gets_its_rules_from_the_daemon_without_a_dispatcher() -> anyhow::Result<()> {
    let Some((lab, _)) = start()? else { return Ok(()) };
    assert!(lab.log("networkd-dispatcher.log").is_empty(), "this lab runs no dispatcher");
    let rules = || lab.ip_host(&["-6", "rule"]).unwrap_or_default();
    // The SLAAC address eth0 already has got its pair when the daemon started.
    let slaac = lab.wait_for_slaac("eth0", "2001:db8:178::99".parse()?, Duration::from_secs(15))?;
    lab.wait_for(Duration::from_secs(5), || rules().contains(&format!("from {slaac} lookup 101 proto 77")))
        .map_err(|_| anyhow::anyhow!("no rule for eth0's SLAAC address {slaac}:\n{}", rules()))?;

    // A new temporary-like address, by hand: no link state changes, no dispatcher would run.
    let temporary: Ipv6Addr = "2001:db8:178:0:5eed:1:2:3".parse()?;
    let added = Instant::now();
    lab.ip_host(&["-6", "addr", "add", &format!("{temporary}/64"), "dev", "eth0", "nodad"])?;
    lab.wait_for(Duration::from_secs(5), || {
        let r = rules();
        r.contains(&format!("from {temporary} lookup 101 proto 77")) && r.contains(&format!("from all to {temporary} lookup 101 proto 77"))
    })
    .map_err(|_| anyhow::anyhow!("no rules for the new address {temporary}:\n{}\n{}", rules(), spawned_logs(&lab)))?;
    let took = added.elapsed();
    // Its answers leave through eth0, where the rule sends them.
    common::lab::inbound6_is_symmetric_on(&lab, &[("eth0", temporary)], 10)?;

    lab.ip_host(&["-6", "addr", "del", &format!("{temporary}/64"), "dev", "eth0"])?;
    lab.wait_for(Duration::from_secs(5), || !rules().contains(&temporary.to_string()))
        .map_err(|_| anyhow::anyhow!("the rules of the removed address {temporary} stayed:\n{}", rules()))?;
    assert!(rules().contains(&format!("from {slaac} lookup 101 proto 77")), "the SLAAC address lost its rule:\n{}", rules());
    eprintln!("the new address had its rules {took:?} after it was added");
    Ok(())
}

/// `multihome lab --fault silent6` shows both families: new IPv6 connections (TRAFFIC6) leave
/// eth0 for wlan1 and come back, while new IPv4 connections (TRAFFIC) never leave eth0.
#[test]
fn the_lab_command_shows_both_families() {
    if !common::lab::require_for(&LabOptions { ipv6: true, ..LabOptions::new(Manager::Networkd, common::binary()) }) {
        return;
    }
    let out = std::process::Command::new(common::binary())
        .args(["lab", "--backend", "networkd", "--fault", "silent6"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("multihome lab runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let lines = |kind: &str| stdout.lines().filter(|l| l.split_whitespace().nth(1) == Some(kind)).map(str::to_string).collect::<Vec<_>>();
    let (traffic, traffic6) = (lines("TRAFFIC"), lines("TRAFFIC6"));
    assert!(lines("FAULT")[0].contains("eth0 loses its IPv6 silently"), "{stdout}");
    assert!(!traffic.is_empty() && traffic.iter().all(|l| l.contains("via eth0")), "IPv4 left eth0:\n{stdout}");
    let via: Vec<&str> = traffic6.iter().filter_map(|l| l.split(" via ").nth(1)?.split_whitespace().next()).collect();
    assert!(via.first() == Some(&"eth0") && via.contains(&"wlan1") && via.last() == Some(&"eth0"), "IPv6 did not move to wlan1 and back:\n{stdout}");
    assert!(stdout.contains("Done: namespaces and processes removed"), "{stdout}");
}

/// A daemon killed with -9 mid-failover leaves its IPv6 copies; `multihome reset --dry-run`
/// names them and the unit's ExecStopPost (`multihome daemon --cleanup`) removes them.
#[test]
fn the_ipv6_copies_of_a_killed_daemon_are_found_and_cleaned_up() -> anyhow::Result<()> {
    let Some((lab, pgid)) = start()? else { return Ok(()) };
    lab.set_upstream6("eth0", false)?;
    lab.wait_for(SWITCH_WITHIN, || !lab.daemon_copies("-6").is_empty()).map_err(|_| anyhow::anyhow!("no IPv6 copies\n{}", spawned_logs(&lab)))?;
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid as i32), nix::sys::signal::Signal::SIGKILL)?;
    lab.wait_for(Duration::from_secs(5), || status::code(&lab) == 5).map_err(|_| anyhow::anyhow!("the killed daemon still answers"))?;
    assert_eq!(lab.daemon_copies("-6"), ["wlan1", "wlan0"], "kill -9 left no IPv6 copies to clean up");
    let dry = lab.multihome_ok(&["reset", "--dry-run"])?;
    assert!(dry.contains("route ::/0 via 2001:db8:178::1 dev wlan1"), "reset --dry-run does not name the IPv6 copy:\n{dry}");
    lab.multihome_ok(&["daemon", "--cleanup"])?;
    assert!(lab.daemon_copies("-6").is_empty(), "IPv6 copies left after the cleanup: {:?}", lab.daemon_copies("-6"));
    Ok(())
}

both_managers! {
    a_carrier_loss_with_global_routers_loses_no_new_ipv6_connection,
    networkmanager_a_carrier_loss_with_global_routers_loses_no_new_ipv6_connection
        => carrier_loss_with_global_routers
}

/// Every uplink with the global router 2001:db8:178::1: eth0 keeps `ignore_routes_with_linkdown=0`,
/// so the kernel goes on sending into eth0's routes after its carrier is gone until the manager
/// deletes them (networkd within milliseconds, NetworkManager about 6 s later). New IPv6
/// connections every few ms across the carrier loss: none lost once the kernel handled it, and
/// all on wlan1; on return eth0 carries again with its manager's own routes and no copy left.
/// How long the daemon may take from the kernel's report of a carrier loss to the copies in front
/// of the dead uplink's IPv6 routes: one connection attempt (every 5 ms here) at most falls in it.
const REACTION: Duration = Duration::from_millis(5);

fn carrier_loss_with_global_routers(manager: Manager) -> anyhow::Result<()> {
    let Some((lab, _)) = start_policy(manager, seed_global_router6())? else { return Ok(()) };
    let sysctl = lab.run_in_host("sysctl", &["-n", "net.ipv6.conf.eth0.ignore_routes_with_linkdown"])?;
    assert_eq!(String::from_utf8_lossy(&sysctl.stdout).trim(), "0", "the case under test: the kernel keeps eth0's IPv6 routes at carrier loss");

    let prober = Prober::start(&lab.host(), INTERNET6, PROBE_INTERVAL)?;
    std::thread::sleep(Duration::from_millis(500));
    let notice = CarrierNotice::start(&lab.host(), "eth0")?;
    let (fault, fault_at) = (prober.now(), Instant::now());
    lab.set_carrier("eth0", false)?;
    // The kernel reports the lab's carrier loss up to a second late (linkwatch, see
    // src/lab/notice.rs), to the managers and the daemon alike: what is lost before its report
    // is lost with any policy. Counted from the report, on the prober's clock.
    let seen = notice.seen(Duration::from_secs(3)).ok_or_else(|| anyhow::anyhow!("the kernel did not report eth0's carrier loss within 3 s"))?;
    let reported = fault + (seen - fault_at);
    std::thread::sleep(CARRIER_WATCH.saturating_sub(prober.now() - fault));
    let records = prober.stop()?;
    let after = outage(&records, reported);
    let before = outage(&records, fault).lost - after.lost;
    let sent = records.iter().filter(|r| r.sent >= reported).count();
    let wlan1 = STATIC_ADDRESSES6[1].1;
    let lost_at: Vec<String> =
        records.iter().filter(|r| r.sent >= reported && r.source.is_none()).map(|r| format!("{:?}", r.sent - reported)).take(10).collect();
    eprintln!(
        "{manager:?}: the kernel reported the carrier loss {:?} after it ({before} lost meanwhile); after that {} of {sent} new IPv6 connections lost (the first at {}), working again {:?} later",
        reported - fault,
        after.lost,
        lost_at.join(", "),
        after.restore
    );
    // The daemon reacts to the kernel's report in about a millisecond (two on a busy machine):
    // a connection opened in that moment may still take eth0's route, none after it.
    let late = records.iter().filter(|r| r.sent >= reported + REACTION && r.source.is_none()).count();
    assert_eq!(
        late,
        0,
        "new IPv6 connections lost more than {REACTION:?} after the kernel reported eth0's carrier loss, at {lost_at:?}\n{}",
        spawned_logs(&lab)
    );
    assert!(after.lost <= 1, "new IPv6 connections lost while the daemon reacted to the carrier loss, at {lost_at:?}\n{}", spawned_logs(&lab));
    assert_eq!(records.last().and_then(|r| r.source), Some(wlan1), "new IPv6 connections did not end on wlan1");

    lab.set_carrier("eth0", true)?;
    lab.outbound6_settles_on("eth0", FAILBACK_WITHIN).map_err(|e| anyhow::anyhow!("{e}\n{}\n{}", status::show(&lab), spawned_logs(&lab)))?;
    lab.wait_for(Duration::from_secs(5), || lab.daemon_copies("-6").is_empty())
        .map_err(|_| anyhow::anyhow!("IPv6 copies left after eth0 returned: {:?}", lab.daemon_copies("-6")))?;
    let main = lab.routes6("main")?;
    assert!(
        main.lines().any(|l| l.starts_with("default via 2001:db8:178::1 dev eth0") && l.contains("metric 100") && !l.contains("proto 77")),
        "eth0's manager did not put its own default route back:\n{main}"
    );
    Ok(())
}
