//! Claims of the README and docs/ not proven elsewhere, each against the real programs in the
//! lab: `try` confirmed by typing `y` keeps the change and exits 0, and an unconfirmed one exits
//! 3; the daemon's `reload` takes a changed policy; flap damping doubles the hold of an uplink that
//! fails again soon after it recovered; every state change is announced on the bus (the
//! StateChanged signal and the invalidation of Uplinks), `force up` included.

use std::time::{Duration, Instant};

use multihome::lab::policies::SEED;
use multihome::lab::{self, Lab, LabOptions, Manager, seed_address};

const QUICK: Duration = Duration::from_millis(300);

fn start() -> anyhow::Result<Lab> {
    let lab = Lab::start(LabOptions { policy: Some(SEED.to_string()), ..LabOptions::new(Manager::Networkd, env!("CARGO_BIN_EXE_multihome")) })?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    Ok(lab)
}

fn eth0_has(lab: &Lab, address: &str) -> bool {
    lab.ip_host(&["-4", "-br", "addr", "show", "eth0"]).unwrap_or_default().contains(address)
}

fn status(lab: &Lab) -> serde_json::Value {
    let out = lab.multihome(&["status", "--json"]).map(|o| o.stdout).unwrap_or_default();
    serde_json::from_slice(&out).unwrap_or_default()
}

#[test]
fn try_answered_y_keeps_and_exits_0_and_unanswered_exits_3() -> anyhow::Result<()> {
    if !lab::require(Manager::Networkd) {
        return Ok(());
    }
    let lab = start()?;
    lab.write_policy(&SEED.replace("192.168.178.99", "192.168.178.95"))?;
    let bin = lab.multihome_path().display().to_string();
    // The answer typed at the prompt (a fixed script, in the lab host only).
    let answered = lab.run_in_host("sh", &["-c", &format!("echo y | {bin} try --backend networkd --timeout 30s")])?;
    assert_eq!(answered.status.code(), Some(0), "{}", String::from_utf8_lossy(&answered.stderr));
    assert!(String::from_utf8_lossy(&answered.stderr).contains("Kept."), "{}", String::from_utf8_lossy(&answered.stderr));
    lab.wait_for(Duration::from_secs(15), || eth0_has(&lab, "192.168.178.95"))?;

    lab.write_policy(SEED)?;
    let unanswered = lab.run_in_host("sh", &["-c", &format!("{bin} try --backend networkd --timeout 3s < /dev/null")])?;
    assert_eq!(unanswered.status.code(), Some(3), "{}", String::from_utf8_lossy(&unanswered.stderr));
    assert!(String::from_utf8_lossy(&unanswered.stderr).contains("Not confirmed"), "{}", String::from_utf8_lossy(&unanswered.stderr));
    lab.wait_for(Duration::from_secs(15), || eth0_has(&lab, "192.168.178.95") && !eth0_has(&lab, "192.168.178.99"))?;
    Ok(())
}

#[test]
fn reload_takes_a_changed_policy_and_keeps_the_other_uplinks_states() -> anyhow::Result<()> {
    if !lab::require(Manager::Networkd) {
        return Ok(());
    }
    let mut lab = start()?;
    lab.spawn_multihome(&["daemon"])?;
    lab.wait_for(Duration::from_secs(10), || status(&lab)["uplinks"].as_array().is_some_and(|u| u.len() == 3 && u.iter().all(|u| u["state"] == "up")))?;
    lab.multihome_ok(&["force", "down", "wlan1"])?;
    // wlan0 leaves the policy; wlan1 keeps its forced state through the reload.
    let without_wlan0 = &SEED[..SEED.find("\n[Uplink]\nInterface=wlan0").expect("the seed names wlan0 last")];
    lab.write_policy(without_wlan0)?;
    lab.multihome_ok(&["reload"])?;
    let s = status(&lab);
    let names: Vec<&str> = s["uplinks"].as_array().into_iter().flatten().filter_map(|u| u["interface"].as_str()).collect();
    assert_eq!(names, ["eth0", "wlan1"], "{s}");
    assert_eq!(s["uplinks"][1]["state"], "forced-down", "{s}");
    // A policy that does not parse is refused and the running one kept.
    lab.write_policy("[Uplink]\nInterface=eth0\n")?;
    let refused = lab.multihome(&["reload"])?;
    assert!(!refused.status.success(), "a broken policy was accepted");
    assert_eq!(status(&lab)["uplinks"].as_array().map(Vec::len), Some(2));
    Ok(())
}

