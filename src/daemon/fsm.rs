//! The health of one uplink as a pure state machine: probe rounds, carrier, address and
//! maintenance orders go in, a state and (when it changes) a readable transition come out.
//!
//! No clock, no sockets: the caller passes `now` (time since the daemon started) with every event,
//! so every behaviour — FailAfter, RecoverAfter, the hold time, flap damping, tolerance of random
//! loss — is tested with tables of event sequences (tests/fsm.rs).
//!
//! Two ideas keep it both fast and calm:
//! - A failed round on a healthy uplink makes it *suspect*: the next rounds send
//!   [`SUSPECT_PROBES`] echoes instead of one, and a round fails only when none is answered. A dead
//!   uplink still fails every round, while 20 % random loss must lose one probe and then 2 × 5
//!   more in a row (0.2^11 ≈ 2·10⁻⁸ per round, once in about 6 years of 200 ms rounds). A trusted
//!   uplink's prober sends those suspect echoes at once when an answer is late (see
//!   [`Uplink::follow_ups`] and `probe`), so a dead one is down one timeout after its first
//!   unanswered echo instead of FailAfter intervals later, at the same odds.
//! - A demoted uplink comes back only after RecoverAfter good rounds *and* its hold time; each
//!   failure within MaxHoldTime of the last recovery doubles the hold (up to MaxHoldTime), so a
//!   flapping uplink is used less and less often instead of dragging traffic back and forth.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::policy::Probe;

/// Echoes per target in a round while the uplink is suspect (after a failed round). One when
/// healthy keeps the steady probe traffic at 1/Interval per target.
pub const SUSPECT_PROBES: u32 = 5;

/// The most groups of follow-up echoes one late answer starts (see [`Uplink::follow_ups`]):
/// `FailAfter - 1` up to here. Without a ceiling FailAfter=1000 had one late answer send 4,995
/// echoes per target within seconds (issue 23); beyond these four groups (21 echoes in a row
/// lost: 0.2^21 at 20 % random loss) the suspect rounds that follow, one interval apart, count
/// the rest of FailAfter.
pub const MAX_FOLLOW_UP_GROUPS: u32 = 4;

/// The knobs of the machine, from the policy's `[Probe]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub fail_after: u32,
    pub recover_after: u32,
    pub hold_time: Duration,
    pub max_hold_time: Duration,
}

impl From<&Probe> for Config {
    fn from(p: &Probe) -> Config {
        Config { fail_after: p.fail_after, recover_after: p.recover_after, hold_time: p.hold_time, max_hold_time: p.max_hold_time }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config::from(&Probe::default())
    }
}

/// What the daemon and `multihome status` show for an uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// No verdict yet (just started): main decides for it as without the daemon.
    Unknown,
    Up,
    /// Carries traffic, but recent rounds failed (fewer than FailAfter in a row).
    Degraded,
    /// Demoted: FailAfter rounds failed, or the link went away; probed for recovery.
    Down,
    /// Demoted, answering again: waiting for RecoverAfter good rounds and the hold time.
    Recovering,
    /// Demoted: the link has no carrier (or is administratively down).
    NoCarrier,
    /// Demoted: the link has no IPv4 address to probe or route from.
    NoAddress,
    /// Demoted by an administrator (maintenance) until released.
    ForcedDown,
    /// Trusted by an administrator whatever the probes say, until released (carrier and
    /// address still count: without them the uplink cannot carry anything).
    ForcedUp,
}

impl State {
    /// Whether the uplink may carry new connections (the daemon's copies in main are of these).
    pub fn carries_traffic(self) -> bool {
        matches!(self, State::Up | State::Degraded | State::ForcedUp)
    }

    /// Judged unfit to carry traffic by the probes or an administrator, although its link may be
    /// up with an address (so its manager's routes are live); not a link without carrier or
    /// address, and not an uplink without a verdict yet.
    pub fn is_demoted(self) -> bool {
        matches!(self, State::Down | State::Recovering | State::ForcedDown)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Up => "up",
            State::Degraded => "degraded",
            State::Down => "down",
            State::Recovering => "recovering",
            State::NoCarrier => "no-carrier",
            State::NoAddress => "no-address",
            State::ForcedDown => "forced-down",
            State::ForcedUp => "forced-up",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.iter().copied().find(|st| st.as_str() == s)
    }

