//! The hook against the real kernel in a throwaway namespace: the rules and routes after
//! up / dhcp4-change / down are exactly the planned ones, a second run changes nothing, and
//! what is not multihome's (a foreign rule, a static uplink, another interface) is untouched.

use std::ffi::OsString;
use std::path::PathBuf;

use super::rule_range::rule_priorities;
use super::{Environment, run};
use crate::netlink::testns::TestNs;

const POLICY: &str = "\
[Uplink]
Interface=eth0
Priority=1
Address=192.168.178.99/24
Gateway=192.168.178.1

[Uplink]
Interface=wlan0
Priority=2
DHCP=ipv4
";

/// The policy as a file of this test, removed on Drop.
struct PolicyFile(PathBuf);

impl PolicyFile {
    fn new(tag: &str) -> PolicyFile {
        let path = std::env::temp_dir().join(format!("multihome-dispatch-{}-{tag}.conf", std::process::id()));
        std::fs::write(&path, POLICY).unwrap();
        PolicyFile(path)
    }
}

impl Drop for PolicyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn env(pairs: &[(&str, &str)]) -> Environment {
    pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
}

/// Runs `multihome dispatch` inside the namespace, as the dispatcher would.
fn dispatch(ns: &TestNs, policy: &PolicyFile, args: &[&str], env: Environment) {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let path = policy.0.clone();
    ns.run(move || run(&args, &env, &path)).unwrap();
}

/// Everything a hook could have changed: all rules, all routes of all tables.
fn snapshot(ns: &TestNs) -> String {
    format!("{}\n{}", ns.ip(&["rule", "show"]), ns.ip(&["route", "show", "table", "all"]))
}

/// The rules and routes tagged with multihome's protocol, as `ip` prints them.
fn ours(ns: &TestNs) -> String {
    snapshot(ns).lines().filter(|l| l.contains(" proto 77")).map(|l| format!("{l}\n")).collect()
}

/// What the hook puts in place for wlan0 (rank 2, table 102) with `address` on `subnet`, as
/// [`ours`] prints it; with `router`, the table's default route through it.
fn planned(address: &str, subnet: &str, router: Option<&str>) -> String {
    let default = router.map(|r| format!("default via {r} dev wlan0 table 102 proto 77 onlink \n")).unwrap_or_default();
    format!(
        "10100:\tfrom {address} lookup 102 proto 77\n\
         10101:\tfrom all to {address} lookup 102 proto 77\n\
         {default}\
         {subnet} dev wlan0 table 102 proto 77 scope link src {address} \n"
    )
}

fn host(ns: &TestNs) {
    ns.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "sw-eth0"]);
    ns.ip(&["link", "add", "wlan0", "type", "veth", "peer", "name", "sw-wlan0"]);
    ns.ip(&["link", "add", "other0", "type", "veth", "peer", "name", "sw-other0"]);
    for l in ["eth0", "sw-eth0", "wlan0", "sw-wlan0", "other0", "sw-other0"] {
        ns.ip(&["link", "set", l, "up"]);
    }
    ns.ip(&["addr", "add", "192.168.178.99/24", "dev", "eth0"]);
    ns.ip(&["addr", "add", "10.9.9.9/24", "dev", "other0"]);
    // The administrator's own rule, at a priority inside wlan0's range: never ours to remove.
    ns.ip(&["rule", "add", "pref", "10150", "from", "192.168.178.200", "lookup", "102"]);
}

fn nm_up(action: &str, address: &str) -> Environment {
    env(&[
        ("NM_DISPATCHER_ACTION", action),
        ("DEVICE_IFACE", "wlan0"),
        ("CONNECTION_ID", "Wired connection 2"),
        ("IP4_NUM_ADDRESSES", "1"),
        ("IP4_ADDRESS_0", address),
    ])
}

