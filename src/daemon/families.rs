//! The daemon's work on each family of each uplink, one body for IPv4 and IPv6 (see
//! [`IpFamily`] for what differs): reading a side's address and router, feeding its state
//! machine, taking its probe rounds, running its prober, and converging the family's copies
//! in main from its verdicts alone ([`super::routes`]).
//!
//! The router of an uplink that takes advertisements is the link-local one the kernel learnt
//! (its `::/0` route through the interface, in main or in the uplink's table); a DHCP uplink's
//! the lease's. An IPv6 side's SLAAC, temporary and DHCPv6 addresses get their `from`/`to`
//! rules as soon as the kernel announces them (RTM_NEWADDR/RTM_DELADDR), with the dispatcher
//! hook's own reconcile ([`super::hook`]): networkd-dispatcher runs the hook only when the
//! link's state changes, and a new temporary address changes no state.

use tokio::time::Instant;

use super::family::IpFamily;
use super::fsm::{self, Event};
use super::prober::{ProberKey, ProberTask, RoundDone, probe_loop};
use super::quality::{self, Round};
use super::routes;
use super::side::{LOSS_WINDOW, shadowed};
use super::status_record::{FamilyStatus, Shown};
use super::{Daemon, Logged, RETRY_AFTER};
use crate::netlink::{KernelRoute, LinkState};
use crate::plan;

impl Daemon {
    /// After a restart: a side whose default copy is in main (`previous`, the daemon's routes
    /// of the family) was trusted by the previous daemon, one without it was demoted.
    pub(super) fn adopt_sides<F: IpFamily>(&mut self, previous: &[KernelRoute<F>], kernel_links: &[LinkState]) {
        if previous.is_empty() {
            return; // a previous daemon without copies had nothing demoted: starting blind changes nothing
        }
        let (cfg, now) = (self.fsm_config(), self.now());
        for l in &mut self.links {
            let ifindex = kernel_links.iter().find(|k| k.name == l.plan.interface).map(|k| k.index);
            let carrying = ifindex.is_some_and(|i| previous.iter().any(|r| r.ifindex == Some(i) && r.destination.prefix_len() == 0));
            if let Some(side) = F::side_mut(l) {
                side.fsm = fsm::Uplink::adopted(cfg, now, carrying);
            }
        }
    }

    /// Reads uplink `i`'s addresses and router of the family.
    pub(super) async fn read_family<F: IpFamily>(&mut self, i: usize) {
        if F::side(&self.links[i]).is_none() {
            return;
        }
        self.read_addresses::<F>(i).await;
        self.read_gateway::<F>(i).await;
    }

