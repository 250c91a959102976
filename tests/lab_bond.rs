//! Mode=bond against the real managers in the lab. This machine's kernel has no bonding driver,
//! so the bond itself cannot come up here; what can be proven is that the real programs take
//! every file and profile multihome writes: networkd parses the .netdev and the .network files
//! without a complaint and uses the slaves' files, NetworkManager loads the keyfiles and shows
//! the bond's options as its own; a live apply refuses on a kernel without bonding. Failover
//! through a real bond needs a kernel with bonding.

use std::time::Duration;

use common::lab::{nmcli, require};
use common::policy::Policy;
use common::status::{self, State};
use multihome::lab::{Lab, LabOptions, Manager};

#[allow(dead_code)]
mod common;

/// The seed's bond over the lab's links (addresses that exist only inside the lab).
const BOND: &str = multihome::lab::policies::SEED_BOND;

/// The same host with ARP monitoring instead (the other half of the .netdev's keys).
fn bond_arp() -> String {
    BOND.replace(
        "MIIMonitorSec=10ms\nUpDelaySec=4s\nDownDelaySec=10ms\n",
        "ARPIntervalSec=200ms\nARPIPTargets=192.168.178.1\nARPValidate=all\nARPAllTargets=all\nPrimaryReselectPolicy=better\nFailOverMACPolicy=follow\n",
    )
}

/// `multihome apply` of a bond policy. On a kernel without bonding (this machine's) the live
/// apply refuses and changes nothing, so the files are written as at boot (`--no-reload`) and
/// networkd is told to reload by hand.
fn apply_bond(lab: &Lab) -> anyhow::Result<()> {
    if multihome::bonding::available().is_ok() {
        let out = lab.multihome_ok(&["apply"])?;
        assert!(out.contains("Applied"), "{out}");
        return Ok(());
    }
    let before = networkd_files(lab);
    let refused = lab.multihome(&["apply"])?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("has no bonding driver"), "{stderr}");
    assert_eq!(networkd_files(lab), before, "a refused apply changed files");
    let out = lab.multihome_ok(&["apply", "--no-reload"])?;
    assert!(out.contains("Applied"), "{out}");
    let reload = lab.run_in_host("networkctl", &["reload"])?;
    assert!(reload.status.success(), "networkctl reload: {}", String::from_utf8_lossy(&reload.stderr));
    Ok(())
}

fn networkctl_status(lab: &Lab, link: &str) -> String {
    let out = lab.run_in_host("networkctl", &["status", "--no-pager", link]).expect("networkctl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn networkd_parses_the_bonds_files_without_a_complaint() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    for policy in [BOND.to_string(), bond_arp()] {
        let lab = Lab::start(LabOptions::new(Manager::Networkd, common::binary()))?;
        lab.write_policy(&policy)?;
        apply_bond(&lab)?;
        // networkd read the .netdev (its debug log says so) and tried to make the bond, which
        // this kernel refuses.
        lab.wait_for(Duration::from_secs(10), || lab.manager_log().contains("bond0: loaded \"bond\""))
            .map_err(|e| anyhow::anyhow!("networkd did not load 10-multihome-bond0.netdev: {e}\n{}", lab.manager_log()))?;
        // ...and each slave is configured from multihome's file for it, with Bond=.
        for slave in ["eth0", "wlan1", "wlan0"] {
            let file = format!("/etc/systemd/network/10-multihome-{slave}.network");
            lab.wait_for(Duration::from_secs(10), || networkctl_status(&lab, slave).contains(&file))
                .map_err(|e| anyhow::anyhow!("networkd does not use {file} for {slave}: {e}\n{}", networkctl_status(&lab, slave)))?;
        }
        let complaints = lab.networkd_complaints();
        assert!(complaints.is_empty(), "networkd complained about multihome's files:\n{}", complaints.join("\n"));
    }
    Ok(())
}

