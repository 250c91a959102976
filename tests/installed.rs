//! The package as a user gets it (issue 11): after `apt-get install ./target/debian/multihome_*.deb`
//! on this machine, the installed `multihome` checks the shipped example, renders both man pages
//! without a warning, runs its own lab, and the installed hooks give a DHCP uplink its rules
//! through the real nm-dispatcher and networkd-dispatcher (the lab uses the installed paths, not
//! an overlay of its own). `.ci/run` installs the package, runs this with MULTIHOME_INSTALLED=1
//! (then a missing or other version of the package fails), and purges it afterwards.

use std::process::Command;
use std::time::Duration;

use common::lab::{require, require_for};
use multihome::lab::policies::DHCP_WLAN0;
use multihome::lab::{INSTALLED_BINARY, Lab, LabOptions, Manager};

#[allow(dead_code)]
mod common;

/// Whether this version of the package is installed; in CI (MULTIHOME_INSTALLED=1) it must be.
fn installed() -> bool {
    let out = Command::new("dpkg-query").args(["-W", "-f=${Status} ${Version}", "multihome"]).output();
    let found = out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout) == format!("install ok installed {}", env!("CARGO_PKG_VERSION")));
    if !found {
        assert!(
            std::env::var_os("MULTIHOME_INSTALLED").is_none(),
            "multihome {} is not installed (.ci/run installs target/debian's package)",
            env!("CARGO_PKG_VERSION")
        );
        eprintln!("skipped: the package is not installed (apt-get install ./target/debian/multihome_*.deb, then MULTIHOME_INSTALLED=1)");
    }
    found
}

fn run(program: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_installed_binary_checks_the_example_and_its_man_pages_render() {
    if !installed() {
        return;
    }
    let (ok, out, err) = run(INSTALLED_BINARY, &["--version"]);
    assert!(ok && out.contains(env!("CARGO_PKG_VERSION")), "{out}{err}");
    let (ok, out, err) = run(INSTALLED_BINARY, &["-c", "/usr/share/doc/multihome/examples/seed.conf", "check"]);
    assert!(ok && out.contains("table 101"), "{out}{err}");
    for page in ["/usr/share/man/man8/multihome.8.gz", "/usr/share/man/man5/multihome.conf.5.gz"] {
        let out = Command::new("man").args(["--warnings", "-l", page]).env("MANWIDTH", "80").env("MAN_KEEP_FORMATTING", "0").output().expect("man runs");
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && warnings.trim().is_empty(), "man -l {page}:\n{warnings}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("multihome"), "{page} rendered empty");
    }
}

#[test]
fn the_installed_lab_runs_and_leaves_nothing() {
    if !installed() || !require(Manager::Networkd) {
        return;
    }
    let (ok, out, err) = run(INSTALLED_BINARY, &["lab", "--backend", "networkd", "--no-daemon", "--fault", "link"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("eth0 loses carrier") && out.contains("Done: namespaces and processes removed"), "{out}");
}

/// wlan0's rules for its lease, as `ip rule` prints them.
fn lease_rules(lab: &Lab) -> Vec<String> {
    lab.ip_host(&["rule", "show"]).unwrap_or_default().lines().filter(|l| l.contains(" proto 77") && l.contains("lookup 103")).map(str::to_string).collect()
}

fn installed_hooks_give_the_lease_its_rules(manager: Manager) -> anyhow::Result<()> {
    let mut options = LabOptions { manager, dhcp: true, installed: true, ..Default::default() };
    if manager == Manager::Networkd {
        // Applied before networkd starts, as at boot (the networkd.conf.d drop-in).
        options.policy = Some(DHCP_WLAN0.to_string());
    }
    if !require_for(&options) {
        return Ok(());
    }
    let lab = Lab::start(options)?;
    assert_eq!(lab.multihome_path(), std::path::Path::new(INSTALLED_BINARY));
    if manager == Manager::NetworkManager {
        lab.write_policy(DHCP_WLAN0)?;
        lab.activate_user_dhcp_profile("wlan0")?;
        lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    }
    // The rules come from the installed hook, on the lease's event (or, with NetworkManager, from
    // apply itself when the lease came first): carrier loss takes them away and the return brings
    // them back, which only the hook does.
    lab.wait_for(Duration::from_secs(30), || lease_rules(&lab).len() == 2)
        .map_err(|e| anyhow::anyhow!("no rules for wlan0's lease: {e}\n{}", lab.ip_host(&["rule"]).unwrap_or_default()))?;
    lab.set_carrier("wlan0", false)?;
    lab.wait_for(Duration::from_secs(15), || lease_rules(&lab).is_empty()).map_err(|e| anyhow::anyhow!("the rules stayed after carrier loss: {e}"))?;
    lab.set_carrier("wlan0", true)?;
    lab.wait_for(Duration::from_secs(30), || lease_rules(&lab).len() == 2).map_err(|e| anyhow::anyhow!("no rules after the link returned: {e}"))?;
    Ok(())
}

#[test]
fn installed_nm_dispatcher_hook_gives_a_dhcp_uplink_its_rules() -> anyhow::Result<()> {
    if !installed() {
        return Ok(());
    }
    installed_hooks_give_the_lease_its_rules(Manager::NetworkManager)
}

#[test]
fn installed_networkd_dispatcher_hooks_give_a_dhcp_uplink_its_rules() -> anyhow::Result<()> {
    if !installed() {
        return Ok(());
    }
    installed_hooks_give_the_lease_its_rules(Manager::Networkd)
}
