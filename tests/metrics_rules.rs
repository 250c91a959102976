//! The alerting rules shipped at /usr/share/multihome/prometheus/multihome-rules.yml (issue 26):
//! `promtool check rules` accepts them and `promtool test rules` (tests/prometheus/
//! rules_test.yml) proves each alert fires when it should and stays quiet when it should not.
//! promtool is Debian's `prometheus` package (`bash .ci/deps --tests`); without it the test
//! skips outside CI and fails in CI. And the Grafana dashboard shipped beside them
//! (/usr/share/multihome/grafana/multihome-dashboard.json) is an importable dashboard whose
//! metrics are the documented ones (tests/lab_metrics.rs runs its queries against a real scrape).

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

/// The dashboard imports anywhere: the data source is a variable every panel uses, ids are
/// unique, panels fit the 24-column grid, and every metric a query names is one docs/metrics.md
/// documents (the bond's too, which the lab's kernel cannot show).
#[test]
fn the_dashboard_is_importable_and_names_documented_metrics() {
    let text = std::fs::read_to_string(root().join("grafana/multihome-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let doc = std::fs::read_to_string(root().join("docs/metrics.md")).unwrap();
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(variables.iter().any(|v| v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus"));
    assert!(dashboard["uid"].is_string() && dashboard["schemaVersion"].as_u64().unwrap() >= 36);
    let mut ids = std::collections::BTreeSet::new();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "a second panel with id {}", panel["id"]);
        let grid = &panel["gridPos"];
        assert!(grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24, "{} is wider than the grid", panel["title"]);
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{} does not use the data source variable", panel["title"]);
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            queries += 1;
            let mut rest = expr;
            while let Some(at) = rest.find("multihome_") {
                let name: String = rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                rest = &rest[at + name.len()..];
                // A histogram's or counter's samples are documented under the family's name.
                let family = name.trim_end_matches("_bucket").trim_end_matches("_total");
                assert!(doc.contains(&format!("`{family}")), "{} names {name}, which docs/metrics.md does not document", panel["title"]);
            }
        }
    }
    assert!(queries >= 15, "{queries} queries");
}
