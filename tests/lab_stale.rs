//! A policy edit leaves nothing stale (issue 3: "multihome only removes what it wrote"): when an
//! uplink's table changes, what multihome wrote for the old table goes from the kernel and from
//! the NetworkManager profile it merged into, the user's own routes and rules stay, and the
//! rules and routes the hook added for a DHCP uplink under the old table go with the next apply,
//! with NetworkManager and with systemd-networkd.

use std::fs;
use std::net::Ipv4Addr;
use std::time::Duration;

use common::lab::{dhcp_options, lease, nmcli, require, require_for};
use common::policy::Policy;
use common::serial;
use multihome::lab::policies::{DHCP_WLAN0, SEED};
use multihome::lab::{Lab, LabOptions, Manager};

#[allow(dead_code)]
mod common;

/// The seed with eth0 in table 200 (from 101) and wlan0 at Priority=7: table 107 (from 103).
fn moved_seed() -> String {
    Policy::seed().uplink("eth0", "Table", "200").uplink("wlan0", "Priority", "7").into()
}

/// The keyfile of the profile called `id`, wherever NetworkManager wrote it in the lab.
fn keyfile(lab: &Lab, id: &str) -> String {
    let dir = lab.dir().join("etc/NetworkManager/system-connections");
    fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| fs::read_to_string(e.ok()?.path()).ok())
        .find(|text| text.lines().any(|l| l == format!("id={id}")))
        .unwrap_or_else(|| panic!("no keyfile for {id} in {}", dir.display()))
}

/// The user's own profile `user-eth0` for eth0 (the seed's address), with `extra` settings.
fn add_user_eth0(lab: &Lab, extra: &[&str]) {
    let mut args = vec![
        "connection",
        "add",
        "type",
        "ethernet",
        "ifname",
        "eth0",
        "con-name",
        "user-eth0",
        "ipv4.method",
        "manual",
        "ipv4.addresses",
        "192.168.178.99/24",
        "ipv4.gateway",
        "192.168.178.1",
        "ipv6.method",
        "disabled",
    ];
    args.extend_from_slice(extra);
    nmcli(lab, &args);
}

/// `ipv4.routes` and `ipv4.routing-rules` of a profile, as nmcli prints them.
fn profile_routing(lab: &Lab, id: &str) -> String {
    nmcli(lab, &["-t", "-f", "ipv4.routes,ipv4.routing-rules", "connection", "show", id])
}

