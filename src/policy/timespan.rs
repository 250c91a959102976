//! systemd time spans (`500ms`, `2s`, `1min 30s`; a bare number is seconds), see systemd.time(7).

use std::time::Duration;

/// Parses a systemd time span; `None` when it is not one.
pub fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: f64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let seconds_per_unit = match unit {
            "" | "s" | "sec" | "second" | "seconds" => 1.0,
            "us" | "usec" => 1e-6,
            "ms" | "msec" => 1e-3,
            "m" | "min" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "week" | "weeks" => 604_800.0,
            _ => return None,
        };
        // A span too long for a Duration is not a span, not a reason to panic.
        total = total.checked_add(Duration::try_from_secs_f64(number * seconds_per_unit).ok()?)?;
    }
    Some(total)
}

/// Formats a duration the way systemd reads spans, in the largest unit that holds it exactly
/// (`1d`, `10min`, `2s`, `200ms`), so rendered files, `check` and messages agree with it.
/// Below a millisecond it is truncated: the policy takes whole milliseconds only.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    let units = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "min"), (1000, "s")];
    match units.iter().find(|(size, _)| ms > 0 && ms.is_multiple_of(*size)) {
        Some((size, unit)) => format!("{}{unit}", ms / size),
        None if ms == 0 => "0s".into(),
        None => format!("{ms}ms"),
    }
}

/// A duration in JSON as whole milliseconds (`"interval_ms": 200`), the unit the policy's
/// spans are written in, instead of serde's `{"secs":..,"nanos":..}`.
/// An optional duration in JSON as whole milliseconds, or null.
pub fn serialize_ms_opt<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => serialize_ms(d, s),
        None => s.serialize_none(),
    }
}

pub fn serialize_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_spans() {
        assert_eq!(parse("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse("1min 30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse("2 fortnights"), None);
        assert_eq!(parse("ms"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("99999999999999999999999999h"), None);
        assert_eq!(parse("18446744073709551615s 1s"), None);
        assert_eq!(format(Duration::from_millis(500)), "500ms");
        assert_eq!(format(Duration::from_secs(3)), "3s");
        assert_eq!(parse("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(format(Duration::from_secs(86_400)), "1d");
        assert_eq!(format(Duration::from_secs(600)), "10min");
        assert_eq!(format(Duration::from_secs(90)), "90s");
        assert_eq!(format(Duration::ZERO), "0s");
    }
}