/// An administrator's own .network files for two slaves are amended, not shadowed: networkd
/// keeps configuring eth0 and wlan0 from them (with multihome's drop-ins, `Bond=` and
/// `DHCP=no`), multihome writes no file of its own for them, and networkd complains about
/// neither the files nor the drop-ins.
#[test]
fn networkd_takes_the_drop_ins_that_enslave_an_administrators_links() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let lab = Lab::start(LabOptions::new(Manager::Networkd, common::binary()))?;
    let dir = lab.dir().join("etc/systemd/network");
    std::fs::write(dir.join("20-eth0.network"), "[Match]\nName=eth0\n\n[Link]\nRequiredForOnline=no\n\n[Network]\nDHCP=yes\n")?;
    std::fs::write(dir.join("25-wlan0.network"), "[Match]\nName=wlan0\n\n[Network]\nDHCP=ipv4\nLLDP=no\n")?;
    lab.write_policy(BOND)?;
    let plan = lab.multihome_ok(&["plan"])?;
    assert!(plan.contains("eth0: amends /etc/systemd/network/20-eth0.network with the drop-in"), "{plan}");
    apply_bond(&lab)?;
    let files = networkd_files(&lab);
    for want in [
        "etc/systemd/network/20-eth0.network.d/60-multihome.conf",
        "etc/systemd/network/25-wlan0.network.d/60-multihome.conf",
        "etc/systemd/network/10-multihome-wlan1.network",
    ] {
        assert!(files.iter().any(|f| f == want), "{want} not written: {files:?}");
    }
    assert!(!files.iter().any(|f| f.ends_with("10-multihome-eth0.network") || f.ends_with("10-multihome-wlan0.network")), "a shadowing file: {files:?}");
    let dropin = std::fs::read_to_string(dir.join("20-eth0.network.d/60-multihome.conf"))?;
    assert!(dropin.contains("\n[Network]\nBond=bond0\nDHCP=no\nPrimarySlave=yes\n"), "{dropin}");
    for (slave, file) in [
        ("eth0", "/etc/systemd/network/20-eth0.network"),
        ("wlan0", "/etc/systemd/network/25-wlan0.network"),
        ("wlan1", "/etc/systemd/network/10-multihome-wlan1.network"),
    ] {
        lab.wait_for(Duration::from_secs(10), || networkctl_status(&lab, slave).contains(file))
            .map_err(|e| anyhow::anyhow!("networkd does not use {file} for {slave}: {e}\n{}", networkctl_status(&lab, slave)))?;
    }
    // The administrator's files have no Bond=: only the drop-ins make networkd enslave the links.
    for slave in ["eth0", "wlan0"] {
        let line = format!("{slave}: Requested to set master interface");
        lab.wait_for(Duration::from_secs(10), || lab.manager_log().contains(&line))
            .map_err(|e| anyhow::anyhow!("networkd did not take the drop-in's Bond= for {slave}: {e}\n{}", lab.manager_log()))?;
    }
    let complaints: Vec<String> = lab
        .manager_log()
        .lines()
        .filter(|l| ["multihome", "20-eth0", "25-wlan0"].iter().any(|f| l.contains(f)))
        .filter(|l| ["Unknown", "Invalid", "Failed to parse", "ignoring", "Cannot"].iter().any(|w| l.contains(w)))
        .map(str::to_string)
        .collect();
    assert!(complaints.is_empty(), "networkd complained:\n{}", complaints.join("\n"));
    Ok(())
}

/// The files under the lab's /etc/systemd (network and networkd.conf.d), sorted.
fn networkd_files(lab: &Lab) -> Vec<String> {
    let mut found = Vec::new();
    for dir in ["etc/systemd/network", "etc/systemd/networkd.conf.d"] {
        found.extend(common::files::list(&lab.dir().join(dir)).into_iter().map(|f| format!("{dir}/{f}")));
    }
    found.sort();
    found
}

/// Switching a host from routes to bond and back with `multihome apply`: each mode's files
/// replace the other's, and the routes mode works again afterwards (traffic leaves by eth0).
#[test]
fn switching_between_routes_and_bond_removes_the_other_modes_files() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let lab = Lab::start(LabOptions::new(Manager::Networkd, common::binary()))?;
    let seed = Policy::seed().policy("Backend", "networkd");
    // Settings routes mode sets that no sysctl.d file of the machine names (rp_filter is in
    // systemd's 50-default.conf, so its value after a reset is that file's, not the kernel's).
    let keys = ["net/ipv4/conf/eth0/arp_ignore", "net/ipv4/conf/wlan0/arp_announce", "net/ipv4/conf/wlan1/ignore_routes_with_linkdown"];
    let read =
        |key: &str| lab.run_in_host("cat", &[&format!("/proc/sys/{key}")]).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    let sysctls_before: Vec<String> = keys.iter().map(|k| read(k)).collect();
    lab.write_policy(seed.text())?;
    lab.multihome_ok(&["apply"])?;
    let sysctls_routes: Vec<String> = keys.iter().map(|k| read(k)).collect();
    assert_eq!(sysctls_routes, ["1", "2", "1"], "routes mode's sysctls {keys:?}");
    assert_ne!(sysctls_routes, sysctls_before, "the test needs sysctls that routes mode changes");
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    let routes = networkd_files(&lab);
    assert!(routes.iter().any(|f| f.ends_with("networkd.conf.d/60-multihome.conf")), "{routes:?}");

    lab.write_policy(BOND)?;
    apply_bond(&lab)?;
    let bond = networkd_files(&lab);
    let want = ["bond0.netdev", "bond0.network", "eth0.network", "wlan0.network", "wlan1.network"];
    let expected: Vec<String> = want.iter().map(|f| format!("etc/systemd/network/10-multihome-{f}")).collect();
    assert_eq!(bond, expected, "bond mode should leave exactly its own files");
    assert!(
        !std::fs::read_to_string(lab.dir().join("etc/sysctl.d/60-multihome.conf")).is_ok_and(|t| t.contains("arp_ignore")),
        "bond mode keeps no sysctl.d file with the uplinks' sysctls"
    );
    let sysctls_bond: Vec<String> = keys.iter().map(|k| read(k)).collect();
    assert_eq!(sysctls_bond, sysctls_before, "bond mode left routes mode's sysctls {keys:?} set");

    lab.write_policy(seed.text())?;
    lab.multihome_ok(&["apply"])?;
    assert_eq!(networkd_files(&lab), routes, "back in routes mode, the same files as before the bond");
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    let complaints = lab.networkd_complaints();
    assert!(complaints.is_empty(), "networkd complained about multihome's files:\n{}", complaints.join("\n"));
    Ok(())
}