#[test]
fn a_changed_table_leaves_nothing_of_the_old_one_in_the_kernel_or_the_profile() -> anyhow::Result<()> {
    if !require(Manager::NetworkManager) {
        return Ok(());
    }
    let _serial = serial();
    let lab = Lab::start(LabOptions::new(Manager::NetworkManager, common::binary()))?;
    // The user's own profile for eth0, with a route and a rule of their own in the table eth0
    // moves to, and a route in the table it leaves: none of them is multihome's.
    add_user_eth0(
        &lab,
        &[
            "ipv4.routes",
            "10.9.0.0/16 192.168.178.254 table=200, 10.8.0.0/16 192.168.178.254 table=101",
            "ipv4.routing-rules",
            "priority 500 to 10.9.0.0/16 table 200",
        ],
    );
    lab.write_policy(SEED)?;
    let out = lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    assert!(out.contains("updated profile \"user-eth0\" on eth0"), "{out}");
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    let rules = lab.ip_host(&["-4", "rule"])?;
    assert!(rules.contains("10000:\tfrom 192.168.178.99 lookup 101") && rules.contains("10200:\tfrom 192.168.178.97 lookup 103"), "{rules}");
    assert!(keyfile(&lab, "user-eth0").contains("multihome.rules=priority 10000 from 192.168.178.99/32 table 101, "), "{}", keyfile(&lab, "user-eth0"));

    lab.write_policy(&moved_seed())?;
    let plan = lab.multihome_ok(&["plan", "--backend", "networkmanager"])?;
    assert!(plan.contains("-ipv4.routing-rules: priority 10000 from 192.168.178.99/32 table 101"), "{plan}");
    let out = lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    eprintln!("{out}");
    // In place: the changed user data does not make NetworkManager take the link down.
    assert!(out.contains("reapplied profile \"user-eth0\" on eth0 in place"), "{out}");
    assert!(out.contains("reapplied profile \"multihome-wlan0\" on wlan0 in place"), "{out}");

    // The profiles: nothing of tables 101 and 103 but the user's route; the new tables; the
    // user's entries; a record of exactly what is multihome's now. (nmcli leaves out a rule's /32.)
    let eth0 = profile_routing(&lab, "user-eth0");
    eprintln!("user-eth0 after the move:\n{eth0}");
    for gone in [
        "192.168.178.0/24 src=192.168.178.99 table=101",
        "0.0.0.0/0 192.168.178.1 onlink=true table=101",
        "from 192.168.178.99 table 101",
        "to 192.168.178.99 table 101",
    ] {
        assert!(!eth0.contains(gone), "left in user-eth0: {gone}\n{eth0}");
    }
    for kept in [
        "10.9.0.0/16 192.168.178.254 table=200",
        "10.8.0.0/16 192.168.178.254 table=101",
        "priority 500 to 10.9.0.0/16 table 200",
        "priority 10000 from 192.168.178.99 table 200",
        "192.168.178.0/24 src=192.168.178.99 table=200",
    ] {
        assert!(eth0.contains(kept), "missing in user-eth0: {kept}\n{eth0}");
    }
    let file = keyfile(&lab, "user-eth0");
    let record: Vec<&str> = file.lines().filter(|l| l.starts_with("multihome.")).collect();
    assert_eq!(
        record,
        [
            "multihome.routes=192.168.178.0/24 src=192.168.178.99 table=200, 0.0.0.0/0 192.168.178.1 onlink=true table=200",
            "multihome.rules=priority 10000 from 192.168.178.99/32 table 200, priority 10001 to 192.168.178.99/32 table 200",
        ],
        "{file}"
    );
    let wlan0 = profile_routing(&lab, "multihome-wlan0");
    assert!(!wlan0.contains("table=103") && !wlan0.contains("table 103") && wlan0.contains("priority 10200 from 192.168.178.97 table 107"), "{wlan0}");

    // The kernel: no rule into 101 or 103, table 103 empty and 101 holding only the user's
    // route; the new tables in use; the user's route and rule in table 200.
    let mut kernel = String::new();
    let settled = lab.wait_for(Duration::from_secs(10), || {
        kernel = format!(
            "{}--- 101\n{}--- 103\n{}",
            lab.ip_host(&["-4", "rule"]).unwrap_or_default(),
            lab.ip_host(&["-4", "route", "show", "table", "101"]).unwrap_or_default(),
            lab.ip_host(&["-4", "route", "show", "table", "103"]).unwrap_or_default()
        );
        !kernel.contains("lookup 101")
            && !kernel.contains("lookup 103")
            && kernel.ends_with("--- 103\n")
            && kernel.contains("--- 101\n10.8.0.0/16 via 192.168.178.254 dev eth0 proto static metric 100 \n--- 103")
    });
    assert!(settled.is_ok(), "the old tables are still in use:\n{kernel}");
    let rules = lab.ip_host(&["-4", "rule"])?;
    for want in [
        "500:\tfrom all to 10.9.0.0/16 lookup 200",
        "10000:\tfrom 192.168.178.99 lookup 200",
        "10001:\tfrom all to 192.168.178.99 lookup 200",
        "10200:\tfrom 192.168.178.97 lookup 107",
    ] {
        assert!(rules.contains(want), "no rule {want:?}:\n{rules}");
    }
    let table200 = lab.ip_host(&["-4", "route", "show", "table", "200"])?;
    for want in ["default via 192.168.178.1 dev eth0", "10.9.0.0/16 via 192.168.178.254 dev eth0", "192.168.178.0/24 dev eth0"] {
        assert!(table200.contains(want), "no route {want:?} in table 200:\n{table200}");
    }
    assert!(lab.inbound(Ipv4Addr::new(192, 168, 178, 99), Duration::from_secs(2)), "eth0's address does not answer through table 200");

    // Applying twice changes nothing; going back restores the seed's state exactly.
    let again = lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    assert!(again.contains("Nothing to do"), "{again}");
    lab.write_policy(SEED)?;
    lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    let eth0 = profile_routing(&lab, "user-eth0");
    assert!(
        !eth0.contains("table=200, 0.0.0.0") && !eth0.contains("192.168.178.99 table 200") && eth0.contains("10.9.0.0/16 192.168.178.254 table=200"),
        "{eth0}"
    );
    let table200 = lab.ip_host(&["-4", "route", "show", "table", "200"])?;
    assert_eq!(table200, "10.9.0.0/16 via 192.168.178.254 dev eth0 proto static metric 100 \n", "table 200 after going back");
    assert!(!lab.ip_host(&["-4", "rule"])?.contains("192.168.178.99 lookup 200"));
    Ok(())
}