#[test]
fn a_quick_relapse_doubles_the_hold() -> anyhow::Result<()> {
    if !lab::require(Manager::Networkd) {
        return Ok(());
    }
    let mut lab = start()?;
    lab.spawn_multihome(&["daemon"])?;
    lab.wait_for(Duration::from_secs(10), || status(&lab)["uplinks"][0]["state"] == "up")?;
    let failback = |lab: &Lab| -> anyhow::Result<Duration> {
        lab.set_upstream("eth0", false)?;
        lab.wait_for(Duration::from_secs(3), || lab.outbound_source(QUICK) == Some(seed_address("wlan1")))?;
        let repaired = Instant::now();
        lab.set_upstream("eth0", true)?;
        lab.wait_for(Duration::from_secs(15), || lab.outbound_source(QUICK) == Some(seed_address("eth0")))?;
        Ok(repaired.elapsed())
    };
    let first = failback(&lab)?;
    let second = failback(&lab)?;
    eprintln!("failback after the first failure {first:?}, after a relapse {second:?}");
    // The hold (2 s) counts from the demotion; a relapse within MaxHoldTime doubles it to 4 s.
    assert!(second >= first + Duration::from_millis(1500), "no damping: {first:?} then {second:?}\n{}", lab.log("spawned-0.log"));
    Ok(())
}

#[test]
fn state_changes_are_signalled_on_the_bus_and_force_up_overrides_the_probes() -> anyhow::Result<()> {
    if !lab::require(Manager::Networkd) {
        return Ok(());
    }
    let mut lab = start()?;
    lab.spawn_multihome(&["daemon"])?;
    lab.wait_for(Duration::from_secs(10), || status(&lab)["uplinks"].as_array().is_some_and(|u| u.len() == 3 && u.iter().all(|u| u["state"] == "up")))?;
    // A client of the lab's system bus, as a desktop applet would be.
    let log = lab
        .spawn_in_host(
            "dbus-monitor",
            &[
                "--system",
                "type='signal',interface='org.multihome1.Daemon'",
                "type='signal',interface='org.freedesktop.DBus.Properties',path='/org/multihome1'",
            ],
        )?
        .log
        .clone();
    std::thread::sleep(Duration::from_millis(500));
    let seen = || std::fs::read_to_string(&log).unwrap_or_default();
    // StateChanged(interface, from, to, reason): dbus-monitor prints each argument on a line.
    let changed_to = |to: &str| {
        let text = seen();
        text.split("signal ").any(|m| m.contains("member=StateChanged") && m.contains("string \"eth0\"") && m.contains(&format!("string \"{to}\"")))
    };
    lab.set_upstream("eth0", false)?;
    lab.wait_for(Duration::from_secs(5), || changed_to("down")).map_err(|e| anyhow::anyhow!("no StateChanged to down: {e}\n{}", seen()))?;
    assert!(seen().contains("member=PropertiesChanged") && seen().contains("\"Uplinks\""), "Uplinks not invalidated:\n{}", seen());

    // Maintenance: eth0 trusted whatever its probes say, until released.
    lab.multihome_ok(&["force", "up", "eth0"])?;
    lab.wait_for(Duration::from_secs(3), || changed_to("forced-up")).map_err(|e| anyhow::anyhow!("no StateChanged to forced-up: {e}\n{}", seen()))?;
    let s = status(&lab);
    assert_eq!(s["uplinks"][0]["state"], "forced-up", "{s}");
    assert_eq!(s["active"], "eth0", "{s}");
    lab.multihome_ok(&["force", "release", "eth0"])?;
    lab.wait_for(Duration::from_secs(5), || status(&lab)["uplinks"][0]["state"] == "down")?;
    lab.set_upstream("eth0", true)?;
    lab.wait_for(Duration::from_secs(15), || changed_to("up")).map_err(|e| anyhow::anyhow!("no StateChanged back to up: {e}\n{}", seen()))?;
    Ok(())
}

