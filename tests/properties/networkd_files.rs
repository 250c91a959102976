//! The reader of an administrator's .network files and drop-ins (systemd's unit-file syntax as
//! networkd reads it), and the placement that judges them against the policy: whatever the
//! files say, both answer in time without panicking; every section and assignment keeps the
//! line it starts on; every finding about a line names a file that was read and a line of it,
//! and every other finding names the uplink.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use multihome::backend::networkd::placement;
use multihome::backend::networkd::survey::{Found, NetworkFiles, SEARCH_DIRS};
use multihome::plan::{self, Plan};
use multihome::policy;
use multihome::policy::unit_file::parse_as_networkd;
use proptest::prelude::*;
use proptest::sample::Index;

use super::{config, files_under, mutate, root, within};

/// A golden case that amends an administrator's files: its plan and the files under its root.
#[derive(Clone)]
struct Case {
    plan: Plan,
    found: Vec<Found>,
}

static CORPUS: LazyLock<Vec<Case>> = LazyLock::new(|| {
    let golden = root().join("tests/golden");
    let mut cases = Vec::new();
    for dir in std::fs::read_dir(&golden).unwrap().flatten().map(|e| e.path()).filter(|d| d.join("root").is_dir()) {
        let policy = policy::parse("policy.conf", &std::fs::read_to_string(dir.join("policy.conf")).unwrap()).unwrap();
        let base = dir.join("root");
        let found = files_under(&base, "")
            .iter()
            .map(|path| {
                let rel = path.strip_prefix(&base).unwrap().to_string_lossy().into_owned();
                let dir = SEARCH_DIRS.iter().position(|d| rel.starts_with(&format!("{d}/"))).unwrap_or_else(|| panic!("{rel}: not in networkd's search path"));
                let rest = &rel[SEARCH_DIRS[dir].len() + 1..];
                let (dropin_of, name) = match rest.split_once(".d/") {
                    Some((of, name)) => (Some(of.to_string()), name.to_string()),
                    None => (None, rest.to_string()),
                };
                let text = std::fs::read_to_string(path).unwrap();
                Found { dir, dropin_of, name, text: Some(text) }
            })
            .collect();
        cases.push(Case { plan: plan::plan(&policy), found });
    }
    assert!(cases.len() >= 3, "golden cases with an administrator's files: {}", cases.len());
    cases
});

/// Reads one file's text and checks where each part says it starts.
fn read(text: String) -> Result<(), TestCaseError> {
    let shown = text.clone();
    let sections = within("parse_as_networkd", move || parse_as_networkd(&text));
    let lines: Vec<&str> = shown.lines().collect();
    for s in &sections {
        prop_assert!((1..=lines.len()).contains(&s.line), "[{}] at line {} of {}", s.name, s.line, lines.len());
        prop_assert!(starts(lines[s.line - 1], "["), "[{}] is not at line {}: {:?}", s.name, s.line, lines[s.line - 1]);
        for e in &s.entries {
            prop_assert!((1..=lines.len()).contains(&e.line), "{}= at line {} of {}", e.key, e.line, lines.len());
            prop_assert!(starts(lines[e.line - 1], &e.key), "{}= is not at line {}: {:?}", e.key, e.line, lines[e.line - 1]);
        }
    }
    Ok(())
}

/// Whether `line` starts with `what`, or starts a continued line that may hold it: a line ending
/// in `\` (a lone `\` too) is joined with the next, and the whole counts as its first line.
fn starts(line: &str, what: &str) -> bool {
    line.trim_start().starts_with(what) || line.trim_end().ends_with('\\')
}

/// Places the plan among `found` and checks every finding's address.
fn place(case: Case) -> Result<(), TestCaseError> {
    for f in &case.found {
        read(f.text.clone().unwrap_or_default())?;
    }
    let found = case.found.clone();
    let plan = case.plan.clone();
    let (files, layout) = within("placement::place", move || {
        let files = NetworkFiles::assemble(&found);
        let layout = placement::place(&plan, &files, &BTreeMap::new());
        (files, layout)
    });
    let line_count = |path: &str| -> Option<usize> {
        let text = |f: &Found| f.text.as_deref().unwrap_or("").lines().count();
        // As the survey names them: /DIR/NAME, /DIR/NAME.d/DROPIN.
        case.found
            .iter()
            .find(|f| match &f.dropin_of {
                None => format!("/{}/{}", SEARCH_DIRS[f.dir], f.name) == path,
                Some(of) => format!("/{}/{of}.d/{}", SEARCH_DIRS[f.dir], f.name) == path,
            })
            .map(text)
    };
    let names: Vec<&str> = case
        .plan
        .uplinks()
        .iter()
        .map(|u| u.interface.as_str())
        .chain(case.plan.bond().into_iter().flat_map(|b| b.slaves.iter().map(String::as_str)))
        .collect();
    for finding in &layout.findings {
        prop_assert!(!finding.text.trim().is_empty(), "a finding that says nothing");
        prop_assert!(names.contains(&finding.interface.as_str()), "{finding}: about {:?}, no uplink of the plan", finding.interface);
        if let Some((path, line)) = &finding.at {
            let count = line_count(path);
            prop_assert!(count.is_some(), "{finding}: {path} was not read (files: {:?})", files.files.iter().map(|f| &f.path).collect::<Vec<_>>());
            prop_assert!((1..=count.unwrap()).contains(line), "{finding}: {path} has {} lines", count.unwrap());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_are_read_with_their_lines(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        read(String::from_utf8_lossy(&bytes).into_owned())?;
    }

    #[test]
    fn random_unit_syntax_is_read_with_its_lines(text in "([\\[\\]=#;\\\\ \\nA-Za-z0-9.:/*!]{0,20}\n){0,40}") {
        read(text)?;
    }

    #[test]
    fn an_administrators_file_with_one_line_mutated_gives_findings_at_its_lines(
        case in any::<Index>(),
        file in any::<Index>(),
        at in any::<Index>(),
        m in super::mutation(),
    ) {
        let mut case = case.get(&CORPUS).clone();
        let i = file.index(case.found.len());
        let text = case.found[i].text.clone().unwrap_or_default();
        case.found[i].text = Some(mutate(&text, at, &m));
        place(case)?;
    }

    #[test]
    fn an_administrators_files_replaced_by_random_assignments_give_findings_at_their_lines(
        case in any::<Index>(),
        file in any::<Index>(),
        lines in proptest::collection::vec((proptest::sample::select(&["[Match]", "[Network]", "[Route]", "[Address]", "[DHCPv4]", "[RoutingPolicyRule]", "Name", "Gateway", "Address", "DHCP", "RouteMetric", "RouteTable", "Table", "Destination", "MACAddress", "Type"][..]), super::value()), 0..30),
    ) {
        let mut case = case.get(&CORPUS).clone();
        let i = file.index(case.found.len());
        let text: String = lines.iter().map(|(k, v)| if k.starts_with('[') { format!("{k}\n") } else { format!("{k}={v}\n") }).collect();
        case.found[i].text = Some(text);
        place(case)?;
    }
}
