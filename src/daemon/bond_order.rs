//! Backups in the policy's order. When the active slave of an active-backup bond fails, the
//! kernel takes the primary if its MII is up, else the first slave of its own list whose MII is
//! up: the order in which the slaves were enslaved, which neither networkd nor NetworkManager
//! keeps (seen: bond0 over eth0, eth1, eth2 with Priority 1, 2, 3, eth0 down, eth2 made active).
//! Kernels since 6.0 take the slave of the highest priority instead (`prio`,
//! IFLA_BOND_SLAVE_PRIO); networkd 252 has no key for it and NetworkManager only since 1.44
//! (`bond-port.prio`), so the daemon sets it from the policy's order, at start and whenever a
//! slave is enslaved again (which puts it back to 0), and only where the kernel's differs.
//! Where the kernel has no priority (before 6.0), the daemon makes the most preferred slave
//! whose MII is up active itself, right after the kernel's own failover.
//!
//! Pure: the caller reads the bond and makes the changes over rtnetlink.

use crate::netlink::bond::{BondState, Mii};

/// The priority of the slave at `rank` (0: the most preferred) among `slaves`: `slaves - rank`,
/// so the least preferred has 1, still above the kernel's default 0 of a slave the policy does
/// not name.
pub fn prio(rank: usize, slaves: usize) -> i32 {
    i32::try_from(slaves.saturating_sub(rank)).unwrap_or(i32::MAX)
}

/// A slave whose priority in the kernel differs from the policy's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrioChange {
    pub slave: String,
    pub index: u32,
    pub from: i32,
    pub to: i32,
}

/// Whether this kernel keeps a priority per slave: it reports one for every slave (a kernel
/// before 6.0 reports none).
pub fn kernel_has_prio(state: &BondState) -> bool {
    !state.slaves.is_empty() && state.slaves.iter().all(|s| s.prio.is_some())
}

/// The priorities to set: each slave of `order` (the policy's, most preferred first) that is a
/// slave of the bond and whose priority differs. Nothing where the kernel has none.
pub fn prio_changes(order: &[String], state: &BondState) -> Vec<PrioChange> {
    order
        .iter()
        .enumerate()
        .filter_map(|(rank, name)| {
            let s = state.slaves.iter().find(|s| s.name == *name)?;
            let (from, to) = (s.prio?, prio(rank, order.len()));
            (from != to).then(|| PrioChange { slave: name.clone(), index: s.index, from, to })
        })
        .collect()
}

