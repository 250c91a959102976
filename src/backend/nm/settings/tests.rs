use super::*;
use crate::{plan, policy};

const SEED: &str = include_str!("../../../../examples/seed.conf");

fn seed() -> crate::plan::Plan {
    plan::plan(&policy::parse("seed.conf", SEED).unwrap())
}

/// A user's own profile for eth0 as NetworkManager returns it: DHCP, a custom MTU and firewall
/// zone, IPv6 disabled, a route and a rule of their own, and the deprecated duplicates.
fn user_profile() -> Profile {
    let mut p = Profile::new();
    let mut c = Dict::new();
    c.insert("id".into(), owned("Wired 1".to_string()));
    c.insert("uuid".into(), owned("4d3cf8cc-82c4-4e20-90e9-4a98a77e9828".to_string()));
    c.insert("type".into(), owned("802-3-ethernet".to_string()));
    c.insert("interface-name".into(), owned("eth0".to_string()));
    c.insert("zone".into(), owned("work".to_string()));
    p.insert("connection".into(), c);
    let mut eth = Dict::new();
    eth.insert("mtu".into(), owned(1400u32));
    p.insert("802-3-ethernet".into(), eth);
    let mut ipv4 = Dict::new();
    ipv4.insert("method".into(), owned("auto".to_string()));
    // Both would take this uplink out of the main table's metric order.
    ipv4.insert("never-default".into(), owned(true));
    ipv4.insert("route-table".into(), owned(200u32));
    ipv4.insert("dns-search".into(), owned(vec!["lan".to_string()]));
    let mut user_route = route_dict(&Route {
        destination: "10.9.0.0/16".parse().unwrap(),
        gateway: Some("192.168.178.254".parse().unwrap()),
        table: Table::Id(200),
        metric: Some(5),
        preferred_source: None,
    });
    // As the user wrote it: not on-link (multihome's own routes are).
    user_route.remove("onlink");
    // A stale route in the uplink's table, from an earlier policy.
    let stale = route_dict(&Route {
        destination: "192.168.0.0/16".parse().unwrap(),
        gateway: None,
        table: Table::Id(101),
        metric: None,
        preferred_source: None,
    });
    ipv4.insert("route-data".into(), dicts(vec![user_route, stale]));
    ipv4.insert("routes".into(), owned(vec![vec![0u32, 16, 0, 5]]));
    ipv4.insert("addresses".into(), owned(Vec::<Vec<u32>>::new()));
    ipv4.insert("address-data".into(), dicts(Vec::new()));
    let user_rule = rule_dict(&Rule { priority: 500, from: None, to: Some("10.9.0.0/16".parse().unwrap()), table: Table::Id(200) });
    ipv4.insert("routing-rules".into(), dicts(vec![user_rule]));
    p.insert("ipv4".into(), ipv4);
    let mut ipv6 = Dict::new();
    ipv6.insert("method".into(), owned("disabled".to_string()));
    ipv6.insert("addr-gen-mode".into(), owned(1i32));
    p.insert("ipv6".into(), ipv6);
    p
}

#[test]
fn created_profile_carries_the_plan_in_nmcli_words() {
    let plan = seed();
    let eth0 = plan.uplink("eth0").unwrap();
    let merged = merge(&new_profile("eth0", "802-3-ethernet"), &Wanted::for_uplink(eth0));
    assert_eq!(
        ipv4_lines(&merged),
        [
            "ipv4.method: manual",
            "ipv4.addresses: 192.168.178.99/24",
            "ipv4.gateway: 192.168.178.1",
            "ipv4.route-metric: 100",
            "ipv4.never-default: no",
            "ipv4.route-table: 0",
            "ipv4.routes: 0.0.0.0/0 192.168.178.1 onlink=true table=101",
            "ipv4.routes: 192.168.178.0/24 src=192.168.178.99 table=101",
            "ipv4.routing-rules: priority 10000 from 192.168.178.99/32 table 101",
            "ipv4.routing-rules: priority 10001 to 192.168.178.99/32 table 101",
        ]
    );
    let id = merged["connection"]["id"].clone();
    assert_eq!(String::try_from(id).unwrap(), "multihome-eth0");
}

