//! systemd's unit-file syntax as networkd reads an administrator's .network file and its
//! drop-ins: sections, `Key=value`, whole-line `#`/`;` comments, `\` continuations, with the line
//! each assignment starts on, so a conflict can be named as file:line.
//!
//! Lenient where networkd is lenient: a line it would ignore (no `=`, an assignment before any
//! section) is ignored here too, because multihome must see the file as networkd does, not judge
//! it. Unlike the policy's reader (crate::policy::unit_file), a `#` after a value is part of the
//! value: networkd knows only whole-line comments. rust-ini is no help: it drops line numbers and
//! folds repeated keys, and `Address=` or `[Route]` repeat.

/// One `Key=value` assignment and the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// One `[Section]` with its assignments in file order. A repeated section name is a new
/// `Section` here; whether it is a new object ([Route], [Address]) or more of the same
/// ([Network]) is networkd's rule, applied by the reader of the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

/// Splits `text` into sections, as networkd's parser does.
pub fn parse(text: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((number, raw)) = lines.next() {
        let mut logical = raw.trim().to_string();
        if logical.starts_with('#') || logical.starts_with(';') {
            continue;
        }
        // A trailing backslash continues the line (systemd puts a space in its place); comment
        // lines inside a continuation are skipped, as systemd does.
        while logical.ends_with('\\') {
            logical.pop();
            logical.push(' ');
            let Some(next) = lines.by_ref().map(|(_, l)| l.trim()).find(|l| !l.starts_with('#') && !l.starts_with(';')) else {
                break;
            };
            logical.push_str(next);
        }
        let line = logical.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            if let Some(name) = rest.strip_suffix(']') {
                sections.push(Section { name: name.to_string(), line: number, entries: Vec::new() });
            }
            continue;
        }
        let (Some((key, value)), Some(section)) = (line.split_once('='), sections.last_mut()) else {
            continue;
        };
        section.entries.push(Entry { key: key.trim().to_string(), value: value.trim().to_string(), line: number });
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_networkd_does() {
        let text = "Stray=1\n# c\n[Match]\nName=eth0 \\\n# inside\n  wlan1\n\n[Network]\nDNS=1.1.1.1 # not a comment\nno equals\n; c\n[Route]\nGateway=10.0.0.1\n[Route]\n";
        let s = parse(text);
        let names: Vec<_> = s.iter().map(|s| (s.name.as_str(), s.line)).collect();
        assert_eq!(names, [("Match", 3), ("Network", 8), ("Route", 12), ("Route", 14)]);
        assert_eq!(s[0].entries, [Entry { key: "Name".into(), value: "eth0  wlan1".into(), line: 4 }]);
        assert_eq!(s[1].entries[0].value, "1.1.1.1 # not a comment");
        assert_eq!(s[1].entries.len(), 1);
        assert_eq!(s[2].entries[0].line, 13);
        assert!(s[3].entries.is_empty());
    }
}
