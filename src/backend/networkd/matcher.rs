//! Whether a .network file's `[Match]` section takes a link, evaluated the way networkd does
//! (systemd's net_match_config): every key present must match; a key is a space-separated list
//! of shell globs, where a `!` pattern that matches rejects the link and, when the list has
//! positive patterns, one of them must match; an empty assignment resets the list.
//!
//! Offline (an image, `render --out`) only the name is known, so a file that also matches on
//! MACAddress=, Type=, Driver=, Path=, Property= or a condition (Host=, Virtualization=, ...)
//! cannot be decided: the verdict says so, and which keys, and the caller is conservative. On a
//! running system networkd's own description of the link fills in the rest ([`LinkFacts`]).
//! Offline, `Name=` is tested against the kernel name only; networkd also tries the link's
//! alternative names, which only the running system knows.

use crate::policy::unit_file::Section;

/// What is known about one link for matching. Offline everything but the name is `Unknown`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkFacts {
    pub name: String,
    pub alternative_names: Vec<String>,
    /// Lower-case hex digits without separators.
    pub mac: Fact,
    pub permanent_mac: Fact,
    /// networkd's link type (ether, wlan, loopback, ...).
    pub link_type: Fact,
    /// The netdev kind (veth, bridge, ...); `Absent` for a physical device.
    pub kind: Fact,
    pub driver: Fact,
    /// udev's ID_PATH.
    pub path: Fact,
}

/// One property of a link, as far as it is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Fact {
    #[default]
    Unknown,
    /// Known not to exist (a physical device has no kind).
    Absent,
    Value(String),
}

impl LinkFacts {
    /// What an image tells about a link: its name.
    pub fn offline(name: &str) -> LinkFacts {
        LinkFacts { name: name.to_string(), ..Default::default() }
    }
}

/// The outcome for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Matches,
    DoesNotMatch,
    /// Every key that could be evaluated matched; these could not be (e.g. "MACAddress=").
    Unknown {
        keys: Vec<String>,
    },
}

/// The `[Match]` keys of a file and its drop-ins, after networkd's resets, in first-seen order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchKeys(Vec<(String, Vec<String>)>);

impl MatchKeys {
    /// Collects `[Match]` from `parts` (the file, then its drop-ins, in networkd's order).
    pub fn collect<'a>(parts: impl IntoIterator<Item = &'a [Section]>) -> MatchKeys {
        let mut keys: Vec<(String, Vec<String>)> = Vec::new();
        for sections in parts {
            for e in sections.iter().filter(|s| s.name == "Match").flat_map(|s| &s.entries) {
                let words = split_words(&e.value);
                match keys.iter_mut().find(|(k, _)| *k == e.key) {
                    // An empty assignment resets the list.
                    Some((_, list)) if words.is_empty() => list.clear(),
                    Some((_, list)) => list.extend(words),
                    None => keys.push((e.key.clone(), words)),
                }
            }
        }
        keys.retain(|(_, list)| !list.is_empty());
        MatchKeys(keys)
    }

    fn get(&self, key: &str) -> Option<&[String]> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
    }

    /// Whether the file takes the link.
    pub fn verdict(&self, link: &LinkFacts) -> Verdict {
        // networkd ignores a file with an empty [Match] ("add Name=* to match all interfaces").
        if self.0.is_empty() {
            return Verdict::DoesNotMatch;
        }
        let mut unknown = Vec::new();
        for (key, patterns) in &self.0 {
            let result = match key.as_str() {
                "Name" => Some(test_globs(patterns, Some(&link.name)) || link.alternative_names.iter().any(|a| test_globs(patterns, Some(a)))),
                "MACAddress" => test_macs(patterns, &link.mac),
                "PermanentMACAddress" => test_macs(patterns, &link.permanent_mac),
                "Type" => test_fact(patterns, &link.link_type),
                "Kind" => test_fact(patterns, &link.kind),
                "Driver" => test_fact(patterns, &link.driver),
                "Path" => test_fact(patterns, &link.path),
                _ => None,
            };
            match result {
                Some(false) => return Verdict::DoesNotMatch,
                Some(true) => {}
                None => unknown.push(format!("{key}=")),
            }
        }
        if unknown.is_empty() { Verdict::Matches } else { Verdict::Unknown { keys: unknown } }
    }

    /// Whether the file's `Name=` positively names the link (so an undecidable file is meant for
    /// it rather than a catch-all such as `Type=wlan`).
    pub fn names(&self, name: &str) -> bool {
        self.get("Name").is_some_and(|p| p.iter().any(|p| !p.starts_with('!')) && test_globs(p, Some(name)))
    }

    /// Whether the file can take only this one link: its positive `Name=` patterns are all the
    /// literal name, or it matches one MAC address. A drop-in for any other file would give the
    /// uplink's addresses and routes to every link the file takes.
    pub fn only(&self, name: &str) -> bool {
        let positive: Vec<&String> = self.get("Name").unwrap_or_default().iter().filter(|p| !p.starts_with('!')).collect();
        let by_name = !positive.is_empty() && positive.iter().all(|p| p.as_str() == name);
        let one_mac = |key| self.get(key).is_some_and(|m| m.len() == 1);
        by_name || one_mac("MACAddress") || one_mac("PermanentMACAddress")
    }

    /// The keys, for messages: `Name=eth0 MACAddress=...`.
    pub fn describe(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={}", v.join(" "))).collect::<Vec<_>>().join(" ")
    }
}

