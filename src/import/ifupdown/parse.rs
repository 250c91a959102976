//! ifupdown's interfaces(5) syntax, one file at a time: logical lines (comments dropped,
//! `\` continuations joined, each keeping the file and line where it starts), grouped into
//! `auto`/`allow-*` lines, `iface` stanzas with their option lines, `source`/`source-directory`
//! directives and the other top-level stanzas. No I/O: [`super::read`] follows the directives.

use std::fmt;
use std::sync::Arc;

/// Where a logical line starts, and its text (continuations joined with one space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub file: Arc<str>,
    pub line: usize,
    pub text: String,
}

impl Line {
    /// `FILE:LINE`, as every note and error names a line.
    pub fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// A file that is not interfaces(5): named by file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl Error {
    pub fn at(line: &Line, message: impl Into<String>) -> Error {
        Error { file: line.file.to_string(), line: line.line, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 { write!(f, "{}: {}", self.file, self.message) } else { write!(f, "{}:{}: {}", self.file, self.line, self.message) }
    }
}

impl std::error::Error for Error {}

/// One option line of a stanza: `address 192.168.178.99`, `post-up ip rule add ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    /// The option's name with `_` read as `-` (ifupdown and ifenslave take `bond_updelay` and
    /// `bond-updelay` alike: both become `IF_BOND_UPDELAY`).
    pub key: String,
    pub value: String,
    pub line: Line,
}

/// `iface NAME FAMILY METHOD` and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    /// `inet`, `inet6`, or another family (`ipx`, `can`) the import reports and leaves.
    pub family: String,
    pub method: String,
    pub line: Line,
    pub options: Vec<Opt>,
}

impl Iface {
    /// The values of an option, in file order.
    pub fn values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Opt> + 'a {
        self.options.iter().filter(move |o| o.key == key)
    }

    pub fn first(&self, key: &str) -> Option<&Opt> {
        self.options.iter().find(|o| o.key == key)
    }
}

/// One top-level item of a file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `auto`, `allow-hotplug`, `allow-auto` and the other `allow-CLASS` lines.
    Start {
        class: String,
        names: Vec<String>,
        line: Line,
    },
    Iface(Iface),
    /// `source PATTERN`: a path or shell glob, relative to the directory of this file.
    Source {
        pattern: String,
        line: Line,
    },
    /// `source-directory DIR`: the files of DIR whose names are letters, digits, `_` and `-`.
    SourceDirectory {
        dir: String,
        line: Line,
    },
    /// `mapping`, `rename`, `no-auto-down`, `no-scripts` and their option lines: read, not
    /// imported (each line is reported).
    Other {
        lines: Vec<Line>,
    },
}

/// The physical lines of `text` joined into logical ones: a line ending in `\` continues on
/// the next; lines whose first non-blank character is `#` are comments (as in ifupdown, a `#`
/// later on a line is part of it); blank lines end nothing and are skipped.
pub fn logical_lines(file: &Arc<str>, text: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut pending: Option<Line> = None;
    for (n, raw) in text.lines().enumerate() {
        let number = n + 1;
        let trimmed = raw.trim();
        let (body, continues) = match trimmed.strip_suffix('\\') {
            Some(b) => (b.trim_end(), true),
            None => (trimmed, false),
        };
        match pending.as_mut() {
            Some(p) => {
                if !body.is_empty() {
                    if !p.text.is_empty() {
                        p.text.push(' ');
                    }
                    p.text.push_str(body);
                }
            }
            None => {
                if body.starts_with('#') || (body.is_empty() && !continues) {
                    continue;
                }
                pending = Some(Line { file: file.clone(), line: number, text: body.to_string() });
            }
        }
        if !continues
            && let Some(done) = pending.take()
            && !done.text.is_empty()
        {
            lines.push(done);
        }
    }
    if let Some(done) = pending.take()
        && !done.text.is_empty()
    {
        lines.push(done);
    }
    lines
}

/// Parses one file's text; `file` names it in lines and errors.
pub fn parse(file: &str, text: &str) -> Result<Vec<Item>, Error> {
    let file: Arc<str> = Arc::from(file);
    let mut items: Vec<Item> = Vec::new();
    // Whether option lines belong to the last item (an iface or an Other stanza).
    let mut in_stanza = false;
    for line in logical_lines(&file, text) {
        let words: Vec<&str> = line.text.split_whitespace().collect();
        let keyword = words[0];
        match keyword {
            "iface" => {
                let [_, name, family, method, rest @ ..] = words.as_slice() else {
                    return Err(Error::at(&line, format!("`{}`: an iface stanza is `iface NAME FAMILY METHOD`", line.text)));
                };
                if !rest.is_empty() {
                    // ifupdown2's `iface NAME inet static inherits OTHER`: not ifupdown's.
                    return Err(Error::at(
                        &line,
                        format!("`{}`: words after the method ({}); an iface stanza is `iface NAME FAMILY METHOD`", line.text, rest.join(" ")),
                    ));
                }
                items.push(Item::Iface(Iface { name: name.to_string(), family: family.to_string(), method: method.to_string(), line, options: Vec::new() }));
                in_stanza = true;
            }
            "auto" => {
                items.push(Item::Start { class: "auto".into(), names: words[1..].iter().map(|w| w.to_string()).collect(), line });
                in_stanza = false;
            }
            k if k.starts_with("allow-") => {
                items.push(Item::Start { class: k["allow-".len()..].to_string(), names: words[1..].iter().map(|w| w.to_string()).collect(), line });
                in_stanza = false;
            }
            "source" | "source-directory" => {
                let [_, path] = words.as_slice() else {
                    return Err(Error::at(&line, format!("`{}`: {keyword} takes one path", line.text)));
                };
                let path = path.to_string();
                items.push(if keyword == "source" { Item::Source { pattern: path, line } } else { Item::SourceDirectory { dir: path, line } });
                in_stanza = false;
            }
            "mapping" | "rename" | "no-auto-down" | "no-scripts" => {
                // A mapping's `script`/`map` lines follow it as options; the others stand alone.
                in_stanza = keyword == "mapping";
                items.push(Item::Other { lines: vec![line] });
            }
            _ => {
                if !in_stanza {
                    return Err(Error::at(
                        &line,
                        format!("`{}` is outside any iface stanza (an option needs an `iface NAME FAMILY METHOD` line above it)", line.text),
                    ));
                }
                match items.last_mut() {
                    Some(Item::Iface(iface)) => {
                        let value = line.text[keyword.len()..].trim().to_string();
                        iface.options.push(Opt { key: keyword.replace('_', "-"), value, line });
                    }
                    Some(Item::Other { lines }) => lines.push(line),
                    _ => unreachable!("in_stanza is set only after an Iface or Other item"),
                }
            }
        }
    }
    Ok(items)
}

