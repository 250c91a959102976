//! The `ipv6` group: the lab's dual-stack seed (`policies::seed_dual_stack`), measured as the
//! IPv4 rows are, with new IPv6 connections (a new unbound UDP socket to the internet host's
//! IPv6 address every 10 ms): carrier loss on eth0, a silent failure of eth0's IPv6 alone at the
//! default probe settings, and a dual-stack client across a silent failure of eth0 (both
//! families) beside the IPv4 and IPv6 outages it is made of.

use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use multihome::lab::ipv6::INTERNET6;
use multihome::lab::policies::seed_dual_stack;
use multihome::lab::probe::{Outage, ProbeRecord, Prober, outage};
use multihome::lab::{self, INTERNET, Lab, LabOptions, Manager};

use super::{PROBE_INTERVAL, QUIET, Report, SILENT_WATCH, ms, row, start_daemon, stop_daemon};

/// What a dual-stack client waits for its IPv6 attempt before it starts the IPv4 one (RFC
/// 8305's recommended Connection Attempt Delay).
const FALLBACK_DELAY: Duration = Duration::from_millis(250);

fn options6(manager: Manager, policy: Option<String>) -> LabOptions {
    LabOptions { ipv6: true, policy, ..LabOptions::new(manager, env!("CARGO_BIN_EXE_multihome")) }
}

/// The dual-stack seed applied by `manager` (networkd: before it starts, as at boot).
fn lab6(manager: Manager) -> anyhow::Result<Lab> {
    let lab = Lab::start(options6(manager, (manager == Manager::Networkd).then(seed_dual_stack)))?;
    if manager == Manager::NetworkManager {
        lab.write_policy(&seed_dual_stack())?;
        lab.multihome_ok(&["apply"])?;
    }
    settle6(&lab)?;
    Ok(lab)
}

