//! The path manager edge against the real kernel, in a throwaway namespace; `ip mptcp` is the
//! independent witness.

use super::super::Netlink;
use super::super::testns::TestNs;
use super::{Flags, sync};
use crate::plan::plan;
use crate::policy::parse;

const POLICY: &str = "[Uplink]\nInterface=eth0\nPriority=1\nAddress=192.168.178.99/24\nGateway=192.168.178.1\n\
    [Uplink]\nInterface=wlan1\nPriority=2\nDHCP=ipv4\n\
    [Uplink]\nInterface=wlan0\nPriority=3\nAddress=192.168.178.97/24\nGateway=192.168.178.1\n";

/// `ip mptcp endpoint show`, a line each, sorted (the kernel lists them in insertion order).
fn endpoints(ns: &TestNs) -> Vec<String> {
    let mut lines: Vec<String> = ns.ip(&["mptcp", "endpoint", "show"]).lines().map(|l| l.trim().to_string()).collect();
    lines.sort();
    lines
}

#[test]
fn sync_makes_the_plans_endpoints_leaves_others_alone_and_is_idempotent() {
    let Some(ns) = TestNs::new() else { return };
    if !std::path::Path::new("/proc/sys/net/mptcp/enabled").exists() {
        assert!(std::env::var_os("CI").is_none(), "this kernel has no MPTCP, and CI must run this test");
        return;
    }
    for (dev, peer) in [("eth0", "p0"), ("wlan1", "p1"), ("wlan0", "p2"), ("lan9", "p3")] {
        ns.ip(&["link", "add", dev, "type", "veth", "peer", "name", peer]);
        ns.ip(&["link", "set", dev, "up"]);
    }
    ns.ip(&["addr", "add", "192.168.178.99/24", "dev", "eth0"]);
    ns.ip(&["addr", "add", "192.168.178.97/24", "dev", "wlan0"]);
    ns.ip(&["addr", "add", "10.9.0.2/24", "dev", "lan9"]);
    // An administrator's endpoints: one on a link outside the policy, one in multihome's id
    // range on that link too. Neither may be touched.
    ns.ip(&["mptcp", "endpoint", "add", "10.9.0.2", "dev", "lan9", "signal"]);
    ns.ip(&["mptcp", "endpoint", "add", "10.9.0.3", "dev", "lan9", "id", "245", "subflow"]);
    ns.ip(&["mptcp", "limits", "set", "subflows", "1", "add_addr_accepted", "3"]);
    let admin = endpoints(&ns);

    let seed = plan(&parse("p", POLICY).unwrap());
    let run = |p: crate::plan::Plan| ns.block_on(move || async move { sync(&p, &Netlink::connect().unwrap(), Flags::Planned).await.unwrap() });
    let first = run(seed.clone());
    assert!(first.changed_anything(), "{first}");
    assert_eq!(first.raised, Some((1, 3)), "{first}");
    let mut want = admin.clone();
    // wlan1 has no lease yet: no endpoint.
    want.extend(["192.168.178.99 id 240 subflow dev eth0".to_string(), "192.168.178.97 id 242 subflow backup dev wlan0".to_string()]);
    want.sort();
    assert_eq!(endpoints(&ns), want);
    assert_eq!(ns.ip(&["mptcp", "limits", "show"]).trim(), "add_addr_accepted 3 subflows 3");

    let again = run(seed.clone());
    assert!(!again.changed_anything(), "a second sync changed something: {again}");

    // The lease arrives, then changes: the endpoint follows it.
    ns.ip(&["addr", "add", "192.168.178.150/24", "dev", "wlan1"]);
    let leased = run(seed.clone());
    assert_eq!(leased.added, vec!["192.168.178.150 id 241 dev wlan1 subflow"], "{leased}");
    ns.ip(&["addr", "del", "192.168.178.150/24", "dev", "wlan1"]);
    ns.ip(&["addr", "add", "192.168.178.151/24", "dev", "wlan1"]);
    run(seed.clone());
    assert!(endpoints(&ns).contains(&"192.168.178.151 id 241 subflow dev wlan1".to_string()), "{:?}", endpoints(&ns));

    // The daemon removed eth0's endpoint at its carrier loss (the peers are down: no link here
    // has carrier): the hook's sync does not add it back until the carrier returns (apply,
    // below, adds the others back whatever the carrier).
    ns.ip(&["mptcp", "endpoint", "delete", "id", "240"]);
    let hook = |p: crate::plan::Plan| ns.block_on(move || async move { sync(&p, &Netlink::connect().unwrap(), Flags::Kept).await.unwrap() });
    let without_carrier = hook(seed.clone());
    assert!(without_carrier.added.is_empty(), "{without_carrier}");
    // Nor keeps one on such a link: wlan1's and wlan0's go too.
    assert_eq!(without_carrier.removed.len(), 2, "{without_carrier}");
    ns.ip(&["link", "set", "p0", "up"]);
    assert_eq!(hook(seed.clone()).added, vec!["192.168.178.99 id 240 dev eth0 subflow"]);

    // An administrator who wanted more subflows keeps them.
    ns.ip(&["mptcp", "limits", "set", "subflows", "8"]);
    assert_eq!(run(seed.clone()).raised, None);

    // MPTCP=no: multihome's endpoints go, the administrator's and the limits stay.
    let off = run(plan(&parse("p", &format!("[Policy]\nMPTCP=no\n{POLICY}")).unwrap()));
    assert_eq!(off.removed.len(), 3, "{off}");
    assert_eq!(endpoints(&ns), admin);
    assert_eq!(ns.ip(&["mptcp", "limits", "show"]).trim(), "add_addr_accepted 3 subflows 8");
}

/// Issue 22: a /proc/sys the sandbox hides (ProcSubset=pid) is "cannot tell", never "off".
#[test]
fn a_hidden_proc_sys_is_unknown_not_off() {
    use super::{Enabled, enabled_in};
    let dir = std::env::temp_dir().join(format!("multihome-sysctl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(enabled_in(&dir), Enabled::Unknown, "an empty /proc/sys (a tmpfs over it, ProcSubset=pid)");
    std::fs::create_dir_all(dir.join("net/ipv4")).unwrap();
    assert_eq!(enabled_in(&dir), Enabled::No, "other sysctls readable, no MPTCP's: a kernel without MPTCP");
    std::fs::create_dir_all(dir.join("net/mptcp")).unwrap();
    for (value, want) in [("1\n", Enabled::Yes), ("0\n", Enabled::No)] {
        std::fs::write(dir.join("net/mptcp/enabled"), value).unwrap();
        assert_eq!(enabled_in(&dir), want, "net.mptcp.enabled = {value}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
