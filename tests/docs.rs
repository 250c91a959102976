//! The manual pages and shell completions the package ships (docs/package.md), and the policy's
//! documentation:
//!
//! - `man/multihome.8` and `completions/*` are what `multihome generate-docs` makes of the command
//!   line's own definition, so they say what `--help` says (`MULTIHOME_BLESS=1 cargo test --test
//!   docs` rewrites them; review `git diff man completions`);
//! - `man/multihome.conf.5`, written by hand, names every section and key the policy parser knows,
//!   with the parser's defaults, the same keys and defaults as the policy reference
//!   (docs/policy.md), and an example the parser accepts;
//! - the README's first policy is the shipped example, examples/seed.conf, which the parser
//!   accepts;
//! - both pages render with `man` without a warning, and the completions are valid scripts of
//!   their shells (bash also completes a command).
//!
//! Tools that are missing (man, zsh, fish) skip their part with a message, and fail it with CI=true.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;

use multihome::docs;
use multihome::policy::bond::Monitor;
use multihome::policy::{self, Require, timespan};

use common::files::TempDir;
use common::repo;
use common::tools::require_tool;

#[allow(dead_code)]
mod common;

const BLESS_VAR: &str = "MULTIHOME_BLESS";
const CONF_PAGE: &str = "man/multihome.conf.5";
/// The policy reference, with every key and its default in one ```ini block.
const POLICY_DOC: &str = "docs/policy.md";

/// The generated files: what `multihome generate-docs` writes, relative to its output directory.
fn generated() -> Vec<&'static str> {
    std::iter::once(docs::MAN_PAGE).chain(docs::COMPLETIONS.iter().map(|(_, path)| *path)).collect()
}

#[test]
fn generated_man_page_and_completions_are_up_to_date() {
    let tmp = TempDir::new("docs");
    let out = tmp.path();
    let status = Command::new(env!("CARGO_BIN_EXE_multihome")).arg("generate-docs").arg(out).status().unwrap();
    assert!(status.success(), "multihome generate-docs failed: {status}");
    let bless = std::env::var(BLESS_VAR).as_deref() == Ok("1");
    let mut stale = Vec::new();
    for path in generated() {
        let new = fs::read_to_string(out.join(path)).unwrap();
        let committed = repo(path);
        if fs::read_to_string(&committed).ok().as_deref() == Some(new.as_str()) {
            continue;
        }
        if bless {
            fs::create_dir_all(committed.parent().unwrap()).unwrap();
            fs::write(&committed, &new).unwrap();
            eprintln!("blessed: {path}");
        } else {
            stale.push(path);
        }
    }
    assert!(
        stale.is_empty(),
        "{} differ(s) from what the command line's definition gives (`multihome generate-docs DIR`). If the command line changed on purpose, run `{BLESS_VAR}=1 cargo test --test docs` and review `git diff man completions`.",
        stale.join(", ")
    );
}

#[test]
fn man_pages_render_without_warnings() {
    if !require_tool("man", "the man pages' rendering") {
        return;
    }
    for page in [docs::MAN_PAGE, CONF_PAGE] {
        // As lintian checks a page (its manpages check): groff's warnings on, output discarded.
        let out = Command::new("man")
            .args(["--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z"])
            .arg(repo(page))
            .env("LC_ALL", "C.UTF-8")
            .env("MANWIDTH", "80")
            .env("MANROFFSEQ", "")
            .output()
            .unwrap();
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && warnings.trim().is_empty(), "man -l {page}: {}\n{warnings}", out.status);
        assert!(out.stdout.len() > 1000, "man -l {page} rendered almost nothing");
    }
}