    pub(super) async fn read_addresses<F: IpFamily>(&mut self, i: usize) {
        if F::side(&self.links[i]).is_none() {
            return;
        }
        let name = self.links[i].name().to_string();
        let present = match self.links[i].ifindex {
            Some(ifx) => match F::addresses(&self.nl, ifx).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(iface = %name, "{name}: cannot read {}addresses: {e}", F::BEFORE_NOUN);
                    return;
                }
            },
            None => Vec::new(),
        };
        let chosen = F::choose_address(&self.links[i].plan, &present);
        let Some(side) = F::side_mut(&mut self.links[i]) else { return };
        side.address = chosen;
        if F::KEEPS_LAST_ADDRESS {
            side.last_address = chosen.or(side.last_address);
        }
        let told = side.has_address != chosen.is_some();
        side.has_address = chosen.is_some();
        // Whatever changed: the copies' sources and the carriers follow the address.
        let state = F::state_mut(&mut self.fam);
        state.routes_dirty = true;
        state.dirty = true;
        if told {
            self.feed_side::<F>(i, Event::Address(chosen.is_some()));
        }
    }

    /// A side without a router in the policy: the one the kernel's default route through the
    /// interface names (in main or in the uplink's table, not one of ours).
    pub(super) async fn read_gateway<F: IpFamily>(&mut self, i: usize) {
        let plan = &self.links[i].plan;
        if !F::planned(plan) || F::planned_gateway(plan).is_some() {
            return;
        }
        let own_table = plan.table;
        let gw = match self.links[i].ifindex {
            None => None,
            Some(ifx) => match self.nl.routes_of::<F>().await {
                Ok(routes) => routes
                    .iter()
                    .filter(|r| r.destination.prefix_len() == 0 && r.ifindex == Some(ifx) && !r.is_ours())
                    .filter(|r| r.table == plan::Table::Main.number() || r.table == own_table)
                    .find_map(|r| r.gateway),
                Err(e) => {
                    let name = self.links[i].name();
                    tracing::warn!(iface = %name, "{name}: cannot read {}routes: {e}", F::BEFORE_NOUN);
                    return;
                }
            },
        };
        if let Some(side) = F::side_mut(&mut self.links[i])
            && side.learned_gateway != gw
        {
            side.learned_gateway = gw;
            let state = F::state_mut(&mut self.fam);
            state.routes_dirty = true;
            state.dirty = true;
        }
    }

    /// A route of the family came or went: the copies' metrics, a learnt router, or one of
    /// ours (our own changes come back as events too; reconciling again is a no-op then).
    pub(super) async fn on_route<F: IpFamily>(&mut self, r: KernelRoute<F>) {
        if r.table() == plan::Table::Main {
            let state = F::state_mut(&mut self.fam);
            if r.is_ours() {
                state.routes_dirty = true;
            } else {
                // A VPN's default route came or went, a manager re-added a route: the copies'
                // metrics may have to move.
                state.foreign_dirty = true;
            }
        }
        // The manager's default route through an uplink: the router the hook's copy in the
        // uplink's table follows (NetworkManager's DHCP and advertised routers).
        if r.destination.prefix_len() == 0
            && !r.is_ours()
            && let Some(i) = self.links.iter().position(|l| l.ifindex == r.ifindex && F::planned(&l.plan))
        {
            self.hook.route_changed(i);
            self.read_gateway::<F>(i).await;
        }
    }

    /// An event of the link (carrier, maintenance, time) reaches both families' machines; an
    /// address or a round only its own (see [`Daemon::feed_side`]).
    pub(super) fn feed(&mut self, i: usize, event: Event) {
        self.feed_side::<ipnet::Ipv4Net>(i, event);
        self.feed_side::<ipnet::Ipv6Net>(i, event);
    }

    pub(super) fn feed_side<F: IpFamily>(&mut self, i: usize, event: Event) {
        let now = self.now();
        let l = &mut self.links[i];
        let name = l.name().to_string();
        let Some(side) = F::side_mut(l) else { return };
        let wake_before = side.fsm.wake_at();
        let state = F::state_mut(&mut self.fam);
        // A carrier change may shadow or unshadow its routes (see [`shadowed`]) with no
        // transition (a side forced down).
        state.dirty |= matches!(event, Event::Carrier(_));
        if let Some(t) = side.fsm.handle(now, event) {
            side.reason = t.reason.clone();
            let (from, to) = (t.from.to_string(), Shown::of(t.to, side.path.poor().is_some()).to_string());
            side.counters.transitions += 1;
            self.pending.push(Logged { interface: name, from, to, reason: t.reason, family: F::WHICH });
            state.dirty = true;
            // So that the transition is logged and the snapshot shows it in this converge.
            self.verdicts_dirty = true;
        }
        self.wake_dirty |= side.fsm.wake_at() != wake_before;
        side.publish_wishes();
    }

    /// A probe round of uplink `i`'s side of the family.
    pub(super) fn on_side_round<F: IpFamily>(&mut self, done: RoundDone) {
        let i = done.link;
        let (now, limits) = (self.now(), quality::Limits::from(&self.probe));
        let Some(l) = self.links.get_mut(i) else { return };
        let interface = l.name().to_string();
        let Some(side) = F::side_mut(l) else { return };
        if side.prober.as_ref().map(|(_, g, _)| *g) != Some(done.generation) {
            return; // from a prober that has since been replaced (or a reload reordered the uplinks)
        }
        let round = Round { sent: done.result.sent, answered: done.result.answered, rtt: done.result.rtt };
        let shown = side.shown_state();
        let change = side.path.record(now, round, side.fsm.state() == fsm::State::Down, LOSS_WINDOW, &limits);
        // An unanswered round clears it: a dead uplink shows no latency rather than an old one.
        side.rtt = done.result.rtt;
        side.counters.record_round(done.result.sent, done.result.answered, done.result.rtt);
        let state = F::state_mut(&mut self.fam);
        // A poor side's loss ranks it against the other poor ones (see `quality::carriers`).
        state.dirty |= side.path.poor().is_some();
        if let Some(change) = change {
            let (to, reason) = match change {
                quality::Change::Poor(why) => (Shown::Poor, why),
                quality::Change::Trusted(why) => (side.fsm.state().into(), why),
            };
            side.reason = reason.clone();
            side.counters.transitions += 1;
            self.pending.push(Logged { interface, from: shown.to_string(), to: to.to_string(), reason, family: F::WHICH });
            state.dirty = true;
            self.verdicts_dirty = true;
        }
        self.touched.push(i);
        // A round whose follow-ups were all lost stands for that many failed rounds.
        for _ in 0..if done.result.ok { 1 } else { done.result.rounds.max(1) } {
            self.feed_side::<F>(i, Event::Round(done.result.ok));
        }
    }

    /// Probers where a side has a link and an address, probing makes sense, and (for a
    /// family that needs it) there is something to ask.
    pub(super) fn sync_probers<F: IpFamily>(&mut self) {
        let arp = self.probe.arp_gateway;
        for (i, l) in self.links.iter_mut().enumerate() {
            let (ifindex, planned) = (l.ifindex, F::planned_gateway(&l.plan));
            let targets = F::targets(&l.plan).to_vec();
            let (interface, own) = (l.plan.interface.clone(), l.plan.probe.clone());
            let Some(side) = F::side_mut(l) else { continue };
            let gateway = side.gateway(planned);
            let question = F::PROBES_WITHOUT_QUESTION || !targets.is_empty() || (arp && gateway.is_some());
            let key = match (ifindex, side.address, side.fsm.probing()) {
                (Some(ifindex), Some(address), true) if question => Some(ProberKey { ifindex, source: address.addr(), arp: if arp { gateway } else { None } }),
                _ => None,
            };
            if side.prober.as_ref().map(|(k, _, _)| k) == key.as_ref() {
                continue;
            }
            side.stop_prober();
            let Some(key) = key else { continue };
            self.generation += 1;
            let task = tokio::spawn(probe_loop::<F::Wire>(ProberTask {
                link: i,
                generation: self.generation,
                interface,
                key: key.clone(),
                targets,
                probe: self.probe.clone(),
                own,
                wanted: side.probes_wanted.clone(),
                follow_ups: side.follow_ups.clone(),
                rounds: self.rounds.clone(),
            }));
            side.prober = Some((key, self.generation, task));
        }
    }

    fn carrying<F: IpFamily>(&self, i: usize) -> Option<routes::Carrying<F>> {
        let l = &self.links[i];
        F::side(l)?.carrying(l.ifindex, F::planned_gateway(&l.plan), l.plan.metric)
    }

    /// Which uplinks' sides carry new connections of the family: those the state machine
    /// trusts, less the poor ones while one that is not poor is among them (see
    /// [`quality::carriers`]).
    pub(super) fn carriers<F: IpFamily>(&self) -> Vec<bool> {
        let fit: Vec<usize> = (0..self.links.len()).filter(|&i| self.carrying::<F>(i).is_some()).collect();
        let judged = |i: usize| F::side(&self.links[i]).map_or((false, 0.0), |s| (s.path.poor().is_some(), s.path.judged_loss()));
        let verdicts = quality::carriers(&fit.iter().map(|&i| judged(i)).collect::<Vec<_>>());
        let mut carriers = vec![false; self.links.len()];
        for (&i, v) in fit.iter().zip(verdicts) {
            carriers[i] = v;
        }
        carriers
    }

    /// The family's probers, carriers and copies in main as its verdicts say, when something
    /// of the family changed.
    pub(super) async fn converge_family<F: IpFamily>(&mut self) {
        if !F::state(&self.fam).needs_converge() {
            return;
        }
        F::state_mut(&mut self.fam).dirty = false;
        self.sync_probers::<F>();
        if F::state(&self.fam).foreign_dirty {
            match self.nl.routes_of_table::<F>(plan::Table::Main).await {
                Ok(main) => {
                    let state = F::state_mut(&mut self.fam);
                    state.foreign = routes::foreign(&main);
                    state.foreign_dirty = false;
                }
                Err(e) => {
                    tracing::error!("cannot read the {}main table: {e}; retrying in {RETRY_AFTER:?}", F::BEFORE_NOUN);
                    self.retry_at = Some(Instant::now() + RETRY_AFTER);
                }
            }
        }
        let carriers = self.carriers::<F>();
        let carrying: Vec<routes::Carrying<F>> = (0..self.links.len()).filter(|&i| carriers[i]).filter_map(|i| self.carrying::<F>(i)).collect();
        // Demoted by the state machine (or without carrier where its routes outlive it), or fit
        // but poor while a better side carries: either way its routes in main are live and
        // need the copies in front.
        let demoted: Vec<F> = (0..self.links.len())
            .filter_map(|i| {
                let l = &self.links[i];
                let side = F::side(l)?;
                let passed_over = self.carrying::<F>(i).is_some() && !carriers[i];
                let live = shadowed(side.fsm.state(), l.carrier, F::routes_outlive_carrier(&l.plan)) || passed_over;
                live.then(|| if F::KEEPS_LAST_ADDRESS { side.address.or(side.last_address) } else { side.address }).flatten()
            })
            .collect();
        let state = F::state_mut(&mut self.fam);
        state.carriers = carriers;
        let want = routes::desired(&carrying, &demoted, &state.foreign);
        if state.routes_dirty || state.last_routes.as_ref() != Some(&want) {
            if let Err(e) = routes::reconcile(&self.nl, &want).await {
                tracing::error!("cannot update the daemon's {}routes in main: {e}; retrying in {RETRY_AFTER:?}", F::BEFORE_NOUN);
                self.retry_at = Some(Instant::now() + RETRY_AFTER);
            }
            let state = F::state_mut(&mut self.fam);
            state.last_routes = Some(want);
            state.routes_dirty = false;
        }
    }

    /// The first uplink whose side of the family carries, "" when none does.
    pub(super) fn first_carrier<F: IpFamily>(&self) -> String {
        let state = F::state(&self.fam);
        (0..self.links.len()).find(|&i| state.carries(i)).map(|i| self.links[i].name().to_string()).unwrap_or_default()
    }

    /// Uplink `i`'s side of the family in the status record; `None` without one.
    pub(super) fn side_status<F: IpFamily>(&self, i: usize) -> Option<FamilyStatus> {
        let l = &self.links[i];
        Some(F::side(l)?.status(F::state(&self.fam).carries(i), F::planned_gateway(&l.plan)))
    }
}
