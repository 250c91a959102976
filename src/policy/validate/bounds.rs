//! Every policy key whose value has bounds, in one table: the validator parses with it and its
//! refusal message is made from it, so the bounds a message names are the bounds enforced (the
//! property test below walks the whole table). Time spans are whole milliseconds: a finer one
//! (`20.9ms`) is refused rather than silently truncated, so a message can print the value exactly.

use std::collections::HashMap;
use std::time::Duration;

use super::{Checker, first};
use crate::policy::timespan;
use crate::policy::unit_file::Entry;

/// The shortest probe interval (and timeout): each round sends a packet per target and an ARP
/// broadcast per uplink, so a shorter one floods the LAN without detecting any faster than the
/// round trip itself.
pub const MIN_INTERVAL: Duration = Duration::from_millis(20);
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// Hold times beyond a day are a typo; the daemon's clock arithmetic stays far from overflow.
const MAX_HOLD: Duration = Duration::from_secs(86_400);
/// The bond's monitors (the kernel counts in milliseconds; beyond a minute nothing is monitored).
const MAX_MONITOR: Duration = Duration::from_secs(60);
const MAX_DELAY: Duration = Duration::from_secs(600);
const MS: Duration = Duration::from_millis(1);

/// What a bounded key holds, with its inclusive bounds.
#[derive(Debug, Clone, Copy)]
pub enum Range {
    /// A time span in whole milliseconds.
    Span(Duration, Duration),
    Whole(u64, u64),
    /// A percentage, with or without its `%`.
    Percent(u8, u8),
}

#[derive(Debug)]
pub struct Bounded {
    /// Where the key lives (read by the test that walks the table).
    #[cfg_attr(not(test), allow(dead_code))]
    pub section: &'static str,
    pub key: &'static str,
    pub range: Range,
    /// A value shown in the message.
    example: &'static str,
}

const fn span(section: &'static str, key: &'static str, min: Duration, max: Duration, example: &'static str) -> Bounded {
    Bounded { section, key, range: Range::Span(min, max), example }
}

pub const INTERVAL: Bounded = span("Probe", "Interval", MIN_INTERVAL, MAX_INTERVAL, "200ms");
pub const TIMEOUT: Bounded = span("Probe", "Timeout", MIN_INTERVAL, MAX_INTERVAL, "200ms");
pub const FAIL_AFTER: Bounded = Bounded { section: "Probe", key: "FailAfter", range: Range::Whole(1, 1000), example: "3" };
pub const RECOVER_AFTER: Bounded = Bounded { section: "Probe", key: "RecoverAfter", range: Range::Whole(1, 1000), example: "5" };
pub const HOLD_TIME: Bounded = span("Probe", "HoldTime", MS, MAX_HOLD, "2s");
pub const MAX_HOLD_TIME: Bounded = span("Probe", "MaxHoldTime", MS, MAX_HOLD, "5min");
pub const MAX_LOSS: Bounded = Bounded { section: "Probe", key: "MaxLoss", range: Range::Percent(1, 100), example: "20%" };
pub const RECOVER_LOSS: Bounded = Bounded { section: "Probe", key: "RecoverLoss", range: Range::Percent(0, 99), example: "5%" };
pub const MAX_LATENCY: Bounded = span("Probe", "MaxLatency", MS, MAX_INTERVAL, "150ms");
pub const RECOVER_LATENCY: Bounded = span("Probe", "RecoverLatency", MS, MAX_INTERVAL, "100ms");
pub const PROBE_INTERVAL: Bounded = span("Uplink", "ProbeInterval", MIN_INTERVAL, MAX_INTERVAL, "2s");
pub const TABLE: Bounded = Bounded { section: "Uplink", key: "Table", range: Range::Whole(1, u32::MAX as u64), example: "100" };
pub const MII_MONITOR: Bounded = span("Bond", "MIIMonitorSec", MS, MAX_MONITOR, "100ms");
pub const UP_DELAY: Bounded = span("Bond", "UpDelaySec", Duration::ZERO, MAX_DELAY, "100ms");
pub const DOWN_DELAY: Bounded = span("Bond", "DownDelaySec", Duration::ZERO, MAX_DELAY, "100ms");
pub const ARP_INTERVAL: Bounded = span("Bond", "ARPIntervalSec", MS, MAX_MONITOR, "100ms");

