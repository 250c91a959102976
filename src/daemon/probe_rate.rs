//! The ceiling on probe packets one uplink sends per second, from the policy alone (issue 23):
//! what `multihome check` prints, so a policy's probe traffic is known before it runs.
//!
//! A round sends, per family, at most one gateway question (ARP or neighbour solicitation) and
//! per target the most echoes any round can send: [`SUSPECT_PROBES`] in a suspect round, or one
//! plus the follow-up groups a late answer starts in a trusted round (`FailAfter - 1`, at most
//! [`MAX_FOLLOW_UP_GROUPS`], each of `SUSPECT_PROBES`). Rounds start at least one interval apart
//! (the prober's tick delays rather than bursts after a long round), so the ceiling is the
//! biggest round over the interval. As many answers may come back.

use std::time::Duration;

use super::fsm::{MAX_FOLLOW_UP_GROUPS, SUSPECT_PROBES};

/// The most echoes one round sends to one target.
pub fn echoes_per_target(fail_after: u32) -> u32 {
    let groups = fail_after.saturating_sub(1).min(MAX_FOLLOW_UP_GROUPS);
    SUSPECT_PROBES.max(1 + groups * SUSPECT_PROBES)
}

/// Packets per second at most, for `targets` echo targets and `questions` gateway questions per
/// round (both families together), rounds every `interval`; rounded up.
pub fn ceiling(targets: usize, questions: usize, fail_after: u32, interval: Duration) -> u64 {
    let per_round = targets as u128 * u128::from(echoes_per_target(fail_after)) + questions as u128;
    let nanos = interval.as_nanos().max(1);
    u64::try_from((per_round * 1_000_000_000).div_ceil(nanos)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_follow_ups_are_capped_whatever_fail_after_says() {
        assert_eq!(echoes_per_target(1), SUSPECT_PROBES, "no follow-ups: a suspect round's five");
        assert_eq!(echoes_per_target(3), 11, "the default: one echo and two groups of five");
        assert_eq!(echoes_per_target(5), 21);
        assert_eq!(echoes_per_target(1000), 21, "FailAfter=1000 sent 4,996 before");
    }

    #[test]
    fn the_ceiling_is_the_biggest_round_over_the_interval() {
        let ms = Duration::from_millis;
        // Defaults with two targets and ARP: 2 × 11 + 1 = 23 packets every 200 ms.
        assert_eq!(ceiling(2, 1, 3, ms(200)), 115);
        assert_eq!(ceiling(0, 1, 3, ms(200)), 5, "ARP alone");
        assert_eq!(ceiling(1, 0, 1000, ms(1000)), 21);
        assert_eq!(ceiling(1, 0, 3, ms(3000)), 4, "11 packets every 3 s: rounded up");
        assert_eq!(ceiling(3, 2, 1000, ms(20)), 3250);
    }
}