fn settle6(lab: &Lab) -> anyhow::Result<()> {
    lab.outbound_settles_on("eth0", Duration::from_secs(30))?;
    lab.outbound6_settles_on("eth0", Duration::from_secs(30))
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

fn worst<T: Ord + Copy>(v: &[T]) -> T {
    *v.iter().max().expect("runs > 0")
}

pub fn rows(runs: usize, report: &mut Report) -> anyhow::Result<()> {
    carrier6(runs, report)?;
    silent6(runs, report)?;
    dual_stack(runs, report)
}

fn carrier6(runs: usize, report: &mut Report) -> anyhow::Result<()> {
    println!("\n## Carrier loss on eth0, new IPv6 connections\n");
    report.line("ipv6", "Carrier loss on eth0, new IPv6 connections:\n");
    report.line("ipv6", format!("| {:<40} | {:>14} | {:>14} | {:>11} | {:>10} |", "setup", "restore median", "restore worst", "lost median", "lost worst"));
    report.line("ipv6", format!("|{:-<42}|{:->16}|{:->16}|{:->13}|{:->12}|", "", "", "", "", ""));
    for (name, manager) in [("systemd-networkd + multihome, IPv6", Manager::Networkd), ("NetworkManager + multihome, IPv6", Manager::NetworkManager)] {
        if lab::prerequisites(&options6(manager, None)).is_err() {
            report.line("ipv6", format!("| {name:<40} | not installed |"));
            continue;
        }
        let lab = lab6(manager)?;
        let mut outcomes = Vec::new();
        for _ in 0..runs {
            let prober = Prober::start(&lab.host(), INTERNET6, PROBE_INTERVAL)?;
            std::thread::sleep(QUIET);
            let fault = prober.now();
            lab.set_carrier("eth0", false)?;
            std::thread::sleep(Duration::from_secs(8));
            let records = prober.stop()?;
            lab.set_carrier("eth0", true)?;
            settle6(&lab)?;
            outcomes.push(outage(&records, fault));
        }
        report.line("ipv6", row(name, &outcomes));
    }
    Ok(())
}

fn silent6(runs: usize, report: &mut Report) -> anyhow::Result<()> {
    println!("\n## Silent failure of eth0's IPv6 alone (its IPv4 and link up), default [Probe] settings\n");
    report.line("ipv6", "\nSilent failure of eth0's IPv6 alone (link and IPv4 up; the router drops eth0's IPv6), default `[Probe]` settings:\n");
    report.line(
        "ipv6",
        format!(
            "| {:<40} | {:>16} | {:>14} | {:>14} | {:>11} | {:>15} |",
            "setup", "detection median", "restore median", "restore worst", "lost median", "failback median"
        ),
    );
    report.line("ipv6", format!("|{:-<42}|{:->18}|{:->16}|{:->16}|{:->13}|{:->17}|", "", "", "", "", "", ""));
    for (name, manager, daemon) in [
        ("systemd-networkd + daemon, IPv6 silent", Manager::Networkd, true),
        ("NetworkManager + daemon, IPv6 silent", Manager::NetworkManager, true),
        ("systemd-networkd alone, IPv6 silent", Manager::Networkd, false),
    ] {
        if lab::prerequisites(&options6(manager, None)).is_err() {
            report.line("ipv6", format!("| {name:<40} | not installed |"));
            continue;
        }
        let mut lab = lab6(manager)?;
        let (mut detection, mut restore, mut lost, mut failback) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..if daemon { runs } else { 1 } {
            let started = if daemon { Some(start_daemon(&mut lab)?) } else { None };
            let log = started.as_ref().map(|(log, _)| log);
            let prober = Prober::start(&lab.host(), INTERNET6, PROBE_INTERVAL)?;
            std::thread::sleep(QUIET);
            let log_len = log.map_or(0, |l| std::fs::read_to_string(l).map_or(0, |s| s.len()));
            let fault = prober.now();
            let cut = Instant::now();
            lab.set_upstream6("eth0", false)?;
            detection.push(watch_for_down(log, log_len, cut, "eth0 IPv6:"));
            let records = prober.stop()?;
            let repaired = Instant::now();
            lab.set_upstream6("eth0", true)?;
            settle6(&lab)?;
            failback.push(repaired.elapsed());
            let o = outage(&records, fault);
            restore.push(o.restore);
            lost.push(o.lost);
            if let Some((log, pgid)) = started {
                stop_daemon(&lab, &log, pgid)?;
            }
        }
        report.line(
            "ipv6",
            format!(
                "| {:<40} | {:>16} | {:>14} | {:>14} | {:>11} | {:>15} |",
                name,
                ms(median(detection)),
                ms(median(restore.clone())),
                ms(worst(&restore)),
                median(lost),
                if daemon { ms(median(failback)) } else { "n/a".to_string() }
            ),
        );
    }
    Ok(())
}

/// Watches the daemon's log for `prefix` ... "-> down" for [`SILENT_WATCH`]; when it came.
fn watch_for_down(log: Option<&PathBuf>, log_len: usize, cut: Instant, prefix: &str) -> Duration {
    let mut detection = Duration::MAX;
    while cut.elapsed() < SILENT_WATCH {
        if detection == Duration::MAX
            && let Some(l) = log
        {
            let text = std::fs::read_to_string(l).unwrap_or_default();
            if text.get(log_len..).is_some_and(|new| new.lines().any(|x| x.starts_with(prefix) && x.contains("-> down"))) {
                detection = cut.elapsed();
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    detection
}

/// A client that tries IPv6 first, one new socket per attempt, and IPv4 [`FALLBACK_DELAY`]
/// later when IPv6 did not answer: its attempt at `t` works when the IPv6 probe sent at `t` or
/// the IPv4 probe sent at `t + FALLBACK_DELAY` was answered (both relative to the fault).
fn dual_stack_client(v6: &[ProbeRecord<Ipv6Addr>], fault6: Duration, v4: &[ProbeRecord], fault4: Duration) -> Vec<ProbeRecord<IpAddr>> {
    let after4: Vec<(Duration, bool)> = v4.iter().filter(|r| r.sent >= fault4).map(|r| (r.sent - fault4, r.source.is_some())).collect();
    v6.iter()
        .filter(|r| r.sent >= fault6)
        .map(|r| {
            let at = r.sent - fault6;
            let fallback = at + FALLBACK_DELAY;
            // The IPv4 probe nearest to the fallback moment; none after the run: no fallback.
            let v4_ok =
                after4.iter().min_by_key(|(t, _)| t.abs_diff(fallback)).filter(|(t, _)| t.abs_diff(fallback) <= PROBE_INTERVAL).is_some_and(|(_, ok)| *ok);
            let source = r.source.map(IpAddr::V6).or_else(|| v4_ok.then_some(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)));
            ProbeRecord { sent: at, source }
        })
        .collect()
}

fn dual_stack(runs: usize, report: &mut Report) -> anyhow::Result<()> {
    println!("\n## A dual-stack client across a silent failure of eth0 (both families), default [Probe] settings\n");
    report.line(
        "ipv6",
        format!(
            "\nA silent failure of eth0 (both families), default `[Probe]` settings: new IPv4 and new IPv6 connections, and a dual-stack client that tries IPv6 first (one socket per attempt) and IPv4 {} ms later:\n",
            FALLBACK_DELAY.as_millis()
        ),
    );
    report.line(
        "ipv6",
        format!(
            "| {:<40} | {:>14} | {:>12} | {:>14} | {:>12} | {:>14} | {:>12} |",
            "setup", "IPv4 median", "IPv4 worst", "IPv6 median", "IPv6 worst", "client median", "client worst"
        ),
    );
    report.line("ipv6", format!("|{:-<42}|{:->16}|{:->14}|{:->16}|{:->14}|{:->16}|{:->14}|", "", "", "", "", "", "", ""));
    let manager = Manager::Networkd;
    let mut lab = lab6(manager)?;
    let (mut r4, mut r6, mut rc): (Vec<Outage>, Vec<Outage>, Vec<Outage>) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (log, pgid) = start_daemon(&mut lab)?;
        let p4 = Prober::start(&lab.host(), INTERNET, PROBE_INTERVAL)?;
        let p6 = Prober::start(&lab.host(), INTERNET6, PROBE_INTERVAL)?;
        std::thread::sleep(QUIET);
        let (fault4, fault6) = (p4.now(), p6.now());
        lab.set_upstream("eth0", false)?;
        std::thread::sleep(SILENT_WATCH);
        let (v4, v6) = (p4.stop()?, p6.stop()?);
        lab.set_upstream("eth0", true)?;
        settle6(&lab)?;
        stop_daemon(&lab, &log, pgid)?;
        r4.push(outage(&v4, fault4));
        r6.push(outage(&v6, fault6));
        rc.push(outage(&dual_stack_client(&v6, fault6, &v4, fault4), Duration::ZERO));
    }
    let restore = |o: &[Outage]| o.iter().map(|o| o.restore).collect::<Vec<_>>();
    let (a, b, c) = (restore(&r4), restore(&r6), restore(&rc));
    report.line(
        "ipv6",
        format!(
            "| {:<40} | {:>14} | {:>12} | {:>14} | {:>12} | {:>14} | {:>12} |",
            "systemd-networkd + daemon, dual-stack",
            ms(median(a.clone())),
            ms(worst(&a)),
            ms(median(b.clone())),
            ms(worst(&b)),
            ms(median(c.clone())),
            ms(worst(&c))
        ),
    );
    Ok(())
}
