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
