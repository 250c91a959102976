//! An uplink's prober task: the rounds of one family's probe sockets ([`Prober`]) every interval,
//! each result sent to the daemon's loop as a [`RoundDone`]. The loop starts and stops these
//! tasks ([`ProberKey`] says when new sockets are needed); Mode=bond runs one through the bond.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::probe::{Family, Prober, RoundPlan, RoundResult, Wire};
use crate::plan::UplinkProbe;
use crate::policy::Probe;

/// A probe round's result, from a prober task to the loop.
pub(super) struct RoundDone {
    /// The uplink's place in the daemon's list when the prober started (the generation says
    /// whether it is still that uplink's prober).
    pub(super) link: usize,
    /// Which of the uplink's probers: each family is judged on its own.
    pub(super) family: Family,
    pub(super) generation: u64,
    pub(super) result: RoundResult,
}

/// What identifies a running prober: a change of any part means new sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProberKey<A = Ipv4Addr> {
    pub(super) ifindex: u32,
    pub(super) source: A,
    pub(super) arp: Option<A>,
}

/// What a prober task is given: whose rounds, with which settings, and where they go.
pub(super) struct ProberTask<A = Ipv4Addr> {
    /// The uplink's place in the daemon's list, and the generation of this prober.
    pub(super) link: usize,
    pub(super) generation: u64,
    pub(super) interface: String,
    pub(super) key: ProberKey<A>,
    /// The targets of the prober's family.
    pub(super) targets: Vec<A>,
    pub(super) probe: Probe,
    pub(super) own: UplinkProbe,
    /// The state machine's wishes, read before each round.
    pub(super) wanted: Arc<AtomicU32>,
    pub(super) follow_ups: Arc<AtomicU32>,
    pub(super) rounds: mpsc::UnboundedSender<RoundDone>,
}

/// One uplink's probe rounds, every interval of its own (`ProbeInterval=`, else `[Probe]`'s),
/// to its own targets (`ProbeTarget=`, else `[Probe]`'s), until aborted.
pub(super) async fn probe_loop<W: Wire>(task: ProberTask<W::Addr>) {
    let ProberTask { link, generation, interface, key, targets, probe, own, wanted, follow_ups, rounds } = task;
    let family = W::FAMILY;
    let mut logged = false;
    let mut prober = loop {
        match Prober::<W>::open(&interface, key.source) {
            Ok(p) => break p,
            Err(e) => {
                if !logged {
                    tracing::warn!(iface = %interface, "{interface}: cannot open probe sockets from {}: {e}; retrying every second", key.source);
                    logged = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut tick = tokio::time::interval(own.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let plan = RoundPlan {
            targets: targets.clone(),
            require: probe.require,
            arp: key.arp,
            probes: wanted.load(Ordering::Relaxed),
            timeout: own.timeout,
            follow_ups: follow_ups.load(Ordering::Relaxed),
        };
        if plan.targets.is_empty() && plan.arp.is_none() {
            continue; // nothing to ask: the uplink stays unknown and the main table decides
        }
        let result = prober.round(&plan).await;
        if rounds.send(RoundDone { link, family, generation, result }).is_err() {
            return;
        }
    }
}

/// A running prober: what it was opened with, its generation, its task.
pub(super) type Running<A> = (ProberKey<A>, u64, JoinHandle<()>);
