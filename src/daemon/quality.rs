//! Path quality: an uplink that answers, but loses many probes or answers slowly, carries new
//! connections only while no better uplink is healthy. Pure: the daemon feeds it the last
//! rounds and the time, and asks whether the uplink is poor.
//!
//! The state machine in `fsm` decides on consecutive rounds (FailAfter/RecoverAfter): right for
//! a dead path, wrong for a bad one, which it demotes after three unlucky rounds and restores
//! after five lucky ones, over and over (measured: a 60 %-loss path was demoted and restored
//! twice in 30 s and kept the traffic most of that time). This judges the loss and the average
//! round-trip time over the window (`LOSS_WINDOW` rounds, 10 s at the defaults) with hysteresis,
//! as mwan3's `failure_loss`/`recovery_loss` and dpinger's alarms do: poor at or above the limit,
//! trusted again only after staying at or below the recovery limit for the hold time.

use std::collections::VecDeque;
use std::time::Duration;

use crate::policy::Probe;

/// Rounds needed before a verdict: a few unlucky first rounds are not a window's loss.
pub const MIN_ROUNDS: usize = 20;

/// One probe round as quality sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub sent: u32,
    pub answered: u32,
    /// The round trip of its answers (none when nothing answered).
    pub rtt: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_loss: u8,
    pub recover_loss: u8,
    pub max_latency: Option<Duration>,
    pub recover_latency: Option<Duration>,
    /// How long the recovery limits must hold before a poor uplink is trusted again.
    pub hold: Duration,
}

impl From<&Probe> for Limits {
    fn from(p: &Probe) -> Limits {
        Limits { max_loss: p.max_loss, recover_loss: p.recover_loss, max_latency: p.max_latency, recover_latency: p.recover_latency, hold: p.hold_time }
    }
}

/// Loss (percent) and average round trip of `rounds`.
pub fn measure(rounds: &VecDeque<Round>) -> (f64, Option<Duration>) {
    let (sent, answered) = rounds.iter().fold((0u32, 0u32), |(s, a), r| (s + r.sent, a + r.answered));
    let loss = if sent == 0 { 0.0 } else { 100.0 * f64::from(sent - answered) / f64::from(sent) };
    // Summed in place: this runs once per round, and a Vec per call showed in the profile.
    let (sum, n) = rounds.iter().filter_map(|r| r.rtt).fold((Duration::ZERO, 0u32), |(s, n), r| (s + r, n + 1));
    let rtt = (n > 0).then(|| sum / n);
    (loss, rtt)
}

/// One uplink's quality verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quality {
    /// Why the uplink is poor, while it is.
    poor: Option<String>,
    /// Since when the recovery limits have held, while poor.
    good_since: Option<Duration>,
}

impl Quality {
    pub fn poor(&self) -> Option<&str> {
        self.poor.as_deref()
    }

    /// Judges the window at `now`; returns the change of verdict, with its reason, if any.
    pub fn judge(&mut self, now: Duration, rounds: &VecDeque<Round>, limits: &Limits) -> Option<Change> {
        if rounds.len() < MIN_ROUNDS {
            return None;
        }
        let (loss, rtt) = measure(rounds);
        let span = format!("over the last {} rounds", rounds.len());
        match &self.poor {
            None => {
                let why = if loss >= f64::from(limits.max_loss) {
                    Some(format!("loss {loss:.0}% {span} (MaxLoss={}%)", limits.max_loss))
                } else {
                    match (rtt, limits.max_latency) {
                        (Some(rtt), Some(max)) if rtt >= max => Some(format!("latency {} ms {span} (MaxLatency={} ms)", rtt.as_millis(), max.as_millis())),
                        _ => None,
                    }
                };
                let why = why?;
                self.poor = Some(why.clone());
                self.good_since = None;
                Some(Change::Poor(why))
            }
            Some(_) => {
                let good = loss <= f64::from(limits.recover_loss) && limits.recover_latency.is_none_or(|max| rtt.is_none_or(|r| r <= max));
                if !good {
                    self.good_since = None;
                    return None;
                }
                let since = *self.good_since.get_or_insert(now);
                if now.saturating_sub(since) < limits.hold {
                    return None;
                }
                self.poor = None;
                self.good_since = None;
                Some(Change::Trusted(format!("loss {loss:.0}% {span}, within the recovery limits for {} ms", limits.hold.as_millis())))
            }
        }
    }