#[test]
fn network_manager_up_change_and_down_give_exactly_the_planned_rules() {
    let Some(ns) = TestNs::new() else { return };
    let policy = PolicyFile::new("nm");
    host(&ns);
    let before = snapshot(&ns);

    // The lease arrives: NetworkManager has put the address on the link, then says `up`.
    ns.ip(&["addr", "add", "192.168.178.156/24", "dev", "wlan0"]);
    // The table's default route as an earlier multihome left it, not yet on-link: brought up to
    // date in place, not duplicated or lost.
    ns.ip(&["route", "add", "default", "via", "192.168.178.1", "dev", "wlan0", "table", "102", "proto", "77"]);
    // The table's default route goes via the router the event names, even before
    // NetworkManager's own default route is in main.
    dispatch(&ns, &policy, &["wlan0", "up"], nm_up("up", "192.168.178.156/24 192.168.178.1"));
    assert_eq!(ours(&ns), planned("192.168.178.156", "192.168.178.0/24", Some("192.168.178.1")));
    let once = snapshot(&ns);
    dispatch(&ns, &policy, &["wlan0", "up"], nm_up("up", "192.168.178.156/24 192.168.178.1"));
    assert_eq!(snapshot(&ns), once, "a second run changed something");

    // A new lease with another address and router (the kernel drops the routes through wlan0
    // with its last address). This event names no router: the one of NetworkManager's default
    // route in main is used.
    ns.ip(&["addr", "del", "192.168.178.156/24", "dev", "wlan0"]);
    ns.ip(&["addr", "add", "192.168.178.157/24", "dev", "wlan0"]);
    ns.ip(&["route", "add", "default", "via", "192.168.178.2", "dev", "wlan0", "proto", "dhcp", "metric", "101"]);
    dispatch(&ns, &policy, &["wlan0", "dhcp4-change"], nm_up("dhcp4-change", "192.168.178.157/24"));
    assert_eq!(ours(&ns), planned("192.168.178.157", "192.168.178.0/24", Some("192.168.178.2")));
    let changed = snapshot(&ns);
    dispatch(&ns, &policy, &["wlan0", "dhcp4-change"], nm_up("dhcp4-change", "192.168.178.157/24"));
    assert_eq!(snapshot(&ns), changed, "a second run changed something");

    // Events that are not ours change nothing: the static uplink, another interface, a
    // connectivity check.
    dispatch(
        &ns,
        &policy,
        &["eth0", "up"],
        env(&[("NM_DISPATCHER_ACTION", "up"), ("IP4_NUM_ADDRESSES", "1"), ("IP4_ADDRESS_0", "192.168.178.99/24 192.168.178.1")]),
    );
    dispatch(&ns, &policy, &["other0", "down"], env(&[("NM_DISPATCHER_ACTION", "down")]));
    dispatch(&ns, &policy, &["none", "connectivity-change"], env(&[("NM_DISPATCHER_ACTION", "connectivity-change")]));
    assert_eq!(snapshot(&ns), changed);

    // A rule of ours for this table from before the policy re-ranked wlan0 goes with the rest.
    ns.ip(&["rule", "add", "pref", "10000", "from", "192.168.178.150", "lookup", "102", "protocol", "77"]);

    // Down: exactly what multihome added goes; the administrator's rule stays.
    dispatch(&ns, &policy, &["wlan0", "down"], env(&[("NM_DISPATCHER_ACTION", "down"), ("DEVICE_IFACE", "wlan0")]));
    assert_eq!(ours(&ns), "");
    ns.ip(&["addr", "del", "192.168.178.157/24", "dev", "wlan0"]);
    assert_eq!(snapshot(&ns), before);
    dispatch(&ns, &policy, &["wlan0", "down"], env(&[("NM_DISPATCHER_ACTION", "down")]));
    assert_eq!(snapshot(&ns), before, "a second down changed something");
}

#[test]
fn networkd_routable_takes_the_prefix_from_the_kernel_and_no_carrier_removes() {
    let Some(ns) = TestNs::new() else { return };
    let policy = PolicyFile::new("networkd");
    host(&ns);
    let before = snapshot(&ns);
    ns.ip(&["addr", "add", "192.168.178.157/25", "dev", "wlan0"]);
    // networkd's DHCP default routes: main, and the uplink's table (RouteTable), so the hook
    // adds none there.
    ns.ip(&["route", "add", "default", "via", "192.168.178.129", "dev", "wlan0", "proto", "dhcp", "metric", "101"]);
    ns.ip(&["route", "add", "default", "via", "192.168.178.129", "dev", "wlan0", "proto", "dhcp", "table", "102"]);
    let routable = env(&[("IFACE", "wlan0"), ("STATE", "routable"), ("OperationalState", "routable"), ("IP_ADDRS", "192.168.178.157")]);
    dispatch(&ns, &policy, &[], routable.clone());
    assert_eq!(ours(&ns), planned("192.168.178.157", "192.168.178.128/25", None));
    let once = snapshot(&ns);
    dispatch(&ns, &policy, &[], routable);
    assert_eq!(snapshot(&ns), once);
    // An address the event names but the link no longer has gets no rules.
    dispatch(&ns, &policy, &[], env(&[("IFACE", "wlan0"), ("STATE", "routable"), ("IP_ADDRS", "192.168.178.157 192.168.178.158")]));
    assert_eq!(snapshot(&ns), once);
    // Administrative states say nothing about addresses.
    dispatch(&ns, &policy, &[], env(&[("IFACE", "wlan0"), ("STATE", "configured"), ("IP_ADDRS", "")]));
    assert_eq!(snapshot(&ns), once);
    dispatch(&ns, &policy, &[], env(&[("IFACE", "wlan0"), ("STATE", "no-carrier"), ("IP_ADDRS", "192.168.178.157")]));
    ns.ip(&["addr", "del", "192.168.178.157/25", "dev", "wlan0"]);
    assert_eq!(snapshot(&ns), before);
}