/// A [Match] value as networkd splits it: whitespace-separated words, quotes removed.
fn split_words(value: &str) -> Vec<String> {
    value.split_whitespace().map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_string()).filter(|w| !w.is_empty()).collect()
}

/// systemd's net_condition_test_strv: a matching `!pattern` rejects; with positive patterns one
/// must match; with only negative ones, anything not rejected passes. `None` is a link that
/// lacks the property: no pattern matches it.
fn test_globs(patterns: &[String], value: Option<&str>) -> bool {
    let mut matched = false;
    let mut has_positive = false;
    for p in patterns {
        let (invert, pattern) = match p.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, p.as_str()),
        };
        has_positive |= !invert;
        if value.is_some_and(|v| fnmatch(pattern, v)) {
            if invert {
                return false;
            }
            matched = true;
        }
    }
    if has_positive { matched } else { true }
}

fn test_fact(patterns: &[String], fact: &Fact) -> Option<bool> {
    match fact {
        Fact::Unknown => None,
        Fact::Absent => Some(test_globs(patterns, None)),
        Fact::Value(v) => Some(test_globs(patterns, Some(v))),
    }
}

fn test_macs(patterns: &[String], fact: &Fact) -> Option<bool> {
    match fact {
        Fact::Unknown => None,
        Fact::Absent => Some(false),
        Fact::Value(v) => Some(patterns.iter().filter_map(|p| normalize_mac(p)).any(|m| m == *v)),
    }
}

