//! Mode=bond on the real binary, without touching the running system: `check` warns about a
//! Wi-Fi slave's MAC policy and shows the bond in JSON; `apply --root` switches an image from
//! routes to bond and back, each mode's files replacing the other's; `reset --root` removes the
//! bond's.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn multihome(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_multihome")).args(args).output().expect("the multihome binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn golden_policy(case: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(case).join("policy.conf").display().to_string()
}

/// A directory of one test, removed again when the test ends (also when it fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bond-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Every file under `dir`, relative to it, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                walk(base, &e.path(), out);
            } else {
                out.push(e.path().strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

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
    let root = tmp.0.join("root");
    let admin = root.join("etc/systemd/network/90-admin.network");
    fs::create_dir_all(admin.parent().unwrap()).unwrap();
    fs::write(&admin, "[Match]\nName=en*\n").unwrap();
    let root_arg = root.to_str().unwrap();
    let apply = |case: &str| {
        let out = multihome(&["-c", &golden_policy(case), "apply", "--backend", "networkd", "--root", root_arg]);
        assert!(out.status.success(), "apply {case}: {}", text(&out.stderr));
        files(&root)
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
    assert_eq!(files(&root), ["etc/systemd/network/90-admin.network"], "{}", text(&reset.stdout));
}
