//! The uplink state machine without a kernel: tables of event sequences with the expected state
//! after each step, and long simulations (random loss, flapping) driven by a seeded PRNG.

use std::time::Duration;

use multihome::daemon::fsm::{self, Config, Event, SUSPECT_PROBES, State, Uplink};

const ROUND: Duration = Duration::from_millis(200);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs `steps` (time in ms, event, expected state afterwards) and names the failing step.
fn run_table(u: &mut Uplink, steps: &[(u64, Event, State)]) {
    for (i, (t, ev, want)) in steps.iter().enumerate() {
        u.handle(ms(*t), *ev);
        assert_eq!(u.state(), *want, "step {i}: {ev:?} at {t} ms");
    }
}

use Event::{Address, Carrier, Force, Round, Tick};

#[test]
fn a_dead_uplink_is_down_after_fail_after_rounds() {
    let mut u = Uplink::new(Config::default());
    run_table(
        &mut u,
        &[
            (0, Round(true), State::Up),
            (200, Round(false), State::Degraded),
            (400, Round(false), State::Degraded),
            (600, Round(false), State::Down),
            (800, Round(false), State::Down),
        ],
    );
}

#[test]
fn one_good_round_clears_a_degraded_uplink() {
    let mut u = Uplink::new(Config::default());
    run_table(
        &mut u,
        &[
            (0, Round(true), State::Up),
            (200, Round(false), State::Degraded),
            (400, Round(false), State::Degraded),
            (600, Round(true), State::Up),
            (800, Round(false), State::Degraded),
            (1000, Round(false), State::Degraded),
            (1200, Round(false), State::Down),
        ],
    );
}

#[test]
fn a_suspect_uplink_probes_harder_and_a_down_one_does_not() {
    let mut u = Uplink::new(Config::default());
    u.handle(ms(0), Round(true));
    assert_eq!(u.probes_per_round(), 1);
    u.handle(ms(200), Round(false));
    assert_eq!(u.probes_per_round(), SUSPECT_PROBES);
    u.handle(ms(400), Round(false));
    u.handle(ms(600), Round(false));
    assert_eq!(u.state(), State::Down);
    assert_eq!(u.probes_per_round(), 1, "a dead uplink is not flooded");
}

#[test]
fn recovery_needs_recover_after_good_rounds_and_the_hold() {
    let mut u = Uplink::new(Config::default());
    // Down at 600 ms, hold 2 s: good rounds from 800 ms reach 5 at 1600 ms, but the hold runs
    // until 2600 ms.
    run_table(
        &mut u,
        &[
            (0, Round(true), State::Up),
            (200, Round(false), State::Degraded),
            (400, Round(false), State::Degraded),
            (600, Round(false), State::Down),
            (800, Round(true), State::Recovering),
            (1000, Round(true), State::Recovering),
            (1200, Round(false), State::Down),
            (1400, Round(true), State::Recovering),
            (1600, Round(true), State::Recovering),
            (1800, Round(true), State::Recovering),
            (2000, Round(true), State::Recovering),
            (2200, Round(true), State::Recovering),
            (2599, Tick, State::Recovering),
            (2600, Tick, State::Up),
        ],
    );
    assert_eq!(u.wake_at(), None);
}

#[test]
fn after_the_hold_recovery_takes_exactly_recover_after_rounds() {
    let cfg = Config { hold_time: ms(100), ..Config::default() };
    let mut u = Uplink::new(cfg);
    run_table(
        &mut u,
        &[
            (0, Round(true), State::Up),
            (200, Round(false), State::Degraded),
            (400, Round(false), State::Degraded),
            (600, Round(false), State::Down),
            (800, Round(true), State::Recovering),
            (1000, Round(true), State::Recovering),
            (1200, Round(true), State::Recovering),
            (1400, Round(true), State::Recovering),
            (1600, Round(true), State::Up),
        ],
    );
}

#[test]
fn wake_at_names_the_end_of_the_hold() {
    let mut u = Uplink::new(Config::default());
    u.handle(ms(0), Round(true));
    for t in [200, 400, 600] {
        u.handle(ms(t), Round(false));
    }
    assert_eq!(u.wake_at(), None, "no good rounds yet");
    for t in [800, 1000, 1200, 1400, 1600] {
        u.handle(ms(t), Round(true));
    }
    assert_eq!(u.wake_at(), Some(ms(2600)));
}

