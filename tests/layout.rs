//! The project's layout. One install layout (docs/backends.md, "Dispatcher hooks"): every file of
//! the project that names where multihome is installed names the same place, so a host set up
//! from the README runs the hooks, the unit and the lab with the one binary that is there. One
//! source layout: docs/ARCHITECTURE.md places every module of src/ and names none that is not
//! there. And one test harness (issue 24): a helper the test crates share lives in tests/common,
//! defined once, and the harness's own pieces (the policy builder, the typed status) are checked
//! here.

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

/// `[Metrics]` under the shipped unit (issue 26): its sandbox lets `Listen=` bind any IPv4 or
/// IPv6 address (the address families, no IP filter, the host's network) and allows the
/// syscalls a listener needs; its file system is read-only, and docs/metrics.md gives the
/// drop-in that opens `TextfileDirectory=` (`ReadWritePaths=`).
#[test]
fn the_units_sandbox_lets_the_metrics_listen_and_the_docs_open_the_textfile_directory() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = fs::read_to_string(root.join("networkd-units/multihome.service")).unwrap();
    let value = |key: &str| unit.lines().filter_map(|l| l.strip_prefix(&format!("{key}="))).collect::<Vec<_>>();
    let families = value("RestrictAddressFamilies").join(" ");
    assert!(families.split(' ').any(|f| f == "AF_INET") && families.split(' ').any(|f| f == "AF_INET6"), "RestrictAddressFamilies={families}");
    for key in ["IPAddressDeny", "IPAddressAllow", "PrivateNetwork", "SocketBindDeny", "SocketBindAllow", "RestrictNetworkInterfaces"] {
        assert!(value(key).is_empty(), "{key}= in the unit: [Metrics] Listen= needs it documented in docs/metrics.md");
    }
    assert_eq!(value("SystemCallFilter").first(), Some(&"@system-service"), "bind, listen and accept are in @system-service (@network-io)");
    assert_eq!(value("ProtectSystem"), ["strict"]);
    assert!(value("ReadWritePaths").is_empty(), "the unit writes nowhere on its own; the textfile's directory is the administrator's drop-in");
    let page = fs::read_to_string(root.join("docs/metrics.md")).unwrap();
    assert!(page.contains("[Service]\nReadWritePaths=/var/lib/prometheus/node-exporter\n"), "docs/metrics.md has no drop-in for TextfileDirectory=");
}

/// The architecture page and the tree agree (issue 24): every module under src/ is placed in
/// docs/ARCHITECTURE.md, and every module or path the page names is there. A module is placed
/// by its path under src/ (`daemon/fsm.rs`, `netlink/mptcp/`), or by the end of its path in
/// backticks within the bullet of its top folder (`fsm` under **daemon/**, `settings/ip` under
/// **backend/**). A name in backticks under a folder's bullet is a module there or an item
/// (function, type, field, constant) defined in src/, so a module that is gone fails here even
/// when the page names it by its last word alone.
#[test]
fn the_architecture_page_places_every_module_and_names_only_real_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap();
    let prose = without_code_blocks(&page);
    let mut sources = Vec::new();
    files(&root.join("src"), &mut sources);
    // "daemon/fsm.rs" -> "daemon/fsm"; "daemon/mod.rs" -> "daemon"; "lib.rs" -> "lib".
    let modules: Vec<(String, String)> = sources
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| {
            let file = p.strip_prefix(root.join("src")).unwrap().to_string_lossy().into_owned();
            let path = normalize(&file);
            (file, path)
        })
        .collect();
    assert!(modules.len() > 50, "only {} modules under src/", modules.len());
    let source_text: String = sources.iter().map(|p| fs::read_to_string(p).unwrap()).collect::<Vec<_>>().join("\n");

    let everywhere: Vec<String> = spans(&prose, "`").into_iter().chain(bold_heads(&prose)).collect();
    let bullets = folder_bullets(&prose);
    let mut unplaced = Vec::new();
    for (file, path) in &modules {
        let top = path.split('/').next().unwrap();
        let by_path = everywhere.iter().any(|t| normalize(t) == *path);
        let in_bullet =
            bullets.iter().any(|(folders, body)| folders.iter().any(|f| f == top) && spans(body, "`").iter().any(|t| is_suffix(path, &normalize(t))));
        if !by_path && !in_bullet {
            unplaced.push(format!("src/{file}"));
        }
    }
    assert!(unplaced.is_empty(), "docs/ARCHITECTURE.md does not place these modules:\n{}", unplaced.join("\n"));

    // Folders count as paths too (`networkd/`); a path may be written from any folder on
    // (`settings/ip` in the backend's bullet, `verify.rs` in a table row).
    let mut paths: Vec<String> = modules.iter().map(|(_, m)| m.clone()).collect();
    paths.extend(modules.iter().filter_map(|(file, _)| file.rsplit_once('/').map(|(dir, _)| dir.to_string())));
    let mut missing = Vec::new();
    for token in &everywhere {
        let Some(path) = path_like(token) else { continue };
        let in_src = paths.iter().any(|m| is_suffix(m, &normalize(path))) || modules.iter().any(|(file, _)| is_suffix(file, path));
        if !root.join(path).exists() && !in_src {
            missing.push(format!("`{token}`"));
        }
    }
    for (folders, body) in &bullets {
        for token in spans(body, "`") {
            let segments: Vec<&str> = token.split("::").collect();
            if !segments.iter().all(|s| is_identifier(s)) {
                continue;
            }
            let a_module = folders.iter().any(|f| modules.iter().any(|(_, m)| m.starts_with(&format!("{f}/")) && is_suffix(m, &token.replace("::", "/"))));
            if !a_module && !segments.iter().all(|s| modules.iter().any(|(_, m)| is_suffix(m, s)) || defines(&source_text, s)) {
                missing.push(format!("`{token}` (under {})", folders.join(", ")));
            }
        }
    }
    assert!(missing.is_empty(), "docs/ARCHITECTURE.md names what src/ does not hold:\n{}", missing.join("\n"));
}

