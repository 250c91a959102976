//! The alerting rules shipped at /usr/share/multihome/prometheus/multihome-rules.yml (issue 26):
//! `promtool check rules` accepts them and `promtool test rules` (tests/prometheus/
//! rules_test.yml) proves each alert fires when it should and stays quiet when it should not.
//! promtool is Debian's `prometheus` package (`bash .ci/deps --tests`); without it the test
//! skips outside CI and fails in CI.

use std::path::{Path, PathBuf};
use std::process::Command;

use common::tools::require_tool;

#[allow(dead_code)]
mod common;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool").args(args).current_dir(dir).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn promtool_accepts_the_rules_and_their_tests_pass() {
    if !require_tool("promtool", "the alerting rules") {
        return;
    }
    let checked = promtool(&["check", "rules", "prometheus/multihome-rules.yml"], &root());
    assert!(checked.contains("SUCCESS: 4 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "tests/prometheus/rules_test.yml"], &root());
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Each alert the rules define has a test that expects it to fire.
#[test]
fn every_alert_has_a_test_that_fires_it() {
    let rules = std::fs::read_to_string(root().join("prometheus/multihome-rules.yml")).unwrap();
    let tests = std::fs::read_to_string(root().join("tests/prometheus/rules_test.yml")).unwrap();
    let alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    assert_eq!(alerts, ["MultihomeUplinkDown", "MultihomeAllUplinksDown", "MultihomeUplinkFlapping", "MultihomeUplinkLossHigh"]);
    for alert in alerts {
        let fired = tests.split("alertname: ").skip(1).filter(|t| t.starts_with(alert)).any(|t| t.split("alertname: ").next().unwrap().contains("exp_labels"));
        assert!(fired, "no test in rules_test.yml expects {alert} to fire");
    }
}
