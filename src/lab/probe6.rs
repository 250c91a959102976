//! What new IPv6 connections see in `multihome lab`, beside the IPv4 timeline: a [`Prober`] to
//! the internet host's IPv6 address (a new unbound socket every interval, as for IPv4), and the
//! timeline lines it makes — `TRAFFIC6` when new IPv6 connections move to another uplink,
//! `OUTAGE6` when a run of them failed — on the IPv4 prober's clock, so both families interleave
//! in one timeline.

use std::net::Ipv6Addr;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use super::ipv6::{INTERNET6, STATIC_ADDRESSES6};
use super::probe::{ProbeRecord, Prober};
use super::timeline::{Event, Family};

/// The uplink whose static IPv6 address `addr` is (the lab's dual-stack seed has no SLAAC).
fn uplink_of6(addr: Ipv6Addr) -> &'static str {
    STATIC_ADDRESSES6.iter().find(|(_, a)| *a == addr).map_or("?", |(i, _)| i)
}

/// The IPv6 half of the timeline.
pub struct Track6 {
    /// Taken when the track finishes.
    prober: Option<Prober<Ipv6Addr>>,
    rx: Receiver<ProbeRecord<Ipv6Addr>>,
    /// The IPv6 prober's start on the IPv4 prober's clock.
    offset: Duration,
    pending: Vec<ProbeRecord<Ipv6Addr>>,
    carrier: Option<&'static str>,
    outage_from: Option<(Duration, usize)>,
}

impl Track6 {
    /// Starts probing from the lab host `ns`; `now` is the IPv4 prober's clock at this moment.
    pub fn start(ns: &str, interval: Duration, now: Duration) -> anyhow::Result<Track6> {
        let (tx, rx) = mpsc::channel();
        let prober = Prober::start_streaming(ns, INTERNET6, interval, Some(tx))?;
        Ok(Track6 { prober: Some(prober), rx, offset: now, pending: Vec::new(), carrier: None, outage_from: None })
    }

    /// Adds the lines of the probes sent before `settled_before` (IPv4 clock), in sending order.
    pub fn drain(&mut self, settled_before: Duration, lines: &mut Vec<(Duration, Event)>) {
        self.pending.extend(self.rx.try_iter());
        self.pending.sort_by_key(|r| r.sent);
        let offset = self.offset;
        let ready = self.pending.iter().take_while(|r| r.sent + offset < settled_before).count();
        let records: Vec<ProbeRecord<Ipv6Addr>> = self.pending.drain(..ready).collect();
        for r in records {
            self.probe(r, lines);
        }
    }

    fn probe(&mut self, r: ProbeRecord<Ipv6Addr>, lines: &mut Vec<(Duration, Event)>) {
        let at = r.sent + self.offset;
        match (r.source, &mut self.outage_from) {
            (None, None) => self.outage_from = Some((at, 1)),
            (None, Some((_, n))) => *n += 1,
            (Some(src), from) => {
                if let Some((since, lost)) = from.take() {
                    lines.push((at, Event::OutageOver { family: Family::V6, lost, since, until: at }));
                }
                let via = uplink_of6(src);
                if self.carrier != Some(via) {
                    lines.push((at, Event::Traffic { family: Family::V6, uplink: via.to_string(), source: src.into() }));
                    self.carrier = Some(via);
                }
            }
        }
    }

    /// Stops probing, adds the remaining lines; (tried, failed).
    pub fn finish(mut self, lines: &mut Vec<(Duration, Event)>) -> anyhow::Result<(usize, usize)> {
        let records = self.prober.take().map_or(Ok(Vec::new()), Prober::stop)?;
        self.drain(Duration::MAX, lines);
        if let Some((since, lost)) = self.outage_from {
            lines.push((since, Event::OutageOpen { family: Family::V6, lost }));
        }
        Ok((records.len(), records.iter().filter(|r| r.source.is_none()).count()))
    }
}
