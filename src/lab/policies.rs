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

/// The lab's bond with the daemon probing through it (`multihome lab --mode bond --fault
/// silent`): the gateway and the internet host as targets, and ProbeFailover=yes, so a silent
/// failure behind the primary (its MII up) makes the daemon switch the active slave.
pub fn seed_bond_probe() -> String {
    SEED_BOND
        .replace("[Bond]\n", "[Probe]\nTarget=192.168.178.1\nTarget=198.51.100.10\n\n[Bond]\n")
        .replace("DownDelaySec=10ms\n", "DownDelaySec=10ms\nProbeFailover=yes\n")
}

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
/// No [Probe] ([`dual_stack_probed`] has one).
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

/// [`DUAL_STACK`] with the daemon's probes for both families: the gateway and the internet host
/// of each, so each uplink's IPv4 and IPv6 are judged apart.
pub fn dual_stack_probed() -> String {
    format!("[Probe]\nTarget=192.168.178.1\nTarget=198.51.100.10\nTarget=2001:db8:178::1\nTarget=2001:db8:100::10\n\n{DUAL_STACK}")
}

/// [`SEED`], dual-stack, for `multihome lab`: each uplink also has its static IPv6 address on
/// the lab's IPv6 LAN (eth0 and wlan0 with the link-local router, wlan1 with the global one, no
/// SLAAC, so each source names its uplink), and `[Probe]` the IPv6 router and internet host.
pub fn seed_dual_stack() -> String {
    SEED.replace("Target=198.51.100.10\n", "Target=198.51.100.10\nTarget=2001:db8:178::1\nTarget=2001:db8:100::10\n")
        .replace(
            "Address=192.168.178.99/24\nGateway=192.168.178.1\n",
            "Address=192.168.178.99/24\nGateway=192.168.178.1\nAddress=2001:db8:178::99/64\nGateway=fe80::1\n",
        )
        .replace(
            "Address=192.168.178.98/24\nGateway=192.168.178.1\n",
            "Address=192.168.178.98/24\nGateway=192.168.178.1\nAddress=2001:db8:178::98/64\nGateway=2001:db8:178::1\n",
        )
        .replace(
            "Address=192.168.178.97/24\nGateway=192.168.178.1\n",
            "Address=192.168.178.97/24\nGateway=192.168.178.1\nAddress=2001:db8:178::97/64\nGateway=fe80::1\n",
        )
}

/// [`seed_dual_stack`] with the global router 2001:db8:178::1 as every uplink's IPv6 `Gateway=`,
/// as static IPv6 setups often have it: such uplinks keep `ignore_routes_with_linkdown=0` (see
/// `plan::sysctl`), so at carrier loss the kernel goes on using their routes and the daemon takes
/// them out of use (tests/lab_daemon_ipv6.rs).
pub fn seed_global_router6() -> String {
    seed_dual_stack().replace("Gateway=fe80::1\n", "Gateway=2001:db8:178::1\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lab's dual-stack seed is the seed with IPv6 on every uplink (a changed seed.conf that
    /// the insertions no longer find fails here, not in the lab).
    #[test]
    fn the_dual_stack_seed_gives_every_uplink_ipv6_and_ipv6_targets() {
        let policy = crate::policy::parse("seed-dual-stack", &seed_dual_stack()).unwrap();
        let plan = crate::plan::plan(&policy);
        assert_eq!(plan.uplinks().len(), 3);
        for (u, (iface, addr)) in plan.uplinks().iter().zip(super::super::ipv6::STATIC_ADDRESSES6) {
            assert_eq!(u.interface, iface);
            assert_eq!(u.ipv6.as_ref().map(|v6| v6.addresses[0].addr()), Some(addr), "{iface}");
        }
        assert_eq!(policy.probe.unwrap().targets6.len(), 2);
    }

    /// Every uplink of the global-router seed has the global router, and so keeps its IPv6
    /// routes at carrier loss (the case the daemon covers).
    #[test]
    fn the_global_router_seed_gives_every_uplink_a_global_router() {
        let plan = crate::plan::plan(&crate::policy::parse("seed-global-router6", &seed_global_router6()).unwrap());
        assert_eq!(plan.uplinks().len(), 3);
        for u in plan.uplinks() {
            let v6 = u.ipv6.as_ref().unwrap();
            assert_eq!(v6.gateway, Some(super::super::ipv6::GATEWAY6), "{}", u.interface);
            let key = format!("net/ipv6/conf/{}/ignore_routes_with_linkdown", u.interface);
            assert_eq!(plan.sysctls.iter().find(|s| s.key == key).map(|s| s.value.as_str()), Some("0"), "{key}");
        }
    }
}
