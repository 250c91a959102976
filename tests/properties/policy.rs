//! The policy parser (unit-file syntax, then validation): whatever the text, `policy::parse`
//! answers in time without panicking, and each problem it reports names the file and a line of
//! it (the `file:line:` every message starts with).

use std::sync::LazyLock;

use multihome::policy;
use proptest::prelude::*;
use proptest::sample::Index;

use super::{Mutation, config, files_under, mutate, root, value, within};

const FILE: &str = "p.conf";

/// The policies of the golden cases (valid and refused ones) and the shipped example.
static CORPUS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut files = files_under(&root().join("tests/golden"), "/policy.conf");
    files.push(root().join("examples/seed.conf"));
    files.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
});

/// Every `[Section]` and `Key` the corpus uses, for text that is structured but random.
static WORDS: LazyLock<(Vec<String>, Vec<String>)> = LazyLock::new(|| {
    let (mut sections, mut keys) = (Vec::new(), Vec::new());
    for line in CORPUS.iter().flat_map(|t| t.lines()).map(str::trim) {
        if line.starts_with('[') {
            sections.push(line.to_string());
        } else if let Some((k, _)) = line.split_once('=') {
            keys.push(k.trim().to_string());
        }
    }
    for list in [&mut sections, &mut keys] {
        list.sort();
        list.dedup();
    }
    (sections, keys)
});

/// Parses `text` within the deadline and checks what a refusal says.
fn judge(text: String) -> Result<(), TestCaseError> {
    let lines = text.lines().count().max(1);
    let shown = text.clone();
    let answer = within("policy::parse", move || policy::parse(FILE, &text).map(drop));
    if let Err(problems) = answer {
        prop_assert!(!problems.0.is_empty(), "a refusal without a problem for {shown:?}");
        for d in &problems.0 {
            prop_assert_eq!(&d.file, FILE);
            prop_assert!((1..=lines).contains(&d.line), "{d} is not a line of the {lines} of {shown:?}");
            prop_assert!(!d.message.trim().is_empty(), "{d}: says nothing");
        }
        let prefix = format!("{FILE}:");
        prop_assert!(problems.to_string().starts_with(&prefix));
    }
    Ok(())
}

/// A line of a random policy: a section header or an assignment from the corpus's words, or noise.
fn line() -> impl Strategy<Value = String> {
    let (sections, keys) = WORDS.clone();
    prop_oneof![
        1 => proptest::sample::select(sections),
        5 => (proptest::sample::select(keys), value()).prop_map(|(k, v)| format!("{k}={v}")),
        1 => "[ -~]{0,30}",
        1 => Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_are_refused_with_a_line_or_accepted(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        judge(String::from_utf8_lossy(&bytes).into_owned())?;
    }

    #[test]
    fn random_assignments_of_known_keys_are_refused_with_a_line_or_accepted(lines in proptest::collection::vec(line(), 0..40)) {
        judge(lines.join("\n"))?;
    }

    #[test]
    fn a_valid_policy_with_one_line_mutated_is_refused_with_a_line_or_accepted(
        file in any::<Index>(),
        at in any::<Index>(),
        m in super::mutation(),
    ) {
        let text = file.get(&CORPUS);
        judge(mutate(text, at, &m))?;
    }

    #[test]
    fn a_valid_policy_with_several_values_mutated_is_refused_with_a_line_or_accepted(
        file in any::<Index>(),
        changes in proptest::collection::vec((any::<Index>(), value()), 1..6),
    ) {
        let mut text = file.get(&CORPUS).clone();
        for (at, v) in changes {
            text = mutate(&text, at, &Mutation::Value(v));
        }
        judge(text)?;
    }
}

/// Found by the mutation property: in bond mode a `Target=` with a ':' that is no IPv6 address
/// panicked (an index into the empty list of IPv6 targets); it is a bad value on its line.
#[test]
fn regression_a_bond_probe_target_with_a_colon_that_is_no_address() {
    let text = std::fs::read_to_string(root().join("tests/golden/bond-probe/policy.conf")).unwrap().replace("Target=198.51.100.10", "Target=:");
    let line = text.lines().position(|l| l == "Target=:").unwrap() + 1;
    let problems = within("policy::parse", move || policy::parse(FILE, &text)).unwrap_err();
    assert!(problems.0.iter().any(|d| d.line == line && d.message.starts_with("Target=:")), "{problems}");
}