/// Shell-glob matching of one path component, as ifupdown's `source` (through wordexp) does:
/// `*`, `?` and `[...]` (with `!`/`^` negation and ranges); a leading `.` only matched by a
/// leading `.` in the pattern.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    matches(&pattern.chars().collect::<Vec<_>>(), &name.chars().collect::<Vec<_>>())
}

fn matches(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|skip| matches(&p[1..], &n[skip..])),
        Some('?') => !n.is_empty() && matches(&p[1..], &n[1..]),
        Some('[') => {
            let Some(c) = n.first() else { return false };
            let Some((hit, used)) = class(&p[1..], *c) else {
                // An unclosed `[` is an ordinary character.
                return *c == '[' && matches(&p[1..], &n[1..]);
            };
            hit && matches(&p[1 + used..], &n[1..])
        }
        Some(&ch) => n.first() == Some(&ch) && matches(&p[1..], &n[1..]),
    }
}

/// A bracket expression after its `[`: whether `c` is in it, and how many characters it took
/// (with the closing `]`); `None` when it never closes.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let (negate, mut i) = if matches!(p.first(), Some('!') | Some('^')) { (true, 1) } else { (false, 0) };
    let start = i;
    let mut hit = false;
    while i < p.len() {
        if p[i] == ']' && i > start {
            return Some((hit != negate, i + 1));
        }
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            hit |= p[i] <= c && c <= p[i + 2];
            i += 3;
        } else {
            hit |= p[i] == c;
            i += 1;
        }
    }
    None
}

pub fn has_wildcard(component: &str) -> bool {
    component.contains(['*', '?', '['])
}

/// The names `source-directory` reads (run-parts' rule): letters, digits, `_` and `-` only.
pub fn source_directory_takes(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_lines_join_and_keep_the_first_line_number() {
        let items = parse("f", "iface eth0 inet static\n  address \\\n     192.168.178.99/24\n  gateway 192.168.178.1\n").unwrap();
        let Item::Iface(i) = &items[0] else { panic!() };
        assert_eq!(i.options[0].key, "address");
        assert_eq!(i.options[0].value, "192.168.178.99/24");
        assert_eq!(i.options[0].line.line, 2);
        assert_eq!(i.options[1].line.line, 4);
    }

    #[test]
    fn comments_are_whole_lines_only_and_underscores_read_as_dashes() {
        let items = parse("f", "# a comment\niface bond0 inet dhcp\n    # another\n  bond_updelay 4000\n  up echo a#b\n").unwrap();
        let Item::Iface(i) = &items[0] else { panic!() };
        assert_eq!(i.line.line, 2);
        assert_eq!(i.options[0].key, "bond-updelay");
        assert_eq!(i.options[1].value, "echo a#b");
    }

    #[test]
    fn an_option_outside_a_stanza_is_an_error_with_its_line() {
        let e = parse("interfaces", "auto eth0\naddress 192.168.178.99\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "interfaces:2: `address 192.168.178.99` is outside any iface stanza (an option needs an `iface NAME FAMILY METHOD` line above it)"
        );
        let e = parse("interfaces", "\n\niface eth0 inet\n").unwrap_err();
        assert!(e.to_string().starts_with("interfaces:3: "), "{e}");
    }

    #[test]
    fn start_lines_and_directives() {
        let items = parse("f", "auto eth0 wlan0\nallow-hotplug wlan1\nsource interfaces.d/*\nsource-directory /etc/network/interfaces.d\n").unwrap();
        assert!(matches!(&items[0], Item::Start { class, names, .. } if class == "auto" && names == &["eth0", "wlan0"]));
        assert!(matches!(&items[1], Item::Start { class, .. } if class == "hotplug"));
        assert!(matches!(&items[2], Item::Source { pattern, .. } if pattern == "interfaces.d/*"));
        assert!(matches!(&items[3], Item::SourceDirectory { dir, .. } if dir == "/etc/network/interfaces.d"));
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "eth0"));
        assert!(!glob_match("*", ".hidden"));
        assert!(glob_match("*.cfg", "a.cfg"));
        assert!(!glob_match("*.cfg", "a.cfg~"));
        assert!(glob_match("eth[0-9]", "eth3"));
        assert!(!glob_match("eth[!0-9]", "eth3"));
        assert!(glob_match("wlan?", "wlan1"));
        assert!(source_directory_takes("eth0-uplink_1"));
        assert!(!source_directory_takes("eth0.cfg"));
    }
}
