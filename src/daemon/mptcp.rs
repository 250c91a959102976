//! Steering MPTCP subflows by health (issue 15). The endpoint of an uplink that carries no new
//! connections (demoted, or poor beside a better one) becomes backup, so the kernel sends an
//! open connection's data on the healthy uplinks' subflows and tells the peers (MP_PRIO); when
//! the uplink is trusted again its endpoint gets the plan's flag back.
//!
//! An uplink that loses carrier loses its endpoint at once: removing it closes the subflows
//! through it, and the kernel reinjects what was in flight on them at once (measured: 12-29 ms),
//! where a backup flag leaves that data waiting for the subflow's retransmission timeout
//! (at least 200 ms). When the uplink is trusted again its endpoint is added back, which makes
//! the kernel open a subflow through it on every open connection (a join: the plan's subflow
//! limit allows one per uplink for that). The kernel's scheduler breaks ties between idle
//! subflows by their age, so the subflows of the normal endpoints ranked below it are
//! re-opened right after it: the returning, more preferred uplink carries the data again.
//!
//! Only multihome's own endpoints are touched; which ones exist otherwise is `multihome
//! apply`'s and the hook's business (`netlink::mptcp::sync`). A pure [`desired`], then
//! [`Steering::steer`] against the kernel.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::netlink::mptcp::{Endpoint, Mptcp};
use crate::plan::UplinkPlan;

/// One endpoint as the daemon wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    pub id: u8,
    pub backup: bool,
    /// The uplink has carrier: without it the endpoint is removed.
    pub present: bool,
    /// The uplink carries new connections: an endpoint removed at carrier loss comes back then
    /// (not at the carrier's return, when the manager may not have put its routes back yet and
    /// the kernel would try the new subflows once and give up).
    pub carrying: bool,
}

/// For each uplink with an endpoint (`uplinks` most preferred first, `carrying` and `carrier`
/// beside them): the plan's flag while it carries, backup while it does not, absent without
/// carrier; and if that leaves no carrying uplink with a normal subflow, the most preferred
/// carrying one gets one, so data never waits for a backup subflow to be promoted while a
/// healthy path is there.
pub fn desired(uplinks: &[&UplinkPlan], carrying: &[bool], carrier: &[bool]) -> Vec<Flag> {
    let mut flags: Vec<Flag> = Vec::new();
    let mut best_carrying = None;
    for ((u, &c), &present) in uplinks.iter().zip(carrying).zip(carrier) {
        let Some(e) = u.mptcp else { continue };
        if c && best_carrying.is_none() {
            best_carrying = Some(flags.len());
        }
        flags.push(Flag { id: e.id, backup: e.backup || !c, present, carrying: c });
    }
    let any_normal_carrying = uplinks.iter().zip(carrying).filter(|(u, c)| **c && u.mptcp.is_some_and(|e| !e.backup)).count() > 0;
    if let (false, Some(i)) = (any_normal_carrying, best_carrying) {
        flags[i].backup = false;
    }
    flags
}

/// What the daemon remembers between steers: the endpoints it removed at carrier loss, to add
/// back (and re-open the subflows below them) once their uplinks carry again.
#[derive(Debug, Default)]
pub struct Steering {
    removed: BTreeSet<u8>,
}