    /// Every state, in the order of the enum.
    pub const ALL: [State; 9] =
        [State::Unknown, State::Up, State::Degraded, State::Down, State::Recovering, State::NoCarrier, State::NoAddress, State::ForcedDown, State::ForcedUp];
}

/// A maintenance order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Force {
    Down,
    Up,
    /// Back to what the probes say.
    Release,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened to the uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A probe round ended; `true` when the targets answered as `Require=` asks.
    Round(bool),
    Carrier(bool),
    /// Whether the link has an IPv4 address.
    Address(bool),
    /// Maintenance.
    Force(Force),
    /// Time passed (a hold may have run out).
    Tick,
}

/// A change of [`State`], with why, for the log line and the D-Bus signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub reason: String,
}

/// The probe-driven part of the state, under carrier, address and maintenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Unknown,
    Up,
    Down,
}

/// One uplink's machine.
#[derive(Debug, Clone)]
pub struct Uplink {
    cfg: Config,
    health: Health,
    carrier: bool,
    address: bool,
    forced: Option<Force>,
    /// Consecutive failed rounds.
    fails: u32,
    /// Consecutive good rounds.
    goods: u32,
    /// When the uplink was last demoted.
    down_since: Duration,
    /// The hold of the current (or last) demotion.
    hold: Duration,
    last_recovery: Option<Duration>,
    /// Why it went down, kept for the status of a Down uplink.
    reason: String,
}

impl Uplink {
    /// A fresh machine: no verdict until the first round. Carrier and address are assumed present
    /// until the daemon reports otherwise (it reads both from the kernel before the first round).
    pub fn new(cfg: Config) -> Uplink {
        Uplink {
            cfg,
            health: Health::Unknown,
            carrier: true,
            address: true,
            forced: None,
            fails: 0,
            goods: 0,
            down_since: Duration::ZERO,
            hold: cfg.hold_time,
            last_recovery: None,
            reason: String::new(),
        }
    }

    /// A machine for an uplink found in the kernel after a restart: `carrying` says whether the
    /// daemon's table held its route, i.e. whether the previous daemon trusted it. Trusted ones
    /// start up; the others start down with their hold already served, so they come back after
    /// RecoverAfter good rounds.
    pub fn adopted(cfg: Config, now: Duration, carrying: bool) -> Uplink {
        let mut u = Uplink::new(cfg);
        if carrying {
            u.health = Health::Up;
        } else {
            u.health = Health::Down;
            u.down_since = now.saturating_sub(cfg.hold_time);
            u.reason = "not in the daemon's table at restart".into();
        }
        u
    }

    pub fn config(&self) -> Config {
        self.cfg
    }

    /// Takes a new configuration (policy reload) without forgetting the uplink's history.
    pub fn reconfigure(&mut self, cfg: Config) {
        self.cfg = cfg;
        self.hold = self.hold.clamp(cfg.hold_time, cfg.max_hold_time.max(cfg.hold_time));
    }

    /// The administrator's standing order, if any.
    pub fn forced(&self) -> Option<Force> {
        self.forced
    }

    pub fn state(&self) -> State {
        if self.forced == Some(Force::Down) {
            State::ForcedDown
        } else if !self.carrier {
            State::NoCarrier
        } else if !self.address {
            State::NoAddress
        } else if self.forced == Some(Force::Up) {
            State::ForcedUp
        } else {
            match self.health {
                Health::Unknown => State::Unknown,
                Health::Up if self.fails > 0 => State::Degraded,
                Health::Up => State::Up,
                Health::Down if self.goods > 0 => State::Recovering,
                Health::Down => State::Down,
            }
        }
    }

    /// Whether probing makes sense at all (carrier and address present).
    pub fn probing(&self) -> bool {
        self.carrier && self.address
    }

    /// Echoes per target for the next round.
    pub fn probes_per_round(&self) -> u32 {
        if self.fails > 0 && self.health != Health::Down { SUSPECT_PROBES } else { 1 }
    }

    /// Groups of follow-up echoes a late answer may start at once (see `probe`): while the
    /// uplink is trusted and no round has failed, the FailAfter - 1 suspect rounds a failed
    /// round would lead to (at most [`MAX_FOLLOW_UP_GROUPS`]); none while it is suspect (its rounds already send
    /// [`SUSPECT_PROBES`]) or down (one failed round more changes nothing there).
    pub fn follow_ups(&self) -> u32 {
        if self.fails == 0 && self.health != Health::Down { (self.cfg.fail_after - 1).min(MAX_FOLLOW_UP_GROUPS) } else { 0 }
    }

