//! Bringing the kernel's MPTCP endpoints and subflow limit in line with the plan, by mark and
//! sweep over multihome's own endpoints only: [`changes`] decides (pure), [`sync`] reads the
//! kernel and carries them out. Applying twice changes nothing.
//!
//! An endpoint is multihome's when its id is one of multihome's (240 + rank) and its interface
//! is one of the plan's uplinks, or no longer exists (a removed USB adapter). Anything else
//! (an administrator's, mptcpd's, NetworkManager's) is left exactly as it is; where one holds
//! the id or the address an uplink's endpoint needs, that uplink goes without and it is said.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;

use super::{Enabled, Endpoint, Mptcp, enabled};
use crate::netlink::{Error, Netlink};
use crate::plan::mptcp::rank_of;
use crate::plan::{Addresses, Plan};

/// An endpoint the plan wants now, resolved to the uplink's interface and current address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub interface: String,
    pub id: u8,
    pub address: Ipv4Addr,
    pub ifindex: u32,
    pub backup: bool,
}

/// Whether a sync sets the backup flag of an endpoint that is otherwise right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flags {
    /// To the plan's: `multihome apply`, a kept `try` (a changed policy takes effect).
    Planned,
    /// As it is: the dispatcher hook, and `multihome apply` while the daemon runs, which steers
    /// the flags by health and must not see that undone (a new endpoint still gets the plan's
    /// flag). Nor is an endpoint kept on, or added to, a link without carrier.
    Kept,
}

/// One step of a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Delete(Endpoint),
    Add(Wanted),
    SetBackup(Wanted),
    /// Another program's endpoint holds the id or the address this one needs.
    Blocked(Wanted, Endpoint),
}

/// The steps that turn `kernel` into what `wanted` asks for: removals first (they free ids and
/// addresses for the additions), touching only endpoints for which `ours` holds.
pub fn changes(wanted: &[Wanted], kernel: &[Endpoint], ours: impl Fn(&Endpoint) -> bool, flags: Flags) -> Vec<Change> {
    let mut deletes = Vec::new();
    let mut rest = Vec::new();
    for w in wanted {
        match kernel.iter().find(|k| k.id == w.id) {
            Some(k) if !ours(k) => rest.push(Change::Blocked(w.clone(), k.clone())),
            Some(k) if k.address == Some(w.address) && k.ifindex == Some(w.ifindex) && k.flags & !super::FLAG_BACKUP == super::FLAG_SUBFLOW => {
                if k.backup() != w.backup && flags == Flags::Planned {
                    rest.push(Change::SetBackup(w.clone()));
                }
            }
            Some(k) => {
                deletes.push(Change::Delete(k.clone()));
                rest.push(Change::Add(w.clone()));
            }
            None => match kernel.iter().find(|k| k.address == Some(w.address) && !ours(k)) {
                Some(other) => rest.push(Change::Blocked(w.clone(), other.clone())),
                None => rest.push(Change::Add(w.clone())),
            },
        }
    }
    let wanted_ids: BTreeSet<u8> = wanted.iter().map(|w| w.id).collect();
    for k in kernel.iter().filter(|k| ours(k) && !wanted_ids.contains(&k.id)) {
        deletes.push(Change::Delete(k.clone()));
    }
    deletes.extend(rest);
    deletes
}

/// What a sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Synced {
    /// The kernel has no MPTCP, or it is disabled (`net.mptcp.enabled=0`): nothing was added.
    pub unavailable: bool,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    /// Endpoints an uplink did not get, with why.
    pub blocked: Vec<String>,
    /// The subflow limit, raised from the first to the second.
    pub raised: Option<(u32, u32)>,
}

impl Synced {
    pub fn changed_anything(&self) -> bool {
        !(self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()) || self.raised.is_some()
    }
}

impl fmt::Display for Synced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (verb, list) in [("added", &self.added), ("removed", &self.removed), ("changed", &self.changed)] {
            if !list.is_empty() {
                parts.push(format!("{verb} {}", list.join(", ")));
            }
        }
        if let Some((from, to)) = self.raised {
            parts.push(format!("subflow limit raised from {from} to {to}"));
        }
        parts.extend(self.blocked.iter().cloned());
        if self.unavailable {
            parts.push("MPTCP is not enabled in this kernel (net.mptcp.enabled); no endpoints".to_string());
        }
        if parts.is_empty() { f.write_str("MPTCP endpoints up to date") } else { write!(f, "MPTCP endpoints: {}", parts.join("; ")) }
    }
}

/// What the kernel holds against what the plan wants, and the steps between them.
struct Survey {
    pm: Mptcp,
    links: Vec<crate::netlink::LinkState>,
    changes: Vec<Change>,
    /// The subflow limit now and the plan's, where it must be raised.
    raise: Option<(u32, u32)>,
}

