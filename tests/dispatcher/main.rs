//! Dispatcher fixtures, in the shape of NetworkManager's src/nm-dispatcher/tests: each
//! directory holds what a dispatcher passes (`argv`: one argument per line; `env`: KEY=VALUE
//! per line) and what multihome must make of it (`expected`: the event, or `refused: why`).
//! Values may use `\n`, `\t`, `\\` and `\xHH` for bytes a line cannot hold.
//!
//! Each case runs twice: through the pure parser, and through the real binary with exactly that
//! environment (and a policy path that does not exist, so nothing is touched), which must refuse
//! with exit status 1 and the same message, or succeed.
//! `MULTIHOME_BLESS=1` rewrites `expected` from the parser's answer.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use multihome::dispatch::event;

struct Case {
    name: String,
    dir: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(char::from(u8::from_str_radix(&hex, 16).expect("\\xHH")));
            }
            other => panic!("unknown escape \\{other:?} in {s:?}"),
        }
    }
    out
}

fn lines(path: &Path) -> Vec<String> {
    match fs::read_to_string(path) {
        Ok(text) => text.lines().map(unescape).collect(),
        Err(_) => Vec::new(),
    }
}

fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dispatcher");
    let mut cases: Vec<Case> = fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let dir = e.path();
            let env = lines(&dir.join("env"))
                .into_iter()
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("{}: env line {l:?} has no =", dir.display()));
                    (k.to_string(), v.to_string())
                })
                .collect();
            Case { name: e.file_name().to_string_lossy().into_owned(), args: lines(&dir.join("argv")), env, dir }
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(cases.len() >= 40, "fixtures missing: found {}", cases.len());
    cases
}

fn answer(case: &Case) -> String {
    match event::parse(&case.args, &case.env) {
        Ok(e) => e.to_string(),
        Err(refused) => refused.to_string(),
    }
}

#[test]
fn parser_gives_the_expected_event_or_refusal() {
    let bless = std::env::var("MULTIHOME_BLESS").as_deref() == Ok("1");
    let mut failures = Vec::new();
    for case in cases() {
        let got = answer(&case);
        let path = case.dir.join("expected");
        if bless {
            fs::write(&path, format!("{got}\n")).unwrap();
            continue;
        }
        let want = fs::read_to_string(&path).unwrap_or_default();
        if want.trim_end() != got {
            failures.push(format!("{}:\n  expected: {}\n  got:      {got}", case.name, want.trim_end()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn binary_refuses_or_accepts_as_the_parser_does() {
    let mut failures = Vec::new();
    for case in cases() {
        let expected = answer(&case);
        let out = Command::new(env!("CARGO_BIN_EXE_multihome"))
            .args(["-c", "/nonexistent/multihome.conf", "dispatch", "--"])
            .args(&case.args)
            .env_clear()
            .envs(&case.env)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ok = if expected.starts_with("refused: ") {
            out.status.code() == Some(1) && stderr.trim_end() == format!("multihome: {expected}")
        } else {
            out.status.success() && out.stdout.is_empty()
        };
        if !ok {
            failures.push(format!("{}: {:?}, stderr {stderr:?}; expected {expected}", case.name, out.status));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The shipped hooks: each only execs multihome (no shell logic that could see the input),
/// and networkd-dispatcher gets a hook for exactly the states the parser acts on.
#[test]
fn shipped_hooks_only_exec_multihome_for_the_states_that_matter() {
    use std::os::unix::fs::PermissionsExt;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let commands = |path: &Path| -> Vec<String> {
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(text.starts_with("#!/bin/sh\n"), "{}", path.display());
        let mode = fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755, "{}: dispatchers run only root-owned 0755 scripts", path.display());
        text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(str::to_string).collect()
    };
    assert_eq!(commands(&root.join("nm-dispatcher/90-multihome")), ["exec /usr/sbin/multihome dispatch -- \"$@\""]);

    // networkd-dispatcher's states (its OPER_STATES and ADMIN_STATES).
    let states = [
        "carrier",
        "degraded",
        "degraded-carrier",
        "dormant",
        "enslaved",
        "missing",
        "no-carrier",
        "off",
        "routable",
        "configured",
        "configuring",
        "failed",
        "pending",
        "unmanaged",
        "linger",
        "initialized",
    ];
    let dir = root.join("networkd-units/networkd-dispatcher");
    for state in states {
        let env: BTreeMap<String, String> =
            [("IFACE", "wlan0"), ("STATE", state), ("IP_ADDRS", "")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let acts = event::parse(&[], &env).unwrap().kind != event::Kind::Ignore;
        let hook = dir.join(format!("{state}.d/90-multihome"));
        assert_eq!(hook.exists(), acts, "{state}: a hook must exist exactly when multihome acts on the state");
        if acts {
            assert_eq!(commands(&hook), ["exec /usr/sbin/multihome dispatch"]);
        }
    }
    let shipped = fs::read_dir(&dir).unwrap().count();
    assert_eq!(shipped, states.iter().filter(|s| dir.join(format!("{s}.d")).exists()).count(), "a hook for a state networkd-dispatcher does not have");
}
