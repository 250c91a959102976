//! Mode=bond on the real binary, without touching the running system: `check` warns about a
//! Wi-Fi slave's MAC policy and shows the bond in JSON; `apply --root` switches an image from
//! routes to bond and back, each mode's files replacing the other's; `reset --root` removes the
//! bond's.

use std::fs;

use common::files::{TempDir, list};
use common::{golden_policy, multihome, text};

#[allow(dead_code)]
mod common;

#[test]
fn check_warns_about_a_wifi_slaves_mac_policy_and_shows_the_bond_in_json() {
    let out = multihome(&["-c", &golden_policy("bond-seed"), "check", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("warning:") && stderr.contains("FailOverMACPolicy=active instead of none: wlan0 is Wi-Fi"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["bond"]["name"], "bond0");
    assert_eq!(v["bond"]["slaves"], serde_json::json!(["eth0", "wlan0"]));
    assert_eq!(v["bond"]["monitor"]["up_delay_ms"], 4000);
    assert_eq!(v["bond"]["fail_over_mac"], "active");
    assert_eq!(v["uplinks"], serde_json::json!([]), "no per-uplink routing in bond mode");

    // Wired slaves only: the file's policy stands, and there is nothing to warn about.
    let wired = multihome(&["-c", &golden_policy("bond-wired-follow"), "check"]);
    assert!(wired.status.success() && text(&wired.stderr).is_empty(), "{}", text(&wired.stderr));
    assert!(text(&wired.stdout).contains("fail_over_mac follow"), "{}", text(&wired.stdout));
}

#[test]
fn apply_root_switches_an_image_between_routes_and_bond_and_reset_removes_the_bond() {
    let tmp = TempDir::new("switch");
    let root = tmp.join("root");
    let admin = root.join("etc/systemd/network/90-admin.network");
    fs::create_dir_all(admin.parent().unwrap()).unwrap();
    fs::write(&admin, "[Match]\nName=en*\n").unwrap();
    let root_arg = root.to_str().unwrap();
    let apply = |case: &str| {
        let out = multihome(&["-c", &golden_policy(case), "apply", "--backend", "networkd", "--root", root_arg]);
        assert!(out.status.success(), "apply {case}: {}", text(&out.stderr));
        list(&root)
    };
    let routes = apply("seed");
    assert!(routes.contains(&"etc/systemd/networkd.conf.d/60-multihome.conf".to_string()), "{routes:#?}");
    let bond = apply("bond-arp-three");
    let mut expected: Vec<String> = ["bond0.netdev", "bond0.network", "eth0.network", "wlan0.network", "wlan1.network"]
        .iter()
        .map(|f| format!("etc/systemd/network/10-multihome-{f}"))
        .chain(["etc/systemd/network/90-admin.network".to_string()])
        .collect();
    expected.sort();
    assert_eq!(bond, expected, "bond mode leaves exactly its own files and the administrator's");
    assert_eq!(apply("seed"), routes, "back to routes: the same files as before");
    apply("bond-seed");
    let reset = multihome(&["reset", "--root", root_arg]);
    assert!(reset.status.success(), "{}", text(&reset.stderr));
    assert_eq!(list(&root), ["etc/systemd/network/90-admin.network"], "{}", text(&reset.stdout));
}