    /// A new policy or a new link: no verdict.
    pub fn reset(&mut self) {
        *self = Quality::default();
    }
}

/// One family's probe history and verdict (an uplink's IPv4 side and its IPv6 side each have one,
/// judged the same way): the rounds `status` shows, the rounds the verdict judges, the verdict,
/// and their losses worked out once per round, not every time the snapshot or the carriers are
/// read (at 200 uplinks that was 50-round sums for every uplink after every uplink's round).
#[derive(Debug, Clone, Default)]
pub struct Path {
    window: VecDeque<Round>,
    /// Those of the last rounds taken while the path was not declared down.
    judged: VecDeque<Round>,
    quality: Quality,
    loss: f64,
    judged_loss: f64,
}

impl Path {
    /// Takes a round at `now` into the last `size`; returns the change of verdict, if any.
    ///
    /// The verdict leaves out the rounds of a path the state machine has declared `down`: a
    /// dead spell (a silent failure, until it is repaired) is the state machine's business,
    /// and would otherwise keep a repaired uplink "poor" for a whole window. A lossy path's
    /// loss stays as it is.
    pub fn record(&mut self, now: Duration, round: Round, down: bool, size: usize, limits: &Limits) -> Option<Change> {
        push_bounded(&mut self.window, round, size);
        if !down {
            push_bounded(&mut self.judged, round, size);
        }
        self.loss = measure(&self.window).0;
        self.judged_loss = measure(&self.judged).0;
        self.quality.judge(now, &self.judged, limits)
    }

    pub fn poor(&self) -> Option<&str> {
        self.quality.poor()
    }

    /// The loss over the last rounds, as `status` shows it.
    pub fn loss(&self) -> f64 {
        self.loss
    }

    /// The loss the verdict sees (which ranks poor uplinks against each other).
    pub fn judged_loss(&self) -> f64 {
        self.judged_loss
    }
}

