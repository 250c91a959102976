//! A user's NetworkManager profile keeps the secret NetworkManager stores for it through `apply`,
//! an unconfirmed `try` and `reset`, in the lab's real NetworkManager; and the secret shows in
//! nothing multihome prints or writes.
//!
//! The profile is eth0's, an ethernet profile with 802.1X (PEAP, MSCHAPv2) whose password
//! NetworkManager stores itself. The lab has no wpa_supplicant and no authenticator, so the
//! profile could not be activated: eth0's carrier stays down, and multihome updates the profile
//! without activating it ("no carrier"). What is checked is the stored secret: NetworkManager's
//! answer to GetSecrets over D-Bus (what multihome and `nmcli -s` ask) and the profile's keyfile. tests/system/wifi_networkmanager.rs
//! checks the same for active Wi-Fi profiles with a PSK.

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::lab::{nm_secret, nmcli, require};
use common::policy::Policy;
use common::serial;
use multihome::lab::policies::SEED;
use multihome::lab::{Lab, LabOptions, Manager};
use nix::sys::signal::Signal;

#[allow(dead_code)]
mod common;

/// The password, unlike anything else the lab holds, so a search finds only it.
const SECRET: &str = "8021x-pass-of-user-eth0-5b1e9c";
const PROFILE: &str = "user-eth0";

/// The secret NetworkManager answers GetSecrets with, and whether the keyfile holds it.
fn stored_secret(lab: &Lab) -> (String, bool) {
    let shown = nm_secret(lab, PROFILE, "802-1x", "password").expect("NetworkManager answers GetSecrets");
    let keyfile = std::fs::read_to_string(keyfile_path(lab)).unwrap_or_default();
    (shown, keyfile.lines().any(|l| l == format!("password={SECRET}")))
}

fn keyfile_path(lab: &Lab) -> PathBuf {
    lab.dir().join(format!("etc/NetworkManager/system-connections/{PROFILE}.nmconnection"))
}

fn keeps_its_secret(lab: &Lab, after: &str) {
    let (shown, in_keyfile) = stored_secret(lab);
    let keyfile = std::fs::read_to_string(keyfile_path(lab)).unwrap_or_default();
    assert_eq!(shown, SECRET, "{PROFILE}'s 802-1x.password after {after} (GetSecrets); its keyfile:\n{keyfile}");
    assert!(in_keyfile, "{PROFILE}'s keyfile after {after} has no password={SECRET}:\n{keyfile}");
    // The rest of its 802.1X setting too.
    let eap = nmcli(lab, &["-g", "802-1x.eap,802-1x.identity,802-1x.phase2-auth", "connection", "show", PROFILE]);
    assert_eq!(eap, "peap\nalice\nmschapv2\n", "{PROFILE}'s 802.1X setting after {after}");
}

/// `multihome ARGS` in the lab: stdout and stderr together, which must not hold the secret.
fn multihome(lab: &Lab, args: &[&str]) -> anyhow::Result<(bool, String)> {
    let out = lab.multihome(args)?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains(SECRET), "multihome {} printed the secret:\n{text}", args.join(" "));
    Ok((out.status.success(), text))
}

fn multihome_ok(lab: &Lab, args: &[&str]) -> anyhow::Result<String> {
    let (ok, text) = multihome(lab, args)?;
    anyhow::ensure!(ok, "multihome {} failed:\n{text}", args.join(" "));
    Ok(text)
}

/// The files under `dir` whose bytes hold `needle`.
fn files_holding(dir: &Path, needle: &[u8], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => files_holding(&path, needle, out),
            Ok(t) if t.is_file() && std::fs::read(&path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle)) => out.push(path),
            _ => {}
        }
    }
}

