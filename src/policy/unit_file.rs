//! The systemd unit-file syntax (sections, `Key=value`, `#`/`;` comments, `\` continuations),
//! kept with line numbers so that every later error can point at the line it is about. One reader,
//! two dialects: the policy's, strict ([`parse`]), and networkd's, lenient ([`parse_as_networkd`]),
//! for administrators' .network files and drop-ins, which multihome must see as networkd does.
//!
//! Our own rather than rust-ini's: that keeps no line numbers and folds repeated keys, and an
//! error without a line is of little use in a file with three `[Uplink]` sections, while
//! `Address=` or `[Route]` repeat (docs/ARCHITECTURE.md, "Crates").

use super::error::{Diagnostic, Diagnostics};

/// One `Key=value` assignment, with the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// One `[Section]` with its assignments in file order. A repeated section name is a new
/// `Section`; whether it is a new object ([Route], [Address]) or more of the same ([Network]) is
/// the rule of whoever reads the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

/// How a line that is not quite right is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// The policy: a line that is neither a section header, an assignment nor a comment, a key
    /// that is not CamelCase or an assignment before the first section is an error; `# why` after
    /// a value is a comment (the documented examples use it, and no value contains ` #`).
    Policy,
    /// networkd: such lines are ignored, as networkd ignores them; a `#` after a value is part
    /// of it (networkd knows only whole-line comments); comment lines inside a continuation are
    /// skipped.
    Networkd,
}

/// Splits `text` into sections. Syntax errors are collected, not fatal at the first one, so
/// that a user fixes a file in one round.
pub fn parse(file: &str, text: &str) -> Result<Vec<Section>, Diagnostics> {
    let (sections, problems) = read(text, Dialect::Policy);
    if problems.is_empty() { Ok(sections) } else { Err(Diagnostics(problems.into_iter().map(|(line, text)| Diagnostic::new(file, line, text)).collect())) }
}

/// Splits `text` into sections as networkd's parser does: what networkd ignores is left out.
pub fn parse_as_networkd(text: &str) -> Vec<Section> {
    read(text, Dialect::Networkd).0
}

fn is_comment(line: &str) -> bool {
    line.starts_with(['#', ';'])
}

/// The sections of `text`, and the lines that are not what `dialect` accepts (for networkd, the
/// lines it ignores).
fn read(text: &str, dialect: Dialect) -> (Vec<Section>, Vec<(usize, String)>) {
    let strict = dialect == Dialect::Policy;
    let mut sections: Vec<Section> = Vec::new();
    let mut problems = Vec::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((number, raw)) = lines.next() {
        // A trailing backslash joins the next line, as in systemd (a space in its place); the
        // entry keeps the first line. A comment is never continued (systemd neither): its `\`
        // must not swallow the next line.
        let mut logical = raw.trim().to_string();
        while logical.ends_with('\\') && !is_comment(&logical) {
            logical.pop();
            logical.push(' ');
            let next = match dialect {
                Dialect::Policy => lines.next().map(|(_, l)| l.trim()),
                Dialect::Networkd => lines.by_ref().map(|(_, l)| l.trim()).find(|l| !is_comment(l)),
            };
            let Some(next) = next else { break };
            logical.push_str(next);
        }
        let line = logical.trim();
        if line.is_empty() || is_comment(line) {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            match rest.strip_suffix(']') {
                Some(name) if !strict || (!name.is_empty() && !name.contains(['[', ']'])) => {
                    sections.push(Section { name: name.to_string(), line: number, entries: Vec::new() });
                }
                _ => problems.push((number, format!("malformed section header {line:?}, expected [Name]"))),
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            problems.push((number, format!("{line:?} is not an assignment, expected Key=value")));
            continue;
        };
        let key = key.trim();
        if strict && (key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric())) {
            problems.push((number, format!("{key:?} is not a key name, expected CamelCase letters and digits")));
            continue;
        }
        let Some(section) = sections.last_mut() else {
            problems.push((number, format!("{key}= appears before any [Section]")));
            continue;
        };
        let value = if strict { strip_inline_comment(value) } else { value.trim() };
        section.entries.push(Entry { key: key.to_string(), value: value.to_string(), line: number });
    }
    (sections, problems)
}

