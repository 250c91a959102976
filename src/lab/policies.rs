//! The policies the lab runs, shared by `multihome lab`, the lab tests and the benchmark. Every
//! address in them exists only inside the lab's namespaces.

/// examples/seed.conf: eth0, wlan1, wlan0 with static addresses, probing the lab's gateway and
/// internet host.
pub const SEED: &str = include_str!("../../examples/seed.conf");

/// eth0 static and first; wlan0 by DHCP from the lab's dnsmasq (rank 2 of 2: table 103, rules
/// at 10100 and 10101). No [Probe].
pub const DHCP_WLAN0: &str = "\
[Uplink]
Interface=eth0
Priority=1
Address=192.168.178.99/24
Gateway=192.168.178.1

[Uplink]
Interface=wlan0
Priority=3
DHCP=ipv4
";
