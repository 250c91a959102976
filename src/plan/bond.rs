//! The bond's desired state in bond mode: what the kernel's active-backup bond should be, as a
//! plain value. No table, rule or metric per uplink: the bond holds the one address and its
//! default route, and the kernel chooses the slave that carries it.

use std::fmt::{self, Write};
use std::net::Ipv4Addr;

use serde::Serialize;

use super::Addresses;
use crate::policy::bond::{Bond, FailOverMac, Monitor, PrimaryReselect};
use crate::policy::{Addressing, Probe, timespan};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BondPlan {
    pub name: String,
    pub addresses: Addresses,
    /// `None` for DHCP: the lease's router.
    pub gateway: Option<Ipv4Addr>,
    /// Most preferred first.
    pub slaves: Vec<String>,
    pub primary: String,
    pub primary_reselect: PrimaryReselect,
    pub monitor: Monitor,
    pub fail_over_mac: FailOverMac,
    /// The daemon makes the next slave active when its probes through the bond fail while the
    /// active slave's MII is up (`ProbeFailover=yes`); otherwise it only reports it.
    pub probe_failover: bool,
    /// What the daemon probes through the bond (`[Probe]`'s IPv4 targets); empty: it only
    /// watches the bond.
    pub probe_targets: Vec<Ipv4Addr>,
    /// Where the policy's wish was replaced by a safe setting, and why.
    pub notes: Vec<String>,
}

pub fn plan(bond: &Bond, probe: Option<&Probe>) -> BondPlan {
    BondPlan {
        name: bond.name.clone(),
        addresses: match &bond.addressing {
            Addressing::Static(nets) => Addresses::Static(nets.clone()),
            Addressing::Dhcp(d) => Addresses::Dhcp(*d),
        },
        gateway: bond.gateway,
        slaves: bond.slaves.iter().map(|s| s.interface.clone()).collect(),
        primary: bond.primary.clone(),
        primary_reselect: bond.primary_reselect,
        monitor: bond.monitor.clone(),
        fail_over_mac: bond.fail_over_mac,
        probe_failover: bond.probe_failover,
        probe_targets: probe.map(|p| p.targets.clone()).unwrap_or_default(),
        notes: bond.notes.clone(),
    }
}

impl fmt::Display for BondPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addrs = match &self.addresses {
            Addresses::Static(nets) => nets.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" "),
            Addresses::Dhcp(_) => "DHCP".to_string(),
        };
        let gw = self.gateway.map_or("the lease's router".to_string(), |g| g.to_string());
        writeln!(f, "\n{} (active-backup bond): {addrs} via {gw}", self.name)?;
        writeln!(f, "  slaves {} (primary {}, reselect {})", self.slaves.join(" "), self.primary, self.primary_reselect.word())?;
        let mut monitor = String::new();
        match &self.monitor {
            Monitor::Mii { interval, up_delay, down_delay } => {
                let _ = write!(
                    monitor,
                    "MII every {}, up delay {}, down delay {}",
                    timespan::format(*interval),
                    timespan::format(*up_delay),
                    timespan::format(*down_delay)
                );
            }
            Monitor::Arp { interval, targets, validate, all_targets } => {
                let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
                let _ = write!(
                    monitor,
                    "ARP every {} to {} ({} must answer), validate {}",
                    timespan::format(*interval),
                    targets.join(" "),
                    all_targets.word(),
                    validate.word()
                );
            }
        }
        writeln!(f, "  monitor {monitor}")?;
        writeln!(f, "  fail_over_mac {}", self.fail_over_mac.word())?;
        if !self.probe_targets.is_empty() {
            let targets: Vec<String> = self.probe_targets.iter().map(|t| t.to_string()).collect();
            let then = if self.probe_failover { "makes the next slave up active (ProbeFailover=yes)" } else { "reports it (ProbeFailover=no)" };
            writeln!(f, "  probes through {} to {}; when they fail while the active slave's MII is up, the daemon {then}", self.name, targets.join(" "))?;
        }
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
        Ok(())
    }
}
