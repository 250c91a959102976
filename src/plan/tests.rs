use super::*;
use crate::policy;

const SEED: &str = include_str!("../../examples/seed.conf");

#[test]
fn seed_orders_uplinks_and_numbers_tables() {
    let plan = plan(&policy::parse("seed.conf", SEED).unwrap());
    let got: Vec<_> = plan.uplinks().iter().map(|u| (u.interface.as_str(), u.table, u.metric)).collect();
    assert_eq!(got, [("eth0", 101, 100), ("wlan1", 102, 101), ("wlan0", 103, 102)]);
}

#[test]
fn planning_is_deterministic_and_independent_of_section_order() {
    let policy = policy::parse("seed.conf", SEED).unwrap();
    let mut reversed = policy.clone();
    let policy::Failover::Routes(uplinks) = &mut reversed.failover else { panic!("the seed is Mode=routes") };
    uplinks.reverse();
    assert_eq!(plan(&policy), plan(&reversed));
}

#[test]
fn derived_tables_skip_explicit_and_reserved_ones() {
    let text = "[Uplink]\nInterface=a\nPriority=1\nAddress=10.0.0.2/24\nGateway=10.0.0.1\n\
                [Uplink]\nInterface=b\nPriority=2\nAddress=10.0.0.3/24\nGateway=10.0.0.1\nTable=101\n\
                [Uplink]\nInterface=c\nPriority=154\nAddress=10.0.0.4/24\nGateway=10.0.0.1\n";
    let plan = plan(&policy::parse("t", text).unwrap());
    let tables: Vec<_> = plan.uplinks().iter().map(|u| u.table).collect();
    assert_eq!(tables, [102, 101, 256]);
}

#[test]
fn both_families_share_the_uplinks_table_metric_and_rule_priorities() {
    let text = "[Uplink]\nInterface=eth0\nPriority=1\nAddress=192.168.178.99/24\nAddress=2001:db8:178::99/64\nGateway=192.168.178.1\nGateway=fe80::1\n\
                [Uplink]\nInterface=wlan1\nPriority=2\nDHCP=ipv6\n";
    let plan = plan(&policy::parse("t", text).unwrap());
    let eth0 = &plan.uplinks()[0];
    let v6 = eth0.ipv6.as_ref().unwrap();
    assert_eq!(v6.rules.iter().map(|r| (r.priority, r.table)).collect::<Vec<_>>(), eth0.rules.iter().map(|r| (r.priority, r.table)).collect::<Vec<_>>());
    let main: Vec<_> = v6.routes.iter().filter(|r| r.table == Table::Main).collect();
    assert_eq!(main.len(), 1);
    assert_eq!((main[0].metric, main[0].gateway), (Some(eth0.metric), Some("fe80::1".parse().unwrap())));
    // DHCPv6 names no router: the advertisements do, so they are on, and nothing is known yet.
    let wlan1 = plan.uplinks()[1].ipv6.as_ref().unwrap();
    assert!(wlan1.dhcp && wlan1.accept_ra && wlan1.routes.is_empty() && wlan1.rules.is_empty());
    assert_eq!(plan.uplinks()[1].addresses, Addresses::Static(Vec::new()));
}

#[test]
fn dhcp_yes_alone_leaves_ipv6_to_the_network_manager() {
    let alone = plan(&policy::parse("t", "[Uplink]\nInterface=eth0\nPriority=1\nDHCP=yes\n").unwrap());
    assert_eq!(alone.uplinks()[0].ipv6, None);
    assert!(!alone.sysctls.iter().any(|s| s.key.starts_with("net/ipv6/")));
    let with_ra = plan(&policy::parse("t", "[Uplink]\nInterface=eth0\nPriority=1\nDHCP=yes\nIPv6AcceptRA=yes\n").unwrap());
    let v6 = with_ra.uplinks()[0].ipv6.as_ref().unwrap();
    assert!(v6.dhcp && v6.accept_ra);
    assert!(with_ra.sysctls.iter().any(|s| s.key == "net/ipv6/conf/eth0/accept_ra_defrtr" && s.value == "0"));
}

