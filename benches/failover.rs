//! The failover benchmark: the seed scenario in the namespace lab, many times, with what
//! applications see when the preferred uplink fails, beside the same network manager without
//! multihome in the same run. Needs root. Each group's table is printed and written into
//! docs/BENCHMARKS.md between its `<!-- bench:GROUP -->` markers, with the date, the machine and
//! the command, so the document holds what a run measured and nothing typed by hand
//! (`--no-write` leaves the document alone). The figures of a group are drawn as SVG into
//! docs/bench/ (`multihome::plot::bars`) and linked under its table.
//!
//!     cargo bench --bench failover                       # everything, default runs
//!     cargo bench --bench failover -- --runs 5 --only carrier
//!     cargo bench --bench failover -- --only silent,loss,quality,resources
//!     cargo bench --bench failover -- --only resources --uplinks 32,200 --no-write
//!     cargo bench --bench failover -- --runs 5 --only mptcp
//!     cargo bench --bench failover -- --runs 5 --only ipv6

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use multihome::lab::lossy::LossyResponder;
use multihome::lab::notice::CarrierNotice;
use multihome::lab::policies::SEED;
use multihome::lab::probe::{Outage, Prober, Target, outage};
use multihome::lab::stream::Stream;
use multihome::lab::{self, INTERNET, Lab, LabOptions, Manager, seed_address};
use multihome::plot::bars::{Figure, Value};

/// The report and statistics both benchmarks share.
#[path = "common/report.rs"]
mod report;
use report::{Report, flag, machine, median, worst};

/// The `ipv6` group, in a file of its own.
#[path = "failover/ipv6.rs"]
mod ipv6;

/// Probe spacing: an application opening a new connection every 10 ms.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);
/// Time without link events before each fault: the kernel handles a carrier change of an
/// ordinary NIC (linkwatch) at most once a second machine-wide, and a real host's links are
/// quiet before a fault.
const QUIET: Duration = Duration::from_millis(1300);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = flag(&args, "--runs").map_or(Ok(10), |v| v.parse()).context("--runs takes a number")?;
    let only = flag(&args, "--only");
    // `--only silent,quality`: those groups.
    let wanted = |group: &str| only.as_deref().is_none_or(|o| o.split(',').any(|g| g == group));
    // `--uplinks 32,200`: only those scale rows (and not the seed's), for a quick look.
    let scale_only: Option<Vec<usize>> =
        flag(&args, "--uplinks").map(|v| v.split(',').map(str::parse).collect::<Result<_, _>>()).transpose().context("--uplinks takes numbers like 32,200")?;
    lab::prerequisites(&options(Manager::Networkd, None)).map_err(anyhow::Error::msg)?;
    println!("multihome failover benchmark: {runs} runs per row; a new UDP socket every {PROBE_INTERVAL:?} to the lab's internet host");
    let mut command = format!("cargo bench --bench failover -- --runs {runs}");
    if let Some(o) = &only {
        command.push_str(&format!(" --only {o}"));
    }
    let mut report = Report::default();
    if wanted("carrier") {
        carrier_rows(runs, &mut report)?;
    }
    if wanted("silent") {
        silent_rows(runs, &mut report)?;
    }
    if wanted("loss") {
        loss_row(&mut report)?;
    }
    if wanted("quality") {
        quality_rows(&mut report)?;
    }
    if wanted("mptcp") {
        mptcp_rows(runs, &mut report)?;
    }
    if wanted("ipv6") {
        ipv6::rows(runs, &mut report)?;
    }
    if wanted("resources") {
        if scale_only.is_none() {
            resources_row(&mut report)?;
        }
        scale_rows(scale_only.as_deref().unwrap_or(&SCALE_UPLINKS), &mut report)?;
    }
    if !args.iter().any(|a| a == "--no-write") {
        let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/BENCHMARKS.md");
        report.write_into(&doc, &command, &machine())?;
        println!("\nwrote {}", doc.display());
    }
    Ok(())
}

/// A duration as a figure's value in milliseconds; `Duration::MAX` is what never happened.
fn ms_value(d: Duration) -> Value {
    if d == Duration::MAX { Value::Never } else { Value::Measured(d.as_secs_f64() * 1e3) }
}

/// A figure's file name: the group's, or the group's and the table's when the group has several.
fn figure_name(group: &str, table: &str) -> String {
    if group == table { group.to_string() } else { format!("{group}-{table}") }
}

