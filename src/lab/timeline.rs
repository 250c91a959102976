//! What `multihome lab`'s timeline records: each line as a typed event at a time on the IPv4
//! prober's clock. The text timeline prints an event's `Display`; `--plot` draws the same events
//! (`crate::plot::timeline`), so the picture and the text cannot tell different stories.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// A fault `multihome lab` injects (its script's `link`, `silent`, `silent6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The cable is pulled / the Wi-Fi drops: the uplink loses carrier.
    Link,
    /// The link stays up but nothing behind its switch answers (dead gateway or provider).
    Silent,
    /// Only its IPv6 dies silently (a provider's IPv6 outage); IPv4 goes on.
    Silent6,
}

/// The family of the new connections an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A scheduled fault (`fail`) or its repair on an uplink.
    Fault { uplink: String, kind: FaultKind, fail: bool },
    /// New connections of `family` now leave via `uplink`, with `source`.
    Traffic { family: Family, uplink: String, source: IpAddr },
    /// A run of `lost` failed new connections from `since` until `until`, when one got through
    /// again (shown there: only then is it known).
    OutageOver { family: Family, lost: usize, since: Duration, until: Duration },
    /// A run of `lost` failed new connections, still failing when the timeline ended (shown where
    /// it began).
    OutageOpen { family: Family, lost: usize },
    /// A line of the daemon's log, as it wrote it (`eth0: up -> degraded (...)`).
    Daemon(String),
    /// Something about one of the open connections (`timeline_mptcp`).
    Stream(StreamEvent),
}

/// What the timeline says of its open connections, `name` being "plain TCP" or "MPTCP".
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Open {
        name: &'static str,
        to: IpAddr,
    },
    CannotConnect {
        name: &'static str,
        error: String,
    },
    /// No echo since `since` (shown a stall's length after it).
    Stall {
        name: &'static str,
        since: Duration,
    },
    /// Echoes again after a stall of `gap`.
    Echoes {
        name: &'static str,
        gap: Duration,
    },
    /// The MPTCP connection's data now leaves via `uplink`.
    Via {
        uplink: String,
    },
    Summary {
        name: &'static str,
        echoes: usize,
        worst: Duration,
        bytes_lost: u64,
        end: String,
    },
}

/// The recorded run: every event in time order, and how long it was watched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    pub events: Vec<(Duration, Event)>,
    pub end: Duration,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Fault { uplink, kind, fail } => {
                let what = match (kind, fail) {
                    (FaultKind::Link, true) => "loses carrier",
                    (FaultKind::Link, false) => "gets its carrier back",
                    (FaultKind::Silent, true) => "fails silently (link up, nothing answers behind it)",
                    (FaultKind::Silent, false) => "is repaired upstream",
                    (FaultKind::Silent6, true) => "loses its IPv6 silently (link and IPv4 up, nothing answers its IPv6)",
                    (FaultKind::Silent6, false) => "gets its IPv6 back upstream",
                };
                write!(f, "FAULT   {uplink} {what}")
            }
            Event::Traffic { family: Family::V4, uplink, source } => write!(f, "TRAFFIC new connections leave via {uplink} ({source})"),
            Event::Traffic { family: Family::V6, uplink, source } => write!(f, "TRAFFIC6 new IPv6 connections leave via {uplink} ({source})"),
            Event::OutageOver { family, lost, since, until } => {
                let (tag, what) = outage_words(*family);
                let ms = until.saturating_sub(*since).as_secs_f64() * 1e3;
                write!(f, "{tag} over: {lost} {what} failed in {ms:.0} ms since {:.3}s", since.as_secs_f64())
            }
            Event::OutageOpen { family, lost } => {
                let (tag, what) = outage_words(*family);
                write!(f, "{tag} {lost} {what} failed, still failing at the end")
            }
            Event::Daemon(line) => write!(f, "DAEMON  {line}"),
            Event::Stream(s) => write!(f, "STREAM  {s}"),
        }
    }
}

fn outage_words(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::V4 => ("OUTAGE ", "new connection(s)"),
        Family::V6 => ("OUTAGE6", "new IPv6 connection(s)"),
    }
}

impl fmt::Display for StreamEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamEvent::Open { name, to } => write!(f, "{name}: connection open to {to}, 100 bytes echoed every 10 ms"),
            StreamEvent::CannotConnect { name, error } => write!(f, "{name}: cannot connect ({error})"),
            StreamEvent::Stall { name, since } => write!(f, "{name}: no echo since {:.3}s", since.as_secs_f64()),
            StreamEvent::Echoes { name, gap } => write!(f, "{name}: echoes again, after a stall of {} ms", gap.as_millis()),
            StreamEvent::Via { uplink } => write!(f, "MPTCP: its data leaves via {uplink}"),
            StreamEvent::Summary { name, echoes, worst, bytes_lost, end } => {
                write!(f, "{name}: {echoes} echoes, longest stall {} ms, {bytes_lost} bytes lost, {end}", worst.as_millis())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text timeline reads as it did when its lines were formatted where they were made.
    #[test]
    fn each_event_prints_the_timeline_line_it_was() {
        let ms = Duration::from_millis;
        let cases: [(Event, &str); 8] = [
            (Event::Fault { uplink: "eth0".into(), kind: FaultKind::Silent, fail: true }, "FAULT   eth0 fails silently (link up, nothing answers behind it)"),
            (Event::Fault { uplink: "wlan1".into(), kind: FaultKind::Link, fail: false }, "FAULT   wlan1 gets its carrier back"),
            (
                Event::Traffic { family: Family::V4, uplink: "wlan1".into(), source: "192.168.178.98".parse().unwrap() },
                "TRAFFIC new connections leave via wlan1 (192.168.178.98)",
            ),
            (
                Event::Traffic { family: Family::V6, uplink: "eth0".into(), source: "2001:db8:178::99".parse().unwrap() },
                "TRAFFIC6 new IPv6 connections leave via eth0 (2001:db8:178::99)",
            ),
            (
                Event::OutageOver { family: Family::V4, lost: 37, since: ms(3030), until: ms(3400) },
                "OUTAGE  over: 37 new connection(s) failed in 370 ms since 3.030s",
            ),
            (Event::OutageOpen { family: Family::V6, lost: 5 }, "OUTAGE6 5 new IPv6 connection(s) failed, still failing at the end"),
            (Event::Daemon("eth0: up -> degraded (x)".into()), "DAEMON  eth0: up -> degraded (x)"),
            (Event::Stream(StreamEvent::Echoes { name: "MPTCP", gap: ms(214) }), "STREAM  MPTCP: echoes again, after a stall of 214 ms"),
        ];
        for (event, line) in cases {
            assert_eq!(event.to_string(), line);
        }
        let stall = Event::Stream(StreamEvent::Stall { name: "plain TCP", since: ms(2949) });
        assert_eq!(stall.to_string(), "STREAM  plain TCP: no echo since 2.949s");
    }
}
