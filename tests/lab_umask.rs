//! Issue 22, item 5, with the real systemd-networkd in the lab: the seed applied under a
//! hardened umask (077) before networkd starts, as at boot. networkd drops to the user
//! systemd-network before it reads its configuration, so a networkd.conf.d directory it cannot
//! enter is skipped with a warning, `ManageForeignRoutingPolicyRules=no` with it, and networkd
//! then deletes every rule it did not make (the hooks' and the daemon's) whenever it configures
//! a link. Here the directory multihome makes is 0755, systemd-network reads the drop-in, and a
//! foreign rule survives networkd reconfiguring every uplink.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::lab::require;
use multihome::lab::policies::SEED;
use multihome::lab::{Lab, LabOptions, Manager};

#[allow(dead_code)]
mod common;

const CONF_DIR: &str = "etc/systemd/networkd.conf.d";
/// A rule of someone else's: not networkd's, not multihome's (its priority is far from theirs).
const FOREIGN: [&str; 6] = ["pref", "31999", "from", "10.99.0.0/16", "lookup", "main"];

fn foreign_rule_present(lab: &Lab) -> bool {
    lab.ip_host(&["-4", "rule", "show", "pref", "31999"]).is_ok_and(|r| r.contains("from 10.99.0.0/16 lookup main"))
}

#[test]
fn under_umask_077_networkd_reads_the_drop_in_and_foreign_rules_survive() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let options = LabOptions { policy: Some(SEED.to_string()), umask: Some(0o077), ..LabOptions::new(Manager::Networkd, common::binary()) };
    let lab = Lab::start(options)?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;

    // What apply made, as modes: the directory it created and the drop-in in it.
    let dir_mode = std::fs::metadata(lab.dir().join(CONF_DIR))?.permissions().mode() & 0o7777;
    let file_mode = std::fs::metadata(lab.dir().join(CONF_DIR).join("60-multihome.conf"))?.permissions().mode() & 0o7777;
    assert_eq!((dir_mode, file_mode), (0o755, 0o644), "networkd.conf.d {dir_mode:04o}, its drop-in {file_mode:04o}");
    // What networkd's user can read (networkd itself runs as it here, as under its unit).
    let read = lab.run_in_host(
        "setpriv",
        &["--reuid=systemd-network", "--regid=systemd-network", "--clear-groups", "cat", "/etc/systemd/networkd.conf.d/60-multihome.conf"],
    )?;
    assert!(
        read.status.success() && String::from_utf8_lossy(&read.stdout).contains("ManageForeignRoutingPolicyRules=no"),
        "systemd-network cannot read the drop-in: {}",
        String::from_utf8_lossy(&read.stderr)
    );

    // networkd drops the rules it does not own each time it configures a link, unless the
    // drop-in told it not to.
    let mut args = vec!["rule", "add"];
    args.extend(FOREIGN);
    lab.ip_host(&args)?;
    assert!(foreign_rule_present(&lab), "the foreign rule was not added");
    let out = lab.run_in_host("networkctl", &["reconfigure", "eth0", "wlan1", "wlan0"])?;
    assert!(out.status.success(), "networkctl reconfigure: {}", String::from_utf8_lossy(&out.stderr));
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    // Reconfiguring finishes within a second here; watch for three.
    let end = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < end {
        assert!(foreign_rule_present(&lab), "networkd deleted the foreign rule: it ignored ManageForeignRoutingPolicyRules=no\n{}", lab.manager_log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let complaints = lab.networkd_complaints();
    assert!(complaints.is_empty(), "networkd complained:\n{}", complaints.join("\n"));
    Ok(())
}