// ---- labs ----------------------------------------------------------------------------------

fn options(manager: Manager, policy: Option<&str>) -> LabOptions {
    LabOptions { policy: policy.map(str::to_string), ..LabOptions::new(manager, env!("CARGO_BIN_EXE_multihome")) }
}

/// The manager with multihome's policy applied (networkd: before it starts, as at boot).
fn with_multihome(manager: Manager, policy: &str) -> anyhow::Result<Lab> {
    let lab = Lab::start(options(manager, (manager == Manager::Networkd).then_some(policy)))?;
    if manager == Manager::NetworkManager {
        lab.write_policy(policy)?;
        lab.multihome_ok(&["apply"])?;
    }
    settle_on_eth0(&lab)?;
    Ok(lab)
}

/// The same manager given the same routes and rules by hand (they are what a careful admin
/// writes from the seed's answer), without multihome's sysctls: the peer in the same run.
fn alone(manager: Manager) -> anyhow::Result<Lab> {
    let lab = with_multihome(manager, SEED)?;
    std::fs::remove_file(lab.dir().join("etc/sysctl.d/60-multihome.conf")).ok();
    for key in ["ignore_routes_with_linkdown", "arp_ignore", "arp_announce", "rp_filter"] {
        for dev in ["default", "eth0", "wlan1", "wlan0"] {
            let out = lab.run_in_host("sysctl", &["-qw", &format!("net/ipv4/conf/{dev}/{key}=0")])?;
            if !out.status.success() {
                bail!("sysctl: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
    }
    Ok(lab)
}

/// Starts `multihome daemon` in the lab host; its log and the pid of the nsenter that runs it.
fn start_daemon(lab: &mut Lab) -> anyhow::Result<(PathBuf, u32)> {
    let spawned = lab.spawn_multihome(&["daemon"])?;
    let (log, nsenter) = (spawned.log.clone(), spawned.id());
    lab.wait_for_log(&log, "eth0: unknown -> up", Duration::from_secs(10)).context("the daemon did not take eth0 up")?;
    Ok((log, nsenter))
}

/// SIGTERM, then wait until the daemon says it removed its rule and table.
fn stop_daemon(lab: &Lab, log: &Path, pgid: u32) -> anyhow::Result<()> {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid as i32), nix::sys::signal::Signal::SIGTERM)?;
    lab.wait_for_log(log, "stopped:", Duration::from_secs(10)).context("the daemon did not stop")
}

fn settle_on_eth0(lab: &Lab) -> anyhow::Result<()> {
    lab.outbound_settles_on("eth0", Duration::from_secs(30))
}

/// What the IPv4 rows and the `ipv6` group differ in: what the probes reach, the lab and how it
/// settles after a fault, how eth0's upstream fails silently, and the daemon's verdict line.
struct Family<A: Target> {
    target: A,
    options: fn(Manager) -> LabOptions,
    /// The manager with the family's seed policy applied.
    lab: fn(Manager) -> anyhow::Result<Lab>,
    settle: fn(&Lab) -> anyhow::Result<()>,
    /// Breaks (false) or repairs (true) an uplink's upstream for this family, link up.
    set_upstream: fn(&Lab, &str, bool) -> anyhow::Result<()>,
    /// How the daemon's log line with eth0's verdict for this family starts.
    verdict: &'static str,
}

const IPV4: Family<Ipv4Addr> = Family {
    target: INTERNET,
    options: |manager| options(manager, None),
    lab: |manager| with_multihome(manager, SEED),
    settle: settle_on_eth0,
    set_upstream: Lab::set_upstream,
    verdict: "eth0:",
};

fn carrier_rows(runs: usize, report: &mut Report) -> anyhow::Result<()> {
    println!("\n## Carrier loss on eth0 (the preferred uplink)\n");
    let setups: [(&str, Manager, bool); 4] = [
        ("systemd-networkd + multihome", Manager::Networkd, true),
        ("systemd-networkd alone (same routes)", Manager::Networkd, false),
        ("NetworkManager + multihome", Manager::NetworkManager, true),
        ("NetworkManager alone (same profiles)", Manager::NetworkManager, false),
    ];
    carrier_table(runs, report, "carrier", &IPV4, &setups)
}

/// `group`'s table of carrier loss on eth0 over `family`, a row per setup (name, manager, with
/// multihome or the manager [`alone`]).
fn carrier_table<A: Target>(runs: usize, report: &mut Report, group: &'static str, family: &Family<A>, setups: &[(&str, Manager, bool)]) -> anyhow::Result<()> {
    report.line(group, format!("| {:<40} | {:>14} | {:>14} | {:>11} | {:>10} |", "setup", "restore median", "restore worst", "lost median", "lost worst"));
    report.line(group, format!("|{:-<42}|{:->16}|{:->16}|{:->13}|{:->12}|", "", "", "", "", ""));
    let mut figure = Figure {
        title: format!("Carrier loss on eth0 ({group}): from the fault until new connections work again"),
        unit: "ms after the fault".into(),
        measures: vec!["restore median".into(), "restore worst".into()],
        rows: Vec::new(),
    };
    for &(name, manager, multihome) in setups {
        if lab::prerequisites(&(family.options)(manager)).is_err() {
            report.line(group, format!("| {name:<40} | not installed |"));
            continue;
        }
        let lab = if multihome { (family.lab)(manager)? } else { alone(manager)? };
        let mut outcomes = Vec::new();
        for _ in 0..runs {
            outcomes.push(carrier_loss_once(&lab, family)?);
        }
        report.line(group, row(name, &outcomes));
        let restore: Vec<Duration> = outcomes.iter().map(|o| o.restore).collect();
        figure.rows.push((name.to_string(), vec![ms_value(median(restore.clone())), ms_value(worst(&restore))]));
    }
    report.figure(group, figure_name(group, "carrier"), figure);
    Ok(())
}

fn carrier_loss_once<A: Target>(lab: &Lab, family: &Family<A>) -> anyhow::Result<Outage> {
    let prober = Prober::start(&lab.host(), family.target, PROBE_INTERVAL)?;
    std::thread::sleep(QUIET);
    let fault = prober.now();
    lab.set_carrier("eth0", false)?;
    // NetworkManager alone needs its ~6 s carrier grace to give up the route.
    std::thread::sleep(Duration::from_secs(8));
    let records = prober.stop()?;
    lab.set_carrier("eth0", true)?;
    (family.settle)(lab)?;
    Ok(outage(&records, fault))
}

fn row(name: &str, outcomes: &[Outage]) -> String {
    let mut restore: Vec<Duration> = outcomes.iter().map(|o| o.restore).collect();
    let mut lost: Vec<usize> = outcomes.iter().map(|o| o.lost).collect();
    restore.sort();
    lost.sort();
    format!(
        "| {:<40} | {:>14} | {:>14} | {:>11} | {:>10} |",
        name,
        ms(restore[restore.len() / 2]),
        ms(*restore.last().expect("runs > 0")),
        lost[lost.len() / 2],
        lost.last().expect("runs > 0")
    )
}

fn ms(d: Duration) -> String {
    if d == Duration::MAX { "never".to_string() } else { format!("{:.0} ms", d.as_secs_f64() * 1e3) }
}

// ---- silent failure ------------------------------------------------------------------------

fn silent_rows(runs: usize, report: &mut Report) -> anyhow::Result<()> {
    println!("\n## Silent failure of eth0 (link up, nothing answers behind its switch), default [Probe] settings\n");
    let setups = [
        ("systemd-networkd + multihome daemon", Manager::Networkd, true),
        ("NetworkManager + multihome daemon", Manager::NetworkManager, true),
        ("systemd-networkd alone", Manager::Networkd, false),
    ];
    silent_table(runs, report, "silent", &IPV4, &setups)
}

/// `group`'s table of a silent failure of eth0's upstream over `family`, a row per setup (name,
/// manager, with the daemon or without).
fn silent_table<A: Target>(runs: usize, report: &mut Report, group: &'static str, family: &Family<A>, setups: &[(&str, Manager, bool)]) -> anyhow::Result<()> {
    report.line(
        group,
        format!(
            "| {:<40} | {:>16} | {:>14} | {:>14} | {:>11} | {:>15} |",
            "setup", "detection median", "restore median", "restore worst", "lost median", "failback median"
        ),
    );
    report.line(group, format!("|{:-<42}|{:->18}|{:->16}|{:->16}|{:->13}|{:->17}|", "", "", "", "", "", ""));
    let mut figure = Figure {
        title: format!("Silent failure of eth0 ({group}): detection, restore, and failback after the repair"),
        unit: "ms (detection and restore: after the fault; failback: after the repair)".into(),
        measures: vec!["detection median".into(), "restore median".into(), "restore worst".into(), "failback median".into()],
        rows: Vec::new(),
    };
    for &(name, manager, daemon) in setups {
        if lab::prerequisites(&(family.options)(manager)).is_err() {
            report.line(group, format!("| {name:<40} | not installed |"));
            continue;
        }
        let mut lab = (family.lab)(manager)?;
        let mut rows = Vec::new();
        // Without the daemon nothing ever notices: one run shows it.
        for _ in 0..if daemon { runs } else { 1 } {
            // A fresh daemon per run: its flap damping would rightly stretch the hold of an
            // uplink that fails every few seconds, which is not the failback this row measures.
            let started = if daemon { Some(start_daemon(&mut lab)?) } else { None };
            rows.push(silent_once(&lab, started.as_ref().map(|(log, _)| log), family)?);
            if let Some((log, pgid)) = started {
                stop_daemon(&lab, &log, pgid)?;
            }
        }
        let restore: Vec<Duration> = rows.iter().map(|r| r.outage.restore).collect();
        let line = format!(
            "| {:<40} | {:>16} | {:>14} | {:>14} | {:>11} | {:>15} |",
            name,
            ms(median(rows.iter().map(|r| r.detection).collect())),
            ms(median(restore.clone())),
            ms(worst(&restore)),
            median(rows.iter().map(|r| r.outage.lost).collect()),
            if daemon { ms(median(rows.iter().map(|r| r.failback).collect())) } else { "n/a".to_string() }
        );
        report.line(group, line);
        let failback = if daemon { ms_value(median(rows.iter().map(|r| r.failback).collect())) } else { Value::Missing };
        let detection = ms_value(median(rows.iter().map(|r| r.detection).collect()));
        figure.rows.push((name.to_string(), vec![detection, ms_value(median(restore.clone())), ms_value(worst(&restore)), failback]));
    }
    report.figure(group, figure_name(group, "silent"), figure);
    Ok(())
}

struct Silent {
    detection: Duration,
    outage: Outage,
    failback: Duration,
}

const SILENT_WATCH: Duration = Duration::from_secs(4);

fn silent_once<A: Target>(lab: &Lab, log: Option<&PathBuf>, family: &Family<A>) -> anyhow::Result<Silent> {
    let prober = Prober::start(&lab.host(), family.target, PROBE_INTERVAL)?;
    std::thread::sleep(QUIET);
    let log_len = log.map_or(0, |l| std::fs::read_to_string(l).map_or(0, |s| s.len()));
    let fault = prober.now();
    let cut = Instant::now();
    (family.set_upstream)(lab, "eth0", false)?;
    let detection = watch_for_down(log, log_len, cut, family.verdict);
    let records = prober.stop()?;
    let repaired = Instant::now();
    (family.set_upstream)(lab, "eth0", true)?;
    (family.settle)(lab)?;
    Ok(Silent { detection, outage: outage(&records, fault), failback: repaired.elapsed() })
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

// ---- open connections across a failover (MPTCP) ---------------------------------------------

/// How long eth0 stays broken in an MPTCP run.
const MPTCP_FAULT: Duration = Duration::from_secs(4);
/// The open connections' echo spacing, as in issue 15's measurement.
const STREAM_EVERY: Duration = Duration::from_millis(10);

/// One long-lived plain TCP and one MPTCP connection from the host to the internet host (100
/// bytes echoed every 10 ms), eth0 failed silently or unplugged for 4 s, then repaired; the
/// seed policy and the daemon, nothing else configured.
fn mptcp_rows(runs: usize, report: &mut Report) -> anyhow::Result<()> {
    println!("\n## Open connections across a failover of eth0: MPTCP beside plain TCP\n");
    report.line(
        "mptcp",
        format!(
            "| {:<40} | {:>8} | {:>13} | {:>12} | {:>10} | {:>12} | {:>12} | {:>13} | {:>12} |",
            "setup", "fault", "MPTCP median", "MPTCP worst", "bytes lost", "TCP median", "eth0 again", "notice median", "after notice"
        ),
    );
    report.line("mptcp", format!("|{:-<42}|{:->10}|{:->15}|{:->14}|{:->12}|{:->14}|{:->14}|{:->15}|{:->14}|", "", "", "", "", "", "", "", "", ""));
    let mut figure = Figure {
        title: "Open connections across a failover of eth0: the longest stall, MPTCP beside plain TCP".into(),
        unit: "ms without an echo (eth0 broken for 4 s)".into(),
        measures: vec!["MPTCP median".into(), "MPTCP worst".into(), "plain TCP median".into()],
        rows: Vec::new(),
    };
    for (name, manager) in [("systemd-networkd + multihome daemon", Manager::Networkd), ("NetworkManager + multihome daemon", Manager::NetworkManager)] {
        if lab::prerequisites(&options(manager, None)).is_err() {
            report.line("mptcp", format!("| {name:<40} | not installed |"));
            continue;
        }
        let mut lab = with_multihome(manager, SEED)?;
        lab.start_stream_echo()?;
        for silent in [true, false] {
            let mut runs_seen = Vec::new();
            for _ in 0..runs {
                // A fresh daemon per run, as in the silent rows (its flap damping); measured once
                // it has judged every uplink (until then the daemon rightly keeps an unjudged
                // uplink's endpoint backup).
                let (log, pgid) = start_daemon(&mut lab)?;
                for uplink in ["wlan1", "wlan0"] {
                    lab.wait_for_log(&log, &format!("{uplink}: unknown -> up"), Duration::from_secs(10))?;
                }
                runs_seen.push(mptcp_once(&lab, silent)?);
                stop_daemon(&lab, &log, pgid)?;
            }
            let median = |mut v: Vec<Duration>| {
                v.sort();
                v[v.len() / 2]
            };
            let mptcp: Vec<Duration> = runs_seen.iter().map(|r| r.mptcp_stall).collect();
            // Carrier loss: when the kernel told user space (see lab::notice), and the longest
            // an echo took from then on, over the runs.
            let noticed = |f: fn(&MptcpRun) -> Option<Duration>| -> String {
                let v: Option<Vec<Duration>> = runs_seen.iter().map(f).collect();
                v.map_or("-".to_string(), |v| ms(median(v)))
            };
            let line = format!(
                "| {:<40} | {:>8} | {:>13} | {:>12} | {:>10} | {:>12} | {:>12} | {:>13} | {:>12} |",
                name,
                if silent { "silent" } else { "carrier" },
                ms(median(mptcp.clone())),
                ms(*mptcp.iter().max().expect("runs > 0")),
                runs_seen.iter().map(|r| r.bytes_lost).max().expect("runs > 0"),
                ms(median(runs_seen.iter().map(|r| r.tcp_stall).collect())),
                ms(median(runs_seen.iter().map(|r| r.back_on_eth0).collect())),
                noticed(|r| r.notice),
                noticed(|r| r.after_notice),
            );
            report.line("mptcp", line);
            let tcp = median(runs_seen.iter().map(|r| r.tcp_stall).collect());
            let label = format!("{name}, {}", if silent { "silent" } else { "carrier" });
            figure.rows.push((label, vec![ms_value(median(mptcp.clone())), ms_value(*mptcp.iter().max().expect("runs > 0")), ms_value(tcp)]));
        }
    }
    report.figure("mptcp", "mptcp".into(), figure);
    Ok(())
}

struct MptcpRun {
    mptcp_stall: Duration,
    bytes_lost: u64,
    tcp_stall: Duration,
    /// From the repair until eth0 carries the MPTCP connection's data again.
    back_on_eth0: Duration,
    /// Carrier loss only: from the fault until the kernel reported it, and from then until
    /// the MPTCP connection's next echo.
    notice: Option<Duration>,
    after_notice: Option<Duration>,
}

fn mptcp_once(lab: &Lab, silent: bool) -> anyhow::Result<MptcpRun> {
    let set = |broken: bool| if silent { lab.set_upstream("eth0", !broken) } else { lab.set_carrier("eth0", !broken) };
    let tcp = Stream::start(&lab.host(), INTERNET, false, STREAM_EVERY)?;
    let mptcp = Stream::start(&lab.host(), INTERNET, true, STREAM_EVERY)?;
    std::thread::sleep(QUIET);
    let watch = if silent { None } else { Some(CarrierNotice::start(&lab.host(), "eth0")?) };
    let (fault, tcp_fault, fault_at) = (mptcp.now(), tcp.now(), Instant::now());
    set(true)?;
    let notice = watch.and_then(|w| w.seen(MPTCP_FAULT)).map(|at| at - fault_at);
    std::thread::sleep(MPTCP_FAULT.saturating_sub(fault_at.elapsed()));
    let (repair, tcp_repair) = (mptcp.now(), tcp.now());
    // The plain connection is done: its retransmissions would count as eth0's traffic below.
    let tcp = tcp.stop();
    set(false)?;
    // Back on eth0: a 100 ms window in which eth0 sends what 100 echoes a second need (the
    // daemon's probes are 1 or 2 packets in that time).
    let repaired = Instant::now();
    let mut back_on_eth0 = Duration::MAX;
    let mut last = lab.tx_packets("eth0")?;
    while repaired.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
        let now = lab.tx_packets("eth0")?;
        if now - last >= 8 {
            back_on_eth0 = repaired.elapsed();
            break;
        }
        last = now;
    }
    let mptcp = mptcp.stop();
    settle_on_eth0(lab)?;
    Ok(MptcpRun {
        mptcp_stall: if mptcp.error.is_some() { Duration::MAX } else { mptcp.worst_stall(fault, repair) },
        bytes_lost: mptcp.bytes_lost(),
        tcp_stall: tcp.worst_stall(tcp_fault, tcp_repair),
        back_on_eth0,
        after_notice: notice.map(|n| mptcp.echoes.iter().find(|t| **t > fault + n).map_or(Duration::MAX, |t| *t - (fault + n))),
        notice,
    })
}

// ---- false switches under probe loss -------------------------------------------------------

/// The probes of eth0 lose 20% at random (a user-space responder on the internet host); a
/// switch away from a healthy eth0 is a false one.
fn loss_row(report: &mut Report) -> anyhow::Result<()> {
    const MINUTES: u64 = 3;
    let policy = SEED.replace("Target=192.168.178.1\n", "").replace("[Probe]\n", "[Probe]\nArpGateway=no\n");
    if policy.contains("Target=192.168.178.1\n") || !policy.contains("ArpGateway=no") {
        bail!("the seed's [Probe] changed: the loss row would not depend on the lossy target alone");
    }
    let mut lab = with_multihome(Manager::Networkd, &policy)?;
    let loss: HashMap<_, _> = [(seed_address("eth0"), 0.20)].into_iter().collect();
    let _responder = LossyResponder::start(&lab.internet(), loss, 0x5eed)?;
    let (log, _) = start_daemon(&mut lab)?;
    std::thread::sleep(Duration::from_secs(MINUTES * 60));
    let text = std::fs::read_to_string(&log)?;
    let rounds = MINUTES * 60 * 1000 / 200;
    let false_switches = text.lines().filter(|l| l.starts_with("eth0:") && l.contains("-> down")).count();
    let degraded = text.lines().filter(|l| l.starts_with("eth0:") && l.contains("-> degraded")).count();
    println!("\n## 20% random probe loss on a healthy eth0, default settings, {MINUTES} minutes (networkd)\n");
    report.line("loss", "| run | rounds | false switches | rounds that marked eth0 degraded (no switch) |");
    report.line("loss", "|---|---|---|---|");
    report.line("loss", format!("| lab, networkd, {MINUTES} minutes | {rounds} | {false_switches} | {degraded} |"));
    Ok(())
}

// ---- path quality ---------------------------------------------------------------------------

/// A path that answers but loses a share of eth0's probes (the lossy responder, the loss row's
/// policy): when new connections leave eth0, and how many of them still took it over 30 s.
fn quality_rows(report: &mut Report) -> anyhow::Result<()> {
    println!(
        "\n## Path quality: a share of eth0's probes lost, or its answers late, default MaxLoss=50%/RecoverLoss=20%, {} s (networkd)\n",
        QUALITY_WATCH.as_secs()
    );
    report.line("quality", "| loss on eth0's probes | new connections left eth0 after | samples on eth0 | poor verdicts / state machine downs |");
    report.line("quality", "|---|---|---|---|");
    let mut figure = Figure {
        title: format!("Path quality: when new connections left a lossy or slow eth0 (watched {} s)", QUALITY_WATCH.as_secs()),
        unit: "s after the loss or latency began".into(),
        measures: vec!["new connections left eth0 after".into()],
        rows: Vec::new(),
    };
    let seconds = |left: Option<Duration>| left.map_or(Value::Never, |d| Value::Measured(d.as_secs_f64()));
    for loss in [0.2, 0.4, 0.6, 0.8] {
        let (row, left) = quality_once(HashMap::from([(seed_address("eth0"), loss)]), HashMap::new())?;
        report.line("quality", format!("| {:.0}% | {row} |", loss * 100.0));
        figure.rows.push((format!("{:.0}% of eth0's probes lost", loss * 100.0), vec![seconds(left)]));
    }
    // Late answers: every one past the default Timeout (200 ms) counts as lost, so the state
    // machine demotes eth0 as on a silent failure (MaxLatency= is for slow answers within it).
    for added in [300, 600, 1500] {
        let (row, left) = quality_once(HashMap::new(), HashMap::from([(seed_address("eth0"), Duration::from_millis(added))]))?;
        report.line("quality", format!("| +{added} ms latency | {row} |"));
        figure.rows.push((format!("+{added} ms latency"), vec![seconds(left)]));
    }
    report.figure("quality", "quality".into(), figure);
    Ok(())
}

const QUALITY_WATCH: Duration = Duration::from_secs(30);

/// One quality row after the label: when new connections left eth0, how many still took it,
/// and the verdicts that moved them; and when they left, for the figure.
fn quality_once(loss: HashMap<std::net::Ipv4Addr, f64>, delay: HashMap<std::net::Ipv4Addr, Duration>) -> anyhow::Result<(String, Option<Duration>)> {
    const EVERY: Duration = Duration::from_millis(100);
    let policy = SEED.replace("Target=192.168.178.1\n", "").replace("[Probe]\n", "[Probe]\nArpGateway=no\n");
    let mut lab = with_multihome(Manager::Networkd, &policy)?;
    // The daemon first, with a clean path: the fault starts on an uplink it trusts.
    let (log, _) = start_daemon(&mut lab)?;
    let _responder = LossyResponder::start_with_delay(&lab.internet(), loss, delay, 0x5eed)?;
    let started = Instant::now();
    let (mut on_eth0, mut samples, mut left) = (0, 0, None);
    while started.elapsed() < QUALITY_WATCH {
        samples += 1;
        if lab.outbound_source(Duration::from_millis(300)) == Some(seed_address("eth0")) {
            on_eth0 += 1;
        } else if left.is_none() {
            left = Some(started.elapsed());
        }
        std::thread::sleep(EVERY);
    }
    let text = std::fs::read_to_string(&log)?;
    // Verdicts, not every state change shown while poor: "-> poor (loss ..." is the quality
    // verdict, "-> down" the state machine's.
    let count = |what: &str| text.lines().filter(|l| l.starts_with("eth0:") && l.contains(what)).count();
    let row = format!(
        "{} | {on_eth0} of {samples} | {} / {}",
        left.map_or("never".to_string(), ms),
        count("-> poor (loss") + count("-> poor (latency"),
        count("-> down ")
    );
    Ok((row, left))
}

// ---- the daemon's footprint ----------------------------------------------------------------

fn resources_row(report: &mut Report) -> anyhow::Result<()> {
    const SAMPLE: Duration = Duration::from_secs(120);
    let mut lab = with_multihome(Manager::Networkd, SEED)?;
    let (_, nsenter) = start_daemon(&mut lab)?;
    let pid = daemon_pid(nsenter)?;
    let cpu0 = cpu_seconds(pid)?;
    let tx0 = lab.tx_packets("eth0")?;
    std::thread::sleep(SAMPLE);
    let cpu = cpu_seconds(pid)? - cpu0;
    let tx = lab.tx_packets("eth0")? - tx0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| status.lines().find(|l| l.starts_with(name)).map_or("?".into(), |l| l[name.len()..].trim().to_string());
    println!("\n## The daemon at the default [Probe] settings (3 uplinks, 2 targets, ARP to the gateway), over {} s\n", SAMPLE.as_secs());
    let kib = |name: &str| field(name).trim_end_matches(" kB").trim().parse::<f64>().unwrap_or(f64::NAN);
    report.line("resources", "| measure | value |");
    report.line("resources", "|---|---|");
    report.line(
        "resources",
        format!("| resident memory (VmRSS), 3 uplinks | {:.1} MiB ({}; peak {}) |", kib("VmRSS:") / 1024.0, field("VmRSS:"), field("VmHWM:")),
    );
    report.line("resources", format!("| CPU time | {:.1} s per hour |", cpu * 3600.0 / SAMPLE.as_secs_f64()));
    // The steady probe rate (2 echoes and 1 ARP request a round): what faster detection must
    // not raise.
    report.line("resources", format!("| packets out of eth0 (probes) | {:.1} per second |", tx as f64 / SAMPLE.as_secs_f64()));
    Ok(())
}

/// The daemon with N uplinks, each on its own subnet (`lab::scale`), one target, the default
/// [Probe] settings: the time until every uplink has a verdict, CPU and memory. Cost linear in
/// the uplinks shows as a flat "CPU per uplink" column.
fn scale_rows(sizes: &[usize], report: &mut Report) -> anyhow::Result<()> {
    const SAMPLE: Duration = Duration::from_secs(20);
    println!("\n## The daemon with N uplinks (one target each, defaults), CPU over {} s\n", SAMPLE.as_secs());
    report.line("resources", "");
    report.line("resources", "| uplinks | every uplink judged after | CPU s per hour | CPU s per hour per uplink | resident memory (VmRSS) |");
    report.line("resources", "|---|---|---|---|---|");
    let mut cpu_figure = Figure {
        title: format!("The daemon's CPU time with N uplinks (defaults, sampled over {} s)", SAMPLE.as_secs()),
        unit: "CPU seconds per hour".into(),
        measures: vec!["whole daemon".into(), "per uplink".into()],
        rows: Vec::new(),
    };
    let mut judged_figure = Figure {
        title: "The daemon with N uplinks: from its start until every uplink has a verdict".into(),
        unit: "ms after the daemon started".into(),
        measures: vec!["every uplink judged after".into()],
        rows: Vec::new(),
    };
    for &n in sizes {
        let mut lab = Lab::start(options(Manager::None, None))?;
        lab::scale::add_uplinks(&lab, n)?;
        let started = Instant::now();
        let spawned = lab.spawn_multihome(&["daemon"])?;
        let (log, nsenter) = (spawned.log.clone(), spawned.id());
        let judged = |text: &str| text.lines().filter(|l| l.starts_with("up") && l.contains(": unknown -> ")).count();
        let mut first = None;
        lab.wait_for(Duration::from_secs(60), || {
            let k = judged(&std::fs::read_to_string(&log).unwrap_or_default());
            if k > 0 && first.is_none() {
                first = Some(started.elapsed());
            }
            k >= n
        })
        .with_context(|| format!("{n} uplinks: not every uplink was judged within 60 s"))?;
        let verdicts = started.elapsed();
        println!("{n} uplinks: the first verdict after {}", ms(first.unwrap_or(verdicts)));
        let pid = daemon_pid(nsenter)?;
        let cpu0 = cpu_seconds(pid)?;
        std::thread::sleep(SAMPLE);
        let cpu = (cpu_seconds(pid)? - cpu0) * 3600.0 / SAMPLE.as_secs_f64();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let rss = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches(" kB").parse::<f64>().ok()).unwrap_or(f64::NAN);
        report.line("resources", format!("| {n} | {} | {cpu:.0} | {:.2} | {:.1} MiB |", ms(verdicts), cpu / n as f64, rss / 1024.0));
        cpu_figure.rows.push((format!("{n} uplinks"), vec![Value::Measured(cpu), Value::Measured(cpu / n as f64)]));
        judged_figure.rows.push((format!("{n} uplinks"), vec![ms_value(verdicts)]));
    }
    report.figure("resources", "resources-cpu".into(), cpu_figure);
    report.figure("resources", "resources-judged".into(), judged_figure);
    Ok(())
}

/// The scale rows' sizes: the seed's 3, then up to nearly the most a policy allows.
const SCALE_UPLINKS: [usize; 5] = [3, 32, 64, 128, 200];

/// The daemon process: nsenter's child (it forks to enter the lab's PID namespace).
fn daemon_pid(nsenter: u32) -> anyhow::Result<u32> {
    let children = std::fs::read_to_string(format!("/proc/{nsenter}/task/{nsenter}/children"))?;
    let pid: u32 = children.split_whitespace().next().context("nsenter has no child")?.parse()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))?;
    if comm.trim() != "multihome" {
        bail!("nsenter's child is {comm:?}, not the daemon");
    }
    Ok(pid)
}

fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("malformed /proc/PID/stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}
