//! IPv6 on the seed's network: the router's LAN gets 2001:db8:178::/64 (2001:db8:178::1, and
//! fe80::1 as a link-local router address), advertised by dnsmasq for SLAAC, and on request
//! for DHCPv6 too, served from [`DHCPV6_FIRST`] on; the internet host gets
//! 2001:db8:100::10 behind it. Only inside the lab's namespaces, like the IPv4 side.

use std::net::Ipv6Addr;
use std::time::Duration;

use anyhow::{Context, bail};

use super::netns::{ip, run};
use super::topology::{Names, UPLINKS};
use super::{Lab, echo};

pub const PREFIX: &str = "2001:db8:178::/64";
pub const GATEWAY6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x178, 0, 0, 0, 0, 1);
pub const INTERNET6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0x10);
/// The DHCPv6 server's range (`LabOptions::dhcpv6`): 2001:db8:178::1000 to ::1fff.
pub const DHCPV6_FIRST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x178, 0, 0, 0, 0, 0x1000);
pub const DHCPV6_LAST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x178, 0, 0, 0, 0, 0x1fff);
/// How long the router's advertisements say it is a default router (s), unless readvertised.
pub const ROUTER_LIFETIME: u32 = 600;
const RA_LOG: &str = "dnsmasq-ra.log";
/// The static IPv6 addresses of `policies::DUAL_STACK`.
pub const STATIC_ADDRESSES6: [(&str, Ipv6Addr); 3] = [
    ("eth0", Ipv6Addr::new(0x2001, 0xdb8, 0x178, 0, 0, 0, 0, 0x99)),
    ("wlan1", Ipv6Addr::new(0x2001, 0xdb8, 0x178, 0, 0, 0, 0, 0x98)),
    ("wlan0", Ipv6Addr::new(0x2001, 0xdb8, 0x178, 0, 0, 0, 0, 0x97)),
];

/// Addresses and routes of the IPv6 side. Duplicate address detection is off everywhere
/// (`nodad`, `accept_dad=0` in the host): each address is unique by construction, and DAD would
/// only hold every address tentative for a second or more after each carrier change. Multicast
/// snooping is off on the bridges, so neighbour discovery and advertisements reach every port
/// without an MLD querier.
pub fn build(n: &Names) -> anyhow::Result<()> {
    let sysctl = |ns: &str, kv: &str| run("ip", &["netns", "exec", ns, "sysctl", "-qw", kv]);
    for ns in [n.host(), n.router(), n.internet()].iter().chain(UPLINKS.iter().map(|u| n.switch(u)).collect::<Vec<_>>().iter()) {
        sysctl(ns, "net.ipv6.conf.all.accept_dad=0")?;
        sysctl(ns, "net.ipv6.conf.default.accept_dad=0")?;
    }
    for u in UPLINKS {
        sysctl(&n.host(), &format!("net.ipv6.conf.{u}.accept_dad=0"))?;
        ip(&n.switch(u), &["link", "set", "br0", "type", "bridge", "mcast_snooping", "0"])?;
    }
    let (router, inet) = (n.router(), n.internet());
    ip(&router, &["link", "set", "br0", "type", "bridge", "mcast_snooping", "0"])?;
    ip(&router, &["-6", "addr", "add", "2001:db8:178::1/64", "dev", "br0", "nodad"])?;
    ip(&router, &["-6", "addr", "add", "fe80::1/64", "dev", "br0", "nodad"])?;
    ip(&router, &["-6", "addr", "add", "2001:db8:100::1/64", "dev", "wan", "nodad"])?;
    sysctl(&router, "net.ipv6.conf.all.forwarding=1")?;
    ip(&inet, &["-6", "addr", "add", "2001:db8:100::10/64", "dev", "wan", "nodad"])?;
    ip(&inet, &["-6", "route", "add", "default", "via", "2001:db8:100::1"])?;
    Ok(())
}

impl Lab {
    /// dnsmasq advertising the LAN's prefix every few seconds, and at once to a router
    /// solicitation: for SLAAC only (no DHCP, no DNS), or with `LabOptions::dhcpv6` also
    /// asking for DHCPv6 (the M flag) and serving it from [`DHCPV6_FIRST`] on, leases of 2
    /// minutes (dnsmasq's shortest), so every uplink that takes the advertisements gets a SLAAC
    /// and a DHCPv6 address.
    pub(super) fn start_router_advertisements(&mut self) -> anyhow::Result<()> {
        self.advertise(ROUTER_LIFETIME)?;
        self._servers.push(echo::udp_source_echo(&self.names.internet(), INTERNET6)?);
        Ok(())
    }

    /// The router advertises itself as a default router for `lifetime` seconds from now on:
    /// its advertising dnsmasq is replaced by one that says so (at once, then every 4 s).
    pub fn readvertise(&mut self, lifetime: u32) -> anyhow::Result<()> {
        if let Some(i) = self.spawned.iter().position(|s| s.log.ends_with(RA_LOG)) {
            let mut old = self.spawned.remove(i);
            let _ = old.signal(nix::sys::signal::Signal::SIGKILL);
            let _ = old.child.wait();
        }
        self.advertise(lifetime)
    }

    fn advertise(&mut self, lifetime: u32) -> anyhow::Result<()> {
        let log = self.dir.join("log").join(RA_LOG);
        let range = if self.options.dhcpv6 {
            format!("--dhcp-range={DHCPV6_FIRST},{DHCPV6_LAST},slaac,64,2m")
        } else {
            "--dhcp-range=2001:db8:178::,ra-only,64,10m".to_string()
        };
        let leases = format!("--dhcp-leasefile={}", self.dir.join("dnsmasq-dhcpv6.leases").display());
        let ra_param = format!("--ra-param=br0,4,{lifetime}");
        let args = ["--enable-ra", range.as_str(), ra_param.as_str(), leases.as_str()];
        let dnsmasq = self.router_dnsmasq(&args, &log)?;
        self.spawned.push(dnsmasq);
        Ok(())
    }