/// The page without its ``` blocks (the layer diagram), whose words are not names.
fn without_code_blocks(text: &str) -> String {
    text.split("```").step_by(2).collect::<Vec<_>>().join("\n")
}

/// The texts between pairs of `mark` (backticks, or `**` for bold).
fn spans(text: &str, mark: &str) -> Vec<String> {
    text.split(mark).skip(1).step_by(2).map(str::to_owned).collect()
}

/// The bold heads of the bullets, split at commas: `- **main.rs, cli/**` -> main.rs, cli/.
fn bold_heads(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("- **"))
        .filter_map(|l| l.split_once("**"))
        .flat_map(|(head, _)| head.split(", ").map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// Each bullet whose bold head names folders of src/ (`- **daemon/**: ...`), with its text up to
/// the next bullet or heading.
fn folder_bullets(text: &str) -> Vec<(Vec<String>, String)> {
    let mut out: Vec<(Vec<String>, String)> = Vec::new();
    let mut current: Option<(Vec<String>, String)> = None;
    for line in text.lines() {
        if line.starts_with("- **") || line.starts_with('#') {
            out.extend(current.take());
            let folders: Vec<String> = bold_heads(line).iter().filter_map(|h| h.strip_suffix('/')).map(str::to_owned).collect();
            if !folders.is_empty() {
                current = Some((folders, line.to_string()));
            }
        } else if let Some((_, body)) = current.as_mut() {
            body.push('\n');
            body.push_str(line);
        }
    }
    out.extend(current);
    out
}

/// A module's path as the page may write it: without `.rs`, a trailing `/` or `/mod`.
fn normalize(name: &str) -> String {
    let name = name.trim_end_matches('/');
    let name = name.strip_suffix(".rs").unwrap_or(name);
    name.strip_suffix("/mod").unwrap_or(name).to_string()
}

/// Whether `tail` is `path` or its last components (`settings/ip` of `backend/nm/settings/ip`).
fn is_suffix(path: &str, tail: &str) -> bool {
    !tail.is_empty() && (path == tail || path.ends_with(&format!("/{tail}")))
}

/// A token that names a file or folder of the repository: relative, one word, with a `/` or
/// ending in `.rs`.
fn path_like(token: &str) -> Option<&str> {
    let plain = token.chars().all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c));
    (plain && !token.starts_with('/') && (token.contains('/') || token.ends_with(".rs"))).then_some(token)
}

fn is_identifier(word: &str) -> bool {
    word.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether src/ defines `name` (a function, type, constant, module, field or enum variant),
/// imports it (a dependency's type) or speaks it as a word of another program (`"user"`).
fn defines(source: &str, name: &str) -> bool {
    if source.contains(&format!("\"{name}\"")) {
        return true;
    }
    let boundary = |rest: &str| rest.chars().next().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
    let items = ["fn ", "struct ", "enum ", "const ", "static ", "mod ", "trait ", "type "];
    source.lines().any(|line| {
        let line = line.trim_start();
        let line = ["pub(crate) ", "pub(super) ", "pub "].iter().find_map(|p| line.strip_prefix(p)).unwrap_or(line);
        let line = line.strip_prefix("async ").unwrap_or(line);
        let imported = line.starts_with("use ") && line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).any(|w| w == name);
        imported
            || items.iter().any(|k| line.strip_prefix(k).and_then(|r| r.strip_prefix(name)).is_some_and(boundary))
            || line.strip_prefix(name).is_some_and(|r| r.starts_with(':') && !r.starts_with("::") || r.starts_with(['(', ',', ' ', '{']) && boundary(r))
    })
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
    use multihome::daemon::status_record::{FamilyStatus, Shown, Snapshot, UplinkStatus};
    let v4 = |state: Shown, latency_ms| FamilyStatus { state, latency_ms, ..Default::default() };
    let uplink = UplinkStatus { interface: "eth0".into(), v4: v4(Shown::parse("up"), Some(0.5)), ..Default::default() };
    let bond_slave = UplinkStatus {
        interface: "wlan1".into(),
        v4: v4(Shown::NoBond, None),
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