/// policies::DHCP_WLAN0, with wlan0's table set when `table` is given.
fn dhcp_policy(table: Option<u32>) -> String {
    match table {
        Some(t) => Policy::from(DHCP_WLAN0).uplink("wlan0", "Table", &t.to_string()).into(),
        None => DHCP_WLAN0.to_string(),
    }
}

/// The rules and routes (of all tables) with multihome's protocol.
fn ours(lab: &Lab) -> String {
    let all = format!("{}{}", lab.ip_host(&["-4", "rule"]).unwrap_or_default(), lab.ip_host(&["-4", "route", "show", "table", "all"]).unwrap_or_default());
    all.lines().filter(|l| l.contains(" proto 77")).map(|l| format!("{l}\n")).collect()
}

fn hook_rules(a: Ipv4Addr, table: u32) -> String {
    format!("10100:\tfrom {a} lookup {table} proto 77\n10101:\tfrom all to {a} lookup {table} proto 77\n")
}

/// The DHCP uplink moves from table 103 to 203: after the apply nothing of multihome's protocol
/// is left for 103, and the lease's rules point to 203.
fn the_hooks_old_table_goes_with_the_apply(lab: &Lab, apply: &[&str]) {
    let mut address = None;
    lab.wait_for(Duration::from_secs(30), || {
        address = lease(lab);
        address.is_some()
    })
    .expect("wlan0 got no lease");
    let a = address.expect("checked");
    let out = lab.multihome_ok(apply).unwrap();
    eprintln!("{out}");
    let before = ours(lab);
    assert!(before.starts_with(&hook_rules(a, 103)) && before.contains("table 103 proto 77"), "the hook's rules for table 103:\n{before}");

    lab.write_policy(&dhcp_policy(Some(203))).unwrap();
    let out = lab.multihome_ok(apply).unwrap();
    eprintln!("{out}");
    assert!(out.contains("2 rules and ") && out.contains(" of an earlier policy removed"), "{out}");
    let a = lease(lab).expect("the lease survives the apply");
    let after = ours(lab);
    assert!(!after.contains("lookup 103") && !after.contains("table 103"), "left for table 103:\n{after}");
    assert!(after.starts_with(&hook_rules(a, 203)), "{after}");
    assert!(after.contains(&format!("192.168.178.0/24 dev wlan0 table 203 proto 77 scope link src {a}")), "{after}");
    let again = lab.multihome_ok(apply).unwrap();
    assert!(!again.contains("removed") && !again.contains("added"), "a second apply changed the hook's rules:\n{again}");
    assert_eq!(ours(lab), after);
}

#[test]
fn network_manager_dhcp_uplinks_old_table_leaves_no_rule() {
    if !require_for(&dhcp_options(Manager::NetworkManager)) {
        return;
    }
    let _serial = serial();
    let lab = Lab::start(dhcp_options(Manager::NetworkManager)).unwrap();
    lab.activate_user_dhcp_profile("wlan0").unwrap();
    lab.write_policy(&dhcp_policy(None)).unwrap();
    the_hooks_old_table_goes_with_the_apply(&lab, &["apply", "--backend", "networkmanager"]);
}

#[test]
fn networkd_dhcp_uplinks_old_table_leaves_no_rule() {
    if !require_for(&dhcp_options(Manager::Networkd)) {
        return;
    }
    let _serial = serial();
    let lab = Lab::start(LabOptions { policy: Some(dhcp_policy(None)), ..dhcp_options(Manager::Networkd) }).unwrap();
    the_hooks_old_table_goes_with_the_apply(&lab, &["apply", "--backend", "networkd"]);
    let complaints = lab.networkd_complaints();
    assert!(complaints.is_empty(), "networkd complained about multihome's files:\n{}", complaints.join("\n"));
}

/// eth0 goes from first to last (Priority=4) in the same table (Table=101): its rules move to
/// the last rank's priorities and its routes to the last metric, and nothing of the first rank's
/// stays in the kernel or the profile.
#[test]
fn a_changed_rank_leaves_nothing_of_the_old_one() -> anyhow::Result<()> {
    if !require(Manager::NetworkManager) {
        return Ok(());
    }
    let _serial = serial();
    let lab = Lab::start(LabOptions::new(Manager::NetworkManager, common::binary()))?;
    lab.write_policy(Policy::seed().uplink("eth0", "Table", "101").text())?;
    lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    lab.write_policy(Policy::seed().uplink("eth0", "Priority", "4").uplink("eth0", "Table", "101").text())?;
    let out = lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    eprintln!("{out}");
    lab.outbound_settles_on("wlan1", Duration::from_secs(15))?;
    let rules = lab.ip_host(&["-4", "rule"])?;
    assert!(!rules.contains("10000:\tfrom 192.168.178.99") && rules.contains("10200:\tfrom 192.168.178.99 lookup 101"), "{rules}");
    let eth0_routes = lab.ip_host(&["-4", "route", "show", "table", "all", "dev", "eth0"])?;
    eprintln!("eth0's routes after the move:\n{eth0_routes}");
    assert!(!eth0_routes.lines().any(|l| l.contains("metric 100")), "routes of eth0's old metric stay:\n{eth0_routes}");
    let profile = profile_routing(&lab, "multihome-eth0");
    assert!(!profile.contains("priority 10000") && !profile.contains("priority 10001"), "{profile}");
    let again = lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    assert!(again.contains("Nothing to do"), "{again}");
    Ok(())
}

