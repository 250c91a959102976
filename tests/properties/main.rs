//! Property tests for the parsers of hostile input (issue 23): the policy file, the dispatcher's
//! arguments and environment, and the administrator's .network files. Each property runs a few
//! hundred generated inputs, random bytes and near-valid ones (a file or fixture of the test
//! corpus with one line or value mutated), and holds the parser to the same promises: it never
//! panics, it answers within [`DEADLINE`], and a refusal names file:line or the field.
//!
//! Bounded in time on stable Rust (proptest, no fork): `CASES` per property, a few seconds each
//! in a debug build. A failure prints the shrunk input; it goes into the module's regression
//! tests, named after what it found.

mod dispatch;
mod networkd_files;
mod policy;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

/// Generated inputs per property; `PROPTEST_CASES=N` looks longer (a local run, not CI).
const CASES: u32 = 1024;

/// Longer than any parser may take on inputs of these sizes: far beyond the milliseconds they
/// need, so that only a hang (or a runaway loop) fails.
const DEADLINE: Duration = Duration::from_secs(5);

fn config() -> Config {
    // No persistence file: a failure found here becomes a named regression test instead.
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(CASES);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// Runs `f` on a thread of its own and waits at most [`DEADLINE`]: a hang fails the property
/// instead of the whole test run, and a panic in `f` fails it with `f`'s message.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(t) => t,
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the worker sends before it ends"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: no answer within {DEADLINE:?}: a hang"),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Every file under `dir` (recursively) whose path ends with `suffix`, sorted.
fn files_under(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())).flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Values that have broken parsers elsewhere: limits of integer types, durations that overflow,
/// addresses of every odd kind, quoting and comment characters, patterns.
const TRICKY: &[&str] = &[
    "",
    " ",
    "0",
    "-1",
    "+5",
    "0x10",
    "1e9",
    "NaN",
    "inf",
    "255",
    "256",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "0ms",
    "1us",
    "20.9ms",
    "1.5s",
    "1d",
    "1w",
    "1y",
    "5min 3s",
    "18446744073709551615us",
    "18446744073709551615d",
    "1.99999999999999999999s",
    ".5s",
    "5.s",
    "1 s",
    "s",
    "0.0.0.0",
    "10.0.0.0/8",
    "10.0.0.5/0",
    "10.0.0.5/32",
    "10.0.0.5/33",
    "127.0.0.1",
    "224.0.0.1",
    "255.255.255.255",
    "169.254.1.1",
    "192.168.178.1",
    "192.168.178.99/24",
    "1.2.3",
    "1.2.3.4.5",
    "01.02.03.04",
    "::",
    "::1",
    "::ffff:10.0.0.1",
    "fe80::1",
    "fe80::1%eth0",
    "2001:db8::1/64",
    "2001:db8::/0",
    "ff02::1",
    "yes",
    "no",
    "true",
    "ipv4",
    "ipv6",
    "both",
    "eth0",
    "wlan0",
    "eth0 wlan0",
    "eth0,wlan0",
    "up\u{FFFD}",
    "a:b",
    "a/b",
    "..",
    "*",
    "!eth0",
    "[a-",
    "\\",
    "\"",
    "'",
    "#",
    ";",
    "=",
    "==",
    "[Uplink]",
    "\u{7f}",
    "\u{a0}",
    "é",
    "0123456789abcdef",
];

/// One change to one line of a near-valid file.
#[derive(Debug, Clone)]
enum Mutation {
    Delete,
    Duplicate,
    /// The line's `Key=` kept, its value replaced.
    Value(String),
    /// The whole line replaced.
    Line(String),
    /// One character replaced.
    Char(Index, char),
    /// The line repeated into one long line.
    Lengthen(usize),
    /// A line of arbitrary bytes put after it (read lossily where the parser takes text).
    Insert(Vec<u8>),
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(TRICKY).prop_map(str::to_string),
        2 => "[ -~]{0,40}",
        1 => any::<String>().prop_map(|s| s.chars().take(40).collect()),
        1 => (proptest::sample::select(TRICKY), proptest::sample::select(TRICKY)).prop_map(|(a, b)| format!("{a}{b}")),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => Just(Mutation::Delete),
        1 => Just(Mutation::Duplicate),
        6 => value().prop_map(Mutation::Value),
        2 => "[ -~]{0,60}".prop_map(Mutation::Line),
        2 => (any::<Index>(), any::<char>()).prop_map(|(i, c)| Mutation::Char(i, c)),
        1 => (2usize..200).prop_map(Mutation::Lengthen),
        1 => proptest::collection::vec(any::<u8>(), 0..60).prop_map(Mutation::Insert),
    ]
}

/// `text` with its line `at` changed by `m`.
fn mutate(text: &str, at: Index, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    let i = at.index(lines.len());
    match m {
        Mutation::Delete => drop(lines.remove(i)),
        Mutation::Duplicate => lines.insert(i, lines[i].clone()),
        Mutation::Value(v) => {
            let key = lines[i].split_once('=').map(|(k, _)| k.to_string()).unwrap_or_else(|| lines[i].clone());
            lines[i] = format!("{key}={v}");
        }
        Mutation::Line(l) => lines[i] = l.clone(),
        Mutation::Char(at, c) => {
            let mut chars: Vec<char> = lines[i].chars().collect();
            if chars.is_empty() {
                chars.push(*c);
            } else {
                let j = at.index(chars.len());
                chars[j] = *c;
            }
            lines[i] = chars.into_iter().collect();
        }
        Mutation::Lengthen(n) => lines[i] = lines[i].repeat(*n).chars().take(8192).collect(),
        Mutation::Insert(bytes) => lines.insert(i + 1, String::from_utf8_lossy(bytes).into_owned()),
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}
