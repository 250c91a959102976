//! `multihome lab`: the seed's network in namespaces, the policy applied by the chosen network
//! manager, the failover daemon running, faults injected on a schedule, and a live timeline of
//! what new connections see. Nothing of the machine's own network is touched.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::ipv6::INTERNET6;
use super::probe::{ProbeRecord, Prober};
use super::probe6::Track6;
pub use super::timeline::FaultKind;
use super::timeline::{Event, Family, Timeline};
use super::{INTERNET, Lab, LabOptions, Manager, SEED_ADDRESSES, UPLINKS, policies};

/// Probe spacing of the timeline: a new connection every 10 ms.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);

/// One scheduled change: at `at` after the start, `uplink` fails (`fail`) or is repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub at: Duration,
    pub uplink: String,
    pub kind: FaultKind,
    pub fail: bool,
}

/// Parses a script such as `eth0:silent@2s, eth0:repair@8s, wlan1:link@10s`. Items are
/// `UPLINK:link|silent|repair@TIME`, in any order; a repair undoes the uplink's last fault
/// before it in time.
pub fn parse_script(text: &str) -> anyhow::Result<Vec<Step>> {
    let mut items = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (what, at) = item.split_once('@').with_context(|| format!("{item:?}: expected UPLINK:FAULT@TIME"))?;
        let (uplink, fault) = what.split_once(':').with_context(|| format!("{item:?}: expected UPLINK:FAULT@TIME"))?;
        if !UPLINKS.contains(&uplink) {
            bail!("{item:?}: the lab's uplinks are {}", UPLINKS.join(", "));
        }
        let at = crate::policy::timespan::parse(at).with_context(|| format!("{item:?}: {at:?} is not a time span"))?;
        items.push((at, item, uplink, fault));
    }
    items.sort_by_key(|(at, ..)| *at);
    let mut steps: Vec<Step> = Vec::new();
    for (at, item, uplink, fault) in items {
        let (kind, fail) = match fault {
            "link" => (FaultKind::Link, true),
            "silent" => (FaultKind::Silent, true),
            "silent6" => (FaultKind::Silent6, true),
            "repair" => {
                let last = steps.iter().rev().find(|s| s.uplink == uplink && s.fail);
                (last.with_context(|| format!("{item:?}: {uplink} has no fault to repair before then"))?.kind, false)
            }
            _ => bail!("{item:?}: the fault is link, silent, silent6 or repair"),
        };
        steps.push(Step { at, uplink: uplink.to_string(), kind, fail });
    }
    Ok(steps)
}

/// The default script: the chosen fault on one uplink at 3 s, repaired at 9 s.
pub fn default_script(uplink: &str, kind: FaultKind) -> Vec<Step> {
    vec![
        Step { at: Duration::from_secs(3), uplink: uplink.to_string(), kind, fail: true },
        Step { at: Duration::from_secs(9), uplink: uplink.to_string(), kind, fail: false },
    ]
}

pub struct Options {
    pub manager: Manager,
    pub steps: Vec<Step>,
    /// How long to watch after the last step.
    pub tail: Duration,
    pub daemon: bool,
}

/// Set by SIGINT/SIGTERM/SIGHUP so that the lab ends through its cleanup, not mid-flight.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn uplink_of(addr: Ipv4Addr) -> &'static str {
    SEED_ADDRESSES.iter().find(|(_, a)| *a == addr).map_or("?", |(i, _)| i)
}

