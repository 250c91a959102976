//! The project's layout. One install layout (README, "Dispatcher hooks"): every file of the
//! project that names where multihome is installed names the same place, so a host set up from
//! the README runs the hooks, the unit and the lab with the one binary that is there. And one
//! test harness (issue 24): a helper the test crates share lives in tests/common, defined once,
//! and the harness's own pieces (the policy builder, the typed status) are checked here.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::policy::Policy;
use common::status::{State, Status};

#[allow(dead_code)]
mod common;

const BINARY: &str = "/usr/sbin/multihome";

/// The project's text files that ship or document an installed path.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            files(&path, out);
        } else if fs::read_to_string(&path).is_ok() {
            out.push(path);
        }
    }
}

#[test]
fn every_file_names_the_binary_in_usr_sbin() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = Vec::new();
    files(root, &mut all);
    let mut wrong = Vec::new();
    let mut right = 0;
    for path in &all {
        if path.ends_with("tests/layout.rs") {
            continue;
        }
        let text = fs::read_to_string(path).unwrap();
        for (n, line) in text.lines().enumerate() {
            for candidate in ["/usr/bin/multihome", "/usr/local/bin/multihome", "/usr/local/sbin/multihome", "/bin/multihome "] {
                if line.contains(candidate) {
                    wrong.push(format!("{}:{}: {}", path.strip_prefix(root).unwrap().display(), n + 1, line.trim()));
                }
            }
            right += line.matches(BINARY).count();
        }
    }
    assert!(wrong.is_empty(), "files that name another place than {BINARY}:\n{}", wrong.join("\n"));
    // The unit, both hooks and the README name it: a check that found none would prove nothing.
    assert!(right >= 4, "only {right} mention(s) of {BINARY}");
}

#[test]
fn the_unit_runs_and_cleans_up_with_the_installed_binary() {
    let unit = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("networkd-units/multihome.service")).unwrap();
    let exec: Vec<&str> = unit.lines().filter(|l| l.starts_with("Exec") && !l.starts_with("ExecReload")).collect();
    assert_eq!(exec, [&format!("ExecStart={BINARY} daemon") as &str, &format!("ExecStopPost={BINARY} daemon --cleanup")]);
}

/// Names that more than two test crates define at top level and that are different things each
/// time, with why. Everything else a third crate needs goes into tests/common.
const SEPARATE_THINGS: &[(&str, &str)] = &[];

/// The top-level items (fn, struct, enum, const, static, type, macro) a test file defines,
/// except its `#[test]` functions: (name, line).
fn top_level_items(text: &str) -> Vec<(String, usize)> {
    let mut items = Vec::new();
    let mut attributes = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with(char::is_whitespace) {
            // Inside an item: a nested fn, a method, a field.
            continue;
        }
        if line.starts_with("#[") || line.starts_with("///") {
            attributes.push(line);
            continue;
        }
        let words: Vec<&str> = line.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '!')).filter(|w| !w.is_empty()).collect();
        let words: &[&str] = match words.first() {
            Some(&"pub") => &words[1..],
            _ => &words,
        };
        let words = if words.first() == Some(&"async") { &words[1..] } else { words };
        if let [kind, name, ..] = words
            && ["fn", "struct", "enum", "const", "static", "type", "macro_rules!"].contains(kind)
            && !attributes.iter().any(|a| a.starts_with("#[test]"))
        {
            items.push((name.to_string(), n + 1));
        }
        attributes.clear();
    }
    items
}

#[test]
fn no_test_helper_is_defined_in_more_than_two_test_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut defined: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut files = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            files += 1;
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            for (item, line) in top_level_items(&fs::read_to_string(&path).unwrap()) {
                defined.entry(item).or_default().push(format!("{name}:{line}"));
            }
        }
    }
    let repeated: Vec<String> = defined
        .iter()
        .filter(|(name, at)| at.len() > 2 && !SEPARATE_THINGS.iter().any(|(n, _)| n == name))
        .map(|(name, at)| format!("{name}: {}", at.join(", ")))
        .collect();
    assert!(repeated.is_empty(), "defined in more than two test files (move it to tests/common):\n{}", repeated.join("\n"));
    // The check reads the test files it means: a parser that found nothing would prove nothing.
    assert!(files >= 20 && defined.len() >= 100, "{files} files, {} names", defined.len());
}

#[test]
fn the_helper_check_sees_helpers_and_skips_tests_and_nested_items() {
    let text = "use x;\n\nfn binary() -> PathBuf {\n    fn inner() {}\n}\n\n/// doc\n#[test]\nfn a_test() {}\n\npub(crate) struct Skipped;\npub struct TempDir(PathBuf);\nconst QUICK: u8 = 1;\nasync fn later() {}\n";
    let names: Vec<String> = top_level_items(text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["binary", "TempDir", "QUICK", "later"]);
}