/// The whole table (walked by the test below).
#[cfg_attr(not(test), allow(dead_code))]
pub const ALL: &[&Bounded] = &[
    &INTERVAL,
    &TIMEOUT,
    &FAIL_AFTER,
    &RECOVER_AFTER,
    &HOLD_TIME,
    &MAX_HOLD_TIME,
    &MAX_LOSS,
    &RECOVER_LOSS,
    &MAX_LATENCY,
    &RECOVER_LATENCY,
    &PROBE_INTERVAL,
    &TABLE,
    &MII_MONITOR,
    &UP_DELAY,
    &DOWN_DELAY,
    &ARP_INTERVAL,
];

impl Bounded {
    /// What the key takes, for its refusal (`Key=value: expected ...`).
    pub fn expected(&self) -> String {
        match self.range {
            Range::Span(min, max) => {
                format!("a time span of whole milliseconds from {} to {}, such as {}", timespan::format(min), timespan::format(max), self.example)
            }
            Range::Whole(min, max) => format!("a whole number from {min} to {max}, such as {}", self.example),
            Range::Percent(min, max) => format!("a percentage from {min}% to {max}%, such as {}", self.example),
        }
    }

    pub fn span(&self, text: &str) -> Option<Duration> {
        let Range::Span(min, max) = self.range else { return None };
        timespan::parse(text).filter(|d| (min..=max).contains(d) && d.subsec_nanos().is_multiple_of(1_000_000))
    }

    pub fn whole(&self, text: &str) -> Option<u64> {
        let Range::Whole(min, max) = self.range else { return None };
        text.parse::<u64>().ok().filter(|n| (min..=max).contains(n))
    }

    pub fn percent(&self, text: &str) -> Option<u8> {
        let Range::Percent(min, max) = self.range else { return None };
        text.strip_suffix('%').unwrap_or(text).parse::<u8>().ok().filter(|n| (min..=max).contains(n))
    }
}

