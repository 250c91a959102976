//! Which rules are the hook's: the priority range it writes an uplink's `from` rules in, the same
//! for both families, so the IPv4 half ([`super::hook`]) and the IPv6 half ([`super::ipv6`]) find
//! and remove the same ones.

use std::ops::Range;

use super::event::MAX_ADDRESSES;
use crate::plan::{self, RULE_PRIORITY_END};

/// A rule of the hook (`ours`, its table and priority) for an uplink whose table is `table`,
/// at any rank's priorities (so one from before the policy re-ranked the uplinks still counts).
/// The same test for both families.
pub fn is_uplink_rule(rule_table: u32, priority: u32, ours: bool, table: u32) -> bool {
    let uplink_rules = rule_priorities(0).start..RULE_PRIORITY_END;
    ours && rule_table == table && uplink_rules.contains(&priority)
}

/// The rule priorities the hook may use for the uplink of `rank`: those of its first
/// [`MAX_ADDRESSES`] addresses.
pub fn rule_priorities(rank: usize) -> Range<u32> {
    plan::rule_priority(rank, 0)..plan::rule_priority(rank, MAX_ADDRESSES)
}