#[test]
fn carrier_loss_demotes_at_once_and_return_must_prove_itself() {
    let mut u = Uplink::new(Config::default());
    run_table(
        &mut u,
        &[
            (0, Round(true), State::Up),
            (50, Carrier(false), State::NoCarrier),
            // Rounds without carrier change nothing (the daemon does not probe then anyway).
            (200, Round(true), State::NoCarrier),
            (300, Carrier(true), State::Down),
            (400, Round(true), State::Recovering),
            (600, Round(true), State::Recovering),
            (800, Round(true), State::Recovering),
            (1000, Round(true), State::Recovering),
            (1200, Round(true), State::Recovering),
            (2050, Tick, State::Up),
        ],
    );
}

#[test]
fn a_lost_address_demotes_and_force_overrides_everything() {
    let mut u = Uplink::new(Config::default());
    run_table(
        &mut u,
        &[
            (0, Round(true), State::Up),
            (10, Force(fsm::Force::Down), State::ForcedDown),
            (200, Round(true), State::ForcedDown),
            (300, Force(fsm::Force::Release), State::Up),
            (400, Address(false), State::NoAddress),
            (500, Force(fsm::Force::Down), State::ForcedDown),
            (600, Force(fsm::Force::Release), State::NoAddress),
            (700, Address(true), State::Down),
            (800, Force(fsm::Force::Up), State::ForcedUp),
            (900, Round(false), State::ForcedUp),
            (1000, Carrier(false), State::NoCarrier),
            (1100, Carrier(true), State::ForcedUp),
            (1200, Force(fsm::Force::Release), State::Down),
        ],
    );
}

#[test]
fn a_forced_uplink_keeps_its_health_underneath() {
    let mut u = Uplink::new(Config::default());
    run_table(
        &mut u,
        &[
            (0, Round(true), State::Up),
            (100, Force(fsm::Force::Down), State::ForcedDown),
            (200, Round(false), State::ForcedDown),
            (400, Round(false), State::ForcedDown),
            (600, Round(false), State::ForcedDown),
            (700, Force(fsm::Force::Release), State::Down),
        ],
    );
}

#[test]
fn an_unknown_uplink_that_never_answers_goes_down() {
    let mut u = Uplink::new(Config::default());
    run_table(&mut u, &[(0, Round(false), State::Unknown), (200, Round(false), State::Unknown), (400, Round(false), State::Down)]);
}

#[test]
fn adoption_trusts_what_the_table_held() {
    let cfg = Config::default();
    let u = Uplink::adopted(cfg, ms(10_000), true);
    assert_eq!(u.state(), State::Up);
    let mut v = Uplink::adopted(cfg, ms(10_000), false);
    assert_eq!(v.state(), State::Down);
    // The hold counts as served: RecoverAfter good rounds suffice.
    for (i, t) in [10_200, 10_400, 10_600, 10_800].iter().enumerate() {
        v.handle(ms(*t), Round(true));
        assert_eq!(v.state(), State::Recovering, "round {i}");
    }
    v.handle(ms(11_000), Round(true));
    assert_eq!(v.state(), State::Up);
}

#[test]
fn transitions_say_what_happened() {
    let mut u = Uplink::new(Config::default());
    let t = u.handle(ms(0), Round(true)).expect("unknown -> up");
    assert_eq!((t.from, t.to), (State::Unknown, State::Up));
    assert!(u.handle(ms(200), Round(true)).is_none(), "no change, no transition");
    u.handle(ms(400), Round(false));
    u.handle(ms(600), Round(false));
    let t = u.handle(ms(800), Round(false)).expect("degraded -> down");
    assert_eq!((t.from, t.to), (State::Degraded, State::Down));
    assert!(t.reason.contains("3 probe rounds"), "{}", t.reason);
    let t = u.handle(ms(900), Carrier(false)).expect("down -> no-carrier");
    assert_eq!(t.to, State::NoCarrier);
    assert_eq!(t.reason, "carrier lost");
}

/// Fails an Up uplink (FailAfter rounds from `t`), then answers until it is Up again; returns
/// the time it came back and the hold it served.
fn fail_and_recover(u: &mut Uplink, mut t: Duration) -> (Duration, Duration) {
    while u.state() != State::Down {
        u.handle(t, Round(false));
        t += ROUND;
    }
    let hold = u.hold();
    while u.state() != State::Up {
        u.handle(t, Round(true));
        t += ROUND;
    }
    (t, hold)
}

