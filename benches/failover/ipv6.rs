//! The `ipv6` group: the lab's dual-stack seed (`policies::seed_dual_stack`), measured as the
//! IPv4 rows are, with new IPv6 connections (a new unbound UDP socket to the internet host's
//! IPv6 address every 10 ms): carrier loss on eth0, a silent failure of eth0's IPv6 alone at the
//! default probe settings, and a dual-stack client across a silent failure of eth0 (both
//! families) beside the IPv4 and IPv6 outages it is made of.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use multihome::lab::ipv6::INTERNET6;
use multihome::lab::policies::seed_dual_stack;
use multihome::lab::probe::{Outage, ProbeRecord, Prober, outage};
use multihome::lab::{INTERNET, Lab, LabOptions, Manager};

use multihome::plot::bars::Figure;

use super::{Family, PROBE_INTERVAL, QUIET, Report, SILENT_WATCH, carrier_table, median, ms, ms_value, silent_table, start_daemon, stop_daemon, worst};

/// What a dual-stack client waits for its IPv6 attempt before it starts the IPv4 one (RFC
/// 8305's recommended Connection Attempt Delay).
const FALLBACK_DELAY: Duration = Duration::from_millis(250);

const IPV6: Family<Ipv6Addr> = Family {
    target: INTERNET6,
    options: |manager| options6(manager, None),
    lab: lab6,
    settle: settle6,
    set_upstream: Lab::set_upstream6,
    verdict: "eth0 IPv6:",
};

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

pub fn rows(runs: usize, report: &mut Report) -> anyhow::Result<()> {
    carrier6(runs, report)?;
    silent6(runs, report)?;
    dual_stack(runs, report)
}

fn carrier6(runs: usize, report: &mut Report) -> anyhow::Result<()> {
    println!("\n## Carrier loss on eth0, new IPv6 connections\n");
    report.line("ipv6", "Carrier loss on eth0, new IPv6 connections:\n");
    let setups = [("systemd-networkd + multihome, IPv6", Manager::Networkd, true), ("NetworkManager + multihome, IPv6", Manager::NetworkManager, true)];
    carrier_table(runs, report, "ipv6", &IPV6, &setups)
}

fn silent6(runs: usize, report: &mut Report) -> anyhow::Result<()> {
    println!("\n## Silent failure of eth0's IPv6 alone (its IPv4 and link up), default [Probe] settings\n");
    report.line("ipv6", "\nSilent failure of eth0's IPv6 alone (link and IPv4 up; the router drops eth0's IPv6), default `[Probe]` settings:\n");
    let setups = [
        ("systemd-networkd + daemon, IPv6 silent", Manager::Networkd, true),
        ("NetworkManager + daemon, IPv6 silent", Manager::NetworkManager, true),
        ("systemd-networkd alone, IPv6 silent", Manager::Networkd, false),
    ];
    silent_table(runs, report, "ipv6", &IPV6, &setups)
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
    let values = [&a, &b, &c].into_iter().flat_map(|v| [ms_value(median(v.clone())), ms_value(worst(v))]).collect();
    let figure = Figure {
        title: "A dual-stack client across a silent failure of eth0 (systemd-networkd + daemon)".into(),
        unit: "ms from the fault until new connections work again".into(),
        measures: ["IPv4 median", "IPv4 worst", "IPv6 median", "IPv6 worst", "client median", "client worst"].map(String::from).to_vec(),
        rows: vec![("dual-stack, both families fail".into(), values)],
    };
    report.figure("ipv6", "ipv6-dual-stack".into(), figure);
    Ok(())
}