/// A boolean as systemd reads one (its parse_boolean): 1/yes/y/true/t/on and 0/no/n/false/f/off,
/// in any case. The one reader of booleans for the policy and for administrators' .network files,
/// so both mean what networkd means.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

/// systemd itself only knows whole-line comments, but the policy file's documented examples put
/// `# why` after a value, and none of our values can contain `#` or `;` legitimately.
fn strip_inline_comment(value: &str) -> &str {
    let end = value.find(" #").or_else(|| value.find("\t#")).or_else(|| value.find(" ;")).unwrap_or(value.len());
    value[..end].trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_are_systemds() {
        for yes in ["1", "yes", "Y", "TRUE", "t", "On"] {
            assert_eq!(parse_bool(yes), Some(true), "{yes}");
        }
        for no in ["0", "No", "n", "false", "F", "OFF"] {
            assert_eq!(parse_bool(no), Some(false), "{no}");
        }
        for neither in ["", "2", "yess", "enable"] {
            assert_eq!(parse_bool(neither), None, "{neither}");
        }
    }

    #[test]
    fn a_comment_ending_in_a_backslash_does_not_swallow_the_next_line() {
        let sections = parse("t", "[Probe]\n# see \\\nTarget=1.2.3.4\n").unwrap();
        assert_eq!(sections[0].entries.len(), 1);
        assert_eq!(sections[0].entries[0].line, 3);
    }

    #[test]
    fn keeps_lines_repeats_and_continuations() {
        let text = "# head\n[Probe]\nTarget=1.2.3.4\n; note\nTarget=5.6.7.8  # second\nInterval=1s \\\n 500ms\n[Uplink]\nInterface=eth0\n";
        let sections = parse("f", text).unwrap();
        assert_eq!(sections.len(), 2);
        let probe = &sections[0];
        assert_eq!((probe.name.as_str(), probe.line), ("Probe", 2));
        let got: Vec<_> = probe.entries.iter().map(|e| (e.key.as_str(), e.value.as_str(), e.line)).collect();
        assert_eq!(got, [("Target", "1.2.3.4", 3), ("Target", "5.6.7.8", 5), ("Interval", "1s  500ms", 6)]);
        assert_eq!(sections[1].entries[0].line, 9);
    }

    #[test]
    fn reports_every_syntax_error_with_its_line() {
        let err = parse("p.conf", "Key=1\n[Ok]\nno equals here\n[bad\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.conf:1: Key= appears before any [Section]\n\
             p.conf:3: \"no equals here\" is not an assignment, expected Key=value\n\
             p.conf:4: malformed section header \"[bad\", expected [Name]"
        );
    }

    #[test]
    fn reads_as_networkd_does() {
        let text = "Stray=1\n# c\n[Match]\nName=eth0 \\\n# inside\n  wlan1\n\n[Network]\nDNS=1.1.1.1 # not a comment\nno equals\n; c\n[Route]\nGateway=10.0.0.1\n[Route]\n";
        let s = parse_as_networkd(text);
        let names: Vec<_> = s.iter().map(|s| (s.name.as_str(), s.line)).collect();
        assert_eq!(names, [("Match", 3), ("Network", 8), ("Route", 12), ("Route", 14)]);
        assert_eq!(s[0].entries, [Entry { key: "Name".into(), value: "eth0  wlan1".into(), line: 4 }]);
        assert_eq!(s[1].entries[0].value, "1.1.1.1 # not a comment");
        assert_eq!(s[1].entries.len(), 1);
        assert_eq!(s[2].entries[0].line, 13);
        assert!(s[3].entries.is_empty());
    }
}
