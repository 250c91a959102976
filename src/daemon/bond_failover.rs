//! Which slave the daemon makes the bond's active one when its probes through the bond say the
//! active slave's path died silently (its MII up, so the bond's MII monitor sees nothing), with
//! `ProbeFailover=yes`; and when it tries a more preferred slave again. Pure: the caller feeds
//! the state machine's verdicts on the active path and does the rtnetlink change.
//!
//! Moving back is the daemon's business: the kernel's primary reselection acts only on MII
//! events, and a silently failed primary has none. A slave whose path failed is tried again
//! after a hold (the state machine's `HoldTime=`), and only while the active path is trusted;
//! the trial keeps it once `RecoverAfter=` rounds in a row answered through it, and gives it up
//! at its first failed round (back to the slave it came from), doubling its hold up to
//! `MaxHoldTime=`. A slave that fails again within `MaxHoldTime=` of being kept also gets a
//! doubled hold. So a path that stays dead costs one failed round of lost traffic per trial,
//! ever rarer, and a flapping one cannot make the bond flap faster than its hold.

use std::time::Duration;

/// A slave as the decision sees it, in the policy's order (most preferred first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slave<'a> {
    pub name: &'a str,
    pub mii_up: bool,
}

/// A slave whose path failed: when it may be tried again, and the hold that gave that time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failed {
    name: String,
    retry_at: Duration,
    hold: Duration,
}

/// A slave the daemon made active to see whether its path works again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trial {
    pub slave: String,
    /// Where to go back to if the first round through it fails.
    pub back_to: String,
    /// Its path failed again: the trial is over.
    pub failed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holds {
    pub hold_time: Duration,
    pub max_hold_time: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct Failover {
    failed: Vec<Failed>,
    /// The last time each slave was kept after a trial, with the hold it had, for the doubling
    /// of a quick relapse.
    kept: Vec<(String, Duration, Duration)>,
    trial: Option<Trial>,
}

/// What to do: make `slave` active, for `why`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    pub slave: String,
    pub why: String,
    /// A trial of a slave whose path failed before.
    pub trial: bool,
}

impl Failover {
    pub fn trial(&self) -> Option<&Trial> {
        self.trial.as_ref()
    }

    /// Whether `slave`'s path failed and has not been kept since.
    pub fn is_failed(&self, slave: &str) -> bool {
        self.failed.iter().any(|f| f.name == slave)
    }

    /// The hold `slave` served before its trial (none: its path has not failed).
    pub fn hold_of(&self, slave: &str) -> Option<Duration> {
        self.failed.iter().find(|f| f.name == slave).map(|f| f.hold)
    }

    /// When the next trial may start (for the daemon's wake-up).
    pub fn next_retry(&self) -> Option<Duration> {
        self.failed.iter().map(|f| f.retry_at).min()
    }

    /// The path through `slave` was declared dead at `now` (the state machine demoted it, or a
    /// trial's round failed).
    pub fn path_failed(&mut self, slave: &str, now: Duration, holds: Holds) {
        let previous = self.failed.iter().position(|f| f.name == slave).map(|i| self.failed.swap_remove(i));
        let relapse = self.kept.iter().find(|(n, at, _)| n == slave && now.saturating_sub(*at) < holds.max_hold_time).map(|(_, _, h)| *h);
        let hold = match (previous, relapse) {
            (Some(f), _) => f.hold * 2,
            (None, Some(h)) => h * 2,
            (None, None) => holds.hold_time,
        }
        .clamp(holds.hold_time, holds.max_hold_time.max(holds.hold_time));
        self.failed.push(Failed { name: slave.to_string(), retry_at: now + hold, hold });
        match &mut self.trial {
            // Its back_to stays, for next().
            Some(t) if t.slave == slave => t.failed = true,
            _ => self.trial = None,
        }
    }

    /// The path through `slave` is trusted (the state machine promoted it): a trial ends, the
    /// slave is kept.
    pub fn path_trusted(&mut self, slave: &str, now: Duration) {
        if let Some(i) = self.failed.iter().position(|f| f.name == slave) {
            let f = self.failed.swap_remove(i);
            self.kept.retain(|(n, _, _)| n != slave);
            self.kept.push((f.name, now, f.hold));
        }
        if self.trial.as_ref().is_some_and(|t| t.slave == slave) {
            self.trial = None;
        }
    }

    /// The kernel made another slave active by itself (an MII event): a trial is over.
    pub fn kernel_switched(&mut self) {
        self.trial = None;
    }

