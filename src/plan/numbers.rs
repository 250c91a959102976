//! The plan's numbering of one policy: each uplink's metric, rule priorities and table, from the
//! shared constants in [`crate::numbers`].

use crate::numbers::{KERNEL_TABLES, LEGACY_DAEMON_TABLE, METRIC_BASE, RULE_PRIORITY_BASE, RULE_PRIORITY_STRIDE};
use crate::policy::Uplink;

pub fn metric(rank: usize) -> u32 {
    METRIC_BASE + rank as u32
}

/// The `from` rule of the uplink's `address_index`-th address; its `to` rule takes the next.
pub fn rule_priority(rank: usize, address_index: usize) -> u32 {
    RULE_PRIORITY_BASE + RULE_PRIORITY_STRIDE * rank as u32 + 2 * address_index as u32
}

/// Tables for ranked uplinks: the explicit `Table=`, else 100 + priority (stable when uplinks
/// are added or removed, and the seed's 1/2/3 become 101/102/103), else the next free number.
pub fn tables(ranked: &[&Uplink]) -> Vec<u32> {
    let reserved = |t: u32| KERNEL_TABLES.iter().any(|(n, _)| *n == t) || t == LEGACY_DAEMON_TABLE;
    let mut taken: Vec<u32> = ranked.iter().filter_map(|u| u.table).collect();
    ranked
        .iter()
        .map(|u| {
            if let Some(t) = u.table {
                return t;
            }
            let mut t = 100u32.saturating_add(u.priority);
            while reserved(t) || taken.contains(&t) {
                t = if t == u32::MAX { 1 } else { t + 1 };
            }
            taken.push(t);
            t
        })
        .collect()
}