/// Desktop authorisation: a caller other than root may change the daemon only when polkit
/// allows it `org.multihome1.manage` (the package's action, here granted to `nobody` by a rule
/// as an administrator's would be); without polkit, and for anyone polkit does not allow, the
/// daemon refuses.
#[test]
fn polkit_decides_for_callers_other_than_root() -> anyhow::Result<()> {
    if !lab::require(Manager::Networkd) {
        return Ok(());
    }
    let polkitd = "/usr/lib/polkit-1/polkitd";
    if !std::path::Path::new(polkitd).exists() {
        assert!(std::env::var_os("CI").is_none(), "polkitd is not installed (bash .ci/deps --tests installs polkitd)");
        eprintln!("skipped: no {polkitd}");
        return Ok(());
    }
    let mut lab = start()?;
    lab.spawn_multihome(&["daemon"])?;
    lab.wait_for(Duration::from_secs(10), || status(&lab)["uplinks"][0]["state"] == "up")?;
    fn as_uid(lab: &Lab, uid: &str, args: &[&str]) -> std::process::Output {
        let bin = lab.multihome_path().display().to_string();
        let (reuid, regid) = (format!("--reuid={uid}"), format!("--regid={uid}"));
        let mut all = vec![reuid.as_str(), regid.as_str(), "--clear-groups", bin.as_str()];
        all.extend_from_slice(args);
        lab.run_in_host("setpriv", &all).expect("setpriv runs")
    }
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();

    let denied = as_uid(&lab, "65534", &["force", "down", "eth0"]);
    assert!(!denied.status.success() && stderr(&denied).contains("polkit is not running"), "{}", stderr(&denied));

    // polkit in the lab host, with the package's action and an administrator's rule.
    let actions = lab.dir().join("polkit-actions");
    let rules = lab.dir().join("polkit-rules");
    std::fs::create_dir_all(&actions)?;
    std::fs::create_dir_all(&rules)?;
    // polkitd reads them as its own user.
    use std::os::unix::fs::PermissionsExt;
    for dir in [lab.dir(), actions.as_path(), rules.as_path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/polkit/org.multihome1.policy"), actions.join("org.multihome1.policy"))?;
    std::fs::write(
        rules.join("50-multihome-test.rules"),
        "polkit.addRule(function(action, subject) {\n  if (action.id == \"org.multihome1.manage\" && subject.user == \"nobody\") { return polkit.Result.YES; }\n});\n",
    )?;
    let lower = format!("lowerdir={}:/usr/share/polkit-1/actions", actions.display());
    let mounted = lab.run_in_host("mount", &["-t", "overlay", "overlay", "-o", &lower, "/usr/share/polkit-1/actions"])?;
    assert!(mounted.status.success(), "{}", stderr(&mounted));
    let mounted = lab.run_in_host("mount", &["--bind", &rules.display().to_string(), "/etc/polkit-1/rules.d"])?;
    assert!(mounted.status.success(), "{}", stderr(&mounted));
    let log = lab.spawn_in_host(polkitd, &["--no-debug"])?.log.clone();
    let owned = || lab.run_in_host("busctl", &["--system", "list"]).is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("org.freedesktop.PolicyKit1 "));
    lab.wait_for(Duration::from_secs(10), owned).map_err(|e| {
        let ps = lab.run_in_host("busctl", &["--system", "list"]).map(|o| format!("{o:?}")).unwrap_or_default();
        anyhow::anyhow!("polkitd did not start: {e}\n{}\n{ps}", std::fs::read_to_string(&log).unwrap_or_default())
    })?;

    // polkitd owns its name before it has read its rules: the first answers may still be no.
    let mut allowed = as_uid(&lab, "65534", &["force", "down", "eth0"]);
    let until = Instant::now() + Duration::from_secs(30);
    while !allowed.status.success() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
        allowed = as_uid(&lab, "65534", &["force", "down", "eth0"]);
    }
    assert!(allowed.status.success(), "polkit's rule allows nobody: {}\n{}", stderr(&allowed), std::fs::read_to_string(&log).unwrap_or_default());
    assert_eq!(status(&lab)["uplinks"][0]["state"], "forced-down");
    let other = as_uid(&lab, "1", &["force", "release", "eth0"]);
    assert!(!other.status.success() && stderr(&other).contains("AccessDenied"), "{}", stderr(&other));
    assert_eq!(status(&lab)["uplinks"][0]["state"], "forced-down");
    lab.multihome_ok(&["force", "release", "eth0"])?;
    Ok(())
}
