//! A policy for a test, built from the seed (examples/seed.conf) or another lab policy by named
//! edits. Each edit fails loudly when the policy has nothing it could apply to: a test that
//! edits the seed must not go on testing the unedited seed after the seed changed.

use std::fmt;

use multihome::lab::policies;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy(String);

impl Policy {
    /// examples/seed.conf.
    pub fn seed() -> Policy {
        Policy(policies::SEED.to_string())
    }

    /// Any policy text, to edit further.
    pub fn from(text: impl Into<String>) -> Policy {
        Policy(text.into())
    }

    pub fn text(&self) -> &str {
        &self.0
    }

    /// The lines of section `[name]` whose lines satisfy `pick`: (first line, end), end exclusive.
    fn section(&self, name: &str, pick: impl Fn(&[&str]) -> bool) -> (usize, usize) {
        let lines: Vec<&str> = self.0.lines().collect();
        let header = format!("[{name}]");
        let starts: Vec<usize> = lines.iter().enumerate().filter(|(_, l)| l.trim_start().starts_with('[')).map(|(n, _)| n).collect();
        for (k, &start) in starts.iter().enumerate() {
            let end = starts.get(k + 1).copied().unwrap_or(lines.len());
            if lines[start].trim() == header && pick(&lines[start..end]) {
                return (start, end);
            }
        }
        panic!("the policy has no such [{name}] section:\n{}", self.0)
    }

    /// `Key=value` in the section, replacing the section's `Key=` lines, or after its last
    /// setting when it has none.
    fn set_in(mut self, (start, end): (usize, usize), key: &str, value: &str) -> Policy {
        let mut lines: Vec<String> = self.0.lines().map(str::to_string).collect();
        let prefix = format!("{key}=");
        let at: Vec<usize> = (start..end).filter(|&n| lines[n].starts_with(&prefix)).collect();
        let line = format!("{key}={value}");
        match at.split_first() {
            Some((&first, rest)) => {
                lines[first] = line;
                for &n in rest.iter().rev() {
                    lines.remove(n);
                }
            }
            None => {
                let last = (start..end).rev().find(|&n| lines[n].contains('=') && !lines[n].starts_with('#')).unwrap_or(start);
                lines.insert(last + 1, line);
            }
        }
        self.0 = lines.join("\n") + "\n";
        self
    }

    /// Sets `Key=value` in the [Uplink] of `interface` (replacing that key there, if set).
    pub fn uplink(self, interface: &str, key: &str, value: &str) -> Policy {
        let interface_line = format!("Interface={interface}");
        let at = self.section("Uplink", |lines| lines.iter().any(|l| l.trim() == interface_line));
        self.set_in(at, key, value)
    }

    /// Removes `Key=` from the [Uplink] of `interface` (every line of it); fails when it has none.
    pub fn uplink_without(mut self, interface: &str, key: &str) -> Policy {
        let interface_line = format!("Interface={interface}");
        let (start, end) = self.section("Uplink", |lines| lines.iter().any(|l| l.trim() == interface_line));
        let prefix = format!("{key}=");
        let lines: Vec<&str> = self.0.lines().collect();
        let kept: Vec<&str> = lines.iter().enumerate().filter(|(n, l)| !((start..end).contains(n) && l.starts_with(&prefix))).map(|(_, l)| *l).collect();
        assert!(kept.len() < lines.len(), "the [Uplink] of {interface} has no {key}=:\n{}", self.0);
        self.0 = kept.join("\n") + "\n";
        self
    }

    /// Sets `Key=value` in [Probe] (replacing that key there; a repeatable key such as Target=
    /// is added with [`Policy::probe_add`]).
    pub fn probe(self, key: &str, value: &str) -> Policy {
        let at = self.section("Probe", |_| true);
        self.set_in(at, key, value)
    }

    /// Adds one more `Key=value` line to [Probe] (Target=, Target6=).
    pub fn probe_add(mut self, key: &str, value: &str) -> Policy {
        let (_, end) = self.section("Probe", |_| true);
        let mut lines: Vec<String> = self.0.lines().map(str::to_string).collect();
        let last = (0..end).rev().find(|&n| lines[n].contains('=') && !lines[n].starts_with('#')).expect("[Probe] has a setting");
        lines.insert(last + 1, format!("{key}={value}"));
        self.0 = lines.join("\n") + "\n";
        self
    }

    /// Sets `Key=value` in [Policy].
    pub fn policy(self, key: &str, value: &str) -> Policy {
        let at = self.section("Policy", |_| true);
        self.set_in(at, key, value)
    }

    /// Removes the [Uplink] of `interface`, with everything up to the next section.
    pub fn without_uplink(mut self, interface: &str) -> Policy {
        let interface_line = format!("Interface={interface}");
        let (start, end) = self.section("Uplink", |lines| lines.iter().any(|l| l.trim() == interface_line));
        let mut lines: Vec<&str> = self.0.lines().collect();
        lines.drain(start..end);
        self.0 = lines.join("\n") + "\n";
        self
    }

    /// Removes the line `line` (exactly, once) wherever it is.
    pub fn without_line(mut self, line: &str) -> Policy {
        let mut lines: Vec<&str> = self.0.lines().collect();
        let at = lines.iter().position(|l| *l == line).unwrap_or_else(|| panic!("the policy has no line {line:?}:\n{}", self.0));
        lines.remove(at);
        self.0 = lines.join("\n") + "\n";
        self
    }

    /// Replaces every `from` with `to` (an address that appears in several sections).
    pub fn replace(mut self, from: &str, to: &str) -> Policy {
        assert!(self.0.contains(from), "the policy has no {from:?}:\n{}", self.0);
        self.0 = self.0.replace(from, to);
        self
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Policy> for String {
    fn from(p: Policy) -> String {
        p.0
    }
}