/// The keyfiles of `render --backend nm-keyfile` in bond mode, loaded by the real
/// NetworkManager: the bond with the policy's options as NetworkManager reads them back, and
/// every slave enslaved to it. A Wi-Fi slave's file gets the SSID its comment asks for first.
#[test]
fn networkmanager_loads_the_bonds_keyfiles_with_their_options() -> anyhow::Result<()> {
    if !require(Manager::NetworkManager) {
        return Ok(());
    }
    for (policy, options) in [
        (BOND.to_string(), &["mode=active-backup", "primary=eth0", "miimon=10", "updelay=4000", "downdelay=10", "fail_over_mac=active"][..]),
        (bond_arp(), &["arp_interval=200", "arp_ip_target=192.168.178.1", "arp_validate=all", "arp_all_targets=all", "primary_reselect=better"][..]),
    ] {
        let lab = Lab::start(LabOptions::new(Manager::NetworkManager, common::binary()))?;
        lab.write_policy(&policy)?;
        // Into the lab's directory that the host's private mounts show as /etc/NetworkManager:
        // `--out /` is refused (an image option never writes the running system).
        let out = lab.multihome_ok(&["render", "--backend", "nm-keyfile", "--out", &lab.dir().display().to_string()])?;
        assert!(out.contains(&format!("wrote {}/etc/NetworkManager/system-connections/multihome-bond0.nmconnection", lab.dir().display())), "{out}");
        for wifi in ["wlan1", "wlan0"] {
            let file = lab.dir().join(format!("etc/NetworkManager/system-connections/multihome-{wifi}.nmconnection"));
            let text = std::fs::read_to_string(&file)?;
            std::fs::write(&file, text.replace("[wifi]\nmode=infrastructure\n", "[wifi]\nmode=infrastructure\nssid=lab\n"))?;
        }
        nmcli(&lab, &["connection", "reload"]);
        let profiles = nmcli(&lab, &["-t", "-f", "NAME,TYPE", "connection", "show"]);
        for want in ["multihome-bond0:bond", "multihome-eth0:802-3-ethernet", "multihome-wlan1:802-11-wireless", "multihome-wlan0:802-11-wireless"] {
            assert!(profiles.lines().any(|l| l == want), "NetworkManager did not load {want}:\n{profiles}\n{}", lab.manager_log());
        }
        let read_back = nmcli(&lab, &["-g", "bond.options", "connection", "show", "multihome-bond0"]);
        for o in options {
            assert!(read_back.split([',', '\n']).any(|x| x == *o), "bond.options lacks {o}: {read_back}");
        }
        for slave in ["eth0", "wlan1", "wlan0"] {
            let master = nmcli(&lab, &["-g", "connection.master,connection.slave-type", "connection", "show", &format!("multihome-{slave}")]);
            assert_eq!(master.trim(), "bond0\nbond", "{slave}'s profile");
        }
    }
    Ok(())
}

