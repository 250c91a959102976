//! The policies the lab runs, shared by `multihome lab`, the lab tests and the benchmark. Every
//! address in them exists only inside the lab's namespaces.

/// examples/seed.conf: eth0, wlan1, wlan0 with static addresses, probing the lab's gateway and
/// internet host.
pub const SEED: &str = include_str!("../../examples/seed.conf");

/// The seed's bond (its second answer) on the lab's links: bond0 with eth0's seed address over
/// eth0 (primary), wlan1 and wlan0, with the seed's MII monitor and delays (miimon 10,
/// downdelay 10, updelay 4000). `multihome lab --mode bond` and tests/lab_bond.rs.
pub const SEED_BOND: &str = "\
[Policy]
Backend=networkd
Mode=bond

[Bond]
Name=bond0
Address=192.168.178.99/24
Gateway=192.168.178.1
Primary=eth0
MIIMonitorSec=10ms
UpDelaySec=4s
DownDelaySec=10ms

[Uplink]
Interface=eth0
Priority=1

[Uplink]
Interface=wlan1
Priority=2

[Uplink]
Interface=wlan0
Priority=3
";

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

/// The seed, dual-stack, on the lab's IPv6 LAN 2001:db8:178::/64 (router 2001:db8:178::1 and
/// fe80::1, advertising the prefix): eth0 static with the link-local router and SLAAC beside
/// it, wlan1 static with the global router, wlan0 static with the advertised router and SLAAC.
/// No [Probe]: the daemon's IPv6 probing is not in yet.
pub const DUAL_STACK: &str = "\
[Uplink]
Interface=eth0
Priority=1
Address=192.168.178.99/24
Address=2001:db8:178::99/64
Gateway=192.168.178.1
Gateway=fe80::1
IPv6AcceptRA=yes

[Uplink]
Interface=wlan1
Priority=2
Address=192.168.178.98/24
Address=2001:db8:178::98/64
Gateway=192.168.178.1
Gateway=2001:db8:178::1

[Uplink]
Interface=wlan0
Priority=3
Address=192.168.178.97/24
Address=2001:db8:178::97/64
Gateway=192.168.178.1
IPv6AcceptRA=yes
";

/// [`DUAL_STACK`] with static IPv6 alone (no advertisements accepted), as the NetworkManager
/// backend realises it: eth0 and wlan0 with the link-local router, wlan1 with the global one.
pub const STATIC_DUAL_STACK: &str = "\
[Uplink]
Interface=eth0
Priority=1
Address=192.168.178.99/24
Address=2001:db8:178::99/64
Gateway=192.168.178.1
Gateway=fe80::1

[Uplink]
Interface=wlan1
Priority=2
Address=192.168.178.98/24
Address=2001:db8:178::98/64
Gateway=192.168.178.1
Gateway=2001:db8:178::1

[Uplink]
Interface=wlan0
Priority=3
Address=192.168.178.97/24
Address=2001:db8:178::97/64
Gateway=192.168.178.1
Gateway=fe80::1
";