#[test]
fn completions_are_valid_scripts_and_bash_completes_a_command() {
    let file = |shell: clap_complete::Shell| repo(docs::COMPLETIONS.iter().find(|(s, _)| *s == shell).unwrap().1);
    let check = |tool: &str, args: &[&str], path: &Path| {
        let out = Command::new(tool).args(args).arg(path).output().unwrap();
        assert!(out.status.success(), "{tool} {args:?} {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    };
    check("bash", &["-n"], &file(clap_complete::Shell::Bash));
    // What a user's Tab does: `multihome ap<Tab>` and `multihome apply --backend <Tab>`.
    let script = format!(
        r#"source {}
COMP_WORDS=(multihome ap); COMP_CWORD=1; _multihome multihome ap multihome; echo "${{COMPREPLY[*]}}"
COMP_WORDS=(multihome apply --backend ""); COMP_CWORD=3; _multihome multihome "" --backend; echo "${{COMPREPLY[*]}}""#,
        file(clap_complete::Shell::Bash).display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "apply\nauto networkd networkmanager\n", "{}", String::from_utf8_lossy(&out.stderr));
    if require_tool("zsh", "the zsh completion") {
        check("zsh", &["-n"], &file(clap_complete::Shell::Zsh));
    }
    if require_tool("fish", "the fish completion") {
        check("fish", &["--no-execute"], &file(clap_complete::Shell::Fish));
    }
}

/// The page's sections and, per section, its keys with the entry's text (roff source).
fn conf_page() -> BTreeMap<String, BTreeMap<String, String>> {
    let text = fs::read_to_string(repo(CONF_PAGE)).unwrap();
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section: Option<String> = None;
    let mut key: Option<String> = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(heading) = line.strip_prefix(".SH ") {
            key = None;
            section = heading.trim_matches('"').strip_prefix('[').and_then(|h| h.split_once(']')).map(|(name, _)| name.to_string());
            if let Some(s) = &section {
                sections.entry(s.clone()).or_default();
            }
        } else if line == ".TP" {
            let tag = lines.next().unwrap_or_default();
            key = tag.strip_prefix("\\fB").and_then(|t| t.split_once("=\\fR")).map(|(k, _)| k.to_string());
            if let (Some(s), Some(k)) = (&section, &key) {
                assert!(sections.get_mut(s).unwrap().insert(k.clone(), String::new()).is_none(), "{CONF_PAGE}: [{s}] {k}= is described twice");
            }
        } else if let (Some(s), Some(k)) = (&section, &key) {
            let entry = sections.get_mut(s).unwrap().get_mut(k).unwrap();
            entry.push_str(line);
            entry.push('\n');
        }
    }
    sections
}

/// The page's default of a key: the bold text after "Default: " in its entry.
fn page_default(entry: &str) -> Option<String> {
    let entry = entry.replace('\n', " ");
    let after = entry.split_once("Default: ")?.1;
    let value = after.split("\\fB").nth(1)?.split("\\fR").next()?;
    Some(value.replace("\\-", "-"))
}

/// The sections and keys the parser knows, from its own "expected one of" messages.
fn parser_keys() -> BTreeMap<String, BTreeSet<String>> {
    let unknown = |text: &str| policy::parse("p", text).unwrap_err().to_string();
    let sections_message = unknown("[NoSuchSection]\n");
    let listed = sections_message.split_once("expected ").expect(&sections_message).1;
    let sections: Vec<String> = listed.split(['[', ']']).filter(|s| s.chars().all(|c| c.is_ascii_alphabetic()) && !s.is_empty()).map(str::to_string).collect();
    assert!(sections.len() >= 3, "cannot read the sections from {sections_message:?}");
    sections
        .into_iter()
        .map(|section| {
            let message = unknown(&format!("[{section}]\nNoSuchKey=1\n"));
            let (_, keys) = message.lines().find_map(|l| l.split_once("expected one of ")).expect(&message);
            (section, keys.split(", ").map(str::to_string).collect())
        })
        .collect()
}

#[test]
fn policy_page_describes_every_section_and_key_of_the_parser() {
    let page: BTreeMap<String, BTreeSet<String>> = conf_page().into_iter().map(|(s, keys)| (s, keys.into_keys().collect())).collect();
    assert_eq!(page, parser_keys(), "{CONF_PAGE} (left) and the policy parser (right) disagree on the sections and keys");
}

#[test]
fn policy_page_gives_the_parsers_defaults() {
    let page = conf_page();
    let default = |section: &str, key: &str| page[section][key].clone();
    let minimal = "[Uplink]\nInterface=eth0\nPriority=1\nAddress=192.0.2.2/24\nGateway=192.0.2.1\n";
    let plain = policy::parse("p", minimal).unwrap();
    let probed = policy::parse("p", &format!("[Probe]\nTarget=192.0.2.1\n{minimal}")).unwrap();
    let probe = probed.probe.unwrap();
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let expected = [
        ("Policy", "Backend", serde_json::to_value(plain.backend).unwrap().as_str().unwrap().to_string()),
        ("Policy", "Mode", plain.mode().to_string()),
        ("Policy", "MPTCP", yes_no(plain.mptcp)),
        ("Probe", "Interval", timespan::format(probe.interval)),
        ("Probe", "FailAfter", probe.fail_after.to_string()),
        ("Probe", "RecoverAfter", probe.recover_after.to_string()),
        (
            "Probe",
            "Require",
            match probe.require {
                Require::All => "all".to_string(),
                Require::AtLeast(n) => n.to_string(),
            },
        ),
        ("Probe", "ArpGateway", yes_no(probe.arp_gateway)),
        ("Probe", "HoldTime", timespan::format(probe.hold_time)),
        ("Probe", "MaxHoldTime", timespan::format(probe.max_hold_time)),
        ("Probe", "MaxLoss", format!("{}%", probe.max_loss)),
        ("Probe", "RecoverLoss", format!("{}%", probe.recover_loss)),
        ("Uplink", "DHCP", "no".to_string()),
        ("Metrics", "Listen", plain.metrics.listen.map_or("off".to_string(), |a| a.to_string())),
        ("Metrics", "TextfileDirectory", plain.metrics.textfile_directory.as_ref().map_or("off".to_string(), |d| d.display().to_string())),
    ];
    let bond_policy = "[Policy]\nMode=bond\n[Bond]\nDHCP=yes\n[Uplink]\nInterface=eth0\nPriority=1\n[Uplink]\nInterface=eth1\nPriority=2\n";
    let bond = policy::parse("p", bond_policy).unwrap().bond().cloned().unwrap();
    let arp = policy::parse("p", &bond_policy.replace("DHCP=yes\n", "DHCP=yes\nARPIntervalSec=1s\nARPIPTargets=192.0.2.1\n")).unwrap().bond().cloned().unwrap();
    let Monitor::Mii { interval, up_delay, down_delay } = bond.monitor else { panic!("MII is the default monitor") };
    let Monitor::Arp { validate, all_targets, .. } = arp.monitor else { panic!("ARP was asked for") };
    let expected = expected.into_iter().chain([
        ("Bond", "Name", bond.name.clone()),
        ("Bond", "DHCP", "no".to_string()),
        ("Bond", "PrimaryReselectPolicy", bond.primary_reselect.word().to_string()),
        ("Bond", "MIIMonitorSec", timespan::format(interval)),
        ("Bond", "UpDelaySec", timespan::format(up_delay)),
        ("Bond", "DownDelaySec", timespan::format(down_delay)),
        ("Bond", "ARPValidate", validate.word().to_string()),
        ("Bond", "ARPAllTargets", all_targets.word().to_string()),
        ("Bond", "FailOverMACPolicy", bond.fail_over_mac.word().to_string()),
        ("Bond", "ProbeFailover", yes_no(bond.probe_failover)),
    ]);
    for (section, key, value) in expected {
        assert_eq!(page_default(&default(section, key)).as_deref(), Some(value.as_str()), "{CONF_PAGE}: the default of [{section}] {key}=");
    }
    // Timeout= defaults to Interval=, whose default the entry repeats.
    let timeout = default("Probe", "Timeout");
    assert_eq!(probe.timeout, probe.interval);
    assert!(timeout.contains("\\fBInterval=\\fR") && timeout.contains(&format!("\\fB{}\\fR", timespan::format(probe.timeout))), "{timeout}");
}

/// The policy reference: the ```ini block of docs/policy.md's "## Syntax and every key", as
/// (section, key, value) in order, and the whole block's text.
fn policy_reference() -> (Vec<(String, String, String)>, String) {
    let page = fs::read_to_string(repo(POLICY_DOC)).unwrap();
    let section = page.split_once("## Syntax and every key").unwrap_or_else(|| panic!("{POLICY_DOC} has no \"## Syntax and every key\"")).1;
    let block = section.split_once("```ini\n").expect("a ```ini block").1.split_once("```").unwrap().0;
    let mut current = String::new();
    let mut entries = Vec::new();
    for line in block.lines() {
        let line = line.split('#').next().unwrap().trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_string();
        } else if let Some((key, value)) = line.split_once('=') {
            entries.push((current.clone(), key.to_string(), value.to_string()));
        }
    }
    (entries, block.to_string())
}

