//! What the seed policy (examples/seed.conf) must have made of a running machine, read from its
//! kernel: the rules, the tables, the metric-ordered default routes and the sysctls.

use super::machine::Machine;

pub const SEED_RULES: [&str; 6] = [
    "10000:\tfrom 192.168.178.99 lookup 101",
    "10001:\tfrom all to 192.168.178.99 lookup 101",
    "10100:\tfrom 192.168.178.98 lookup 102",
    "10101:\tfrom all to 192.168.178.98 lookup 102",
    "10200:\tfrom 192.168.178.97 lookup 103",
    "10201:\tfrom all to 192.168.178.97 lookup 103",
];

/// A shell test that holds once the manager has installed the seed's routes: each uplink's
/// default route in main and in its table (each link is configured on its own, in any order).
pub const SEED_ROUTES: &str = "test $(ip -4 route show table main default | grep -c 'via 192.168.178.1') -ge 3 && \
    for t in 101 102 103; do ip -4 route show table $t | grep -q default || exit 1; done";

/// Fails with what the machine holds unless the seed's policy is realised in its kernel.
pub fn assert_seed_holds(vm: &mut Machine) -> anyhow::Result<()> {
    let rules = vm.ok("ip -4 rule show")?;
    for rule in SEED_RULES {
        assert!(rules.lines().any(|l| l.starts_with(rule)), "rule {rule:?} missing:\n{rules}");
    }
    let main = vm.ok("ip -4 route show table main default")?;
    for (dev, metric) in [("eth0", 100), ("wlan1", 101), ("wlan0", 102)] {
        assert!(
            main.lines().any(|l| l.starts_with("default via 192.168.178.1") && l.contains(&format!("dev {dev} ")) && l.contains(&format!("metric {metric} "))),
            "main lacks the default route via {dev} at metric {metric}:\n{main}"
        );
    }
    for (dev, table) in [("eth0", 101), ("wlan1", 102), ("wlan0", 103)] {
        let t = vm.ok(&format!("ip -4 route show table {table}"))?;
        assert!(t.lines().any(|l| l.starts_with("default via 192.168.178.1") && l.contains(&format!("dev {dev} "))), "table {table}:\n{t}");
        assert!(t.lines().any(|l| l.starts_with("192.168.178.0/24") && l.contains(&format!("dev {dev} "))), "table {table}:\n{t}");
    }
    for dev in ["eth0", "wlan1", "wlan0"] {
        let got = vm.ok(&format!(
            "for k in ignore_routes_with_linkdown arp_ignore arp_announce rp_filter; do printf '%s=%s ' $k $(sysctl -n net.ipv4.conf.{dev}.$k); done"
        ))?;
        assert_eq!(got.trim(), "ignore_routes_with_linkdown=1 arp_ignore=1 arp_announce=2 rp_filter=2", "{dev}'s sysctls");
    }
    Ok(())
}

/// The routes and rules the daemon adds carry protocol 77 (src/numbers.rs); none may be left.
pub const DAEMON_LEFTOVERS: &str = "ip -4 route show table all proto 77; ip -4 rule show | grep -w 'proto 77' || true";