#[test]
fn flap_damping_doubles_the_hold_up_to_the_maximum_and_forgets_after_calm() {
    let cfg = Config::default(); // hold 2 s, max 60 s
    let mut u = Uplink::new(cfg);
    u.handle(ms(0), Round(true));
    let mut t = ms(200);
    let mut holds = Vec::new();
    for _ in 0..7 {
        let (back, hold) = fail_and_recover(&mut u, t);
        holds.push(hold.as_secs());
        t = back + ms(1000); // fails again a second after each recovery
    }
    assert_eq!(holds, vec![2, 4, 8, 16, 32, 60, 60]);
    // Calm for longer than MaxHoldTime: the next failure gets the plain hold again.
    let t = t + cfg.max_hold_time;
    let (_, hold) = fail_and_recover(&mut u, t);
    assert_eq!(hold, cfg.hold_time);
}

/// xorshift64*: a seeded, dependency-free PRNG so the simulations are reproducible.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// A round as the prober sees it: `probes_per_round` echoes, each lost with probability `loss`;
/// the round succeeds when any is answered (one target, Require=1).
fn lossy_round(u: &Uplink, rng: &mut XorShift, loss: f64) -> bool {
    (0..u.probes_per_round()).any(|_| !rng.chance(loss))
}

#[test]
fn twenty_percent_random_loss_never_demotes_at_the_defaults() {
    for seed in [1u64, 0x9e37_79b9_7f4a_7c15, 42] {
        let mut rng = XorShift(seed);
        let mut u = Uplink::new(Config::default());
        let mut t = Duration::ZERO;
        let mut degraded = 0u32;
        // 200 000 rounds of 200 ms: 11 hours.
        for _ in 0..200_000 {
            let ok = lossy_round(&u, &mut rng, 0.2);
            u.handle(t, Round(ok));
            t += ROUND;
            if u.state() == State::Degraded {
                degraded += 1;
            }
            assert!(!matches!(u.state(), State::Down | State::Recovering), "seed {seed:#x}: demoted at {t:?}");
        }
        // The simulation really lost probes: about a fifth of the rounds saw a failure.
        assert!((30_000..50_000).contains(&degraded), "seed {seed:#x}: {degraded} degraded rounds");
    }
}

/// A round as the prober runs it since issue 14: its echoes; when all are lost and the uplink
/// is trusted, `follow_ups()` groups of `SUSPECT_PROBES` echoes at once. A round that loses
/// every one of them stands for 1 + follow_ups failed rounds; any answer makes it good.
fn round_with_follow_ups(u: &Uplink, rng: &mut XorShift, loss: f64) -> (bool, u32) {
    let probes = u.probes_per_round();
    if (0..probes).any(|_| !rng.chance(loss)) {
        return (true, 1);
    }
    let groups = if probes == 1 { u.follow_ups() } else { 0 };
    if (0..groups * SUSPECT_PROBES).any(|_| !rng.chance(loss)) { (true, 1) } else { (false, 1 + groups) }
}

fn feed_round(u: &mut Uplink, t: Duration, (ok, rounds): (bool, u32)) {
    for _ in 0..rounds {
        u.handle(t, Round(ok));
    }
}

#[test]
fn twenty_percent_random_loss_never_demotes_with_follow_ups() {
    for seed in [3u64, 0x2545_f491_4f6c_dd1d, 4242] {
        let mut rng = XorShift(seed);
        let mut u = Uplink::new(Config::default());
        let mut t = Duration::ZERO;
        let mut series = 0u32;
        for _ in 0..200_000 {
            if u.follow_ups() > 0 && u.state() == State::Up {
                series += 1;
            }
            let r = round_with_follow_ups(&u, &mut rng, 0.2);
            feed_round(&mut u, t, r);
            t += ROUND;
            assert!(!matches!(u.state(), State::Down | State::Recovering), "seed {seed:#x}: demoted at {t:?}");
        }
        // Follow-ups were possible in every round: a lost echo never left the uplink suspect.
        assert!(series > 199_000, "seed {seed:#x}: follow-ups possible in only {series} rounds");
    }
}