#[test]
fn policy_page_and_policy_reference_describe_the_same_keys_and_defaults() {
    let page = conf_page();
    let (reference, block) = policy_reference();
    for (section, key, value) in &reference {
        let entry = page.get(section).and_then(|s| s.get(key)).unwrap_or_else(|| panic!("{POLICY_DOC}'s [{section}] {key}= is not in {CONF_PAGE}"));
        // In [Policy] and [Probe] the reference shows the defaults (bar the examples of Target=).
        if section != "Uplink" && key != "Target" {
            let default = page_default(entry).unwrap_or_else(|| panic!("{CONF_PAGE}: [{section}] {key}= gives no default"));
            let shown = if key == "Timeout" { page_default(&page["Probe"]["Interval"]).unwrap() } else { default };
            assert_eq!(&shown, value, "{POLICY_DOC} and {CONF_PAGE} disagree on the default of [{section}] {key}=");
        }
    }
    for (section, keys) in &page {
        for key in keys.keys() {
            assert!(
                block.contains(&format!("[{section}]")) && block.contains(&format!("{key}=")),
                "{CONF_PAGE}'s [{section}] {key}= is not in {POLICY_DOC}'s policy block"
            );
        }
    }
}

/// The README and the pages of docs/ link to each other by relative paths (`[IPv6](ipv6.md)`,
/// `[docs/bond.md](docs/bond.md)`): every such link leads to a file of the repository.
#[test]
fn the_readme_and_docs_link_only_to_files_that_exist() {
    let mut pages = vec![repo("README.md")];
    pages.extend(fs::read_dir(repo("docs")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "md")));
    let mut links = 0;
    for page in &pages {
        let text = fs::read_to_string(page).unwrap();
        for target in text.split("](").skip(1).filter_map(|rest| rest.split_once(')')).map(|(target, _)| target) {
            if target.contains("://") {
                continue;
            }
            let file = target.split('#').next().unwrap();
            links += 1;
            assert!(page.parent().unwrap().join(file).exists(), "{}: the link ({target}) leads nowhere", page.display());
        }
    }
    assert!(links >= 20, "only {links} relative links in the README and docs/");
}

