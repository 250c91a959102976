//! Every number the plan decides: tables, metrics, rule priorities, and the marks multihome puts
//! on what it adds at run time. Each is explained where it is chosen.

use crate::policy::Uplink;

/// Main-table metric of the most preferred uplink; the next ones get 101, 102, ... as in the
/// seed's answer. Below NetworkManager's automatic metrics (ethernet 100 is matched only by the
/// first uplink, Wi-Fi 600) and networkd's DHCP default (1024), so routes of links outside the
/// policy never win over an uplink by accident.
pub const METRIC_BASE: u32 = 100;

/// How many metrics just below [`METRIC_BASE`] the daemon may use for the routes it puts in
/// front of a demoted uplink's (68..=99): few enough that a full-tunnel VPN's usual default
/// route (NetworkManager: 50, OpenVPN: 0, wg-quick: its own table) stays in front and never
/// collides with one of them.
pub const FAILOVER_METRIC_SLOTS: u32 = 32;

/// Uplink rules start here: above 0 (`local`) and far below main (32766), leaving 1..9999 for the
/// administrator's own rules, which then win over multihome's.
const RULE_PRIORITY_BASE: u32 = 10000;

/// Rule priorities per uplink: room for 50 addresses, each with a `from` and a `to` rule.
const RULE_PRIORITY_STRIDE: u32 = 100;

/// Uplink rules end before this priority: after the administrator's and Tailscale's (5210-5270),
/// well before wg-quick's (32764, 32765) and main (32766).
pub const RULE_PRIORITY_END: u32 = 32000;

/// The table and rule priority of the daemon before 0.2 (a rule ahead of main that hid every
/// other route): a new daemon removes what an old one left there, and nothing else uses them.
pub const LEGACY_DAEMON_TABLE: u32 = 0x6d68; // "mh"
pub const LEGACY_DAEMON_RULE_PRIORITY: u32 = 32000;

/// Routing protocol number on the routes and rules multihome adds at run time (the hook and the
/// daemon), so it finds and removes exactly its own (as wg-quick does). Not assigned in
/// /etc/iproute2/rt_protos.
pub const PROTOCOL: u8 = 77;

/// The most addresses one uplink may have: each takes two priorities of its stride.
pub const MAX_ADDRESSES: usize = (RULE_PRIORITY_STRIDE / 2) as usize;

/// The most uplinks a policy may have: the last one's rules still come before [`RULE_PRIORITY_END`].
pub const MAX_UPLINKS: usize = ((RULE_PRIORITY_END - RULE_PRIORITY_BASE) / RULE_PRIORITY_STRIDE) as usize;

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
    let reserved = |t: u32| matches!(t, 0 | 253..=255) || t == LEGACY_DAEMON_TABLE;
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