#[test]
fn a_dead_path_is_down_after_one_round_with_follow_ups() {
    let mut u = Uplink::new(Config::default());
    feed_round(&mut u, ROUND, (true, 1));
    assert_eq!((u.state(), u.follow_ups()), (State::Up, Config::default().fail_after - 1));
    let mut rng = XorShift(9);
    let r = round_with_follow_ups(&u, &mut rng, 1.0);
    assert_eq!(r, (false, Config::default().fail_after));
    feed_round(&mut u, ROUND * 2, r);
    assert_eq!(u.state(), State::Down);
    // Down: one echo a round, no follow-ups (nothing to detect faster).
    assert_eq!((u.probes_per_round(), u.follow_ups()), (1, 0));
    // FailAfter=1 needs none.
    assert_eq!(Uplink::new(Config { fail_after: 1, ..Config::default() }).follow_ups(), 0);
}

#[test]
fn total_loss_is_detected_in_fail_after_rounds_even_after_random_loss() {
    let mut rng = XorShift(7);
    let mut u = Uplink::new(Config::default());
    let mut t = Duration::ZERO;
    for _ in 0..1000 {
        let ok = lossy_round(&u, &mut rng, 0.2);
        u.handle(t, Round(ok));
        t += ROUND;
    }
    // Whatever the random loss left behind, a dead path is down within FailAfter rounds.
    let mut rounds = 0;
    while u.state() != State::Down {
        u.handle(t, Round(false));
        t += ROUND;
        rounds += 1;
        assert!(rounds <= 3, "still {} after {rounds} failed rounds", u.state());
    }
}

#[test]
fn a_flapping_uplink_is_damped() {
    // An uplink dead for 3 rounds, alive for 12, forever, for 10 minutes: undamped that would
    // be a switch every 3 s; with damping the number of promotions stays small.
    let mut u = Uplink::new(Config::default());
    let mut t = Duration::ZERO;
    let mut promotions = 0;
    let mut prev = u.state();
    let mut round = 0u64;
    while t < Duration::from_secs(600) {
        let ok = round % 15 >= 3;
        if let Some(tr) = u.handle(t, Round(ok))
            && tr.to == State::Up
            && prev != State::Degraded
        {
            promotions += 1;
        }
        prev = u.state();
        t += ROUND;
        round += 1;
    }
    // Holds 2+4+8+16+32 s, then one promotion per 60 s hold plus its 3 s up-time.
    assert!(promotions <= 16, "{promotions} promotions in 10 minutes");
    assert!(promotions >= 5, "damping must not lock the uplink out ({promotions})");
}

#[test]
fn states_round_trip_through_their_names() {
    for s in State::ALL {
        assert_eq!(State::parse(s.as_str()), Some(s));
        // The name on the bus and in `status --json` (serde) is the same word.
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    assert_eq!(State::parse("sideways"), None);
}

/// A large FailAfter no longer sends FailAfter - 1 groups at once (issue 23: 999 groups of five
/// echoes per target for FailAfter=1000): at most four, and a round that loses them all stands
/// for five failed rounds; the suspect rounds after it count the rest, one interval apart.
#[test]
fn follow_ups_are_capped_and_the_rest_of_fail_after_is_counted_by_suspect_rounds() {
    let cfg = Config { fail_after: 1000, ..Config::default() };
    let mut u = Uplink::new(cfg);
    feed_round(&mut u, ROUND, (true, 1));
    assert_eq!(u.follow_ups(), fsm::MAX_FOLLOW_UP_GROUPS);
    let r = round_with_follow_ups(&u, &mut XorShift(9), 1.0);
    assert_eq!(r, (false, 1 + fsm::MAX_FOLLOW_UP_GROUPS));
    feed_round(&mut u, ROUND * 2, r);
    assert_ne!(u.state(), State::Down, "five failed rounds are not a thousand");
    assert_eq!((u.probes_per_round(), u.follow_ups()), (SUSPECT_PROBES, 0), "suspect: five echoes a round, no follow-ups");
    let mut t = ROUND * 2;
    for _ in 0..(1000 - 1 - fsm::MAX_FOLLOW_UP_GROUPS - 1) {
        t += ROUND;
        feed_round(&mut u, t, (false, 1));
    }
    assert_ne!(u.state(), State::Down, "one failed round short");
    feed_round(&mut u, t + ROUND, (false, 1));
    assert_eq!(u.state(), State::Down);
}