fn push_bounded(window: &mut VecDeque<Round>, round: Round, size: usize) {
    window.push_back(round);
    while window.len() > size {
        window.pop_front();
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Poor(String),
    Trusted(String),
}

/// Of the uplinks that may carry (`fit`, in rank order) and their poor verdicts, which carry:
/// those not poor; when every one is poor, the least bad one (lowest loss, then rank), so that
/// traffic always has an uplink.
pub fn carriers(fit: &[(bool, f64)]) -> Vec<bool> {
    if fit.iter().any(|(poor, _)| !poor) {
        return fit.iter().map(|(poor, _)| !poor).collect();
    }
    let best = fit.iter().enumerate().min_by(|a, b| a.1.1.total_cmp(&b.1.1).then(a.0.cmp(&b.0))).map(|(i, _)| i);
    (0..fit.len()).map(|i| Some(i) == best).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::from(&Probe::default())
    }

    /// `n` rounds where every `lose`-th one of each `of` is lost.
    fn rounds(n: usize, lost_per_ten: usize) -> VecDeque<Round> {
        (0..n)
            .map(|i| {
                if i % 10 < lost_per_ten {
                    Round { sent: 1, answered: 0, rtt: None }
                } else {
                    Round { sent: 1, answered: 1, rtt: Some(Duration::from_millis(5)) }
                }
            })
            .collect()
    }

    #[test]
    fn sixty_percent_loss_is_poor_and_twenty_is_not() {
        let mut q = Quality::default();
        assert!(matches!(q.judge(Duration::ZERO, &rounds(50, 6), &limits()), Some(Change::Poor(_))));
        let mut q = Quality::default();
        assert_eq!(q.judge(Duration::ZERO, &rounds(50, 2), &limits()), None);
    }

    #[test]
    fn no_verdict_on_a_short_window() {
        let mut q = Quality::default();
        assert_eq!(q.judge(Duration::ZERO, &rounds(MIN_ROUNDS - 1, 10), &limits()), None);
    }

    #[test]
    fn a_poor_uplink_comes_back_only_after_the_hold_below_the_recovery_limit() {
        let l = limits();
        let mut q = Quality::default();
        q.judge(Duration::ZERO, &rounds(50, 6), &l);
        // 30 %: below MaxLoss, above RecoverLoss: stays poor (no flapping in between).
        assert_eq!(q.judge(Duration::from_secs(5), &rounds(50, 3), &l), None);
        assert!(q.poor().is_some());
        // Clean, but not yet for the hold.
        assert_eq!(q.judge(Duration::from_secs(6), &rounds(50, 0), &l), None);
        assert_eq!(q.judge(Duration::from_secs(7), &rounds(50, 0), &l), None);
        assert!(matches!(q.judge(Duration::from_secs(8), &rounds(50, 0), &l), Some(Change::Trusted(_))));
        assert!(q.poor().is_none());
    }

    #[test]
    fn a_relapse_during_the_hold_starts_it_again() {
        let l = limits();
        let mut q = Quality::default();
        q.judge(Duration::ZERO, &rounds(50, 6), &l);
        q.judge(Duration::from_secs(1), &rounds(50, 0), &l);
        q.judge(Duration::from_secs(2), &rounds(50, 5), &l);
        assert_eq!(q.judge(Duration::from_secs(3), &rounds(50, 0), &l), None);
        assert_eq!(q.judge(Duration::from_secs(4), &rounds(50, 0), &l), None);
        assert!(matches!(q.judge(Duration::from_secs(5), &rounds(50, 0), &l), Some(Change::Trusted(_))));
    }

    #[test]
    fn slow_answers_are_poor_when_a_latency_limit_is_given() {
        let l = Limits { max_latency: Some(Duration::from_millis(100)), recover_latency: Some(Duration::from_millis(50)), ..limits() };
        let slow: VecDeque<Round> = (0..30).map(|_| Round { sent: 1, answered: 1, rtt: Some(Duration::from_millis(150)) }).collect();
        let mut q = Quality::default();
        assert!(matches!(q.judge(Duration::ZERO, &slow, &l), Some(Change::Poor(why)) if why.contains("latency 150 ms")));
        let mut q = Quality::default();
        assert_eq!(q.judge(Duration::ZERO, &slow, &limits()), None, "no latency limit by default");
    }

    #[test]
    fn a_path_judges_the_rounds_before_it_was_declared_down_and_shows_them_all() {
        let l = limits();
        let lost = Round { sent: 1, answered: 0, rtt: None };
        let good = Round { sent: 1, answered: 1, rtt: Some(Duration::from_millis(5)) };
        let mut p = Path::default();
        let mut changes = Vec::new();
        for i in 0..60u64 {
            let round = if i % 10 < 6 { lost } else { good };
            changes.extend(p.record(Duration::from_millis(200 * i), round, false, 50, &l));
        }
        assert!(matches!(changes.as_slice(), [Change::Poor(why)] if why.contains("loss 60%")), "{changes:?}");
        assert!(p.poor().is_some());
        // Declared down: shown, not judged.
        for i in 60..110u64 {
            assert_eq!(p.record(Duration::from_millis(200 * i), lost, true, 50, &l), None);
        }
        assert_eq!(p.loss(), 100.0);
        assert_eq!(p.judged_loss(), 60.0);
    }

    #[test]
    fn when_every_uplink_is_poor_the_least_bad_carries() {
        assert_eq!(carriers(&[(true, 60.0), (false, 0.0), (true, 70.0)]), [false, true, false]);
        assert_eq!(carriers(&[(true, 60.0), (true, 55.0)]), [false, true]);
        assert_eq!(carriers(&[(true, 60.0), (true, 60.0)]), [true, false], "a tie goes to the better rank");
        assert_eq!(carriers(&[(false, 0.0), (false, 10.0)]), [true, true]);
        assert!(carriers(&[]).is_empty());
    }
}
