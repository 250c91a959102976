//! One family of one uplink at run time, its IPv4 or its IPv6 side: the same pure health state
//! machine ([`fsm::Uplink`]), the address it probes and routes from, the router it learnt, its
//! path quality ([`quality::Path`]) and its prober task. IPv4 and IPv6 of one uplink fail apart
//! (a provider's IPv6 dies, its IPv4 stays), so each side is judged on its own; carrier and
//! maintenance orders belong to the link and reach both (see `Daemon::feed`).
//!
//! What the families differ in (how an address is chosen, where the planned router is, which
//! probe sockets) is `super::family::IpFamily`; nothing here depends on the family.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::counters::Counters;
use super::fsm;
use super::prober::Running;
use super::quality::Path;
use super::routes::Carrying;
use super::status_record::{FamilyStatus, Shown};
use crate::plan::Prefix;

/// Rounds over which the loss figure is computed (10 s at the default interval).
pub(super) const LOSS_WINDOW: usize = 50;

/// One uplink's side of one family.
pub(super) struct Side<N: Prefix> {
    pub(super) fsm: fsm::Uplink,
    /// The address it probes from and its copies carry as source (see
    /// `IpFamily::choose_address`).
    pub(super) address: Option<N>,
    /// The last address it had: the copies' prefix while the link has no carrier, when the
    /// manager may remove the address before the routes that outlive the carrier (for the
    /// families whose routes do, see `IpFamily::KEEPS_LAST_ADDRESS`).
    pub(super) last_address: Option<N>,
    /// Address presence as last told to the state machine (which starts out assuming it).
    pub(super) has_address: bool,
    /// The router the kernel learnt (DHCP, advertisements), when the policy names none.
    pub(super) learned_gateway: Option<N::Addr>,
    /// The last rounds and the path-quality verdict on them.
    pub(super) path: Path,
    pub(super) rtt: Option<Duration>,
    pub(super) reason: String,
    /// For the metrics (see [`Counters`]).
    pub(super) counters: Counters,
    pub(super) prober: Option<Running<N::Addr>>,
    pub(super) probes_wanted: Arc<AtomicU32>,
    /// The state machine's [`fsm::Uplink::follow_ups`], for the prober.
    pub(super) follow_ups: Arc<AtomicU32>,
}

impl<N: Prefix> Side<N> {
    pub(super) fn new(machine: fsm::Uplink) -> Side<N> {
        Side {
            fsm: machine,
            address: None,
            last_address: None,
            has_address: true,
            learned_gateway: None,
            path: Path::default(),
            rtt: None,
            reason: String::new(),
            counters: Counters::default(),
            prober: None,
            probes_wanted: Arc::new(AtomicU32::new(1)),
            follow_ups: Arc::new(AtomicU32::new(0)),
        }
    }

    pub(super) fn stop_prober(&mut self) {
        if let Some((_, _, task)) = self.prober.take() {
            task.abort();
        }
    }

    /// After a reload: the new settings, and new sockets for them.
    pub(super) fn reconfigure(&mut self, cfg: fsm::Config) {
        self.fsm.reconfigure(cfg);
        self.stop_prober();
    }

    /// The state machine's wishes, for the prober to read before each round.
    pub(super) fn publish_wishes(&self) {
        self.probes_wanted.store(self.fsm.probes_per_round(), Ordering::Relaxed);
        self.follow_ups.store(self.fsm.follow_ups(), Ordering::Relaxed);
    }

    /// The policy's router, else the learnt one.
    pub(super) fn gateway(&self, planned: Option<N::Addr>) -> Option<N::Addr> {
        planned.or(self.learned_gateway)
    }

    /// The state as the log, `status` and the bus show it: the state machine's, or "poor"
    /// while it trusts a path whose quality is below the limits.
    pub(super) fn shown_state(&self) -> Shown {
        Shown::of(self.fsm.state(), self.path.poor().is_some())
    }

    /// The side as its copies need it, while the state machine trusts it and it has a link, an
    /// address and a router.
    pub(super) fn carrying(&self, ifindex: Option<u32>, planned: Option<N::Addr>, metric: u32) -> Option<Carrying<N>> {
        if !self.fsm.state().carries_traffic() {
            return None;
        }
        Some(Carrying { ifindex: ifindex?, address: self.address?, gateway: self.gateway(planned)?, metric })
    }

    /// The side in the status record; `carrying` from the last converge.
    pub(super) fn status(&self, carrying: bool, planned: Option<N::Addr>) -> FamilyStatus {
        FamilyStatus {
            state: self.shown_state(),
            loss_percent: self.path.loss(),
            latency_ms: self.rtt.map(|d| d.as_secs_f64() * 1000.0),
            reason: self.reason.clone(),
            carrying,
            address: self.address.map(|a| a.to_string()).unwrap_or_default(),
            gateway: self.gateway(planned).map(|g| g.to_string()).unwrap_or_default(),
            counters: self.counters,
        }
    }
}

/// Whether a side's routes in main are live while it must not carry new connections, so that
/// the carrying uplinks' copies have to go in front of them: demoted by the probes or an
/// administrator with its carrier up, or without carrier when its routes outlive the carrier
/// (an IPv6 side behind a global router: the plan keeps its `ignore_routes_with_linkdown` at
/// 0, see `plan::sysctl`). Other routes the kernel skips the moment carrier goes: no copies.
pub fn shadowed(state: fsm::State, carrier: bool, outlives_carrier: bool) -> bool {
    if carrier { state.is_demoted() } else { outlives_carrier }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_that_outlive_the_carrier_are_shadowed_without_it_and_others_are_not() {
        use fsm::State::*;
        // (state, carrier, routes outlive the carrier, shadowed)
        let table = [
            (Up, true, true, false),
            (Unknown, true, true, false),
            (Down, true, false, true),
            (Recovering, true, true, true),
            (ForcedDown, true, false, true),
            // Without carrier: the kernel skips a link-local router's routes (and IPv4's), not
            // a global IPv6 router's.
            (NoCarrier, false, false, false),
            (NoCarrier, false, true, true),
            (ForcedDown, false, false, false),
            (ForcedDown, false, true, true),
        ];
        for (state, carrier, outlives, want) in table {
            assert_eq!(shadowed(state, carrier, outlives), want, "{state} carrier={carrier} outlives={outlives}");
        }
    }
}