#[test]
fn hostile_input_is_refused_before_anything_is_read() {
    let args: Vec<OsString> = vec!["wlan0; reboot".into(), "up".into()];
    let missing = std::path::Path::new("/nonexistent/multihome.conf");
    let e = run(&args, &env(&[("NM_DISPATCHER_ACTION", "up")]), missing).unwrap_err();
    assert!(e.to_string().starts_with("refused: interface argument:"), "{e}");
}

/// Issue 23: `IFACE=up\xff` was read lossily as `up\u{FFFD}`, the name of another DHCP uplink,
/// whose rules and routes the event's no-carrier then removed. As bytes it is refused, and
/// that uplink keeps what the hook gave it.
#[test]
fn a_name_that_is_not_utf8_is_refused_and_never_taken_for_another_uplink() {
    use std::os::unix::ffi::OsStringExt;
    let Some(ns) = TestNs::new() else { return };
    let lossy = "up\u{FFFD}";
    let path = std::env::temp_dir().join(format!("multihome-dispatch-{}-lossy.conf", std::process::id()));
    std::fs::write(&path, format!("[Uplink]\nInterface={lossy}\nPriority=1\nDHCP=ipv4\n")).unwrap();
    let policy = PolicyFile(path);
    ns.ip(&["link", "add", lossy, "type", "veth", "peer", "name", "sw-up"]);
    ns.ip(&["link", "set", lossy, "up"]);
    ns.ip(&["link", "set", "sw-up", "up"]);
    ns.ip(&["addr", "add", "192.168.178.156/24", "dev", lossy]);
    dispatch(&ns, &policy, &[], env(&[("IFACE", lossy), ("STATE", "routable"), ("IP_ADDRS", "192.168.178.156")]));
    let given = ours(&ns);
    assert_eq!(given.lines().count(), 3, "{given}");

    let mut hostile = env(&[("STATE", "no-carrier")]);
    hostile.insert("IFACE".into(), OsString::from_vec(b"up\xff".to_vec()));
    let path = policy.0.clone();
    let e = ns.run(move || run(&[], &hostile, &path)).unwrap_err();
    assert_eq!(e.to_string(), r#"refused: IFACE: "up\xff" is not UTF-8; no dispatcher passes such a name and no uplink of a policy has one"#);
    assert_eq!(ours(&ns), given, "another uplink's rules or routes changed");
}

#[test]
fn each_uplink_has_its_own_rule_priorities() {
    for rank in 0..8 {
        let (mine, next) = (rule_priorities(rank), rule_priorities(rank + 1));
        assert!(mine.end <= next.start, "{mine:?} overlaps {next:?}");
        let addrs: Vec<ipnet::Ipv4Net> = (1..=50).map(|i| format!("192.168.178.{i}/24").parse().unwrap()).collect();
        let (rules, _) = crate::plan::dynamic_rules_and_routes(rank, 101, &addrs);
        assert!(rules.iter().all(|r| mine.contains(&r.priority)), "{rules:?} outside {mine:?}");
    }
}

#[test]
fn refresh_follows_the_kernels_addresses_without_an_event() {
    let Some(ns) = TestNs::new() else { return };
    host(&ns);
    let before = snapshot(&ns);
    let plan = crate::plan::plan(&crate::policy::parse("t", POLICY).unwrap());
    let refresh = |plan: &crate::plan::Plan| {
        let plan = plan.clone();
        ns.block_on(move || async move {
            let nl = crate::netlink::Netlink::connect().unwrap();
            let refreshed = super::hook::refresh(&plan, super::ipv6::AdvertisedRouter::Manager, &nl).await.unwrap();
            assert!(refreshed.swept.is_empty(), "{}", refreshed.swept);
            refreshed.uplinks.into_iter().map(|(i, o)| (i, o.changed_anything())).collect::<Vec<_>>()
        })
    };
    ns.ip(&["addr", "add", "192.168.178.160/24", "dev", "wlan0"]);
    ns.ip(&["addr", "add", "169.254.7.7/16", "dev", "wlan0"]);
    assert_eq!(refresh(&plan), vec![("wlan0".to_string(), true)]);
    assert_eq!(ours(&ns), planned("192.168.178.160", "192.168.178.0/24", None));
    assert_eq!(refresh(&plan), vec![("wlan0".to_string(), false)]);
    ns.ip(&["-4", "addr", "flush", "dev", "wlan0"]);
    assert_eq!(refresh(&plan), vec![("wlan0".to_string(), true)]);
    assert_eq!(snapshot(&ns), before);
}

/// wlan0 (DHCP) moves from table 102 to 202 and from rank 2 to rank 1 (eth0 is gone):
/// refresh after the apply leaves no rule or route of ours for table 102, keeps the daemon's
/// rule and table, and never touches what has another protocol (the administrator's rule in
/// table 102, the manager's route there).
#[test]
fn refresh_sweeps_what_an_earlier_policy_left_and_keeps_the_daemons() {
    let Some(ns) = TestNs::new() else { return };
    host(&ns);
    let old = crate::plan::plan(&crate::policy::parse("t", POLICY).unwrap());
    let new_policy = "[Uplink]\nInterface=wlan0\nPriority=2\nTable=202\nDHCP=ipv4\n";
    let new = crate::plan::plan(&crate::policy::parse("t", new_policy).unwrap());
    let refresh = |plan: &crate::plan::Plan| {
        let plan = plan.clone();
        ns.block_on(move || async move {
            let nl = crate::netlink::Netlink::connect().unwrap();
            super::hook::refresh(&plan, super::ipv6::AdvertisedRouter::Manager, &nl).await.unwrap()
        })
    };
    ns.ip(&["addr", "add", "192.168.178.160/24", "dev", "wlan0"]);
    ns.ip(&["route", "add", "default", "via", "192.168.178.1", "dev", "wlan0", "table", "102", "proto", "static"]);
    // The daemon's copy in main, as it keeps one while an uplink is demoted.
    ns.ip(&["route", "add", "default", "via", "192.168.178.1", "dev", "eth0", "metric", "99", "proto", "77", "onlink"]);
    refresh(&old);
    assert_eq!(ours(&ns).lines().filter(|l| l.contains("lookup 102") || l.contains("table 102")).count(), 3, "{}", ours(&ns));
    let unrelated = |ns: &TestNs| -> String { snapshot(ns).lines().filter(|l| !l.contains(" proto 77")).map(|l| format!("{l}\n")).collect() };
    let before = unrelated(&ns);

    let refreshed = refresh(&new);
    let now = ours(&ns);
    assert!(!now.contains("lookup 102") && !now.contains("table 102"), "left from table 102:\n{now}");
    assert_eq!(
        now,
        format!(
            "10000:\tfrom 192.168.178.160 lookup 202 proto 77\n\
             10001:\tfrom all to 192.168.178.160 lookup 202 proto 77\n\
             192.168.178.0/24 dev wlan0 table 202 proto 77 scope link src 192.168.178.160 \n\
             default via 192.168.178.1 dev eth0 proto 77 metric 99 onlink \n"
        )
    );
    assert_eq!(unrelated(&ns), before, "something without protocol 77 changed");
    // wlan0's own reconcile (table 202) adds; the sweep takes table 102's two rules and route.
    assert_eq!((refreshed.swept.rules.len(), refreshed.swept.routes.len()), (2, 1), "{}", refreshed.swept);
    let again = refresh(&new);
    assert!(again.swept.is_empty() && !again.uplinks[0].1.changed_anything(), "a second refresh changed something");

    // Without any DHCP uplink, the hook's rules and routes all go; the daemon's copy stays.
    let static_only = crate::plan::plan(&crate::policy::parse("t", &POLICY[..POLICY.find("\n[Uplink]\nInterface=wlan0").unwrap()]).unwrap());
    refresh(&static_only);
    assert_eq!(ours(&ns), "default via 192.168.178.1 dev eth0 proto 77 metric 99 onlink \n");
}

/// The IPv6 rules and routes tagged with multihome's protocol, as `ip -6` prints them.
fn ours6(ns: &TestNs) -> String {
    let all = format!("{}\n{}", ns.ip(&["-6", "rule", "show"]), ns.ip(&["-6", "route", "show", "table", "all"]));
    all.lines().filter(|l| l.contains(" proto 77")).map(|l| format!("{l}\n")).collect()
}

/// Under NetworkManager the hook copies the router NetworkManager advertised into main into
/// the uplink's table, follows it when it changes, removes it when it goes from main (lifetime
/// 0) or the uplink goes down, and leaves every other interface's router and table alone; under
/// networkd (which puts the router there itself) it copies nothing.
#[test]
fn the_advertised_router_is_copied_into_the_uplinks_table_and_follows_main() {
    let Some(ns) = TestNs::new() else { return };
    host(&ns);
    let before = format!("{}\n{}", ns.ip(&["-6", "rule", "show"]), ns.ip(&["-6", "route", "show", "table", "all"]));
    let plan = crate::plan::plan(&crate::policy::parse("t", "[Uplink]\nInterface=wlan0\nPriority=2\nIPv6AcceptRA=yes\n").unwrap());
    let reconcile = |up: bool, router: super::ipv6::AdvertisedRouter| {
        let plan = plan.clone();
        ns.block_on(move || async move {
            let nl = crate::netlink::Netlink::connect().unwrap();
            let ifindex = if up { Some(nl.ifindex("wlan0").await.unwrap()) } else { None };
            super::ipv6::reconcile(plan.uplink("wlan0").unwrap(), ifindex, router, &nl).await.unwrap()
        })
    };
    use super::ipv6::AdvertisedRouter::{Hook, Manager};
    ns.ip(&["-6", "addr", "add", "2001:db8:178::5/64", "dev", "wlan0", "nodad"]);
    // NetworkManager's routes from advertisements (protocol ra), on wlan0 and on eth0.
    ns.ip(&["-6", "route", "add", "default", "via", "fe80::1", "dev", "wlan0", "metric", "100", "proto", "ra"]);
    ns.ip(&["-6", "route", "add", "default", "via", "fe80::2", "dev", "eth0", "metric", "99", "proto", "ra"]);
    let rules = "10000:\tfrom 2001:db8:178::5 lookup 102 proto 77\n10001:\tfrom all to 2001:db8:178::5 lookup 102 proto 77\n";
    let copy = |via: &str| format!("default via {via} dev wlan0 table 102 proto 77 metric 1024 pref medium\n");

    assert_eq!(reconcile(true, Manager).routes_set, 0);
    assert_eq!(ours6(&ns), rules, "networkd's own router: no copy");
    let first = reconcile(true, Hook);
    assert_eq!((first.routes_set, first.routes_removed), (1, 0));
    assert_eq!(ours6(&ns), format!("{rules}{}", copy("fe80::1")));
    assert_eq!(reconcile(true, Hook), super::ipv6::Outcome6 { addresses: first.addresses.clone(), ..Default::default() }, "a second run changes nothing");

    // Another router takes over: the copy follows.
    ns.ip(&["-6", "route", "del", "default", "via", "fe80::1", "dev", "wlan0", "metric", "100"]);
    ns.ip(&["-6", "route", "add", "default", "via", "fe80::3", "dev", "wlan0", "metric", "100", "proto", "ra"]);
    reconcile(true, Hook);
    assert_eq!(ours6(&ns), format!("{rules}{}", copy("fe80::3")));
    // The router says it is no default router any more (lifetime 0): NetworkManager removes its
    // route, and the copy goes at the next run.
    ns.ip(&["-6", "route", "del", "default", "via", "fe80::3", "dev", "wlan0", "metric", "100"]);
    let gone = reconcile(true, Hook);
    assert_eq!((gone.routes_set, gone.routes_removed), (0, 1));
    assert_eq!(ours6(&ns), rules);
    // Down: nothing of the hook's stays.
    ns.ip(&["-6", "route", "add", "default", "via", "fe80::1", "dev", "wlan0", "metric", "100", "proto", "ra"]);
    reconcile(true, Hook);
    reconcile(false, Hook);
    assert_eq!(ours6(&ns), "");
    ns.ip(&["-6", "route", "del", "default", "via", "fe80::1", "dev", "wlan0", "metric", "100"]);
    ns.ip(&["-6", "route", "del", "default", "via", "fe80::2", "dev", "eth0", "metric", "99"]);
    ns.ip(&["-6", "addr", "del", "2001:db8:178::5/64", "dev", "wlan0"]);
    let after = format!("{}\n{}", ns.ip(&["-6", "rule", "show"]), ns.ip(&["-6", "route", "show", "table", "all"]));
    assert_eq!(after, before);
}
