use super::*;
use crate::{plan, policy};

fn route_dict(r: &Route) -> Dict {
    route_entry(r).to_dict()
}

fn rule_dict(r: &Rule) -> Dict {
    rule_entry(r).to_dict()
}

fn dicts(entries: Vec<Dict>) -> zbus::OwnedVariant {
    owned(entries)
}

fn entries(section: Option<&Dict>, key: &str) -> Vec<Dict> {
    section.and_then(|s| s.get(key)).and_then(|v| Vec::<Dict>::try_from(v.clone()).ok()).unwrap_or_default()
}

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
    let stale =
        route_dict(&Route { destination: "192.168.0.0/16".parse().unwrap(), gateway: None, table: Table::Id(101), metric: None, preferred_source: None });
    ipv4.insert("route-data".into(), dicts(vec![user_route, stale.clone()]));
    ipv4.insert("routes".into(), owned(vec![vec![0u32, 16, 0, 5]]));
    ipv4.insert("addresses".into(), owned(Vec::<Vec<u32>>::new()));
    ipv4.insert("address-data".into(), dicts(Vec::new()));
    let user_rule = rule_dict(&Rule { priority: 500, from: None, to: Some("10.9.0.0/16".parse().unwrap()), table: Table::Id(200) });
    // And its rule, which an earlier multihome wrote for another address.
    let stale_rule = rule_dict(&Rule { priority: 10000, from: Some("192.168.178.50/32".parse().unwrap()), to: None, table: Table::Id(101) });
    ipv4.insert("routing-rules".into(), dicts(vec![user_rule, stale_rule.clone()]));
    p.insert("ipv4".into(), ipv4);
    // What that earlier multihome recorded having written, beside a key of the user's own.
    Record { routes: vec![route_text(&stale)], rules: vec![rule_text(&stale_rule)], ipv6: false }.write(&mut p);
    let mut user = p["user"].clone();
    let mut data: std::collections::HashMap<String, String> = user["data"].clone().try_into().unwrap();
    data.insert("desktop.note".into(), "office port 4".into());
    user.insert("data".into(), owned(data));
    p.insert("user".into(), user);
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
    assert!(!lines.iter().any(|l| l.contains("192.168.178.50")), "the stale rule of table 101 stays: {lines:#?}");
    let data = |p: &Profile| std::collections::HashMap::<String, String>::try_from(p["user"]["data"].clone()).unwrap();
    assert_eq!(data(&merged)["desktop.note"], "office port 4", "the user's own user data is kept");
    // The deprecated forms would make NetworkManager ignore route-data and its table= values.
    assert!(!merged["ipv4"].contains_key("routes") && !merged["ipv4"].contains_key("addresses"));
    assert!(lines.contains(&"ipv4.never-default: no".to_string()) && lines.contains(&"ipv4.route-table: 0".to_string()), "{lines:#?}");
}