/// The README's "A first policy" shows the example the package ships, as it is, and it is a
/// valid policy of the seed's three uplinks.
#[test]
fn the_readmes_first_policy_is_the_shipped_example() {
    let readme = fs::read_to_string(repo("README.md")).unwrap();
    let section = readme.split_once("## A first policy").expect("README has \"## A first policy\"").1;
    let shown = section.split_once("```ini\n").expect("a ```ini block").1.split_once("```").unwrap().0;
    let example = fs::read_to_string(repo("examples/seed.conf")).unwrap();
    assert_eq!(shown, example, "README's first policy is not examples/seed.conf");
    let policy = policy::parse("README", shown).unwrap_or_else(|e| panic!("README's first policy: {e}"));
    let names: Vec<&str> = policy.uplinks().iter().map(|u| u.interface.as_str()).collect();
    assert_eq!(names, ["eth0", "wlan1", "wlan0"]);
}

#[test]
fn policy_page_example_is_a_valid_policy_and_pages_carry_the_version() {
    let text = fs::read_to_string(repo(CONF_PAGE)).unwrap();
    let example = text.split_once(".SH EXAMPLE").unwrap().1.split_once(".nf\n").unwrap().1.split_once(".fi").unwrap().0;
    let example: String = example.lines().filter(|l| !l.starts_with('.')).map(|l| format!("{}\n", l.replace("\\-", "-"))).collect();
    let policy = policy::parse("example", &example).unwrap_or_else(|e| panic!("{CONF_PAGE}'s example: {e}"));
    assert_eq!(policy.uplinks().len(), 3);
    let version = format!("\"multihome {}\"", env!("CARGO_PKG_VERSION"));
    for page in [CONF_PAGE, docs::MAN_PAGE] {
        let text = fs::read_to_string(repo(page)).unwrap();
        let th = text.lines().find(|l| l.starts_with(".TH ")).unwrap();
        assert!(th.contains(&version), "{page}: {th} does not name {version}");
        assert!(th.contains(docs::DATE), "{page}: {th} is not dated {} as the other page", docs::DATE);
    }
}
