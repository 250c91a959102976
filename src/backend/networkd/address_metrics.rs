//! Addresses whose prefix route keeps a metric from before the policy, and their renewal.
//!
//! The policy gives every static address a route metric (`[Address] RouteMetric=`), so that the
//! uplinks' prefix routes for one subnet do not tie in main. networkd 252 applies it only to an
//! address it adds afresh: for an address already on the link (netplan's or the
//! administrator's file configured it before the first apply) a reload, and even
//! `networkctl reconfigure`, keep the metric it had (seen in the lab: 192.168.178.98/24 stayed at
//! metric 0 on wlan1 beside 100 and 102). `ip addr change ... metric` lasts only until networkd's
//! next reconfiguration. What lasts: remove the address and have networkd configure the link
//! again, which adds it afresh from the files; the address is gone for that moment.

use std::time::{Duration, Instant};

use anyhow::Context;
use ipnet::Ipv4Net;

use super::dbus::ManagerProxy;
use crate::netlink::Netlink;
use crate::plan::{Addresses, Plan};

/// How long networkd gets to add a renewed address back.
const RENEW_WINDOW: Duration = Duration::from_secs(5);

/// A planned address the kernel holds with another metric than the plan's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub interface: String,
    pub address: Ipv4Net,
    pub metric: u32,
    pub planned: u32,
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} carried route metric {} from before the policy, which networkd keeps when its files change; multihome removed it and networkd added it again with metric {}",
            self.interface, self.address, self.metric, self.planned
        )
    }
}

/// The static uplinks' planned addresses that are on their link with another metric. Pure:
/// `kernel` holds each uplink's addresses and metrics as the kernel reports them.
pub fn stale(plan: &Plan, kernel: &[(String, Vec<(Ipv4Net, u32)>)]) -> Vec<Stale> {
    let mut out = Vec::new();
    for u in plan.uplinks() {
        let Addresses::Static(nets) = &u.addresses else {
            continue;
        };
        let Some((_, have)) = kernel.iter().find(|(i, _)| *i == u.interface) else {
            continue;
        };
        for net in nets {
            if let Some((_, metric)) = have.iter().find(|(a, _)| a == net)
                && *metric != u.metric
            {
                out.push(Stale { interface: u.interface.clone(), address: *net, metric: *metric, planned: u.metric });
            }
        }
    }
    out
}

/// Finds stale metrics on this system and renews those addresses through networkd; returns what
/// it renewed. An uplink whose link does not exist is left alone.
pub async fn renew(plan: &Plan) -> anyhow::Result<Vec<Stale>> {
    let netlink = Netlink::connect()?;
    let mut kernel = Vec::new();
    let mut indexes = Vec::new();
    for u in plan.uplinks() {
        let Ok(index) = netlink.ifindex(&u.interface).await else {
            continue;
        };
        kernel.push((u.interface.clone(), netlink.ipv4_address_metrics(index).await?));
        indexes.push((u.interface.clone(), index));
    }
    let stale = stale(plan, &kernel);
    if stale.is_empty() {
        return Ok(stale);
    }
    let bus = zbus::Connection::system().await.context("cannot connect to the system D-Bus")?;
    let manager = ManagerProxy::new(&bus).await?;
    let index_of = |iface: &str| indexes.iter().find(|(i, _)| i == iface).map(|(_, x)| *x).expect("read above");
    let mut links: Vec<&str> = stale.iter().map(|s| s.interface.as_str()).collect();
    links.dedup();
    for s in &stale {
        netlink.delete_ipv4_address(index_of(&s.interface), s.address).await?;
    }
    for iface in &links {
        manager.reconfigure_link(index_of(iface) as i32).await.with_context(|| format!("systemd-networkd refused to reconfigure {iface}"))?;
    }
    let deadline = Instant::now() + RENEW_WINDOW;
    loop {
        let mut missing = Vec::new();
        for s in &stale {
            let have = netlink.ipv4_address_metrics(index_of(&s.interface)).await?;
            if !have.contains(&(s.address, s.planned)) {
                missing.push(format!("{} on {}", s.address, s.interface));
            }
        }
        if missing.is_empty() {
            return Ok(stale);
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "systemd-networkd did not add {} back with the policy's metric within {RENEW_WINDOW:?} (multihome removed it to renew its metric)",
                missing.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{plan, policy};

    #[test]
    fn only_planned_static_addresses_with_another_metric_are_stale() {
        let text = include_str!("../../../examples/seed.conf");
        let plan = plan::plan(&policy::parse("p", text).unwrap());
        let net = |s: &str| s.parse::<Ipv4Net>().unwrap();
        let kernel = vec![
            ("eth0".to_string(), vec![(net("192.168.178.99/24"), 100), (net("10.0.0.5/8"), 0)]),
            ("wlan1".to_string(), vec![(net("192.168.178.98/24"), 0)]),
            // Another prefix length is another address: not the plan's, left alone.
            ("wlan0".to_string(), vec![(net("192.168.178.97/16"), 0)]),
        ];
        let stale = stale(&plan, &kernel);
        assert_eq!(stale, [Stale { interface: "wlan1".into(), address: net("192.168.178.98/24"), metric: 0, planned: 101 }]);
    }
}