#[test]
fn the_policy_builder_edits_the_seeds_sections_and_refuses_what_is_not_there() {
    let seed = Policy::seed();
    let moved = seed.clone().uplink("eth0", "Table", "200").uplink("wlan0", "Priority", "7").probe("MaxLatency", "50ms").policy("Backend", "networkd");
    // The section of the uplink on `interface`, as text.
    let uplink = |p: &Policy, interface: &str| -> String {
        let text = p.text();
        let at = text.find(&format!("[Uplink]\nInterface={interface}\n")).unwrap_or_else(|| panic!("no {interface}:\n{p}"));
        let end = text[at + 1..].find("\n[").map_or(text.len(), |e| at + 1 + e);
        text[at..end].to_string()
    };
    assert!(uplink(&moved, "eth0").contains("\nTable=200\n"), "{moved}");
    // A key set again replaces it: one Priority= in wlan0's section.
    assert_eq!(uplink(&moved, "wlan0").matches("Priority=").collect::<Vec<_>>(), ["Priority="], "{moved}");
    assert!(uplink(&moved, "wlan0").contains("\nPriority=7\n"), "{moved}");
    assert!(moved.text().contains("Backend=networkd\n") && !moved.text().contains("Backend=auto"), "{moved}");
    assert!(moved.text().contains("MaxLatency=50ms\n"), "{moved}");
    // And multihome reads it.
    let dir = common::files::TempDir::new("policy-builder");
    let file = dir.join("multihome.conf");
    fs::write(&file, moved.text()).unwrap();
    let check = common::multihome(&["-c", file.to_str().unwrap(), "check"]);
    assert!(check.status.success(), "{}\n{moved}", common::text(&check.stderr));

    let without = seed.clone().without_uplink("wlan1").uplink_without("eth0", "Gateway").without_line("Target=192.168.178.1");
    assert!(!without.text().contains("Interface=wlan1") && without.text().contains("Interface=wlan0"), "{without}");
    assert_eq!(without.text().matches("Gateway=").count(), 1, "{without}");
    assert!(without.text().contains("Target=198.51.100.10") && !without.text().contains("Target=192.168.178.1"), "{without}");

    for refused in [
        std::panic::catch_unwind(|| Policy::seed().uplink("eth9", "Priority", "1")),
        std::panic::catch_unwind(|| Policy::seed().without_line("Target=203.0.113.1")),
        std::panic::catch_unwind(|| Policy::seed().uplink_without("eth0", "DHCP")),
        std::panic::catch_unwind(|| Policy::from(multihome::lab::policies::DHCP_WLAN0).probe("Interval", "1s")),
    ] {
        assert!(refused.is_err(), "an edit with nothing to apply to went through: {refused:?}");
    }
}

/// The typed `status --json` of tests/common reads what the daemon writes: its own types,
/// serialised as `status --json` does, parse with no key unknown; and every state its state
/// machine names is one the tests can name.
#[test]
fn the_typed_status_reads_the_daemons_json() {
    use multihome::daemon::bus::{Snapshot, UplinkStatus};
    let uplink = UplinkStatus { interface: "eth0".into(), state: "up".into(), latency_ms: Some(0.5), ..Default::default() };
    let bond_slave = UplinkStatus {
        interface: "wlan1".into(),
        state: "no-bond".into(),
        bond_active: Some(false),
        mii: Some("down".into()),
        bond_prio: Some(1),
        ..Default::default()
    };
    let snapshot = Snapshot { uplinks: vec![uplink, bond_slave], active: "eth0".into(), ..Default::default() };
    let json = multihome::json::to_string(&snapshot).unwrap();
    let status = Status::parse(&json).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(status.interfaces(), ["eth0", "wlan1"]);
    assert_eq!(status.state("eth0"), Some(State::Up));
    assert_eq!(status.state("wlan1"), Some(State::Other("no-bond".into())));
    assert_eq!(status.uplink("wlan1").unwrap().bond_active, Some(false));
    assert_eq!(status.uplink("eth0").unwrap().latency_ms, Some(0.5));
    assert_eq!(status.active, "eth0");
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
    // And back: the test's type writes the same JSON.
    assert_eq!(serde_json::to_value(&status).unwrap(), serde_json::from_str::<serde_json::Value>(&json).unwrap());
    for state in multihome::daemon::fsm::State::ALL {
        let word = state.as_str();
        assert!(!matches!(State::from(word.to_string()), State::Other(_)), "the tests cannot name the state {word:?}");
    }
}