#[test]
fn a_users_profile_keeps_its_stored_secret_through_apply_try_and_reset() -> anyhow::Result<()> {
    if !require(Manager::NetworkManager) {
        return Ok(());
    }
    let _serial = serial();
    let mut lab = Lab::start(LabOptions::new(Manager::NetworkManager, common::binary()))?;
    lab.set_carrier("eth0", false)?;
    lab.wait_for(Duration::from_secs(15), || nmcli(&lab, &["-g", "GENERAL.STATE", "device", "show", "eth0"]).starts_with("20 "))?;
    nmcli(
        &lab,
        &[
            "connection",
            "add",
            "type",
            "ethernet",
            "ifname",
            "eth0",
            "con-name",
            PROFILE,
            "ipv4.method",
            "manual",
            "ipv4.addresses",
            "192.168.178.99/24",
            "ipv4.gateway",
            "192.168.178.1",
            "802-1x.eap",
            "peap",
            "802-1x.identity",
            "alice",
            "802-1x.phase2-auth",
            "mschapv2",
            "802-1x.password",
            SECRET,
        ],
    );
    keeps_its_secret(&lab, "nmcli made it");

    // apply: the profile is amended (multihome's record goes into its `user` setting).
    lab.write_policy(SEED)?;
    let plan = multihome_ok(&lab, &["plan"])?;
    assert!(plan.contains(&format!("profile \"{PROFILE}\" on eth0")), "{plan}");
    multihome_ok(&lab, &["plan", "--json"])?;
    let applied = multihome_ok(&lab, &["apply"])?;
    assert!(applied.contains(&format!("updated profile \"{PROFILE}\" on eth0")), "{applied}");
    assert!(applied.contains("eth0: no carrier"), "{applied}");
    keeps_its_secret(&lab, "apply");
    assert_eq!(nmcli(&lab, &["-g", "ipv4.route-metric", "connection", "show", PROFILE]).trim(), "100", "apply did not amend {PROFILE}");

    // try, not confirmed: eth0's address moved, then rolled back.
    lab.write_policy(Policy::seed().uplink("eth0", "Address", "192.168.178.95/24").text())?;
    let (group, log) = {
        let t = lab.spawn_multihome(&["try", "--timeout", "4s"])?;
        (t.id(), t.log.clone())
    };
    lab.wait_for_log(&log, "Press Enter", Duration::from_secs(15))?;
    assert!(nmcli(&lab, &["-g", "ipv4.addresses", "connection", "show", PROFILE]).contains("192.168.178.95/24"), "try did not update {PROFILE}");
    keeps_its_secret(&lab, "try's update");
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group as i32), Signal::SIGHUP)?;
    // (Printed once the checkpoint is rolled back.)
    lab.wait_for_log(&log, "Not confirmed", Duration::from_secs(15))?;
    keeps_its_secret(&lab, "try's rollback");
    // Printed, not asserted: NetworkManager's rollback restores only the profiles active on the
    // checkpoint's devices, so this inactive one keeps try's address (seen: 192.168.178.95/24).
    eprintln!("{PROFILE}'s ipv4.addresses after the unconfirmed try: {}", nmcli(&lab, &["-g", "ipv4.addresses", "connection", "show", PROFILE]).trim());

    // reset: multihome's record and entries go (the `user` setting with them), the secret stays.
    lab.write_policy(SEED)?;
    multihome_ok(&lab, &["apply"])?;
    keeps_its_secret(&lab, "apply after try");
    let dry = multihome_ok(&lab, &["reset", "--dry-run"])?;
    assert!(dry.contains(&format!("profile \"{PROFILE}\" on eth0")), "{dry}");
    let reset = multihome_ok(&lab, &["reset"])?;
    assert!(reset.contains(&format!("profile \"{PROFILE}\" on eth0")), "{reset}");
    let keyfile = std::fs::read_to_string(keyfile_path(&lab))?;
    assert!(!keyfile.contains("multihome."), "reset left multihome's record in {PROFILE}:\n{keyfile}");
    keeps_its_secret(&lab, "reset");

    // Nothing multihome printed (above) or wrote holds the secret: of every file of the lab
    // (its /etc, the logs of what it spawned, multihome's try among them) and of the host's
    // private /run, only NetworkManager's keyfile does, and NetworkManager's own log if it
    // logs it.
    let mut holding = Vec::new();
    files_holding(lab.dir(), SECRET.as_bytes(), &mut holding);
    files_holding(&lab.host_path("/run"), SECRET.as_bytes(), &mut holding);
    holding.retain(|p| *p != lab.dir().join("log/manager.log"));
    assert_eq!(holding, vec![keyfile_path(&lab)], "files holding the secret");
    Ok(())
}