/// The daemon in bond mode: it says what it does instead of probing, stays up (the unit would
/// otherwise restart it in a loop) and answers `status` with the bond's slaves as the kernel
/// reports them: on this kernel without bonding, each "no-bond" with the reason (the VM's test,
/// tests/system/bond.rs, shows a real bond's active slave and MII states).
#[test]
fn the_daemon_in_bond_mode_shows_the_slaves_and_why_there_is_no_bond() -> anyhow::Result<()> {
    if !require(Manager::None) {
        return Ok(());
    }
    let mut lab = Lab::start(LabOptions::new(Manager::None, common::binary()))?;
    lab.write_policy(BOND)?;
    let (log, pid) = {
        let d = lab.spawn_multihome(&["daemon"])?;
        (d.log.clone(), d.id())
    };
    lab.wait_for_log(&log, "Mode=bond: the kernel's bond bond0 fails over between eth0, wlan1, wlan0 by itself", Duration::from_secs(10))?;
    lab.wait_for(Duration::from_secs(10), || lab.multihome(&["status"]).is_ok_and(|o| o.status.success()))
        .map_err(|e| anyhow::anyhow!("status never answered: {e}\n{}", std::fs::read_to_string(&log).unwrap_or_default()))?;
    let status = status::read(&lab)?;
    let slaves: Vec<(&str, State, Option<bool>)> = status.uplinks.iter().map(|u| (u.interface.as_str(), u.state.clone(), u.bond_active)).collect();
    let no_bond = || State::Other("no-bond".into());
    assert_eq!(slaves, vec![("eth0", no_bond(), Some(false)), ("wlan1", no_bond(), Some(false)), ("wlan0", no_bond(), Some(false))], "{status}");
    if multihome::bonding::available().is_err() {
        assert_eq!(status.uplinks[0].reason, "bond bond0 does not exist: this kernel has no bonding driver", "{status}");
    }
    assert_eq!(status.active, "", "{status}");
    let text = lab.multihome_ok(&["status"])?;
    assert!(text.contains("The bond has no active slave"), "{text}");
    // Still running: not exited (a zombie until the lab reaps it).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").map_or("", |(_, rest)| &rest[..1]);
    assert!(!state.is_empty() && state != "Z", "the daemon stopped ({stat:?}):\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    Ok(())
}

/// `apply` over NetworkManager's D-Bus in bond mode, on this kernel without bonding: the bond's
/// profile passes NetworkManager's own validation of its options (AddConnection), the slaves'
/// profiles are updated, the bond cannot be created, and the checkpoint puts everything back: the
/// user's profile on eth0 as it was, the bond's profile gone, no checkpoint left.
#[test]
fn networkmanager_apply_of_a_bond_is_rolled_back_where_the_kernel_cannot_bond() -> anyhow::Result<()> {
    if !require(Manager::NetworkManager) {
        return Ok(());
    }
    if multihome::bonding::available().is_ok() {
        eprintln!("SKIPPED: this kernel has bonding; the rollback on a kernel without it is not shown here");
        return Ok(());
    }
    let lab = Lab::start(LabOptions::new(Manager::NetworkManager, common::binary()))?;
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
            "office",
            "ipv4.method",
            "manual",
            "ipv4.addresses",
            "192.168.178.99/24",
            "ipv4.gateway",
            "192.168.178.1",
        ],
    );
    nmcli(&lab, &["connection", "up", "office"]);
    let office = || nmcli(&lab, &["-g", "connection.master,connection.slave-type,ipv4.method,ipv4.addresses", "connection", "show", "office"]);
    let before = office();
    lab.write_policy(&BOND.replace("Backend=networkd", "Backend=networkmanager"))?;

    let plan = lab.multihome_ok(&["plan"])?;
    for line in ["+connection.master: bond0", "+connection.type: bond", "bond.options: ", "miimon=10", "-ipv4.method: manual"] {
        assert!(plan.contains(line), "plan lacks {line:?}:\n{plan}");
    }
    let out = lab.multihome(&["apply"])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "apply of a bond succeeded on a kernel without bonding: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains("could not activate bond bond0") || stderr.contains("bond bond0 is"), "{stderr}");
    assert!(stderr.contains("rolled back"), "{stderr}");
    assert!(!stderr.contains("refused the new profile"), "NetworkManager refused the bond's profile: {stderr}");

    lab.wait_for(Duration::from_secs(15), || office() == before)
        .map_err(|e| anyhow::anyhow!("profile office is not back: {e}\nbefore: {before}\nnow: {}", office()))?;
    let profiles = nmcli(&lab, &["-t", "-f", "NAME", "connection", "show"]);
    assert!(!profiles.lines().any(|l| l.starts_with("multihome-")), "the rollback left profiles:\n{profiles}");
    lab.wait_for(Duration::from_secs(15), || lab.ip_host(&["-4", "-br", "addr", "show", "eth0"]).is_ok_and(|a| a.contains("192.168.178.99/24")))?;
    Ok(())
}
