//! The plan in `ip route`/`ip rule` words, for `multihome check` and for people reading tests.

use std::fmt::{self, Write};

use super::{Addresses, Plan, Prefix, Route, Rule, Table};

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Table::Main => f.write_str("main"),
            Table::Id(n) => write!(f, "{n}"),
        }
    }
}

impl<N: Prefix> fmt::Display for Rule<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:\tfrom {}", self.priority, self.from.map_or("all".to_string(), |n| n.addr().to_string()))?;
        if let Some(to) = self.to {
            write!(f, " to {}", to.addr())?;
        }
        write!(f, " lookup {}", self.table)
    }
}

/// `ip route` syntax; the device is added by the caller, which knows the uplink.
pub fn route<N: Prefix>(r: &Route<N>, dev: &str) -> String {
    let mut s = if r.is_default() { "default".to_string() } else { r.destination.to_string() };
    if let Some(gw) = r.gateway {
        let _ = write!(s, " via {gw}");
    }
    let _ = write!(s, " dev {dev}");
    // IPv6 routes have no scope of their own to show.
    if r.gateway.is_none() && N::FAMILY == "ipv4" {
        s.push_str(" scope link");
    }
    if let Some(src) = r.preferred_source {
        let _ = write!(s, " src {src}");
    }
    if r.table != Table::Main {
        let _ = write!(s, " table {}", r.table);
    }
    if let Some(m) = r.metric {
        let _ = write!(s, " metric {m}");
    }
    if r.gateway.is_some() && N::GATEWAY_ONLINK {
        s.push_str(" onlink");
    }
    s
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(bond) = &self.bond() {
            // No per-uplink routing, sysctls or run-time rules: the kernel's bond fails over.
            writeln!(f, "# Plan for {}: one active-backup bond, slaves from most to least preferred", self.source)?;
            return write!(f, "{bond}");
        }
        writeln!(f, "# Plan for {}: uplinks from most to least preferred", self.source)?;
        let probe = self.probe.clone().unwrap_or_default();
        for u in self.uplinks() {
            let addrs = match &u.addresses {
                Addresses::Static(nets) if nets.is_empty() => None,
                Addresses::Static(nets) => Some(nets.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" ")),
                Addresses::Dhcp(_) => Some("DHCP".to_string()),
            };
            match addrs {
                Some(addrs) => {
                    let gw = u.gateway.map_or("the lease's router".to_string(), |g| g.to_string());
                    writeln!(f, "\n{} (#{}): {addrs} via {gw}, table {}, main metric {}", u.interface, u.rank + 1, u.table, u.metric)?;
                }
                None => writeln!(f, "\n{} (#{}): no IPv4, table {}, main metric {}", u.interface, u.rank + 1, u.table, u.metric)?,
            }
            for r in &u.rules {
                writeln!(f, "  rule  {r}")?;
            }
            for r in &u.routes {
                writeln!(f, "  route {}", route(r, &u.interface))?;
            }
            if let Addresses::Dhcp(_) = u.addresses {
                writeln!(f, "  route default via <lease router> dev {} metric {}", u.interface, u.metric)?;
                writeln!(f, "  route default via <lease router> dev {} table {}", u.interface, u.table)?;
                writeln!(f, "  rules from/to <lease address> lookup {}, set by `multihome dispatch` when the lease arrives", u.table)?;
            }
            if let Some(v6) = &u.ipv6 {
                let mut how: Vec<String> = v6.addresses.iter().map(|n| n.to_string()).collect();
                if v6.accept_ra {
                    how.push("SLAAC".into());
                }
                if v6.dhcp {
                    how.push("DHCPv6".into());
                }
                let how = if how.is_empty() { "no IPv6 address (router advertisements ignored)".to_string() } else { how.join(" ") };
                let gw = v6.gateway.map_or_else(|| if v6.accept_ra { "the advertised router".to_string() } else { "no router".to_string() }, |g| g.to_string());
                writeln!(f, "  ipv6: {how} via {gw}, table {}, main metric {}", u.table, u.metric)?;
                for r in &v6.rules {
                    writeln!(f, "  rule  {r}")?;
                }
                for r in &v6.routes {
                    writeln!(f, "  route {}", route(r, &u.interface))?;
                }
                if v6.accept_ra && v6.gateway.is_none() {
                    writeln!(f, "  route default via <advertised router> dev {} metric {}", u.interface, u.metric)?;
                    writeln!(f, "  route default via <advertised router> dev {} table {}", u.interface, u.table)?;
                }
                if v6.accept_ra || v6.dhcp {
                    writeln!(f, "  rules from/to <SLAAC or DHCPv6 address> lookup {}, set by `multihome dispatch` when the address appears", u.table)?;
                }
            }
            if let Some(e) = u.mptcp {
                let addr = e.address.map_or("<lease address>".to_string(), |a| a.to_string());
                writeln!(f, "  mptcp endpoint {addr} id {} dev {} subflow{}", e.id, u.interface, if e.backup { " backup" } else { "" })?;
            }
            // Only where the uplink differs from [Probe]: the daemon's settings for the rest.
            if u.probe.own {
                let v4 = u.probe.targets.iter().map(|t| t.to_string());
                let all: Vec<String> = v4.chain(u.probe.targets6.iter().map(|t| t.to_string())).collect();
                let targets = if all.is_empty() { "the gateway by ARP".to_string() } else { all.join(" ") };
                let interval = crate::policy::timespan::format(u.probe.interval);
                let timeout = crate::policy::timespan::format(u.probe.timeout);
                writeln!(f, "  probe {targets} every {interval} (timeout {timeout}), its own")?;
            }
            // The daemon's probe traffic on this uplink at most (see daemon::probe_rate).
            let has_ipv4 = !matches!(&u.addresses, Addresses::Static(nets) if nets.is_empty());
            let has_router6 = u.ipv6.as_ref().is_some_and(|v6| v6.gateway.is_some() || v6.accept_ra);
            let questions = if probe.arp_gateway { usize::from(has_ipv4) + usize::from(has_router6) } else { 0 };
            let targets = if has_ipv4 { u.probe.targets.len() } else { 0 } + if u.ipv6.is_some() { u.probe.targets6.len() } else { 0 };
            let ceiling = crate::daemon::probe_rate::ceiling(targets, questions, probe.fail_after, u.probe.interval);
            writeln!(f, "  probes: at most {ceiling} packets/s out, as many answers in")?;
        }
        writeln!(f, "\nsysctls:")?;
        for s in &self.sysctls {
            writeln!(f, "  {} = {}", s.key, s.value)?;
        }
        match self.mptcp {
            Some(l) => writeln!(f, "\nmptcp (where net.mptcp.enabled = 1): limits subflows at least {}", l.subflows)?,
            None => writeln!(f, "\nmptcp: hands off (MPTCP=no; endpoints multihome made before are removed)")?,
        }
        // Always: the daemon runs with any policy (without [Probe] it still watches carrier,
        // addresses and the gateway by ARP), and the hook with any DHCP uplink.
        writeln!(f, "\nrun-time rules and routes: the hook's and the daemon's (the network manager is told to leave them alone)")?;
        Ok(())
    }
}