    /// Waits until `uplink` has an address from the DHCPv6 server's range.
    pub fn wait_for_dhcpv6(&self, uplink: &str, within: Duration) -> anyhow::Result<Ipv6Addr> {
        let mut found = None;
        if self
            .wait_for(within, || {
                found = self.addresses6(uplink).into_iter().find(|a| (DHCPV6_FIRST..=DHCPV6_LAST).contains(a));
                found.is_some()
            })
            .is_err()
        {
            bail!("{uplink} got no DHCPv6 address within {within:?}: {:?}\n{}", self.addresses6(uplink), self.log(RA_LOG));
        }
        Ok(found.expect("found above"))
    }

    /// The host's global IPv6 addresses on `uplink`, static and SLAAC, that can be used (not
    /// tentative).
    pub fn addresses6(&self, uplink: &str) -> Vec<Ipv6Addr> {
        let Ok(json) = self.ip_host(&["-6", "-j", "addr", "show", "dev", uplink, "scope", "global"]) else {
            return Vec::new();
        };
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        v[0]["addr_info"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["tentative"].as_bool() != Some(true))
            .filter_map(|a| a["local"].as_str()?.parse().ok())
            .collect()
    }

    /// One new outbound IPv6 "connection" (wildcard source): the source the internet saw.
    pub fn outbound6_source(&self, timeout: Duration) -> Option<Ipv6Addr> {
        match echo::udp_probe_any(&self.host(), INTERNET6.into(), timeout).ok().flatten() {
            Some(std::net::IpAddr::V6(a)) => Some(a),
            _ => None,
        }
    }

    /// Waits until new IPv6 connections leave with an address of `uplink` (its static one or
    /// a SLAAC one: the kernel picks among the outgoing interface's addresses).
    pub fn outbound6_settles_on(&self, uplink: &str, within: Duration) -> anyhow::Result<()> {
        let mut last = None;
        self.wait_for(within, || {
            last = self.outbound6_source(Duration::from_millis(300));
            last.is_some_and(|a| self.addresses6(uplink).contains(&a))
        })
        .map_err(|_| {
            anyhow::anyhow!(
                "new IPv6 connections did not move to {uplink} ({:?}) within {within:?}; the last left with {last:?}\n{}",
                self.addresses6(uplink),
                self.ip_host(&["-6", "route"]).unwrap_or_default()
            )
        })
    }

    /// `multihome dispatch` in the host as networkd-dispatcher runs it for `iface` in `state`.
    pub fn dispatch_networkd(&self, iface: &str, state: &str) -> anyhow::Result<String> {
        let bin = self.multihome_path().display().to_string();
        let out = self.run_in_host("env", &[&format!("IFACE={iface}"), &format!("STATE={state}"), &bin, "dispatch"])?;
        if !out.status.success() {
            bail!("multihome dispatch for {iface} {state} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// A silent failure of `uplink`'s IPv6 alone (or its repair): the router blackholes the
    /// uplink's global IPv6 addresses, so nothing sent from them is ever answered, while the
    /// link, its IPv4, neighbour discovery and the advertisements (all link-local) go on as
    /// before. The lab has no ip6tables or nft: a route on the router is the IPv6-only cut.
    /// Repair removes every blackhole route of the router (only this makes them).
    pub fn set_upstream6(&self, uplink: &str, up: bool) -> anyhow::Result<()> {
        let router = self.names.router();
        if up {
            let out = ip(&router, &["-j", "-6", "route", "show", "type", "blackhole"])?;
            let routes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            for dst in routes.as_array().into_iter().flatten().filter_map(|r| r["dst"].as_str()) {
                ip(&router, &["-6", "route", "del", "blackhole", dst])?;
            }
            return Ok(());
        }
        let addresses = self.addresses6(uplink);
        if addresses.is_empty() {
            bail!("{uplink} has no global IPv6 address to cut off");
        }
        for a in addresses {
            ip(&router, &["-6", "route", "replace", "blackhole", &format!("{a}/128")])?;
        }
        Ok(())
    }

    /// The host's IPv6 routes in `table` (`main` or a number), as `ip -6 route` prints them.
    pub fn routes6(&self, table: &str) -> anyhow::Result<String> {
        self.ip_host(&["-6", "route", "show", "table", table]).with_context(|| format!("cannot read IPv6 table {table}"))
    }

    /// Waits until `uplink` has a SLAAC address from the advertised prefix beside `keep`.
    pub fn wait_for_slaac(&self, uplink: &str, keep: Ipv6Addr, within: Duration) -> anyhow::Result<Ipv6Addr> {
        let mut found = None;
        // On the prefix, and not a DHCPv6 lease.
        let on_prefix = |a: &Ipv6Addr| a.segments()[..4] == GATEWAY6.segments()[..4] && !(DHCPV6_FIRST..=DHCPV6_LAST).contains(a);
        if self
            .wait_for(within, || {
                found = self.addresses6(uplink).into_iter().find(|a| *a != keep && on_prefix(a));
                found.is_some()
            })
            .is_err()
        {
            bail!("{uplink} got no SLAAC address on {PREFIX} within {within:?}: {:?}\n{}", self.addresses6(uplink), self.log(RA_LOG));
        }
        Ok(found.expect("found above"))
    }
}
