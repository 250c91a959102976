//! Steering MPTCP subflows by health (issue 15): the endpoint of an uplink that carries no new
//! connections (demoted, or poor beside a better one) becomes backup, so the kernel sends an open
//! connection's data on the healthy uplinks' subflows at once and tells the peers (MP_PRIO),
//! instead of retrying the dead path after every retransmission timeout; when the uplink is
//! trusted again its endpoint gets the plan's flag back. Only the backup flag of multihome's own
//! endpoints is changed; which endpoints exist is `multihome apply`'s and the hook's business
//! (`netlink::mptcp::sync`). A pure [`desired`], then [`steer`] against the kernel.

use crate::netlink::mptcp::{Endpoint, Mptcp};
use crate::plan::UplinkPlan;

/// One endpoint's wanted backup flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    pub id: u8,
    pub backup: bool,
}

/// For each uplink with an endpoint (`uplinks` most preferred first, `carrying` beside them):
/// the plan's flag while it carries, backup while it does not; and if that leaves no carrying
/// uplink with a normal subflow, the most preferred carrying one gets one, so data never waits
/// for a backup subflow to be promoted while a healthy path is there.
pub fn desired(uplinks: &[&UplinkPlan], carrying: &[bool]) -> Vec<Flag> {
    let mut flags: Vec<Flag> = Vec::new();
    let mut best_carrying = None;
    for (u, &c) in uplinks.iter().zip(carrying) {
        let Some(e) = u.mptcp else { continue };
        if c && best_carrying.is_none() {
            best_carrying = Some(flags.len());
        }
        flags.push(Flag { id: e.id, backup: e.backup || !c });
    }
    let any_normal_carrying = uplinks.iter().zip(carrying).filter(|(u, c)| **c && u.mptcp.is_some_and(|e| !e.backup)).count() > 0;
    if let (false, Some(i)) = (any_normal_carrying, best_carrying) {
        flags[i].backup = false;
    }
    flags
}

/// What [`steer`] changed: `(id, backup)` of each endpoint whose flag it set.
pub type Steered = Vec<(Endpoint, bool)>;

/// Sets the flags of multihome's endpoints that differ from `want`; `ours(endpoint)` says
/// whether an endpoint with one of the ids is multihome's (on the uplink's interface). An
/// endpoint not there (no lease yet, MPTCP off) is skipped. Blocking netlink calls that the
/// kernel answers at once; only run when a verdict, link or address changed.
pub fn steer(want: &[Flag], ours: impl Fn(&Endpoint) -> bool) -> Result<Steered, crate::netlink::Error> {
    let mut changed = Vec::new();
    if want.is_empty() {
        return Ok(changed);
    }
    let Some(mut pm) = Mptcp::open()? else { return Ok(changed) };
    for k in pm.endpoints()? {
        let Some(f) = want.iter().find(|f| f.id == k.id) else { continue };
        if ours(&k) && k.subflow() && k.backup() != f.backup {
            pm.set_backup(k.id, f.backup)?;
            changed.push((k, f.backup));
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan;
    use crate::policy::parse;

    const SEED: &str = include_str!("../../examples/seed.conf");

    fn flags(carrying: [bool; 3]) -> Vec<(u8, bool)> {
        let p = plan(&parse("seed", SEED).unwrap());
        let uplinks: Vec<&UplinkPlan> = p.uplinks.iter().collect();
        desired(&uplinks, &carrying).into_iter().map(|f| (f.id, f.backup)).collect()
    }

    #[test]
    fn a_demoted_uplink_is_backup_and_the_best_carrying_one_always_normal() {
        // Healthy: the plan's (eth0 and wlan1 normal, wlan0 backup).
        assert_eq!(flags([true, true, true]), [(240, false), (241, false), (242, true)]);
        // eth0 demoted: backup at once; wlan1 carries on as normal.
        assert_eq!(flags([false, true, true]), [(240, true), (241, false), (242, true)]);
        // eth0 and wlan1 demoted: wlan0, the planned backup, becomes the normal one.
        assert_eq!(flags([false, false, true]), [(240, true), (241, true), (242, false)]);
        // Nothing carries: every endpoint backup, so any path that still works is used.
        assert_eq!(flags([false, false, false]), [(240, true), (241, true), (242, true)]);
    }
}