#[test]
fn merging_twice_changes_nothing() {
    let plan = seed();
    for u in plan.uplinks() {
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
    let merged = merge(&user_profile(), &Wanted::for_uplink(&plan.uplinks()[0]));
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

fn with_table(text: &str, table: u32) -> String {
    text.replace("Priority=1\n", &format!("Priority=1\nTable={table}\n"))
}

/// The gap this record closes: eth0's table moves from 101 to 200 (where the user has a route
/// and a rule of their own). Everything multihome wrote for table 101 goes, the user's entries
/// in table 200 stay, and the record says exactly what is multihome's now.
#[test]
fn a_changed_table_leaves_nothing_of_the_old_one_and_keeps_the_users_entries() {
    let seed = seed();
    let moved = plan::plan(&policy::parse("seed.conf", &with_table(SEED, 200)).unwrap());
    assert_eq!(moved.uplink("eth0").unwrap().table, 200);
    for start in [user_profile(), new_profile("eth0", "802-3-ethernet")] {
        let first = merge(&start, &Wanted::for_uplink(seed.uplink("eth0").unwrap()));
        let second = merge(&first, &Wanted::for_uplink(moved.uplink("eth0").unwrap()));
        let lines = ipv4_lines(&second);
        assert!(!lines.iter().any(|l| l.ends_with("table=101") || l.ends_with("table 101")), "{lines:#?}");
        assert!(lines.contains(&"ipv4.routes: 0.0.0.0/0 192.168.178.1 onlink=true table=200".to_string()), "{lines:#?}");
        assert!(lines.contains(&"ipv4.routing-rules: priority 10000 from 192.168.178.99/32 table 200".to_string()), "{lines:#?}");
        let record = Record::of(&second).unwrap();
        assert_eq!(record, record_for(&Wanted::for_uplink(moved.uplink("eth0").unwrap())));
        assert!(record.routes.iter().chain(&record.rules).all(|e| e.ends_with("table=200") || e.ends_with("table 200")), "{record:?}");
        if start == user_profile() {
            assert!(lines.contains(&"ipv4.routes: 10.9.0.0/16 192.168.178.254 5 table=200".to_string()), "{lines:#?}");
            assert!(lines.contains(&"ipv4.routing-rules: priority 500 to 10.9.0.0/16 table 200".to_string()), "{lines:#?}");
        }
        // Back to 101: the same as applying the seed at once.
        let back = merge(&second, &Wanted::for_uplink(seed.uplink("eth0").unwrap()));
        assert_eq!(owned_lines(&back), owned_lines(&first));
    }
}

/// A re-ranked uplink (same table, other rule priorities) keeps no rule of its old rank.
#[test]
fn a_changed_rank_leaves_no_rule_of_the_old_one() {
    let seed = seed();
    let first = merge(&user_profile(), &Wanted::for_uplink(seed.uplink("wlan1").unwrap()));
    let reranked = plan::plan(&policy::parse("t", "[Uplink]\nInterface=wlan1\nPriority=2\nAddress=192.168.178.98/24\nGateway=192.168.178.1\n").unwrap());
    let second = merge(&first, &Wanted::for_uplink(reranked.uplink("wlan1").unwrap()));
    let rules: Vec<String> = ipv4_lines(&second).into_iter().filter(|l| l.starts_with("ipv4.routing-rules")).collect();
    assert_eq!(
        rules,
        [
            "ipv4.routing-rules: priority 10000 from 192.168.178.99/32 table 101".replace("99", "98").replace("101", "102"),
            "ipv4.routing-rules: priority 10001 to 192.168.178.98/32 table 102".to_string(),
            "ipv4.routing-rules: priority 500 to 10.9.0.0/16 table 200".to_string(),
        ]
    );
}

/// Without a record, a user's profile holds nothing of multihome's: its routes and rules stay,
/// even in the uplink's table; one the plan also wants is not doubled. A profile multihome
/// created holds only multihome's.
#[test]
fn without_a_record_only_multihomes_own_profiles_are_its_own() {
    let seed = seed();
    let want = Wanted::for_uplink(seed.uplink("eth0").unwrap());
    let mut unrecorded = user_profile();
    unrecorded.remove("user");
    let link = route_dict(&want.routes[0]);
    let mut users_copy = unrecorded["ipv4"].clone();
    let mut routes = entries(Some(&users_copy), "route-data");
    routes.push(link.clone());
    users_copy.insert("route-data".into(), dicts(routes));
    unrecorded.insert("ipv4".into(), users_copy);
    let merged = merge(&unrecorded, &want);
    let lines = ipv4_lines(&merged);
    assert!(lines.contains(&"ipv4.routes: 192.168.0.0/16 table=101".to_string()), "{lines:#?}");
    assert!(lines.contains(&"ipv4.routing-rules: priority 10000 from 192.168.178.50/32 table 101".to_string()), "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| **l == format!("ipv4.routes: {}", route_text(&link))).count(), 1, "{lines:#?}");

    let mut own = merge(&new_profile("eth0", "802-3-ethernet"), &want);
    own.remove("user");
    let old_ipv4 = unrecorded["ipv4"].clone();
    own.get_mut("ipv4").unwrap().insert("route-data".into(), old_ipv4["route-data"].clone());
    let remerged = merge(&own, &want);
    assert_eq!(ipv4_lines(&remerged), ipv4_lines(&merge(&new_profile("eth0", "802-3-ethernet"), &want)));
}

#[test]
fn the_record_fits_what_networkmanager_accepts() {
    // 50 addresses, the most an uplink's rule priorities hold: each value stays under 8 KiB.
    let addresses: Vec<String> = (1..=50).map(|i| format!("Address=192.168.178.{i}/24\n")).collect();
    let text = format!("[Uplink]\nInterface=eth0\nPriority=1\n{}Gateway=192.168.178.254\n", addresses.concat());
    let plan = plan::plan(&policy::parse("t", &text).unwrap());
    let record = record_for(&Wanted::for_uplink(&plan.uplinks()[0]));
    assert_eq!(record.rules.len(), 100);
    assert!(record.routes_value().len() <= 8 * 1024 && record.rules_value().len() <= 8 * 1024, "{}", record.rules_value().len());
    for key in [record::ROUTES_KEY, record::RULES_KEY] {
        let (namespace, name) = key.split_once('.').unwrap();
        assert!(!namespace.is_empty() && !name.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'));
    }
}

/// What NetworkManager installs from multihome's entries before and after a move: the user's
/// entries are never in `before`, so they are never taken for leftovers.
#[test]
fn installed_routes_name_multihomes_old_routes_with_their_metric() {
    let seed = seed();
    let first = merge(&user_profile(), &Wanted::for_uplink(seed.uplink("eth0").unwrap()));
    let moved = plan::plan(&policy::parse("seed.conf", &with_table(SEED, 200)).unwrap());
    let second = merge(&first, &Wanted::for_uplink(moved.uplink("eth0").unwrap()));
    let routes = installed_routes(&first, &second);
    let show = |rs: &[Route]| rs.iter().map(|r| plan::show_route(r, "eth0")).collect::<Vec<_>>();
    assert_eq!(
        show(&routes.before),
        ["192.168.178.0/24 dev eth0 scope link src 192.168.178.99 table 101 metric 100", "default via 192.168.178.1 dev eth0 table 101 metric 100 onlink"]
    );
    assert!(show(&routes.after).contains(&"10.9.0.0/16 via 192.168.178.254 dev eth0 table 200 metric 5 onlink".to_string()), "{:#?}", show(&routes.after));
    assert!(show(&routes.after).contains(&"default via 192.168.178.1 dev eth0 table 200 metric 100 onlink".to_string()), "{:#?}", show(&routes.after));
    // Nothing changes: before and after are the same routes.
    let again = installed_routes(&second, &merge(&second, &Wanted::for_uplink(moved.uplink("eth0").unwrap())));
    assert!(again.before.iter().all(|r| again.after.contains(r)), "{again:?}");
}

/// Releasing a user's profile takes out exactly the recorded entries and the record, and keeps
/// the user's entries and other user data; a profile without a record is not released.
#[test]
fn release_takes_out_exactly_what_the_record_names() {
    let merged = merge(&user_profile(), &Wanted::for_uplink(seed().uplink("eth0").unwrap()));
    let released = release(&merged).unwrap();
    let lines = ipv4_lines(&released);
    let entries: Vec<&String> = lines.iter().filter(|l| l.starts_with("ipv4.routes") || l.starts_with("ipv4.routing-rules")).collect();
    assert_eq!(entries, ["ipv4.routes: 10.9.0.0/16 192.168.178.254 5 table=200", "ipv4.routing-rules: priority 500 to 10.9.0.0/16 table 200"]);
    assert_eq!(Record::of(&released), None);
    let data = std::collections::HashMap::<String, String>::try_from(released["user"]["data"].clone()).unwrap();
    assert_eq!(data.len(), 1, "{data:?}");
    assert!(release(&released).is_none());
    assert!(!released["ipv4"].contains_key("routes"));
    // Without other user data, the user setting goes with the record.
    let bare = merge(&new_profile("eth0", "802-3-ethernet"), &Wanted::for_uplink(seed().uplink("eth0").unwrap()));
    assert!(!release(&bare).unwrap().contains_key("user"));
}

/// Reading a setting and writing it back changes nothing, also for values multihome does not
/// know or that come with another D-Bus type than it expects.
#[test]
fn a_setting_read_and_written_back_is_unchanged() {
    let mut p = user_profile();
    let ipv4 = p.get_mut("ipv4").unwrap();
    // A route-metric sent as u32 (multihome expects i64) stays as it came.
    ipv4.insert("route-metric".into(), owned(7u32));
    let mut odd_route =
        route_dict(&Route { destination: "10.1.0.0/16".parse().unwrap(), gateway: None, table: Table::Main, metric: None, preferred_source: None });
    odd_route.insert("mtu".into(), owned(1280u32));
    odd_route.insert("next-hop".into(), owned("not an address".to_string()));
    let mut routes = entries(Some(ipv4), "route-data");
    routes.push(odd_route);
    ipv4.insert("route-data".into(), dicts(routes));
    let setting = IpSetting::of(&p, IPV4);
    assert_eq!(setting.route_metric, None, "a value of another type is not guessed at");
    assert!(setting.other.contains_key("route-metric"));
    let odd = setting.routes.iter().find(|r| r.attributes.contains_key("mtu")).unwrap();
    assert_eq!(odd.next_hop, None);
    let mut back = p.clone();
    setting.write(&mut back, IPV4);
    let mut expected = p["ipv4"].clone();
    // Only the deprecated duplicates go (IpSetting::of says why).
    expected.remove("routes");
    expected.remove("addresses");
    assert_eq!(back["ipv4"], expected);
}

const STATIC_DUAL_STACK: &str = include_str!("../../../../tests/golden/ipv6-static/policy.conf");

#[test]
fn static_ipv6_is_merged_like_ipv4_and_taken_back_when_the_policy_drops_it() {
    let dual = plan::plan(&policy::parse("p", STATIC_DUAL_STACK).unwrap());
    let want = Wanted::for_uplink(dual.uplink("wlan1").unwrap());
    let merged = merge(&user_profile(), &want);
    let lines = owned_lines(&merged);
    for expected in [
        "ipv6.method: manual",
        "ipv6.addresses: 2001:db8:178::98/64",
        "ipv6.gateway: 2001:db8:178::1",
        "ipv6.route-metric: 101",
        "ipv6.routes: ::/0 2001:db8:178::1 table=102",
        "ipv6.routing-rules: priority 10100 from 2001:db8:178::98/128 table 102",
        "user.multihome.ipv6: yes",
    ] {
        assert!(lines.contains(&expected.to_string()), "{expected} missing from {lines:#?}");
    }
    // IPv6 routes are not on-link (plan::Prefix::GATEWAY_ONLINK), IPv4 ones are.
    assert!(!lines.iter().any(|l| l.starts_with("ipv6.routes:") && l.contains("onlink")), "{lines:#?}");
    assert!(!needs_update(&merged, &merge(&merged, &want)));

    // The policy leaves IPv6 again: multihome's IPv6 entries go, the record forgets IPv6.
    let seed = seed();
    let back = merge(&merged, &Wanted::for_uplink(seed.uplink("wlan1").unwrap()));
    let ipv6 = IpSetting::of(&back, IPV6);
    assert!(ipv6.routes.is_empty() && ipv6.rules.is_empty(), "{ipv6:#?}");
    assert!(!owned_lines(&back).iter().any(|l| l.starts_with("ipv6.") || l.contains("multihome.ipv6")));

    // An IPv6-only uplink has IPv4 disabled.
    let wlan0 = merge(&user_profile(), &Wanted::for_uplink(dual.uplink("wlan0").unwrap()));
    assert!(owned_lines(&wlan0).contains(&"ipv4.method: disabled".to_string()));
}

#[test]
fn multihome_keeps_networkmanager_off_the_uplinks_mptcp_endpoints_unless_mptcp_is_no() {
    let flags = |p: &Profile| p["connection"].get("mptcp-flags").map(|v| u32::try_from(v.clone()).unwrap());
    let mut user = user_profile();
    // A user who asked NetworkManager for subflow endpoints (0x22: enabled, subflow).
    user.get_mut("connection").unwrap().insert("mptcp-flags".into(), owned(0x22u32));
    let plan = seed();
    let merged = merge(&user, &Wanted::in_plan(&plan, plan.uplink("eth0").unwrap()));
    assert_eq!(flags(&merged), Some(MPTCP_FLAGS_DISABLED));
    assert!(needs_update(&user, &merged));
    assert!(diff("p", Some(&user), &merged).contains("+connection.mptcp-flags: 0x1\n"));
    assert!(!needs_update(&merged, &merge(&merged, &Wanted::in_plan(&plan, plan.uplink("eth0").unwrap()))));

    assert!(SEED.contains("[Policy]\n"), "the seed has a [Policy] section to add MPTCP=no to");
    let off = plan::plan(&policy::parse("seed.conf", &SEED.replacen("[Policy]\n", "[Policy]\nMPTCP=no\n", 1)).unwrap());
    assert_eq!(off.mptcp, None);
    let merged = merge(&user, &Wanted::in_plan(&off, off.uplink("eth0").unwrap()));
    assert_eq!(flags(&merged), Some(0x22), "MPTCP=no must leave the user's mptcp-flags alone");
}

#[test]
fn slaac_and_dhcpv6_take_the_advertisements_at_the_uplinks_metric_and_wait_for_ipv6_at_activation() {
    let text = "[Uplink]\nInterface=eth0\nPriority=1\nAddress=192.168.178.99/24\nGateway=192.168.178.1\nIPv6AcceptRA=yes\n\
                [Uplink]\nInterface=wlan1\nPriority=2\nDHCP=ipv6\n";
    let plan = plan::plan(&policy::parse("p", text).unwrap());
    for (uplink, metric) in [("eth0", 100), ("wlan1", 101)] {
        let want = Wanted::for_uplink(plan.uplink(uplink).unwrap());
        let merged = merge(&user_profile(), &want);
        let lines = owned_lines(&merged);
        for expected in [
            "ipv6.method: auto".to_string(),
            format!("ipv6.route-metric: {metric}"),
            // main: the advertised router belongs there, in the uplinks' order (the hook copies it).
            "ipv6.route-table: 0".to_string(),
            format!("ipv6.required-timeout: {}", crate::numbers::NM_IPV6_REQUIRED_TIMEOUT_MS),
            "user.multihome.ipv6: yes".to_string(),
        ] {
            assert!(lines.contains(&expected), "{uplink}: {expected} missing from {lines:#?}");
        }
        // Nothing of the uplink's own table is known before the advertisement.
        assert!(!lines.iter().any(|l| l.starts_with("ipv6.routes:") || l.starts_with("ipv6.routing-rules:")), "{lines:#?}");
        assert!(!needs_update(&merged, &merge(&merged, &want)), "{uplink}: a second merge changes something");
    }
    // Static IPv6 leaves a user's required-timeout alone.
    let mut user = user_profile();
    let mut ipv6 = IpSetting::of(&user, IPV6);
    ipv6.required_timeout = Some(3000);
    ipv6.write(&mut user, IPV6);
    let dual = plan::plan(&policy::parse("p", STATIC_DUAL_STACK).unwrap());
    let merged = merge(&user, &Wanted::for_uplink(dual.uplink("wlan1").unwrap()));
    assert_eq!(IpSetting::of(&merged, IPV6).required_timeout, Some(3000));
}
