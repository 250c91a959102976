//! A stream of application-like probes for measuring an outage: every `interval` a new unbound
//! UDP socket (so every probe takes a fresh routing decision, as a new connection would) sends
//! one datagram to the internet echo; each probe records whether and with which source address
//! it was answered. IPv4 unless said: `Prober<Ipv6Addr>` probes an IPv6 echo the same way.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sched::{CloneFlags, setns};

use super::echo::{ECHO_PORT, parse_source};

/// A probe is lost when no answer came within this time.
const ANSWER_WITHIN: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy)]
pub struct ProbeRecord<A = Ipv4Addr> {
    /// When it was sent, since the prober started.
    pub sent: Duration,
    /// The source address the echo saw; `None`: lost.
    pub source: Option<A>,
}

/// The addresses a prober can aim at (`Ipv4Addr`, `Ipv6Addr`).
pub trait Target: Copy + Into<IpAddr> + FromStr + Send + 'static {}
impl<A: Copy + Into<IpAddr> + FromStr + Send + 'static> Target for A {}

pub struct Prober<A: Target = Ipv4Addr> {
    started: Instant,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<anyhow::Result<Vec<ProbeRecord<A>>>>>,
}

impl<A: Target> Prober<A> {
    pub fn start(ns: &str, target: A, interval: Duration) -> anyhow::Result<Prober<A>> {
        Self::start_streaming(ns, target, interval, None)
    }

    /// Like `start`, and each probe's record is also sent to `live` as soon as it is settled
    /// (answered or given up), for a live view.
    pub fn start_streaming(ns: &str, target: A, interval: Duration, live: Option<Sender<ProbeRecord<A>>>) -> anyhow::Result<Prober<A>> {
        let path = format!("/run/netns/{ns}");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let started = Instant::now();
        let thread = std::thread::spawn(move || -> anyhow::Result<Vec<ProbeRecord<A>>> {
            let f = std::fs::File::open(&path).with_context(|| format!("no namespace {path}"))?;
            setns(&f, CloneFlags::CLONE_NEWNET).context("cannot enter the lab host")?;
            run(started, target, interval, &flag, live)
        });
        Ok(Prober { started, stop, thread: Some(thread) })
    }

    /// Time since the prober started, on the clock the records use.
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn stop(mut self) -> anyhow::Result<Vec<ProbeRecord<A>>> {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take().expect("joined once");
        t.join().map_err(|_| anyhow::anyhow!("prober panicked"))?
    }
}

impl<A: Target> Drop for Prober<A> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run<A: Target>(
    started: Instant,
    target: A,
    interval: Duration,
    stop: &AtomicBool,
    live: Option<Sender<ProbeRecord<A>>>,
) -> anyhow::Result<Vec<ProbeRecord<A>>> {
    let to = SocketAddr::new(target.into(), ECHO_PORT);
    let any = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let mut records = Vec::new();
    let mut pending: Vec<(usize, UdpSocket, Instant)> = Vec::new();
    let mut next = Instant::now();
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Relaxed) || !pending.is_empty() {
        let now = Instant::now();
        if now >= next && !stop.load(Ordering::Relaxed) {
            let socket = UdpSocket::bind(any)?;
            socket.set_nonblocking(true)?;
            records.push(ProbeRecord { sent: now - started, source: None });
            // A send error (no route) is a lost probe, like a connect() that fails.
            if socket.send_to(b"p", to).is_ok() {
                pending.push((records.len() - 1, socket, now));
            } else if let Some(live) = &live {
                let _ = live.send(records[records.len() - 1]);
            }
            next += interval;
        }
        pending.retain(|(i, socket, sent)| {
            let settled = match socket.recv_from(&mut buf) {
                Ok((n, _)) => {
                    records[*i].source = parse_source(&buf[..n]);
                    true
                }
                Err(_) => sent.elapsed() >= ANSWER_WITHIN,
            };
            if settled && let Some(live) = &live {
                let _ = live.send(records[*i]);
            }
            !settled
        });
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(records)
}

/// What an application saw around a fault at `fault` (on the prober's clock).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outage {
    /// Probes sent at or after the fault that were not answered.
    pub lost: usize,
    /// From the fault until new probes are answered again for good (0 when none was lost).
    pub restore: Duration,
}

pub fn outage<A>(records: &[ProbeRecord<A>], fault: Duration) -> Outage {
    let after: Vec<&ProbeRecord<A>> = records.iter().filter(|r| r.sent >= fault).collect();
    let lost = after.iter().filter(|r| r.source.is_none()).count();
    let restore = match after.iter().rposition(|r| r.source.is_none()) {
        None => Duration::ZERO,
        Some(last_lost) => after.get(last_lost + 1).map_or(Duration::MAX, |r| r.sent - fault),
    };
    Outage { lost, restore }
}