/// Runs the lab, printing its timeline as it goes; the timeline it printed.
pub fn run(opts: Options) -> anyhow::Result<Timeline> {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        // A closed terminal too: the lab's managers would otherwise outlive it.
        libc::signal(libc::SIGHUP, on_signal as *const () as libc::sighandler_t);
        // A closed pipe (`multihome lab | head`) must not kill the process before its cleanup:
        // ignored, the next print panics instead, and unwinding drops the lab.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let networkd = opts.manager == Manager::Networkd;
    println!("Building the seed's network in namespaces (host with eth0, wlan1, wlan0; a switch per uplink; router; internet)...");
    println!("{}", super::radio::wifi_note(super::radio::kernel_has_hwsim()));
    let mut lab = Lab::start(LabOptions { manager: opts.manager, policy: Some(policies::seed_dual_stack()), ipv6: true, ..Default::default() })?;
    let manager_name = if networkd { "systemd-networkd" } else { "NetworkManager" };
    if !networkd {
        // networkd took the policy before it started; NetworkManager takes it over D-Bus now.
        print!("{}", lab.multihome_ok(&["apply"])?);
    }
    println!("{manager_name} runs the policy of examples/seed.conf, dual-stack, in the lab host.");
    lab.outbound_settles_on("eth0", Duration::from_secs(30))?;
    lab.outbound6_settles_on("eth0", Duration::from_secs(30))?;
    // A Ctrl-C while the lab started (up to a minute with NetworkManager) ends it here.
    if STOP.load(Ordering::Relaxed) {
        println!("Interrupted. Cleaning up the lab...");
        return Ok(Timeline::default());
    }

    let daemon_log = if opts.daemon {
        let log = lab.spawn_multihome(&["daemon"])?.log.clone();
        std::thread::sleep(Duration::from_millis(500));
        Some(log)
    } else {
        None
    };

    let (tx, rx) = mpsc::channel::<ProbeRecord>();
    let prober = Prober::start_streaming(&lab.host(), INTERNET, PROBE_INTERVAL, Some(tx))?;
    let mut track6 = Track6::start(&lab.host(), PROBE_INTERVAL, prober.now())?;
    let started = Instant::now();
    let t = |d: Duration| format!("{:>7.3}s", d.as_secs_f64());
    println!(
        "\nA new connection every {PROBE_INTERVAL:?} from the host to the internet host {INTERNET}, and one to {INTERNET6} (TRAFFIC6, OUTAGE6). Timeline:"
    );
    let end = opts.steps.last().map_or(Duration::ZERO, |s| s.at) + opts.tail;
    let mut steps = opts.steps.iter().peekable();
    let mut timeline = Live::default();
    let mut streams = super::timeline_mptcp::Connections::start(&mut lab, prober.now(), &mut timeline.lines)?;
    let mut pending: Vec<ProbeRecord> = Vec::new();
    let mut daemon_pos = 0u64;
    while started.elapsed() < end && !STOP.load(Ordering::Relaxed) {
        while let Some(step) = steps.next_if(|s| s.at <= started.elapsed()) {
            let now = prober.now();
            match (step.kind, step.fail) {
                (FaultKind::Link, fail) => lab.set_carrier(&step.uplink, !fail)?,
                (FaultKind::Silent, fail) => lab.set_upstream(&step.uplink, !fail)?,
                (FaultKind::Silent6, fail) => lab.set_upstream6(&step.uplink, !fail)?,
            }
            timeline.lines.push((now, Event::Fault { uplink: step.uplink.clone(), kind: step.kind, fail: step.fail }));
        }
        // Probes settle out of order (a lost one only after the answer window), so they are
        // shown in the order they were sent, once everything sent before them has settled.
        pending.extend(rx.try_iter());
        pending.sort_by_key(|r| r.sent);
        let settled_before = prober.now().saturating_sub(SETTLE);
        let ready = pending.iter().take_while(|r| r.sent < settled_before).count();
        for r in pending.drain(..ready) {
            timeline.probe(r);
        }
        track6.drain(settled_before, &mut timeline.lines);
        timeline.print_until(settled_before, &t);
        if let Some(log) = &daemon_log {
            daemon_pos = read_new_lines(log, daemon_pos, prober.now(), &mut timeline.lines);
        }
        streams.poll(&lab, prober.now(), &mut timeline.lines);
        std::thread::sleep(Duration::from_millis(20));
    }
    let prober_end = prober.now();
    streams.finish(prober_end, &mut timeline.lines);
    let records = prober.stop()?;
    pending.extend(rx.try_iter());
    pending.sort_by_key(|r| r.sent);
    for r in pending.drain(..) {
        timeline.probe(r);
    }
    let (tried6, lost6) = track6.finish(&mut timeline.lines)?;
    if let Some((since, lost)) = timeline.outage_from {
        timeline.lines.push((since, Event::OutageOpen { family: Family::V4, lost }));
    }
    timeline.print_until(Duration::MAX, &t);
    let lost = records.iter().filter(|r| r.source.is_none()).count();
    println!("\n{} connections tried, {lost} failed; over IPv6 {tried6} tried, {lost6} failed. Cleaning up the lab...", records.len());
    drop(lab);
    println!("Done: namespaces and processes removed, the machine's network untouched.");
    Ok(Timeline { events: timeline.printed, end: prober_end })
}

