//! The netlink edge against the real kernel, in a throwaway namespace per test. `ip` is the
//! independent witness: it sets up what is read and checks what is written.

use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt;
use ipnet::Ipv4Net;

use super::testns::{self, TestNs};
use super::{Event, Monitor, Netlink, OperState};
use crate::plan::{LEGACY_DAEMON_TABLE as DAEMON_TABLE, PROTOCOL, Route, Rule, Table};

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn addr(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// A veth pair a0/b0, both inside the namespace, a0 with 192.168.178.5/24 and up.
fn veth(ns: &TestNs) {
    ns.ip(&["link", "add", "a0", "type", "veth", "peer", "name", "b0"]);
    ns.ip(&["addr", "add", "192.168.178.5/24", "dev", "a0"]);
    ns.ip(&["link", "set", "a0", "up"]);
}

#[test]
fn reads_links_and_addresses() {
    let Some(ns) = TestNs::new() else { return };
    veth(&ns);
    ns.ip(&["addr", "add", "192.168.178.6/24", "dev", "a0"]);
    let index = ns.ip_json(&["link", "show", "a0"])[0]["ifindex"].as_u64().unwrap() as u32;
    let (no_carrier, with_carrier, addresses, missing) = ns.block_on(|| async {
        let nl = Netlink::connect().unwrap();
        let no_carrier = nl.link("a0").await.unwrap();
        // The peer up gives a0 its carrier.
        let out = std::process::Command::new("ip").args(["link", "set", "b0", "up"]).status().unwrap();
        assert!(out.success());
        let mut with_carrier = nl.link("a0").await.unwrap();
        for _ in 0..100 {
            if with_carrier.oper == OperState::Up {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            with_carrier = nl.link("a0").await.unwrap();
        }
        let addresses = nl.ipv4_addresses(no_carrier.index).await.unwrap();
        let missing = nl.ifindex("nope0").await.unwrap_err();
        (no_carrier, with_carrier, addresses, missing)
    });
    assert_eq!(no_carrier.index, index);
    assert_eq!(no_carrier.name, "a0");
    assert!(no_carrier.admin_up);
    assert!(!no_carrier.carrier);
    assert_eq!(no_carrier.oper, OperState::LowerLayerDown);
    assert!(with_carrier.carrier);
    assert_eq!(with_carrier.oper, OperState::Up);
    assert_eq!(addresses, vec![net("192.168.178.5/24"), net("192.168.178.6/24")]);
    assert!(missing.is_not_found(), "{missing}");
}

#[test]
fn adds_lists_and_deletes_only_its_own_rules() {
    let Some(ns) = TestNs::new() else { return };
    let from = Rule { priority: 10000, from: Some(net("192.168.178.5/32")), to: None, table: Table::Id(101) };
    let to = Rule { priority: 10001, from: None, to: Some(net("192.168.178.5/32")), table: Table::Id(101) };
    let big = Rule { priority: 32000, from: None, to: None, table: Table::Id(DAEMON_TABLE) };
    // A foreign rule that says the same as one of ours would, at a priority we use.
    ns.ip(&["rule", "add", "pref", "10100", "from", "192.168.178.6", "lookup", "102"]);
    let foreign = Rule { priority: 10100, from: Some(net("192.168.178.6/32")), to: None, table: Table::Id(102) };
    let rules = [from.clone(), to.clone(), big.clone()];
    let (ours, all, again, foreign_delete) = ns.block_on(move || async move {
        let nl = Netlink::connect().unwrap();
        for r in &rules {
            nl.add_rule(r).await.unwrap();
        }
        let again = nl.add_rule(&rules[0]).await.unwrap_err();
        let ours = nl.our_rules().await.unwrap();
        let all = nl.rules().await.unwrap();
        let foreign_delete = nl.delete_rule(&foreign).await.unwrap_err();
        for r in &rules {
            nl.delete_rule(r).await.unwrap();
        }
        assert!(nl.delete_rule(&rules[0]).await.unwrap_err().is_not_found());
        assert!(nl.our_rules().await.unwrap().is_empty());
        (ours, all, again, foreign_delete)
    });
    assert!(again.is_already_exists(), "{again}");
    assert!(foreign_delete.is_not_found(), "{foreign_delete}");
    let plan_rules: Vec<Rule> = ours.iter().map(|r| r.as_plan_rule().unwrap()).collect();
    assert_eq!(plan_rules, vec![from, to, big]);
    assert!(ours.iter().all(|r| r.protocol == PROTOCOL));
    // The kernel's own three rules and the foreign one are seen, and are not ours.
    let others: Vec<(u32, u32)> = all.iter().filter(|r| !r.is_ours()).map(|r| (r.priority, r.table)).collect();
    assert_eq!(others, vec![(0, 255), (10100, 102), (32766, 254), (32767, 253)]);
    // `ip` agrees: our rules are gone, the foreign one stayed.
    let left = ns.ip(&["rule", "show"]);
    assert!(left.contains("10100:\tfrom 192.168.178.6 lookup 102"), "{left}");
    assert!(!left.contains("10000:") && !left.contains("32000:"), "{left}");
}

#[test]
fn adds_replaces_and_deletes_only_its_own_routes() {
    let Some(ns) = TestNs::new() else { return };
    veth(&ns);
    ns.ip(&["link", "set", "b0", "up"]);
    ns.ip(&["route", "add", "10.0.0.0/8", "dev", "a0", "table", "101"]);
    let link =
        Route { destination: net("192.168.178.0/24"), gateway: None, table: Table::Id(101), metric: None, preferred_source: Some(addr("192.168.178.5")) };
    let default = Route { destination: net("0.0.0.0/0"), gateway: Some(addr("192.168.178.1")), table: Table::Id(101), metric: None, preferred_source: None };
    let moved = Route { gateway: Some(addr("192.168.178.2")), ..default.clone() };
    let main = Route { destination: net("0.0.0.0/0"), gateway: Some(addr("192.168.178.1")), table: Table::Main, metric: Some(100), preferred_source: None };
    let big = Route { table: Table::Id(DAEMON_TABLE), ..default.clone() };
    let foreign = Route { destination: net("10.0.0.0/8"), gateway: None, table: Table::Id(101), metric: None, preferred_source: None };
    let (l, d, m, b, f, mv) = (link.clone(), default.clone(), main.clone(), big.clone(), foreign.clone(), moved.clone());
    let (table, replaced, main_table, daemon_table, foreign_delete, after) = ns.block_on(move || async move {
        let nl = Netlink::connect().unwrap();
        let i = nl.ifindex("a0").await.unwrap();
        nl.add_route(&l, i).await.unwrap();
        nl.add_route(&d, i).await.unwrap();
        nl.add_route(&m, i).await.unwrap();
        nl.add_route(&b, i).await.unwrap();
        assert!(nl.add_route(&d, i).await.unwrap_err().is_already_exists());
        let e = nl.add_route(&f, 9999).await.unwrap_err();
        assert!(e.is_not_found(), "{e}");
        let table = nl.routes_in(Table::Id(101)).await.unwrap();
        nl.replace_route(&mv, i).await.unwrap();
        let replaced = nl.routes_in(Table::Id(101)).await.unwrap();
        let main_table = nl.routes_in(Table::Main).await.unwrap();
        let daemon_table = nl.routes_in(Table::Id(DAEMON_TABLE)).await.unwrap();
        let foreign_delete = nl.delete_route(&f, i).await.unwrap_err();
        for r in [&l, &mv, &m, &b] {
            nl.delete_route(r, i).await.unwrap();
        }
        assert!(nl.delete_route(&l, i).await.unwrap_err().is_not_found());
        let after = nl.routes_in(Table::Id(101)).await.unwrap();
        (table, replaced, main_table, daemon_table, foreign_delete, after)
    });
    let ours = |rs: &[super::KernelRoute]| -> Vec<Route> { rs.iter().filter(|r| r.is_ours()).map(|r| r.as_plan_route()).collect() };
    let mut got = ours(&table);
    got.sort_by_key(|r| r.destination.prefix_len());
    assert_eq!(got, vec![default, link]);
    assert!(table.iter().filter(|r| r.is_ours()).all(|r| r.ifindex.is_some()));
    assert!(table.iter().any(|r| r.is_ours() && r.link_scope), "{table:?}");
    // Gateway routes go in on-link; link routes have no gateway to be on-link about.
    assert!(table.iter().filter(|r| r.is_ours()).all(|r| r.on_link == r.gateway.is_some()), "{table:?}");
    assert!(ours(&replaced).contains(&moved) && ours(&replaced).len() == 2, "{replaced:?}");
    assert_eq!(ours(&main_table), vec![main]);
    assert_eq!(ours(&daemon_table), vec![big]);
    assert!(foreign_delete.is_not_found(), "{foreign_delete}");
    let left: Vec<Route> = after.iter().map(|r| r.as_plan_route()).collect();
    assert_eq!(left, vec![foreign]);
    assert_eq!(ns.ip(&["route", "show", "table", "101"]).trim(), "10.0.0.0/8 dev a0 scope link");
}

#[test]
fn a_gateway_route_without_onlink_is_the_same_route_but_not_up_to_date() {
    let Some(ns) = TestNs::new() else { return };
    veth(&ns);
    ns.ip(&["link", "set", "b0", "up"]);
    // As multihome installed it before gateway routes went in on-link.
    ns.ip(&["route", "add", "default", "via", "192.168.178.1", "dev", "a0", "table", "101", "proto", "77"]);
    let d = Route { destination: net("0.0.0.0/0"), gateway: Some(addr("192.168.178.1")), table: Table::Id(101), metric: None, preferred_source: None };
    let (old, new) = ns.block_on(move || async move {
        let nl = Netlink::connect().unwrap();
        let i = nl.ifindex("a0").await.unwrap();
        let judge = |rs: Vec<super::KernelRoute>| rs.iter().map(|r| (r.is_same(&d, i), r.is_installed_as(&d, i))).collect::<Vec<_>>();
        let old = judge(nl.routes_in(Table::Id(101)).await.unwrap());
        nl.replace_route(&d, i).await.unwrap();
        (old, judge(nl.routes_in(Table::Id(101)).await.unwrap()))
    });
    assert_eq!(old, vec![(true, false)]);
    assert_eq!(new, vec![(true, true)], "replace brings it up to date in place");
    assert_eq!(ns.ip(&["route", "show", "table", "101"]).trim(), "default via 192.168.178.1 dev a0 proto 77 onlink");
}

#[test]
fn monitor_reports_links_addresses_routes_and_rules() {
    let Some(ns) = TestNs::new() else { return };
    veth(&ns);
    let name = ns.name().to_string();
    let events = ns.block_on(move || async move {
        let mut monitor = Monitor::connect().unwrap();
        let ip = |args: &[&str]| testns::ip_in(&name, args);
        ip(&["addr", "add", "192.168.178.7/24", "dev", "a0"]);
        ip(&["route", "add", "198.51.100.0/24", "via", "192.168.178.1", "table", "101"]);
        ip(&["rule", "add", "pref", "10000", "from", "192.168.178.7", "lookup", "101"]);
        ip(&["link", "set", "a0", "down"]);
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, monitor.next()).await {
            let done = matches!(&e, Event::Link(l) if l.name == "a0" && !l.admin_up);
            events.push(e);
            if done {
                break;
            }
        }
        events
    });
    let has = |f: &dyn Fn(&Event) -> bool| events.iter().any(f);
    assert!(has(&|e| matches!(e, Event::AddressAdded { address, .. } if *address == net("192.168.178.7/24"))), "{events:#?}");
    assert!(has(&|e| matches!(e, Event::RouteAdded(r) if r.table == 101 && r.destination == net("198.51.100.0/24"))), "{events:#?}");
    assert!(has(&|e| matches!(e, Event::RuleAdded(r) if r.priority == 10000 && r.table == 101)), "{events:#?}");
    // Down takes the addresses' routes with it; the monitor says so.
    assert!(has(&|e| matches!(e, Event::Link(l) if l.name == "a0" && !l.admin_up)), "{events:#?}");
}