    /// The hold of the current demotion (for status and tests).
    pub fn hold(&self) -> Duration {
        self.hold
    }

    /// When a Tick could promote the uplink (hold running out with enough good rounds).
    pub fn wake_at(&self) -> Option<Duration> {
        (self.health == Health::Down && self.goods >= self.cfg.recover_after).then(|| self.down_since + self.hold)
    }

    pub fn handle(&mut self, now: Duration, event: Event) -> Option<Transition> {
        let before = self.state();
        let mut reason = match event {
            Event::Round(ok) => self.round(now, ok),
            Event::Carrier(up) => {
                self.carrier = up;
                if up {
                    "carrier back".to_string()
                } else {
                    self.link_lost(now, "carrier lost");
                    "carrier lost".to_string()
                }
            }
            Event::Address(present) => {
                self.address = present;
                if present {
                    "IPv4 address back".to_string()
                } else {
                    self.link_lost(now, "IPv4 address gone");
                    "IPv4 address gone".to_string()
                }
            }
            Event::Force(order) => {
                self.forced = (order != Force::Release).then_some(order);
                match order {
                    Force::Down => "forced down (maintenance)".to_string(),
                    Force::Up => "forced up (maintenance)".to_string(),
                    Force::Release => "released from maintenance".to_string(),
                }
            }
            Event::Tick => self.promote_if_due(now).unwrap_or_default(),
        };
        let after = self.state();
        if after == before {
            return None;
        }
        if reason.is_empty() {
            reason = "state changed".into();
        }
        Some(Transition { from: before, to: after, reason })
    }

    fn round(&mut self, now: Duration, ok: bool) -> String {
        if !self.probing() {
            return String::new();
        }
        if ok {
            self.fails = 0;
            self.goods = self.goods.saturating_add(1);
            match self.health {
                // Without the daemon the main table would use it anyway; trusting the first
                // answer keeps startup from hiding a working uplink.
                Health::Unknown => {
                    self.health = Health::Up;
                    "first probe round answered".into()
                }
                Health::Up => "probes answered again".into(),
                Health::Down => self.promote_if_due(now).unwrap_or_else(|| {
                    if self.goods >= self.cfg.recover_after {
                        format!("{} good rounds, held until {:.1} s", self.goods, (self.down_since + self.hold).as_secs_f64())
                    } else {
                        "probes answered, recovering".into()
                    }
                }),
            }
        } else {
            self.goods = 0;
            self.fails = self.fails.saturating_add(1);
            match self.health {
                Health::Up | Health::Unknown if self.fails >= self.cfg.fail_after => {
                    let why = format!("{} probe rounds in a row failed", self.fails);
                    self.demote(now, &why);
                    why
                }
                Health::Up | Health::Unknown => format!("probe round failed ({} of {})", self.fails, self.cfg.fail_after),
                Health::Down => "probe round failed while recovering".into(),
            }
        }
    }

    /// A vanished carrier or address is a failure like FailAfter failed rounds (it counts for
    /// damping), and the rounds after its return must prove the uplink again.
    fn link_lost(&mut self, now: Duration, why: &str) {
        self.goods = 0;
        self.fails = 0;
        if self.health != Health::Down {
            self.demote(now, why);
        }
    }

    fn demote(&mut self, now: Duration, why: &str) {
        let soon_after_recovery = self.last_recovery.is_some_and(|r| now.saturating_sub(r) < self.cfg.max_hold_time);
        self.hold = if self.health == Health::Up && soon_after_recovery {
            (self.hold * 2).min(self.cfg.max_hold_time).max(self.cfg.hold_time)
        } else {
            self.cfg.hold_time
        };
        self.health = Health::Down;
        self.down_since = now;
        self.fails = 0;
        self.goods = 0;
        self.reason = why.to_string();
    }

    fn promote_if_due(&mut self, now: Duration) -> Option<String> {
        if self.health != Health::Down || !self.probing() || self.goods < self.cfg.recover_after || now < self.down_since + self.hold {
            return None;
        }
        self.health = Health::Up;
        self.fails = 0;
        self.last_recovery = Some(now);
        Some(format!("{} good probe rounds after a {:.1} s hold", self.goods, self.hold.as_secs_f64()))
    }

    /// Why the uplink is (or was last) down.
    pub fn down_reason(&self) -> &str {
        &self.reason
    }
}
