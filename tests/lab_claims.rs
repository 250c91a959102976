//! Claims of the README and docs/ not proven elsewhere, each against the real programs in the
//! lab: `try` confirmed by typing `y` keeps the change and exits 0, and an unconfirmed one exits
//! 3; the daemon's `reload` takes a changed policy; flap damping doubles the hold of an uplink that
//! fails again soon after it recovered; every state change is announced on the bus (the
//! StateChanged signal and the invalidation of Uplinks), `force up` included.

use std::time::{Duration, Instant};

use common::lab::{QUICK, has_address, require};
use common::policy::Policy;
use common::status::{self, State};
use multihome::lab::{Lab, Manager, seed_address};

#[allow(dead_code)]
mod common;

#[test]
fn try_answered_y_keeps_and_exits_0_and_unanswered_exits_3() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let lab = common::lab::seed(Manager::Networkd)?;
    lab.write_policy(Policy::seed().uplink("eth0", "Address", "192.168.178.95/24").text())?;
    let bin = lab.multihome_path().display().to_string();
    // The answer typed at the prompt (a fixed script, in the lab host only).
    let answered = lab.run_in_host("sh", &["-c", &format!("echo y | {bin} try --backend networkd --timeout 30s")])?;
    assert_eq!(answered.status.code(), Some(0), "{}", String::from_utf8_lossy(&answered.stderr));
    assert!(String::from_utf8_lossy(&answered.stderr).contains("Kept."), "{}", String::from_utf8_lossy(&answered.stderr));
    lab.wait_for(Duration::from_secs(15), || has_address(&lab, "eth0", "192.168.178.95"))?;

    lab.write_policy(Policy::seed().text())?;
    let unanswered = lab.run_in_host("sh", &["-c", &format!("{bin} try --backend networkd --timeout 3s < /dev/null")])?;
    assert_eq!(unanswered.status.code(), Some(3), "{}", String::from_utf8_lossy(&unanswered.stderr));
    assert!(String::from_utf8_lossy(&unanswered.stderr).contains("Not confirmed"), "{}", String::from_utf8_lossy(&unanswered.stderr));
    lab.wait_for(Duration::from_secs(15), || has_address(&lab, "eth0", "192.168.178.95") && !has_address(&lab, "eth0", "192.168.178.99"))?;
    Ok(())
}

#[test]
fn reload_takes_a_changed_policy_and_keeps_the_other_uplinks_states() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let mut lab = common::lab::seed(Manager::Networkd)?;
    lab.spawn_multihome(&["daemon"])?;
    lab.wait_for(Duration::from_secs(10), || status::all_up(&lab, &["eth0", "wlan1", "wlan0"]))?;
    lab.multihome_ok(&["force", "down", "wlan1"])?;
    // wlan0 leaves the policy; wlan1 keeps its forced state through the reload.
    lab.write_policy(Policy::seed().without_uplink("wlan0").text())?;
    lab.multihome_ok(&["reload"])?;
    let s = status::read(&lab)?;
    assert_eq!(s.interfaces(), ["eth0", "wlan1"], "{s}");
    assert_eq!(s.state("wlan1"), Some(State::ForcedDown), "{s}");
    // A policy that does not parse is refused and the running one kept.
    lab.write_policy("[Uplink]\nInterface=eth0\n")?;
    let refused = lab.multihome(&["reload"])?;
    assert!(!refused.status.success(), "a broken policy was accepted");
    assert_eq!(status::read(&lab)?.interfaces(), ["eth0", "wlan1"]);
    Ok(())
}

#[test]
fn a_quick_relapse_doubles_the_hold() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let mut lab = common::lab::seed(Manager::Networkd)?;
    lab.spawn_multihome(&["daemon"])?;
    lab.wait_for(Duration::from_secs(10), || status::state(&lab, "eth0") == Some(State::Up))?;
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
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let mut lab = common::lab::seed(Manager::Networkd)?;
    lab.spawn_multihome(&["daemon"])?;
    lab.wait_for(Duration::from_secs(10), || status::all_up(&lab, &["eth0", "wlan1", "wlan0"]))?;
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
    let s = status::read(&lab)?;
    assert_eq!(s.state("eth0"), Some(State::ForcedUp), "{s}");
    assert_eq!(s.active, "eth0", "{s}");
    lab.multihome_ok(&["force", "release", "eth0"])?;
    lab.wait_for(Duration::from_secs(5), || status::state(&lab, "eth0") == Some(State::Down))?;
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
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let polkitd = "/usr/lib/polkit-1/polkitd";
    if !std::path::Path::new(polkitd).exists() {
        assert!(std::env::var_os("CI").is_none(), "polkitd is not installed (bash .ci/deps --tests installs polkitd)");
        eprintln!("skipped: no {polkitd}");
        return Ok(());
    }
    let mut lab = common::lab::seed(Manager::Networkd)?;
    lab.spawn_multihome(&["daemon"])?;
    lab.wait_for(Duration::from_secs(10), || status::state(&lab, "eth0") == Some(State::Up))?;
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
    assert_eq!(status::state(&lab, "eth0"), Some(State::ForcedDown));
    let other = as_uid(&lab, "1", &["force", "release", "eth0"]);
    assert!(!other.status.success() && stderr(&other).contains("AccessDenied"), "{}", stderr(&other));
    assert_eq!(status::state(&lab, "eth0"), Some(State::ForcedDown));
    lab.multihome_ok(&["force", "release", "eth0"])?;
    Ok(())
}
