use super::*;
use crate::policy;

const SEED: &str = include_str!("../../examples/seed.conf");

#[test]
fn seed_orders_uplinks_and_numbers_tables() {
    let plan = plan(&policy::parse("seed.conf", SEED).unwrap());
    let got: Vec<_> = plan.uplinks.iter().map(|u| (u.interface.as_str(), u.table, u.metric)).collect();
    assert_eq!(got, [("eth0", 101, 100), ("wlan1", 102, 101), ("wlan0", 103, 102)]);
}

#[test]
fn planning_is_deterministic_and_independent_of_section_order() {
    let policy = policy::parse("seed.conf", SEED).unwrap();
    let mut reversed = policy.clone();
    reversed.uplinks.reverse();
    assert_eq!(plan(&policy), plan(&reversed));
}

#[test]
fn derived_tables_skip_explicit_and_reserved_ones() {
    let text = "[Uplink]\nInterface=a\nPriority=1\nAddress=10.0.0.2/24\nGateway=10.0.0.1\n\
                [Uplink]\nInterface=b\nPriority=2\nAddress=10.0.0.3/24\nGateway=10.0.0.1\nTable=101\n\
                [Uplink]\nInterface=c\nPriority=154\nAddress=10.0.0.4/24\nGateway=10.0.0.1\n";
    let plan = plan(&policy::parse("t", text).unwrap());
    let tables: Vec<_> = plan.uplinks.iter().map(|u| u.table).collect();
    assert_eq!(tables, [102, 101, 256]);
}

#[test]
fn an_uplinks_own_probe_settings_replace_the_probe_sections_and_the_rest_falls_back() {
    let text = "[Probe]\nTarget=198.51.100.10\nInterval=300ms\n\
                [Uplink]\nInterface=a\nPriority=1\nAddress=10.0.0.2/24\nGateway=10.0.0.1\n\
                [Uplink]\nInterface=b\nPriority=2\nAddress=10.0.1.2/24\nGateway=10.0.1.1\nProbeTarget=10.0.1.1\nProbeTarget=203.0.113.53\n\
                [Uplink]\nInterface=c\nPriority=3\nDHCP=ipv4\nProbeInterval=5s\n\
                [Uplink]\nInterface=d\nPriority=4\nDHCP=ipv4\nProbeInterval=100ms\n";
    let plan = plan(&policy::parse("t", text).unwrap());
    let probe = |i: usize| &plan.uplinks[i].probe;
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
fn uplinks_with_targets_of_their_own_need_none_in_probe() {
    let own = "[Probe]\nInterval=1s\n[Uplink]\nInterface=a\nPriority=1\nDHCP=ipv4\nProbeTarget=10.0.0.1\n";
    let plan = plan(&policy::parse("t", own).unwrap());
    assert_eq!(plan.uplinks[0].probe.targets, ["10.0.0.1".parse::<Ipv4Addr>().unwrap()]);
    let one_without = format!("{own}[Uplink]\nInterface=b\nPriority=2\nDHCP=ipv4\n");
    let err = policy::parse("t", &one_without).unwrap_err().to_string();
    assert!(err.contains("t:1: [Probe] has no Target=") && err.contains("(or ProbeTarget= in the [Uplink] of b)"), "{err}");
}
