//! One uplink at run time: what the kernel says about it (link, carrier, address, the DHCP
//! gateway), its health state machine, its probe statistics, and the task that probes it; its
//! IPv6 side is [`Side6`].

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ipnet::Ipv4Net;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::family6::Side6;
use super::fsm;
use super::probe::{Prober, RoundPlan, RoundResult, Wire};
use super::quality::Path;
use super::routes;
use crate::plan::{Addresses, UplinkPlan, UplinkProbe};
use crate::policy::Probe;

/// Rounds over which the loss figure is computed (10 s at the default interval).
pub(super) const LOSS_WINDOW: usize = 50;

/// A probe round's result, from a prober task to the loop.
pub(super) struct RoundDone {
    /// The uplink's place in the daemon's list when the prober started (the generation says
    /// whether it is still that uplink's prober).
    pub(super) link: usize,
    /// Which of the uplink's probers: each family is judged on its own.
    pub(super) ipv6: bool,
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

/// One uplink as the daemon tracks it.
pub(super) struct Link {
    pub(super) plan: UplinkPlan,
    pub(super) ifindex: Option<u32>,
    /// Carrier and address presence as last told to the state machine (which starts out
    /// assuming both).
    pub(super) carrier: bool,
    pub(super) has_address: bool,
    pub(super) address: Option<Ipv4Net>,
    /// A DHCP uplink's router, from the kernel's default route through the interface.
    pub(super) learned_gateway: Option<Ipv4Addr>,
    pub(super) fsm: fsm::Uplink,
    /// The last rounds and the path-quality verdict on them.
    pub(super) path: Path,
    pub(super) rtt: Option<Duration>,
    pub(super) reason: String,
    pub(super) prober: Option<(ProberKey, u64, JoinHandle<()>)>,
    pub(super) probes_wanted: Arc<AtomicU32>,
    /// The state machine's [`fsm::Uplink::follow_ups`], for the prober.
    pub(super) follow_ups: Arc<AtomicU32>,
    /// Its IPv6 side, judged on its own; `None` when the policy gives it no IPv6.
    pub(super) v6: Option<Side6>,
}

impl Link {
    pub(super) fn new(plan: UplinkPlan, machine: fsm::Uplink) -> Link {
        let v6 = plan.ipv6.as_ref().map(|_| Side6::new(fsm::Uplink::new(machine.config())));
        Link {
            v6,
            plan,
            ifindex: None,
            carrier: true,
            has_address: true,
            address: None,
            learned_gateway: None,
            fsm: machine,
            path: Path::default(),
            rtt: None,
            reason: String::new(),
            prober: None,
            probes_wanted: Arc::new(AtomicU32::new(1)),
            follow_ups: Arc::new(AtomicU32::new(0)),
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.plan.interface
    }

    pub(super) fn gateway(&self) -> Option<Ipv4Addr> {
        self.plan.gateway.or(self.learned_gateway)
    }

    /// The address of an uplink that must not carry traffic while its routes in main are live
    /// (carrier and address present): those routes need the daemon's copies in front of them.
    pub(super) fn demoted_address(&self) -> Option<Ipv4Net> {
        (self.fsm.state().is_demoted() && self.carrier).then_some(self.address?)
    }

    pub(super) fn carrying(&self) -> Option<routes::Carrying> {
        if !self.fsm.state().carries_traffic() {
            return None;
        }
        Some(routes::Carrying { ifindex: self.ifindex?, address: self.address?, gateway: self.gateway()?, metric: self.plan.metric })
    }

    /// Trusted by the state machine (probes answer, carrier, address), before path quality.
    pub(super) fn fit(&self) -> bool {
        self.carrying().is_some()
    }

    /// Stops the IPv4 prober.
    pub(super) fn stop_prober(&mut self) {
        if let Some((_, _, task)) = self.prober.take() {
            task.abort();
        }
    }

    /// Stops both families' probers.
    pub(super) fn stop_probers(&mut self) {
        self.stop_prober();
        if let Some(v6) = &mut self.v6 {
            v6.stop_prober();
        }
    }

    /// Picks the address to probe and route from: a static uplink's planned address once the
    /// kernel has it, a DHCP uplink's first (primary) address.
    pub(super) fn choose_address(&self, present: &[Ipv4Net]) -> Option<Ipv4Net> {
        match &self.plan.addresses {
            Addresses::Static(planned) => planned.iter().find(|p| present.iter().any(|k| k.addr() == p.addr())).copied(),
            Addresses::Dhcp(_) => present.first().copied(),
        }
    }
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
    let ipv6 = W::IPV6;
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
        if rounds.send(RoundDone { link, ipv6, generation, result }).is_err() {
            return;
        }
    }
}
