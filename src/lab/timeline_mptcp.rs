//! The open connections of `multihome lab`'s timeline (issue 15): one plain TCP and one MPTCP
//! connection from the lab host to the internet host's stream echo, each echoing 100 bytes
//! every 10 ms, started with the timeline. It shows when each stops getting echoes and when
//! it gets them again, and which uplink carries the MPTCP connection's data: the plain one is
//! tied to eth0's address and stalls for as long as eth0 is broken; the MPTCP one moves to
//! another uplink's subflow and comes back to eth0 after the repair.

use std::time::Duration;

use super::stream::{Stream, StreamRecord};
use super::timeline::{Event, StreamEvent};
use super::{INTERNET, Lab, UPLINKS};

/// A gap without an echo this long is shown as a stall (the echoes come every 10 ms).
const STALL: Duration = Duration::from_millis(100);
/// The window over which the uplinks' sent packets say which one carries the data.
const WINDOW: Duration = Duration::from_millis(500);
/// Packets in a window for an uplink to count as carrying the data (the echoes alone are 100
/// a second; the daemon's probes a handful).
const CARRYING: u64 = 20;

struct Watched {
    name: &'static str,
    stream: Stream,
    /// The timeline's clock when the stream started.
    offset: Duration,
    /// The last echo when a stall was shown, until the echoes come again.
    stalled_since: Option<Duration>,
}

/// The two connections and what the timeline showed of them.
pub struct Connections {
    watched: Vec<Watched>,
    /// The uplinks' sent packets at the start of the window, and when it started.
    window: Option<(Duration, Vec<u64>)>,
    via: Option<&'static str>,
}

impl Connections {
    /// Starts the stream echo on the internet host and both connections; `now` is the
    /// timeline's clock. A connection that cannot start (a kernel without MPTCP) is said in
    /// the timeline and left out.
    pub fn start(lab: &mut Lab, now: Duration, lines: &mut Vec<(Duration, Event)>) -> anyhow::Result<Connections> {
        lab.start_stream_echo()?;
        let mut watched = Vec::new();
        for (name, mptcp) in [("plain TCP", false), ("MPTCP", true)] {
            match Stream::start(&lab.host(), INTERNET, mptcp, Duration::from_millis(10)) {
                Ok(stream) => {
                    lines.push((now, Event::Stream(StreamEvent::Open { name, to: INTERNET.into() })));
                    watched.push(Watched { name, stream, offset: now, stalled_since: None });
                }
                Err(e) => lines.push((now, Event::Stream(StreamEvent::CannotConnect { name, error: format!("{e:#}") }))),
            }
        }
        Ok(Connections { watched, window: None, via: None })
    }

    /// Adds what changed since the last call at `now` (the timeline's clock).
    pub fn poll(&mut self, lab: &Lab, now: Duration, lines: &mut Vec<(Duration, Event)>) {
        for w in &mut self.watched {
            let last = w.stream.last_echo().map_or(w.offset, |t| t + w.offset);
            match w.stalled_since {
                None if now.saturating_sub(last) > STALL && !w.stream.ended() => {
                    lines.push((last + STALL, Event::Stream(StreamEvent::Stall { name: w.name, since: last })));
                    w.stalled_since = Some(last);
                }
                Some(since) if last > since => {
                    let gap = last - since;
                    lines.push((last, Event::Stream(StreamEvent::Echoes { name: w.name, gap })));
                    w.stalled_since = None;
                }
                _ => {}
            }
        }
        self.watch_uplinks(lab, now, lines);
    }

    /// Which uplink sent most in the last window, once a window is over: the MPTCP
    /// connection's (the plain one sends through eth0 only, and nothing while eth0 is broken).
    fn watch_uplinks(&mut self, lab: &Lab, now: Duration, lines: &mut Vec<(Duration, Event)>) {
        if !self.watched.iter().any(|w| w.name == "MPTCP") {
            return;
        }
        if self.window.as_ref().is_some_and(|(from, _)| now < *from + WINDOW) {
            return;
        }
        let Ok(counts) = UPLINKS.iter().map(|u| lab.tx_packets(u)).collect::<anyhow::Result<Vec<u64>>>() else { return };
        if let Some((from, before)) = self.window.replace((now, counts.clone())) {
            let sent: Vec<u64> = counts.iter().zip(&before).map(|(a, b)| a.saturating_sub(*b)).collect();
            let busiest = (0..UPLINKS.len()).max_by_key(|i| sent[*i]).filter(|i| sent[*i] >= CARRYING).map(|i| UPLINKS[i]);
            if busiest.is_some() && busiest != self.via {
                self.via = busiest;
                lines.push((from, Event::Stream(StreamEvent::Via { uplink: busiest.unwrap_or("?").to_string() })));
            }
        }
    }

    /// Stops both connections and adds their summary at `now`.
    pub fn finish(self, now: Duration, lines: &mut Vec<(Duration, Event)>) {
        for w in self.watched {
            let record: StreamRecord = w.stream.stop();
            let worst = record.worst_stall(Duration::ZERO, now.saturating_sub(w.offset));
            let end = record.error.as_deref().map_or_else(|| "still open".to_string(), |e| format!("ended: {e}"));
            let summary = StreamEvent::Summary { name: w.name, echoes: record.echoes.len(), worst, bytes_lost: record.bytes_lost(), end };
            lines.push((now, Event::Stream(summary)));
        }
    }
}