impl Checker<'_> {
    /// The span of key `b` in `map`, refused with the table's message when out of bounds.
    pub(super) fn span_of(&mut self, map: &HashMap<&str, Vec<&Entry>>, b: &Bounded) -> Option<Duration> {
        self.parse_one(first(map, b.key), &b.expected(), |s| b.span(s))
    }

    pub(super) fn whole_of(&mut self, map: &HashMap<&str, Vec<&Entry>>, b: &Bounded) -> Option<u64> {
        self.parse_one(first(map, b.key), &b.expected(), |s| b.whole(s))
    }

    pub(super) fn percent_of(&mut self, map: &HashMap<&str, Vec<&Entry>>, b: &Bounded) -> Option<u8> {
        self.parse_one(first(map, b.key), &b.expected(), |s| b.percent(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A policy that is valid but for `line`, in `section`, with the other keys `companions`
    /// that a bound needs to be consistent with the rest (`HoldTime=1d` needs `MaxHoldTime=1d`).
    fn policy(section: &str, line: &str, companions: &str) -> String {
        let uplinks = "[Uplink]\nInterface=eth0\nPriority=1\nAddress=192.168.178.99/24\nGateway=192.168.178.1\n";
        match section {
            "Probe" => format!("[Probe]\nTarget=198.51.100.10\n{companions}{line}\n\n{uplinks}"),
            "Uplink" => format!("[Probe]\nTarget=198.51.100.10\n{companions}\n{uplinks}{line}\n"),
            "Bond" => format!(
                "[Policy]\nMode=bond\n\n[Bond]\nName=bond0\nDHCP=ipv4\n{companions}{line}\n\n[Uplink]\nInterface=eth0\nPriority=1\n\n[Uplink]\nInterface=wlan0\nPriority=2\n"
            ),
            other => panic!("no template for [{other}]"),
        }
    }

    /// The other keys a bound value needs beside it to make a consistent policy.
    fn companions(key: &str, value: &str, bound_is_max: bool) -> &'static str {
        match (key, bound_is_max) {
            ("Timeout", true) => "Interval=1h\n",
            ("HoldTime", true) => "MaxHoldTime=1d\n",
            ("MaxHoldTime", false) => "HoldTime=1ms\n",
            ("MaxLoss", false) => "RecoverLoss=0%\n",
            ("RecoverLoss", true) => "MaxLoss=100%\n",
            ("RecoverLatency", false) => "MaxLatency=100ms\n",
            ("MaxLatency" | "RecoverLatency", true) => "Interval=1h\nMaxLatency=1h\n",
            ("ARPIntervalSec", _) => "ARPIPTargets=192.168.178.1\n",
            _ if value.is_empty() => "",
            _ => "",
        }
    }

    /// The bounds as the message names them: the words after "from" and "to".
    fn named_bounds(expected: &str) -> (String, String) {
        let after = |word: &str| expected.split(word).nth(1).and_then(|s| s.split([' ', ',']).next()).unwrap_or_else(|| panic!("{expected}")).to_string();
        (after(" from "), after(" to "))
    }

    /// One step beyond each bound, in the key's own unit; `None` below a bound of zero.
    fn beyond(range: Range) -> (Option<String>, String) {
        match range {
            Range::Span(min, max) => (min.checked_sub(MS).map(|d| format!("{}ms", d.as_millis())), format!("{}ms", (max + MS).as_millis())),
            Range::Whole(min, max) => (min.checked_sub(1).map(|n| n.to_string()), (max + 1).to_string()),
            Range::Percent(min, max) => (min.checked_sub(1).map(|n| format!("{n}%")), format!("{}%", max + 1)),
        }
    }

    /// For every bounded key: the bounds its message names are accepted (where another key
    /// could make them inconsistent, with that key set so they are not), and one step beyond each
    /// is refused with that message, naming the file, line and key.
    #[test]
    fn every_bounded_key_accepts_the_bounds_its_message_names_and_refuses_one_step_beyond() {
        for b in ALL {
            let expected = b.expected();
            let (min, max) = named_bounds(&expected);
            for (value, is_max) in [(&min, false), (&max, true)] {
                let line = format!("{}={value}", b.key);
                let text = policy(b.section, &line, companions(b.key, value, is_max));
                match crate::policy::parse("p", &text) {
                    Ok(_) => {}
                    // MaxLatency= (and RecoverLatency=, which must be below it) must stay below
                    // Timeout=, which is at most 1h: its own bound is 1h, the refusal another's.
                    Err(e) if is_max && b.key.ends_with("Latency") => {
                        let e = e.to_string();
                        assert!(!e.contains("expected") && e.contains("is not below"), "{line}: {e}");
                    }
                    Err(e) => panic!("{line} ({expected}) is refused:\n{e}\n{text}"),
                }
            }
            let (below, above) = beyond(b.range);
            for value in below.iter().chain([&above]) {
                let line = format!("{}={value}", b.key);
                let text = policy(b.section, &line, "");
                let e = crate::policy::parse("p", &text).expect_err(&line).to_string();
                let at = text.lines().position(|l| l == line).unwrap() + 1;
                assert!(e.contains(&format!("p:{at}: {line}: expected {expected}")), "{line}:\n{e}");
            }
        }
    }

    /// A span finer than a millisecond is refused, not truncated: a message could not print it.
    #[test]
    fn a_span_finer_than_a_millisecond_is_refused() {
        assert_eq!(INTERVAL.span("20.9ms"), None);
        assert_eq!(INTERVAL.span("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(HOLD_TIME.span("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(HOLD_TIME.span("1.5s"), Some(Duration::from_millis(1500)));
    }
}