    /// The slave to make active now, if any. `active` is the bond's active slave; `trusted`
    /// whether the state machine trusts the path through it (false while it is unknown or
    /// recovering).
    pub fn next(&mut self, slaves: &[Slave], active: &str, trusted: bool, now: Duration) -> Option<Switch> {
        if self.trial.as_ref().is_some_and(|t| t.slave == active && !t.failed) {
            return None; // a trial under way: the state machine decides
        }
        if self.is_failed(active) {
            // A failed trial goes back to where it came from, if that is still up.
            if let Some(t) = self.trial.take().filter(|t| t.slave == active)
                && slaves.iter().any(|s| s.name == t.back_to && s.mii_up)
            {
                return Some(Switch { slave: t.back_to, why: format!("probes through {active} still fail"), trial: false });
            }
            let next = slaves.iter().find(|s| s.mii_up && s.name != active && !self.is_failed(s.name))?;
            return Some(Switch {
                slave: next.name.to_string(),
                why: format!("probes through {active} fail while its MII is up; {} is the next slave up", next.name),
                trial: false,
            });
        }
        if !trusted || self.trial.is_some() {
            return None;
        }
        // A more preferred slave whose hold ran out: try it.
        let rank = slaves.iter().position(|s| s.name == active).unwrap_or(slaves.len());
        let again = slaves[..rank].iter().find(|s| s.mii_up && self.failed.iter().any(|f| f.name == s.name && f.retry_at <= now))?;
        let hold = self.failed.iter().find(|f| f.name == again.name).map_or(Duration::ZERO, |f| f.hold);
        self.trial = Some(Trial { slave: again.name.to_string(), back_to: active.to_string(), failed: false });
        Some(Switch { slave: again.name.to_string(), why: format!("trying {} again after a {:.1} s hold", again.name, hold.as_secs_f64()), trial: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLDS: Holds = Holds { hold_time: Duration::from_secs(2), max_hold_time: Duration::from_secs(60) };

    fn s(t: f64) -> Duration {
        Duration::from_secs_f64(t)
    }

    fn up(names: &[&'static str]) -> Vec<Slave<'static>> {
        names.iter().map(|n| Slave { name: n, mii_up: true }).collect()
    }

    #[test]
    fn a_silent_failure_moves_to_the_next_slave_in_policy_order_with_its_mii_up() {
        let mut f = Failover::default();
        let mut slaves = up(&["eth0", "wlan1", "wlan0"]);
        assert_eq!(f.next(&slaves, "eth0", true, s(1.0)), None, "nothing failed");
        f.path_failed("eth0", s(1.0), HOLDS);
        slaves[1].mii_up = false;
        let got = f.next(&slaves, "eth0", false, s(1.0)).expect("a switch");
        assert_eq!((got.slave.as_str(), got.trial), ("wlan0", false), "wlan1's MII is down");
        assert!(got.why.contains("probes through eth0 fail while its MII is up"), "{}", got.why);
        // Nothing left: every other slave down or failed.
        f.path_failed("wlan0", s(1.5), HOLDS);
        assert_eq!(f.next(&slaves, "wlan0", false, s(1.5)), None);
    }

    #[test]
    fn the_primary_is_tried_again_after_its_hold_and_kept_when_its_path_answers() {
        let mut f = Failover::default();
        let slaves = up(&["eth0", "wlan1"]);
        f.path_failed("eth0", s(3.0), HOLDS);
        assert_eq!(f.next(&slaves, "eth0", false, s(3.0)).map(|x| x.slave).as_deref(), Some("wlan1"));
        assert_eq!(f.next(&slaves, "wlan1", true, s(4.9)), None, "held until 5.0 s");
        assert_eq!(f.next(&slaves, "wlan1", false, s(5.5)), None, "not while the active path is not trusted");
        let trial = f.next(&slaves, "wlan1", true, s(5.5)).expect("a trial");
        assert_eq!((trial.slave.as_str(), trial.trial), ("eth0", true));
        assert_eq!(f.next(&slaves, "eth0", false, s(5.6)), None, "one trial at a time");
        f.path_trusted("eth0", s(6.5));
        assert!(!f.is_failed("eth0") && f.trial().is_none());
        assert_eq!(f.next(&slaves, "eth0", true, s(7.0)), None);
    }

    #[test]
    fn a_failed_trial_goes_back_and_doubles_the_hold_up_to_max_hold_time() {
        let mut f = Failover::default();
        let slaves = up(&["eth0", "wlan1"]);
        f.path_failed("eth0", s(0.0), HOLDS);
        f.next(&slaves, "eth0", false, s(0.0));
        let mut now = 0.0;
        let mut holds = Vec::new();
        for _ in 0..8 {
            let at = f.next_retry().expect("eth0 waits").as_secs_f64();
            holds.push(at - now);
            let trial = f.next(&slaves, "wlan1", true, s(at)).expect("a trial");
            assert_eq!(trial.slave, "eth0");
            now = at + 0.2;
            f.path_failed("eth0", s(now), HOLDS);
            let back = f.next(&slaves, "eth0", false, s(now)).expect("back");
            assert_eq!((back.slave.as_str(), back.trial), ("wlan1", false));
        }
        let rounded: Vec<u64> = holds.iter().map(|h| h.round() as u64).collect();
        assert_eq!(rounded, vec![2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn a_relapse_soon_after_being_kept_doubles_the_hold() {
        let mut f = Failover::default();
        let slaves = up(&["eth0", "wlan1"]);
        f.path_failed("eth0", s(0.0), HOLDS);
        f.next(&slaves, "eth0", false, s(0.0));
        f.next(&slaves, "wlan1", true, s(2.0)).expect("a trial");
        f.path_trusted("eth0", s(3.0));
        f.path_failed("eth0", s(10.0), HOLDS);
        assert_eq!(f.next_retry(), Some(s(14.0)), "4 s: a relapse within MaxHoldTime");
        assert_eq!(f.hold_of("eth0"), Some(s(4.0)));
        f.next(&slaves, "eth0", false, s(10.0));
        f.next(&slaves, "wlan1", true, s(14.0)).expect("a trial");
        f.path_trusted("eth0", s(15.0));
        f.path_failed("eth0", s(100.0), HOLDS);
        assert_eq!(f.next_retry(), Some(s(102.0)), "long after: HoldTime again");
    }

    #[test]
    fn a_kernel_switch_ends_a_trial() {
        let mut f = Failover::default();
        let slaves = up(&["eth0", "wlan1"]);
        f.path_failed("eth0", s(0.0), HOLDS);
        f.next(&slaves, "eth0", false, s(0.0));
        f.next(&slaves, "wlan1", true, s(2.0)).expect("a trial");
        f.kernel_switched();
        assert!(f.trial().is_none());
    }
}