/// eth0 leaves the policy: its user profile loses the routes and rules multihome wrote (and
/// the record of them), keeps the user's own route, and the kernel has nothing of table 101
/// but that route.
#[test]
fn an_uplink_that_leaves_the_policy_leaves_nothing_of_multihome_in_the_users_profile() -> anyhow::Result<()> {
    if !require(Manager::NetworkManager) {
        return Ok(());
    }
    let _serial = serial();
    let lab = Lab::start(LabOptions::new(Manager::NetworkManager, common::binary()))?;
    add_user_eth0(&lab, &["ipv4.routes", "10.8.0.0/16 192.168.178.254 table=101"]);
    lab.write_policy(SEED)?;
    lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    lab.write_policy(Policy::seed().without_uplink("eth0").text())?;
    let plan = lab.multihome_ok(&["plan", "--backend", "networkmanager"])?;
    assert!(plan.contains("-ipv4.routes: 0.0.0.0/0 192.168.178.1 onlink=true table=101"), "{plan}");
    let out = lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    eprintln!("{out}");
    assert!(out.contains("removed multihome's routes and rules from profile \"user-eth0\" on eth0"), "{out}");
    let eth0 = profile_routing(&lab, "user-eth0");
    assert_eq!(eth0, "ipv4.routes:10.8.0.0/16 192.168.178.254 table=101\nipv4.routing-rules:\n");
    let file = keyfile(&lab, "user-eth0");
    assert!(!file.contains("multihome.") && !file.contains("[user]"), "{file}");
    let rules = lab.ip_host(&["-4", "rule"])?;
    assert!(!rules.contains("lookup 101"), "{rules}");
    assert_eq!(lab.ip_host(&["-4", "route", "show", "table", "101"])?, "10.8.0.0/16 via 192.168.178.254 dev eth0 proto static metric 100 \n");
    let again = lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    assert!(again.contains("Nothing to do"), "{again}");
    Ok(())
}

/// An unconfirmed `try` of the table change: the state before comes back, and nothing of the
/// tried tables stays in the kernel.
#[test]
fn an_unconfirmed_try_of_a_table_change_leaves_nothing_of_the_tried_tables() -> anyhow::Result<()> {
    if !require(Manager::NetworkManager) {
        return Ok(());
    }
    let _serial = serial();
    let mut lab = Lab::start(LabOptions::new(Manager::NetworkManager, common::binary()))?;
    lab.write_policy(SEED)?;
    lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    let kernel = |lab: &Lab| {
        format!(
            "{}{}",
            lab.ip_host(&["-4", "rule"]).unwrap_or_default(),
            lab.ip_host(&["-4", "route", "show", "table", "all"]).unwrap_or_default().replace(" linkdown", "")
        )
    };
    let sorted = |text: String| {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines.join("\n")
    };
    let before = sorted(kernel(&lab));
    lab.write_policy(&moved_seed())?;
    let multihome = lab.multihome_path().display().to_string();
    let log = lab.spawn_in_host(&multihome, &["try", "--backend", "networkmanager", "--timeout", "3s"])?.log.clone();
    let read = || fs::read_to_string(&log).unwrap_or_default();
    lab.wait_for(Duration::from_secs(10), || read().contains("Press Enter")).map_err(|e| anyhow::anyhow!("{e}: {}", read()))?;
    assert!(lab.ip_host(&["-4", "rule"])?.contains("lookup 200"), "try did not apply");
    lab.wait_for(Duration::from_secs(15), || read().contains("Not confirmed")).map_err(|e| anyhow::anyhow!("{e}: {}", read()))?;
    let mut now = String::new();
    let back = lab.wait_for(Duration::from_secs(15), || {
        now = sorted(kernel(&lab));
        now == before
    });
    assert!(back.is_ok(), "after an unconfirmed try:\n{}", similar::TextDiff::from_lines(&before, &now).unified_diff().header("before", "now"));
    Ok(())
}