#[test]
fn merge_keeps_every_unrelated_setting_of_a_user_profile() {
    let plan = seed();
    let user = user_profile();
    let merged = merge(&user, &Wanted::for_uplink(plan.uplink("eth0").unwrap()));
    assert_eq!(merged["connection"], user["connection"]);
    assert_eq!(merged["802-3-ethernet"], user["802-3-ethernet"]);
    assert_eq!(merged["ipv6"], user["ipv6"]);
    assert_eq!(merged["ipv4"]["dns-search"], user["ipv4"]["dns-search"]);
    let lines = ipv4_lines(&merged);
    assert!(lines.contains(&"ipv4.routes: 10.9.0.0/16 192.168.178.254 5 table=200".to_string()), "{lines:#?}");
    assert!(lines.contains(&"ipv4.routing-rules: priority 500 to 10.9.0.0/16 table 200".to_string()), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("192.168.0.0/16")), "the stale route of table 101 stays: {lines:#?}");
    // The deprecated forms would make NetworkManager ignore route-data and its table= values.
    assert!(!merged["ipv4"].contains_key("routes") && !merged["ipv4"].contains_key("addresses"));
    assert!(lines.contains(&"ipv4.never-default: no".to_string()) && lines.contains(&"ipv4.route-table: 0".to_string()), "{lines:#?}");
}

#[test]
fn merging_twice_changes_nothing() {
    let plan = seed();
    for u in &plan.uplinks {
        let want = Wanted::for_uplink(u);
        let once = merge(&user_profile(), &want);
        let twice = merge(&once, &want);
        assert!(!needs_update(&once, &twice), "{}", u.interface);
        assert_eq!(once, twice);
        assert!(needs_update(&user_profile(), &once));
        assert_eq!(diff("p", Some(&once), &twice), "");
    }
}

#[test]
fn dhcp_uplink_leaves_addresses_to_the_lease() {
    let text = "[Uplink]\nInterface=eth0\nPriority=1\nDHCP=ipv4\n";
    let plan = plan::plan(&policy::parse("t", text).unwrap());
    let merged = merge(&user_profile(), &Wanted::for_uplink(&plan.uplinks[0]));
    let lines = ipv4_lines(&merged);
    assert_eq!(&lines[..5], ["ipv4.method: auto", "ipv4.gateway: --", "ipv4.route-metric: 100", "ipv4.never-default: no", "ipv4.route-table: 0"]);
    assert!(!lines.iter().any(|l| l.contains("table=101") || l.contains("table 101")), "{lines:#?}");
}

#[test]
fn plan_diff_shows_only_what_changes() {
    let plan = seed();
    let merged = merge(&user_profile(), &Wanted::for_uplink(plan.uplink("eth0").unwrap()));
    let d = diff("profile \"Wired 1\" on eth0", Some(&user_profile()), &merged);
    assert!(d.contains("-ipv4.method: auto\n") && d.contains("+ipv4.method: manual\n"), "{d}");
    assert!(d.contains(" ipv4.routes: 10.9.0.0/16 192.168.178.254 5 table=200\n"), "{d}");
    assert!(d.contains("-ipv4.routes: 192.168.0.0/16 table=101\n"), "{d}");
}

#[test]
fn created_profiles_have_stable_distinct_uuids() {
    assert_eq!(profile_uuid("eth0"), profile_uuid("eth0"));
    assert_ne!(profile_uuid("eth0"), profile_uuid("wlan0"));
    assert_eq!(profile_uuid("eth0").get_version_num(), 5);
}

#[test]
fn only_wired_profiles_are_created() {
    assert_eq!(connection_type(1), Some("802-3-ethernet"));
    assert_eq!(connection_type(20), Some("802-3-ethernet"));
    assert_eq!(connection_type(2), None);
}