/// A probe is settled (answered or given up) this long after it was sent.
const SETTLE: Duration = Duration::from_millis(520);

/// The timeline as it runs: lines waiting to be shown in time order, those shown, and what
/// probes showed so far.
#[derive(Default)]
struct Live {
    lines: Vec<(Duration, Event)>,
    printed: Vec<(Duration, Event)>,
    carrier: Option<&'static str>,
    /// Start of the current run of failed connections, and how many failed.
    outage_from: Option<(Duration, usize)>,
}

impl Live {
    fn probe(&mut self, r: ProbeRecord) {
        match (r.source, &mut self.outage_from) {
            (None, None) => self.outage_from = Some((r.sent, 1)),
            (None, Some((_, n))) => *n += 1,
            (Some(src), from) => {
                if let Some((since, lost)) = from.take() {
                    // Shown where it ends: only then is it known.
                    self.lines.push((r.sent, Event::OutageOver { family: Family::V4, lost, since, until: r.sent }));
                }
                let via = uplink_of(src);
                if self.carrier != Some(via) {
                    self.lines.push((r.sent, Event::Traffic { family: Family::V4, uplink: via.to_string(), source: src.into() }));
                    self.carrier = Some(via);
                }
            }
        }
    }

    /// Prints, in time order, the lines from before `until`.
    fn print_until(&mut self, until: Duration, t: &dyn Fn(Duration) -> String) {
        self.lines.sort_by_key(|(at, _)| *at);
        let n = self.lines.iter().take_while(|(at, _)| *at < until).count();
        for (at, event) in self.lines.drain(..n) {
            println!("{}  {event}", t(at));
            self.printed.push((at, event));
        }
    }
}

/// Adds the daemon's log lines written since `pos` at time `now`; returns the new position.
pub(super) fn read_new_lines(log: &std::path::Path, pos: u64, now: Duration, lines: &mut Vec<(Duration, Event)>) -> u64 {
    let Ok(mut f) = std::fs::File::open(log) else { return pos };
    if f.seek(SeekFrom::Start(pos)).is_err() {
        return pos;
    }
    let mut reader = BufReader::new(f);
    let mut consumed = pos;
    let mut line = String::new();
    while let Ok(n) = reader.read_line(&mut line) {
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        consumed += n as u64;
        lines.push((now, Event::Daemon(line.trim_end().to_string())));
        line.clear();
    }
    consumed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts() {
        let s = parse_script("eth0:silent@2s, eth0:repair@8s, wlan1:link@500ms").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].uplink.as_str(), s[0].kind, s[0].fail), ("wlan1", FaultKind::Link, true));
        assert_eq!((s[2].kind, s[2].fail, s[2].at), (FaultKind::Silent, false, Duration::from_secs(8)));
        assert!(parse_script("eth9:link@1s").is_err());
        assert!(parse_script("eth0:repair@1s").is_err());
        assert!(parse_script("eth0:repair@1s, eth0:link@2s").is_err(), "a repair before its fault");
        let out_of_order = parse_script("eth0:repair@8s, eth0:silent@2s").unwrap();
        assert_eq!((out_of_order[1].kind, out_of_order[1].fail), (FaultKind::Silent, false));
        assert!(parse_script("eth0:melt@1s").is_err());
        assert!(parse_script("eth0:link").is_err());
    }
}