/// Reads the kernel and decides; `Ok(None)` when the kernel has no MPTCP path manager.
/// `held`: ids of multihome's endpoints that someone else steers now (the daemon keeps the
/// endpoint of an uplink that lost carrier away until the uplink carries again): neither added,
/// changed nor removed.
async fn survey(plan: &Plan, nl: &Netlink, flags: Flags, held: &BTreeSet<u8>) -> Result<Option<Survey>, Error> {
    let Some(mut pm) = Mptcp::open()? else { return Ok(None) };
    // The path manager answered: the kernel has MPTCP. Only a sysctl that says 0 turns the
    // endpoints off; one this process cannot read (a sandbox) does not.
    let on = plan.mptcp.is_some() && enabled() != Enabled::No;
    let links = nl.links().await?;
    let uplink_index = |name: &str| links.iter().find(|l| l.name == name).map(|l| l.index);
    let has_carrier = |i: u32| links.iter().any(|l| l.index == i && l.admin_up && l.carrier);
    let uplink_ifindexes: BTreeSet<u32> = plan.uplinks().iter().filter_map(|u| uplink_index(&u.interface)).collect();
    let mut wanted = Vec::new();
    for u in plan.uplinks().iter().filter(|_| on) {
        let (Some(e), Some(ifindex)) = (u.mptcp, uplink_index(&u.interface)) else { continue };
        // The hook keeps no endpoint on a link without carrier, as the daemon (which removes it
        // at carrier loss, so that data moves at once, and adds it back once the uplink works
        // again): a hook run by the carrier's loss must not add it back.
        if flags == Flags::Kept && !has_carrier(ifindex) {
            continue;
        }
        let address = match (&u.addresses, e.address) {
            (Addresses::Static(_), a) => a,
            (Addresses::Dhcp(_), _) => nl.ipv4_addresses(ifindex).await?.into_iter().map(|n| n.addr()).find(|a| !a.is_link_local()),
        };
        if let Some(address) = address
            && !held.contains(&e.id)
        {
            wanted.push(Wanted { interface: u.interface.clone(), id: e.id, address, ifindex, backup: e.backup });
        }
    }

    let kernel = pm.endpoints()?;
    let ours = |k: &Endpoint| {
        rank_of(k.id).is_some() && !held.contains(&k.id) && k.ifindex.is_some_and(|i| uplink_ifindexes.contains(&i) || !links.iter().any(|l| l.index == i))
    };
    let changes = changes(&wanted, &kernel, ours, flags);
    let raise = match (on, plan.mptcp) {
        (true, Some(limits)) => Some(pm.limits()?.subflows).filter(|now| *now < limits.subflows).map(|now| (now, limits.subflows)),
        _ => None,
    };
    Ok(Some(Survey { pm, links, changes, raise }))
}

/// The steps, the limit to raise (now, then), and the interfaces' names by index.
pub type Preview = (Vec<Change>, Option<(u32, u32)>, Vec<(u32, String)>);

/// What a [`sync`] with the same arguments would do, without doing it (`multihome plan`):
/// each step with the endpoint as `ip mptcp endpoint` shows it (the interface by name), and
/// the subflow limit to raise. Empty where the kernel has no MPTCP.
pub async fn preview(plan: &Plan, nl: &Netlink, flags: Flags) -> Result<Preview, Error> {
    Ok(match survey(plan, nl, flags, &BTreeSet::new()).await? {
        Some(s) => (s.changes, s.raise, s.links.into_iter().map(|l| (l.index, l.name)).collect()),
        None => (Vec::new(), None, Vec::new()),
    })
}

/// Makes the kernel's endpoints and subflow limit match the plan in the calling thread's
/// network namespace: a static uplink's endpoint carries its first address, a DHCP uplink's
/// the first (not link-local) IPv4 address its interface has now, and an uplink without an
/// interface or address has none, nor, in the hook's sync, one without carrier. With
/// `MPTCP=no`, or where MPTCP is disabled, multihome's endpoints are removed and nothing else
/// is touched.
pub async fn sync(plan: &Plan, nl: &Netlink, flags: Flags) -> Result<Synced, Error> {
    sync_holding(plan, nl, flags, &BTreeSet::new()).await
}

