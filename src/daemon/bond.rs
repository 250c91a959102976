//! The daemon in bond mode: the kernel's bonding driver fails over by itself, so the daemon
//! probes nothing and changes nothing; it reads the bond's active slave and each slave's MII
//! state from the kernel ([`crate::netlink::bond`]), logs and signals a failover, and shows the
//! slaves in `status` and on D-Bus (the `bond_active` and `mii` keys of an uplink).

use std::time::Duration;

use tokio::time::Instant;

use super::bus::UplinkStatus;
use crate::netlink::Netlink;
use crate::netlink::bond::BondState;
use crate::plan::bond::BondPlan;

/// The kernel announces a failover on the netlink socket; this read is the fallback should an
/// announcement be lost, cheap enough (one link dump) to do every few seconds.
pub const REREAD: Duration = Duration::from_secs(2);

/// One change the daemon logs and signals (StateChanged: interface, from, to, reason).
pub struct Change {
    pub interface: String,
    pub from: String,
    pub to: String,
    pub reason: String,
}

pub struct Watch {
    plan: BondPlan,
    /// `None` until read, and while the bond does not exist.
    state: Option<BondState>,
    read_once: bool,
    pub next_read: Instant,
}

impl Watch {
    pub fn new(plan: &BondPlan) -> Watch {
        Watch { plan: plan.clone(), state: None, read_once: false, next_read: Instant::now() }
    }

    /// Reads the bond again; what changed for each slave (its role or its MII state).
    pub async fn refresh(&mut self, nl: &Netlink) -> Vec<Change> {
        self.next_read = Instant::now() + REREAD;
        let state = match nl.bond(&self.plan.name).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot read bond {}: {e}", self.plan.name);
                return Vec::new();
            }
        };
        let before: Vec<UplinkStatus> = self.statuses();
        let (first, was_there) = (!self.read_once, self.state.is_some());
        self.read_once = true;
        self.state = state;
        let after = self.statuses();
        if self.state.is_none() && (first || was_there) {
            tracing::warn!("{}", self.absent_reason());
        }
        before
            .iter()
            .zip(&after)
            .filter(|(b, a)| b.state != a.state || b.carrying != a.carrying)
            .map(|(b, a)| Change { interface: a.interface.clone(), from: role(b), to: role(a), reason: a.reason.clone() })
            .collect()
    }

    fn absent_reason(&self) -> String {
        let why = match crate::backend::bonding::available() {
            Err(_) => "this kernel has no bonding driver",
            Ok(()) => "the network manager has not made it (yet)",
        };
        format!("bond {} does not exist: {why}", self.plan.name)
    }

    /// The active slave, "" when there is none (or no bond).
    pub fn active(&self) -> String {
        self.state.as_ref().and_then(|s| s.active.clone()).unwrap_or_default()
    }

    /// Every slave of the policy, most preferred first, as `status` and the bus show it.
    pub fn statuses(&self) -> Vec<UplinkStatus> {
        let gateway = self.plan.gateway.map(|g| g.to_string()).unwrap_or_default();
        self.plan
            .slaves
            .iter()
            .enumerate()
            .map(|(rank, name)| {
                let seen = self.state.as_ref().and_then(|s| s.slaves.iter().find(|x| x.name == *name));
                let (state, mii, active, reason) = match (&self.state, seen) {
                    (None, _) => ("no-bond".to_string(), None, false, self.absent_reason()),
                    (Some(_), None) => ("not-enslaved".to_string(), None, false, format!("{name} is not a slave of {}", self.plan.name)),
                    (Some(_), Some(s)) => {
                        let why = if s.active { format!("the active slave of {}", self.plan.name) } else { format!("a backup slave of {}", self.plan.name) };
                        (s.mii.word(), Some(s.mii.word()), s.active, why)
                    }
                };
                UplinkStatus {
                    interface: name.clone(),
                    rank: rank as u32,
                    state,
                    loss_percent: 0.0,
                    latency_ms: None,
                    reason,
                    carrying: active,
                    address: String::new(),
                    gateway: gateway.clone(),
                    bond_active: Some(active),
                    mii,
                    ipv6: None,
                    ..Default::default()
                }
            })
            .collect()
    }
}

/// A slave's role in a log line or signal: "active (up)", "backup (down)", "no-bond".
fn role(s: &UplinkStatus) -> String {
    match &s.mii {
        Some(mii) => format!("{} ({mii})", if s.carrying { "active" } else { "backup" }),
        None => s.state.clone(),
    }
}