/// `aa:bb:cc:dd:ee:ff`, `aa-bb-...` or `aabb.ccdd.eeff` as 12 lower-case hex digits; `None` for
/// anything else (networkd ignores such an entry too).
pub fn normalize_mac(text: &str) -> Option<String> {
    let hex: String = text.chars().filter(|c| !matches!(c, ':' | '-' | '.')).collect::<String>().to_ascii_lowercase();
    (hex.len() == 12 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

/// fnmatch(3) with no flags, as networkd calls it: `*`, `?`, `[...]` (ranges, `!`/`^`
/// negation) and `\` escapes; `*` also matches `/` and a leading dot.
pub fn fnmatch(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point for the last `*` (linear in practice, and
    // never exponential on hostile patterns).
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => match bracket(&p, pi, t[ti]) {
                Some((true, next)) => Some(next),
                Some((false, _)) => None,
                // An unclosed `[` is an ordinary character.
                None => (t[ti] == '[').then_some(pi + 1),
            },
            Some('\\') if pi + 1 < p.len() => (p[pi + 1] == t[ti]).then_some(pi + 2),
            Some(&c) => (c == t[ti]).then_some(pi + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                pi = next;
                ti += 1;
            }
            (None, Some((spi, sti))) => {
                pi = spi + 1;
                ti = sti + 1;
                star = Some((spi, sti + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A bracket expression at `p[start] == '['` against `c`: whether it matches, and the index
/// after it; `None` when it is not closed.
fn bracket(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&hi| hi != ']') {
            let hi = p[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::unit_file::parse_as_networkd;

    fn keys(text: &str) -> MatchKeys {
        MatchKeys::collect([parse_as_networkd(text).as_slice()])
    }

    #[test]
    fn fnmatch_as_the_c_library() {
        let cases = [
            ("eth0", "eth0", true),
            ("eth*", "eth0", true),
            ("eth*", "wlan0", false),
            ("*", "", true),
            ("en?s3", "enp0s3", false),
            ("en??s3", "enp0s3", true),
            ("wl[a-z]n[0-9]", "wlan1", true),
            ("wlan[!1]", "wlan1", false),
            ("wlan[^1]", "wlan0", true),
            ("wlan[]", "wlan[]", true),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("*0*1", "e0th0x1", true),
            ("[]a]", "]", true),
        ];
        for (p, t, want) in cases {
            assert_eq!(fnmatch(p, t), want, "fnmatch({p:?}, {t:?})");
        }
    }

    #[test]
    fn name_lists_globs_and_negation() {
        let eth0 = LinkFacts::offline("eth0");
        let wlan1 = LinkFacts::offline("wlan1");
        assert_eq!(keys("[Match]\nName=eth0\n").verdict(&eth0), Verdict::Matches);
        assert_eq!(keys("[Match]\nName=eth1 eth0\n").verdict(&eth0), Verdict::Matches);
        assert_eq!(keys("[Match]\nName=wl*\n").verdict(&eth0), Verdict::DoesNotMatch);
        assert_eq!(keys("[Match]\nName=!eth0\n").verdict(&eth0), Verdict::DoesNotMatch);
        assert_eq!(keys("[Match]\nName=!eth0\n").verdict(&wlan1), Verdict::Matches);
        assert_eq!(keys("[Match]\nName=* !wlan1\n").verdict(&wlan1), Verdict::DoesNotMatch);
        // A reset, in the file or a drop-in, empties the list; an empty [Match] takes nothing.
        assert_eq!(keys("[Match]\nName=eth0\nName=\nName=wlan1\n").verdict(&eth0), Verdict::DoesNotMatch);
        assert_eq!(keys("[Match]\n").verdict(&eth0), Verdict::DoesNotMatch);
        assert_eq!(keys("[Network]\nDHCP=yes\n").verdict(&eth0), Verdict::DoesNotMatch);
        let split = MatchKeys::collect([parse_as_networkd("[Match]\nName=eth0\n").as_slice(), parse_as_networkd("[Match]\nName=\nName=wlan1\n").as_slice()]);
        assert_eq!(split.verdict(&wlan1), Verdict::Matches);
        assert_eq!(split.verdict(&eth0), Verdict::DoesNotMatch);
    }

    #[test]
    fn keys_known_only_live_are_unknown_offline() {
        let eth0 = LinkFacts::offline("eth0");
        let k = keys("[Match]\nName=eth0\nMACAddress=52:54:00:12:34:56\n");
        assert_eq!(k.verdict(&eth0), Verdict::Unknown { keys: vec!["MACAddress=".into()] });
        // A key that fails decides, whatever else is unknown.
        assert_eq!(keys("[Match]\nType=wlan\nName=wlan*\n").verdict(&eth0), Verdict::DoesNotMatch);
        let live = LinkFacts { mac: Fact::Value("525400123456".into()), ..LinkFacts::offline("eth0") };
        assert_eq!(k.verdict(&live), Verdict::Matches);
        let other = LinkFacts { mac: Fact::Value("525400000000".into()), ..LinkFacts::offline("eth0") };
        assert_eq!(k.verdict(&other), Verdict::DoesNotMatch);
        // Kind=!* is "no kind": a physical device.
        let physical = LinkFacts { kind: Fact::Absent, link_type: Fact::Value("ether".into()), ..LinkFacts::offline("eth0") };
        assert_eq!(keys("[Match]\nKind=!*\nType=ether\n").verdict(&physical), Verdict::Matches);
        let veth = LinkFacts { kind: Fact::Value("veth".into()), ..physical };
        assert_eq!(keys("[Match]\nKind=!*\nType=ether\n").verdict(&veth), Verdict::DoesNotMatch);
        // Alternative names count too, when known.
        let alt = LinkFacts { alternative_names: vec!["enp0s3".into()], ..LinkFacts::offline("eth0") };
        assert_eq!(keys("[Match]\nName=enp0s3\n").verdict(&alt), Verdict::Matches);
    }

    #[test]
    fn only_one_link() {
        assert!(keys("[Match]\nName=eth0\n").only("eth0"));
        assert!(keys("[Match]\nName=eth0 !eth1\n").only("eth0"));
        assert!(!keys("[Match]\nName=eth0 eth1\n").only("eth0"));
        assert!(!keys("[Match]\nName=eth*\n").only("eth0"));
        assert!(!keys("[Match]\nName=!wlan0\n").only("eth0"));
        assert!(keys("[Match]\nPermanentMACAddress=52:54:00:12:34:56\n").only("eth0"));
        assert!(!keys("[Match]\nType=ether\n").only("eth0"));
        assert!(keys("[Match]\nName=eth0\nMACAddress=x\n").names("eth0"));
        assert!(!keys("[Match]\nType=wlan\n").names("wlan1"));
    }

    #[test]
    fn macs_in_any_spelling() {
        assert_eq!(normalize_mac("52:54:00:AB:cd:ef").as_deref(), Some("525400abcdef"));
        assert_eq!(normalize_mac("5254.00ab.cdef").as_deref(), Some("525400abcdef"));
        assert_eq!(normalize_mac("52-54-00-ab-cd-ef").as_deref(), Some("525400abcdef"));
        assert_eq!(normalize_mac("52:54:00"), None);
    }
}