/// [`sync`], leaving the endpoints with the ids in `held` as they are (see [`survey`]): the
/// daemon's sync, which must not add back an endpoint it took away at carrier loss before the
/// uplink carries again.
pub async fn sync_holding(plan: &Plan, nl: &Netlink, flags: Flags, held: &BTreeSet<u8>) -> Result<Synced, Error> {
    let mut synced = Synced { unavailable: plan.mptcp.is_some() && enabled() == Enabled::No, ..Synced::default() };
    let Some(Survey { mut pm, changes, raise, .. }) = survey(plan, nl, flags, held).await? else {
        synced.unavailable = plan.mptcp.is_some();
        return Ok(synced);
    };
    for change in changes {
        match change {
            Change::Delete(k) => match pm.delete_endpoint(k.id) {
                Ok(()) => synced.removed.push(k.to_string()),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            },
            Change::Add(w) => {
                pm.add_endpoint(w.id, w.address, w.ifindex, w.backup)?;
                synced.added.push(describe(&w));
            }
            Change::SetBackup(w) => {
                pm.set_backup(w.id, w.backup)?;
                synced.changed.push(describe(&w));
            }
            Change::Blocked(w, other) => synced.blocked.push(format!(
                "{} gets no endpoint: {} holds {} (not multihome's; left alone)",
                w.interface,
                other,
                if other.id == w.id { format!("id {}", w.id) } else { w.address.to_string() }
            )),
        }
    }
    if let Some((from, to)) = raise {
        pm.set_subflows(to)?;
        synced.raised = Some((from, to));
    }
    Ok(synced)
}

pub fn describe(w: &Wanted) -> String {
    format!("{} id {} dev {} subflow{}", w.address, w.id, w.interface, if w.backup { " backup" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::mptcp::message::{FLAG_BACKUP, FLAG_SIGNAL, FLAG_SUBFLOW};

    fn wanted(id: u8, last: u8, ifindex: u32, backup: bool) -> Wanted {
        Wanted { interface: format!("if{ifindex}"), id, address: Ipv4Addr::new(192, 168, 178, last), ifindex, backup }
    }

    fn kernel(id: u8, last: u8, ifindex: u32, flags: u32) -> Endpoint {
        Endpoint { id, address: Some(Ipv4Addr::new(192, 168, 178, last)), ifindex: Some(ifindex), flags }
    }

    fn ours(k: &Endpoint) -> bool {
        k.id >= 240
    }

    #[test]
    fn a_matching_kernel_changes_nothing_and_a_flag_is_changed_in_place() {
        let w = [wanted(240, 99, 2, false), wanted(242, 97, 4, true)];
        let k = [kernel(240, 99, 2, FLAG_SUBFLOW), kernel(242, 97, 4, FLAG_SUBFLOW | FLAG_BACKUP)];
        assert_eq!(changes(&w, &k, ours, Flags::Planned), vec![]);
        let k = [kernel(240, 99, 2, FLAG_SUBFLOW | FLAG_BACKUP), kernel(242, 97, 4, FLAG_SUBFLOW | FLAG_BACKUP)];
        assert_eq!(changes(&w, &k, ours, Flags::Planned), vec![Change::SetBackup(w[0].clone())]);
        // The hook leaves a flag the daemon set alone.
        assert_eq!(changes(&w, &k, ours, Flags::Kept), vec![]);
    }

    #[test]
    fn a_new_lease_replaces_the_endpoint_and_removals_come_first() {
        let w = [wanted(241, 150, 3, false)];
        let k = [kernel(241, 98, 3, FLAG_SUBFLOW), kernel(243, 96, 5, FLAG_SUBFLOW)];
        assert_eq!(changes(&w, &k, ours, Flags::Planned), vec![Change::Delete(k[0].clone()), Change::Delete(k[1].clone()), Change::Add(w[0].clone())]);
    }

    #[test]
    fn another_programs_endpoints_are_never_touched_and_block_what_they_hold() {
        let w = [wanted(240, 99, 2, false), wanted(241, 98, 3, false)];
        // An administrator's signal endpoint for eth0's address (id 1), and one with id 241
        // that is not on an uplink: neither is multihome's.
        let admin = kernel(1, 99, 2, FLAG_SIGNAL);
        let foreign = kernel(241, 50, 9, FLAG_SUBFLOW);
        let not_ours = |k: &Endpoint| ours(k) && k.ifindex != Some(9);
        assert_eq!(
            changes(&w, &[admin.clone(), foreign.clone()], not_ours, Flags::Planned),
            vec![Change::Blocked(w[0].clone(), admin), Change::Blocked(w[1].clone(), foreign)]
        );
    }

    #[test]
    fn with_nothing_wanted_only_ours_go() {
        let k = [kernel(1, 10, 2, FLAG_SUBFLOW), kernel(240, 99, 2, FLAG_SUBFLOW)];
        assert_eq!(changes(&[], &k, ours, Flags::Planned), vec![Change::Delete(k[1].clone())]);
    }
}