#[test]
fn an_uplinks_own_probe_settings_replace_the_probe_sections_and_the_rest_falls_back() {
    let text = "[Probe]\nTarget=198.51.100.10\nInterval=300ms\n\
                [Uplink]\nInterface=a\nPriority=1\nAddress=10.0.0.2/24\nGateway=10.0.0.1\n\
                [Uplink]\nInterface=b\nPriority=2\nAddress=10.0.1.2/24\nGateway=10.0.1.1\nProbeTarget=10.0.1.1\nProbeTarget=203.0.113.53\n\
                [Uplink]\nInterface=c\nPriority=3\nDHCP=ipv4\nProbeInterval=5s\n\
                [Uplink]\nInterface=d\nPriority=4\nDHCP=ipv4\nProbeInterval=100ms\n";
    let plan = plan(&policy::parse("t", text).unwrap());
    let probe = |i: usize| &plan.uplinks()[i].probe;
    let ms = Duration::from_millis;
    let inet: Ipv4Addr = "198.51.100.10".parse().unwrap();
    assert_eq!((probe(0).targets.clone(), probe(0).interval, probe(0).timeout, probe(0).own), (vec![inet], ms(300), ms(300), false));
    assert_eq!(probe(1).targets, ["10.0.1.1".parse::<Ipv4Addr>().unwrap(), "203.0.113.53".parse().unwrap()]);
    assert_eq!((probe(1).interval, probe(1).own), (ms(300), true));
    // A longer interval keeps [Probe]'s timeout; a shorter one is the timeout too.
    assert_eq!((probe(2).targets.clone(), probe(2).interval, probe(2).timeout), (vec![inet], ms(5000), ms(300)));
    assert_eq!((probe(3).interval, probe(3).timeout), (ms(100), ms(100)));
}

#[test]
fn an_uplinks_own_ipv6_targets_replace_the_probe_sections_ipv6_ones_alone() {
    let text = "[Probe]\nTarget=198.51.100.10\nTarget=2001:db8:100::10\n\
                [Uplink]\nInterface=a\nPriority=1\nAddress=10.0.0.2/24\nAddress=2001:db8:1::2/64\nGateway=10.0.0.1\nGateway=fe80::1\nProbeTarget=2001:db8:1::1\n\
                [Uplink]\nInterface=b\nPriority=2\nAddress=10.0.1.2/24\nAddress=2001:db8:2::2/64\nGateway=10.0.1.1\nGateway=fe80::1\nProbeTarget=10.0.1.1\n";
    let plan = plan(&policy::parse("t", text).unwrap());
    let probe = |i: usize| &plan.uplinks()[i].probe;
    let (inet, inet6): (Ipv4Addr, Ipv6Addr) = ("198.51.100.10".parse().unwrap(), "2001:db8:100::10".parse().unwrap());
    assert_eq!((probe(0).targets.clone(), probe(0).targets6.clone(), probe(0).own), (vec![inet], vec!["2001:db8:1::1".parse::<Ipv6Addr>().unwrap()], true));
    assert_eq!((probe(1).targets.clone(), probe(1).targets6.clone()), (vec!["10.0.1.1".parse::<Ipv4Addr>().unwrap()], vec![inet6]));
}

#[test]
fn uplinks_with_targets_of_their_own_need_none_in_probe() {
    let own = "[Probe]\nInterval=1s\n[Uplink]\nInterface=a\nPriority=1\nDHCP=ipv4\nProbeTarget=10.0.0.1\n";
    let plan = plan(&policy::parse("t", own).unwrap());
    assert_eq!(plan.uplinks()[0].probe.targets, ["10.0.0.1".parse::<Ipv4Addr>().unwrap()]);
    let one_without = format!("{own}[Uplink]\nInterface=b\nPriority=2\nDHCP=ipv4\n");
    let err = policy::parse("t", &one_without).unwrap_err().to_string();
    assert!(err.contains("t:1: [Probe] has no Target=") && err.contains("(or ProbeTarget= in the [Uplink] of b)"), "{err}");
}