/// On a kernel without priorities: the slave to make active instead of the one the kernel just
/// chose, if any. Only right after a failover (the active slave changed from `previous`, whose
/// MII is no longer up): a switch back to the primary, an administrator's or the daemon's own
/// choice is left alone. The choice is the most preferred slave of `order` whose MII is up and
/// whose path has not `failed` (the daemon's probes, `ProbeFailover=yes`).
pub fn reselect(order: &[String], previous: Option<&str>, state: &BondState, failed: impl Fn(&str) -> bool) -> Option<String> {
    if kernel_has_prio(state) {
        return None;
    }
    let active = state.active.as_deref()?;
    let previous = previous.filter(|p| *p != active)?;
    let mii_up = |name: &str| state.slaves.iter().any(|s| s.name == name && s.mii == Mii::Up);
    if mii_up(previous) {
        return None;
    }
    let best = order.iter().find(|name| mii_up(name) && !failed(name))?;
    (best != active).then(|| best.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::bond::BondSlave;

    fn order(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    /// Slaves in the kernel's list order: (name, MII up, prio).
    fn bond(active: &str, slaves: &[(&str, bool, Option<i32>)]) -> BondState {
        BondState {
            name: "bond0".into(),
            index: 9,
            active: (!active.is_empty()).then(|| active.to_string()),
            slaves: slaves
                .iter()
                .enumerate()
                .map(|(i, (name, up, prio))| BondSlave {
                    name: name.to_string(),
                    index: 3 + i as u32,
                    mii: if *up { Mii::Up } else { Mii::Down },
                    active: *name == active,
                    prio: *prio,
                })
                .collect(),
        }
    }

    #[test]
    fn the_most_preferred_slave_gets_the_highest_priority_and_the_last_one_stays_above_zero() {
        assert_eq!((0..3).map(|r| prio(r, 3)).collect::<Vec<_>>(), vec![3, 2, 1]);
        assert_eq!(prio(0, 1), 1);
    }

    #[test]
    fn only_priorities_that_differ_are_set_in_the_policys_order() {
        let policy = order(&["eth3", "eth4", "eth5"]);
        // Enslaved eth3, eth5, eth4 (networkd's order); eth4 enslaved again, back at 0; eth9 is
        // not the policy's.
        let b = bond("eth3", &[("eth3", true, Some(3)), ("eth5", true, Some(0)), ("eth4", true, Some(0)), ("eth9", true, Some(0))]);
        let got = prio_changes(&policy, &b);
        assert_eq!(got, vec![PrioChange { slave: "eth4".into(), index: 5, from: 0, to: 2 }, PrioChange { slave: "eth5".into(), index: 4, from: 0, to: 1 }]);
        let done = bond("eth3", &[("eth3", true, Some(3)), ("eth5", true, Some(1)), ("eth4", true, Some(2))]);
        assert_eq!(prio_changes(&policy, &done), vec![], "read back as set: nothing more");
        let old_kernel = bond("eth3", &[("eth3", true, None), ("eth5", true, None), ("eth4", true, None)]);
        assert_eq!(prio_changes(&policy, &old_kernel), vec![], "a kernel before 6.0 has no priority to set");
        assert!(!kernel_has_prio(&old_kernel) && kernel_has_prio(&done));
    }

    #[test]
    fn without_kernel_priorities_the_daemon_reselects_by_the_policys_order_after_a_failover() {
        let policy = order(&["eth3", "eth4", "eth5"]);
        let none = |_: &str| false;
        // eth3 (the primary) lost its carrier; the kernel took eth5, first up in its list.
        let after = bond("eth5", &[("eth3", false, None), ("eth5", true, None), ("eth4", true, None)]);
        assert_eq!(reselect(&policy, Some("eth3"), &after, none).as_deref(), Some("eth4"));
        // The kernel chose right: nothing to do.
        let right = bond("eth4", &[("eth3", false, None), ("eth5", true, None), ("eth4", true, None)]);
        assert_eq!(reselect(&policy, Some("eth3"), &right, none), None);
        // eth4's path failed silently (ProbeFailover=yes): eth5 is the next.
        assert_eq!(reselect(&policy, Some("eth3"), &after, |s| s == "eth4"), None);
        // eth4 is down too: eth5 is the best there is.
        let only = bond("eth5", &[("eth3", false, None), ("eth5", true, None), ("eth4", false, None)]);
        assert_eq!(reselect(&policy, Some("eth3"), &only, none), None);
        // Not a failover: the previous active slave is still up (the primary came back, or the
        // daemon or an administrator chose), or nothing changed, or nothing was seen before.
        let moved = bond("eth5", &[("eth3", true, None), ("eth5", true, None), ("eth4", true, None)]);
        assert_eq!(reselect(&policy, Some("eth3"), &moved, none), None);
        assert_eq!(reselect(&policy, Some("eth5"), &after, none), None);
        assert_eq!(reselect(&policy, None, &after, none), None);
        // No active slave at all.
        let dark = bond("", &[("eth3", false, None), ("eth5", false, None), ("eth4", false, None)]);
        assert_eq!(reselect(&policy, Some("eth3"), &dark, none), None);
        // A kernel with priorities chooses by itself.
        let new_kernel = bond("eth5", &[("eth3", false, Some(3)), ("eth5", true, Some(0)), ("eth4", true, Some(0))]);
        assert_eq!(reselect(&policy, Some("eth3"), &new_kernel, none), None);
    }
}
