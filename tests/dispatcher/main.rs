//! Dispatcher fixtures, in the shape of NetworkManager's src/nm-dispatcher/tests: each
//! directory holds what a dispatcher passes (`argv`: one argument per line; `env`: KEY=VALUE
//! per line) and what multihome must make of it (`expected`: the event, or `refused: why`).
//! Values may use `\n`, `\t`, `\\` and `\xHH` for bytes a line cannot hold: `\xff` is the byte
//! 0xff, so a fixture holds any byte string, UTF-8 or not, exactly as a dispatcher could pass it.
//!
//! Each case runs twice: through the pure parser, and through the real binary with exactly that
//! environment (and a policy path that does not exist, so nothing is touched), which must refuse
//! with exit status 1 and the same message, or succeed.
//! `MULTIHOME_BLESS=1` rewrites `expected` from the parser's answer.

mod fixtures;

use std::fs;
use std::path::Path;
use std::process::Command;

use fixtures::{Case, cases};
use multihome::dispatch::event::{self, Environment};

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

/// Issue 23: a 128 KiB `IP_ADDRS` with one bad entry wrote a 126 KB line to the journal. The
/// refusal, from the parser and from the binary, is one short line that still names the entry.
#[test]
fn a_huge_value_with_one_bad_entry_gives_one_short_line() {
    let mut value = String::from("192.168.178.157 10.0.0.x");
    let mut i = 0u32;
    // Just under the kernel's limit for one environment string (MAX_ARG_STRLEN, 128 KiB).
    while value.len() < (128 << 10) - 64 {
        value.push_str(&format!(" 10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255 | 1));
        i += 1;
    }
    let env: Environment = [("IFACE", "wlan0"), ("STATE", "routable"), ("IP_ADDRS", value.as_str())].iter().map(|(k, v)| (k.into(), v.into())).collect();
    let refused = event::parse(&[], &env).unwrap_err().to_string();
    assert!(refused.ends_with(r#": "10.0.0.x" is not an IPv4 address"#), "{refused}");
    assert!(refused.len() <= event::MAX_REFUSAL && !refused.contains('\n'), "{} bytes: {refused}", refused.len());

    let out = Command::new(env!("CARGO_BIN_EXE_multihome")).args(["-c", "/nonexistent/multihome.conf", "dispatch"]).env_clear().envs(&env).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), format!("multihome: {refused}\n"));
}

/// Every fixture's refusal is one line of at most [`event::MAX_REFUSAL`] bytes, printable ASCII
/// but for what a UTF-8 name shows as itself.
#[test]
fn every_refusal_is_one_bounded_line() {
    for case in cases() {
        let answer = answer(&case);
        assert!(answer.len() <= event::MAX_REFUSAL && !answer.chars().any(char::is_control), "{}: {answer}", case.name);
    }
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
        let env: Environment = [("IFACE", "wlan0"), ("STATE", state), ("IP_ADDRS", "")].iter().map(|(k, v)| (k.into(), v.into())).collect();
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