impl Steering {
    /// Brings multihome's endpoints in line with `want`, returning what it did for the log (by
    /// endpoint id).
    /// `ours(endpoint)` says whether an endpoint with one of the ids is multihome's (on the
    /// uplink's interface); `locate(id)` gives an uplink's current address and interface, for
    /// an endpoint to add back. An endpoint not there (no lease yet, MPTCP off) and never
    /// removed here is left to the hook. Blocking netlink calls that the kernel answers at
    /// once; only run when a verdict, link or address changed.
    pub fn steer(
        &mut self,
        want: &[Flag],
        ours: impl Fn(&Endpoint) -> bool,
        locate: impl Fn(u8) -> Option<(Ipv4Addr, u32)>,
    ) -> Result<Vec<(u8, String)>, crate::netlink::Error> {
        let mut done = Vec::new();
        if want.is_empty() {
            return Ok(done);
        }
        let Some(mut pm) = Mptcp::open()? else { return Ok(done) };
        let mut kernel: Vec<Endpoint> = pm.endpoints()?.into_iter().filter(|k| ours(k)).collect();
        for (i, f) in want.iter().enumerate() {
            if !f.present {
                if let Some(k) = kernel.iter().find(|k| k.id == f.id) {
                    delete(&mut pm, k.id)?;
                    done.push((f.id, format!("MPTCP endpoint {} removed (no carrier): open connections move off it at once", describe(k))));
                    self.removed.insert(f.id);
                    kernel.retain(|k| k.id != f.id);
                }
                continue;
            }
            if !(f.carrying && self.removed.contains(&f.id)) {
                continue;
            }
            let Some((address, ifindex)) = locate(f.id) else { continue };
            // Added back by the hook in the meantime, maybe before its routes: once more, now.
            if kernel.iter().any(|k| k.id == f.id) {
                delete(&mut pm, f.id)?;
            }
            pm.add_endpoint(f.id, address, ifindex, f.backup)?;
            self.removed.remove(&f.id);
            done.push((f.id, format!("MPTCP endpoint {address} id {} added back: open connections get a subflow through it", f.id)));
            // The normal subflows below it, re-opened after it (see the module's comment).
            for lower in want[i + 1..].iter().filter(|l| l.present && !l.backup) {
                if let Some(k) = kernel.iter().find(|k| k.id == lower.id && !k.backup())
                    && let Some(address) = k.address
                    && let Some(ifindex) = k.ifindex
                {
                    delete(&mut pm, k.id)?;
                    pm.add_endpoint(k.id, address, ifindex, false)?;
                    done.push((k.id, format!("MPTCP endpoint {} re-opened behind the one added back", describe(k))));
                }
            }
            kernel = pm.endpoints()?.into_iter().filter(|k| ours(k)).collect();
        }
        for k in &kernel {
            let Some(f) = want.iter().find(|f| f.id == k.id) else { continue };
            if k.subflow() && k.backup() != f.backup {
                pm.set_backup(k.id, f.backup)?;
                done.push((k.id, format!("MPTCP endpoint {} is now {}", describe(k), if f.backup { "backup" } else { "a normal subflow" })));
            }
        }
        Ok(done)
    }
}

fn delete(pm: &mut Mptcp, id: u8) -> Result<(), crate::netlink::Error> {
    match pm.delete_endpoint(id) {
        Err(e) if e.is_not_found() => Ok(()),
        r => r,
    }
}

fn describe(k: &Endpoint) -> String {
    format!("{} id {}", k.address.map_or_else(|| "(IPv6)".to_string(), |a| a.to_string()), k.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan;
    use crate::policy::parse;

    const SEED: &str = include_str!("../../examples/seed.conf");

    fn flags(carrying: [bool; 3], carrier: [bool; 3]) -> Vec<(u8, bool, bool)> {
        let p = plan(&parse("seed", SEED).unwrap());
        let uplinks: Vec<&UplinkPlan> = p.uplinks.iter().collect();
        desired(&uplinks, &carrying, &carrier).into_iter().map(|f| (f.id, f.backup, f.present)).collect()
    }

    #[test]
    fn a_demoted_uplink_is_backup_and_the_best_carrying_one_always_normal() {
        let up = [true; 3];
        // Healthy: the plan's (eth0 and wlan1 normal, wlan0 backup).
        assert_eq!(flags([true, true, true], up), [(240, false, true), (241, false, true), (242, true, true)]);
        // eth0 demoted: backup at once; wlan1 carries on as normal.
        assert_eq!(flags([false, true, true], up), [(240, true, true), (241, false, true), (242, true, true)]);
        // eth0 and wlan1 demoted: wlan0, the planned backup, becomes the normal one.
        assert_eq!(flags([false, false, true], up), [(240, true, true), (241, true, true), (242, false, true)]);
        // Nothing carries: every endpoint backup, so any path that still works is used.
        assert_eq!(flags([false, false, false], up), [(240, true, true), (241, true, true), (242, true, true)]);
    }

    #[test]
    fn an_uplink_without_carrier_has_no_endpoint() {
        assert_eq!(flags([false, true, true], [false, true, true]), [(240, true, false), (241, false, true), (242, true, true)]);
    }
}
