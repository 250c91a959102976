//! Each uplink's IPv6 side, judged on its own: its own state machine (the same pure
//! [`fsm::Uplink`] as IPv4's), its own prober (ICMPv6 echo to `[Probe]`'s IPv6 targets and a
//! neighbour solicitation for its IPv6 router, [`super::probe6`]), and the daemon's `::/0` and
//! prefix copies in main from those verdicts alone ([`super::routes6`]). IPv4 and IPv6 of one
//! uplink fail apart (a provider's IPv6 dies, its IPv4 stays), so neither family's verdict
//! moves the other's connections.
//!
//! Carrier and maintenance orders belong to the link and reach both machines; rounds and the
//! address belong to the family. The router of an uplink that takes advertisements is the
//! link-local one the kernel learnt (its `::/0` route through the interface, in main or in the
//! uplink's table). Its SLAAC, temporary and DHCPv6 addresses get their `from`/`to` rules as
//! soon as the kernel announces them (RTM_NEWADDR/RTM_DELADDR), with the dispatcher hook's own
//! reconcile ([`super::hook`]): networkd-dispatcher runs the hook only when the link's state
//! changes, and a new temporary address changes no state.
//!
//! An uplink with a global IPv6 router keeps `ignore_routes_with_linkdown=0` (see
//! `plan::sysctl`: the kernel would refuse that router's route while carrier returns), so the
//! kernel goes on using its IPv6 routes after carrier loss until the manager deletes them
//! (networkd within milliseconds, NetworkManager about 6 s later). Such a side without carrier
//! counts as demoted ([`shadowed`]): the copies of the carrying uplinks go in front of its
//! routes at the carrier event, as for a silent failure, and leave as they do after one.

use std::net::Ipv6Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ipnet::Ipv6Net;
use tokio::task::JoinHandle;

use super::fsm::{self, Event};
use super::link::{LOSS_WINDOW, ProberKey, ProberTask, RoundDone, probe_loop};
use super::probe6::Wire6;
use super::quality::{self, Round};
use super::routes::{self, Carrying, FailoverRoute, Foreign};
use super::status_record::{FamilyStatus, Shown};
use super::{Daemon, Logged, RETRY_AFTER, routes6};
use crate::plan::{self, Ipv6Plan, Ipv6Router, UplinkPlan};

/// One uplink's IPv6 side at run time.
pub(super) struct Side6 {
    pub(super) fsm: fsm::Uplink,
    /// The address it probes from and its copies carry as source: the first static address the
    /// kernel has, else the first global one (SLAAC, DHCPv6).
    pub(super) address: Option<Ipv6Net>,
    /// The last address it had: the copies' prefix while the link has no carrier, when the
    /// manager may remove the address before the routes that outlive the carrier.
    last_address: Option<Ipv6Net>,
    /// Address presence as last told to the state machine.
    has_address: bool,
    /// The router the kernel learnt (advertisements), when the policy names none.
    pub(super) learned_gateway: Option<Ipv6Addr>,
    /// Its own rounds and path-quality verdict (the same [`quality::Path`] as IPv4's).
    pub(super) path: quality::Path,
    pub(super) rtt: Option<Duration>,
    pub(super) reason: String,
    prober: Option<(ProberKey<Ipv6Addr>, u64, JoinHandle<()>)>,
    probes_wanted: Arc<AtomicU32>,
    follow_ups: Arc<AtomicU32>,
}

impl Side6 {
    pub(super) fn new(machine: fsm::Uplink) -> Side6 {
        Side6 {
            fsm: machine,
            address: None,
            last_address: None,
            has_address: true,
            learned_gateway: None,
            path: quality::Path::default(),
            rtt: None,
            reason: String::new(),
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

    pub(super) fn gateway(&self, plan: &Ipv6Plan) -> Option<Ipv6Addr> {
        plan.gateway.or(self.learned_gateway)
    }

    /// The state as the log, `status` and the bus show it: the state machine's, or "poor"
    /// while it trusts a path whose quality is below the limits (as for IPv4).
    pub(super) fn shown_state(&self) -> Shown {
        Shown::of(self.fsm.state(), self.path.poor().is_some())
    }
}

/// Whether an IPv6 side's routes in main are live while it must not carry new connections, so
/// that the carrying uplinks' copies have to go in front of them: demoted by the probes or an
/// administrator with its carrier up (as for IPv4), or without carrier behind a global router,
/// whose routes the kernel does not skip at carrier loss (see the module's doc). A link-local
/// router's routes are skipped by the kernel the moment carrier goes: no copies for those.
pub fn shadowed(state: fsm::State, carrier: bool, router: Ipv6Router) -> bool {
    if carrier { state.is_demoted() } else { router == Ipv6Router::Global }
}

/// The address to probe and route from among the global ones `present` (see [`Side6::address`]).
pub fn choose_address(plan: &Ipv6Plan, present: &[Ipv6Net]) -> Option<Ipv6Net> {
    plan.addresses.iter().find(|p| present.iter().any(|k| k.addr() == p.addr())).copied().or_else(|| {
        if plan.accept_ra || plan.dhcp {
            let mut dynamic = present.to_vec();
            dynamic.sort_by_key(|n| n.addr());
            dynamic.first().copied()
        } else {
            None
        }
    })
}

/// The daemon's IPv6 bookkeeping beside IPv4's (see the fields of the same names in `Daemon`).
#[derive(Default)]
pub(super) struct State6 {
    routes_dirty: bool,
    last_routes: Option<Vec<FailoverRoute<Ipv6Net>>>,
    foreign: Vec<Foreign<Ipv6Net>>,
    foreign_dirty: bool,
    pub(super) carriers: Vec<bool>,
    /// The uplink new IPv6 connections leave through; "" when none is healthy.
    pub(super) active: String,
    /// A change of `active` not yet logged.
    pub(super) announce: Option<String>,
    pub(super) dirty: bool,
}

impl State6 {
    pub(super) fn new() -> State6 {
        State6 { routes_dirty: true, foreign_dirty: true, dirty: true, ..State6::default() }
    }

    pub(super) fn needs_converge(&self) -> bool {
        self.dirty || self.routes_dirty || self.foreign_dirty
    }

    /// Everything read again (after lost events or a failed change).
    pub(super) fn reread(&mut self) {
        self.routes_dirty = true;
        self.foreign_dirty = true;
        self.dirty = true;
    }
}

impl Daemon {
    fn plan6(&self, i: usize) -> Option<&Ipv6Plan> {
        self.links[i].plan.ipv6.as_ref()
    }

    /// After a restart: an IPv6 side whose `::/0` copy is in main was trusted by the previous
    /// daemon, as for IPv4.
    pub(super) async fn adopt6(&mut self, kernel_links: &[crate::netlink::LinkState]) {
        let previous = match routes6::current(&self.nl).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("cannot read the daemon's IPv6 routes in main: {e}; judging IPv6 afresh");
                return;
            }
        };
        if previous.is_empty() {
            return;
        }
        let (cfg, now) = (self.fsm_config(), self.now());
        for l in &mut self.links {
            let ifindex = kernel_links.iter().find(|k| k.name == l.plan.interface).map(|k| k.index);
            let carrying = ifindex.is_some_and(|i| previous.iter().any(|r| r.ifindex == Some(i) && r.destination.prefix_len() == 0));
            if let Some(v6) = &mut l.v6 {
                v6.fsm = fsm::Uplink::adopted(cfg, now, carrying);
            }
        }
    }

    /// Reads uplink `i`'s IPv6 addresses and router; keeps the rules of its dynamic addresses.
    pub(super) async fn read_link6(&mut self, i: usize) {
        if self.links[i].v6.is_none() {
            return;
        }
        self.read_addresses6(i).await;
        self.read_gateway6(i).await;
    }

    pub(super) async fn read_addresses6(&mut self, i: usize) {
        let Some(plan6) = self.plan6(i).cloned() else { return };
        let name = self.links[i].name().to_string();
        let ifindex = self.links[i].ifindex;
        let present = match ifindex {
            Some(ifx) => match self.nl.ipv6_addresses(ifx).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(iface = %name, "{name}: cannot read IPv6 addresses: {e}");
                    return;
                }
            },
            None => Vec::new(),
        };
        let chosen = choose_address(&plan6, &present);
        let Some(v6) = self.links[i].v6.as_mut() else { return };
        if v6.address != chosen {
            v6.address = chosen;
            v6.last_address = chosen.or(v6.last_address);
            self.v6.dirty = true;
        }
        if v6.has_address != chosen.is_some() {
            v6.has_address = chosen.is_some();
            self.feed6(i, Event::Address(chosen.is_some()));
        }
    }

    pub(super) async fn read_gateway6(&mut self, i: usize) {
        let Some(plan6) = self.plan6(i) else { return };
        if plan6.gateway.is_some() {
            return;
        }
        let own_table = self.links[i].plan.table;
        let gw = match self.links[i].ifindex {
            None => None,
            Some(ifx) => match self.nl.routes6().await {
                Ok(routes) => routes
                    .iter()
                    .filter(|r| r.destination.prefix_len() == 0 && r.ifindex == Some(ifx) && !r.is_ours())
                    .filter(|r| r.table == plan::Table::Main.number() || r.table == own_table)
                    .find_map(|r| r.gateway),
                Err(e) => {
                    tracing::warn!(iface = %self.links[i].name(), "{}: cannot read IPv6 routes: {e}", self.links[i].name());
                    return;
                }
            },
        };
        if let Some(v6) = self.links[i].v6.as_mut()
            && v6.learned_gateway != gw
        {
            v6.learned_gateway = gw;
            self.v6.routes_dirty = true;
            self.v6.dirty = true;
        }
    }

    /// An IPv6 route came or went: the copies' metrics, a learnt router, or one of ours.
    pub(super) async fn on_route6(&mut self, r: crate::netlink::KernelRoute6) {
        if r.table() == plan::Table::Main {
            if r.is_ours() {
                self.v6.routes_dirty = true;
            } else {
                self.v6.foreign_dirty = true;
            }
        }
        if r.destination.prefix_len() == 0
            && !r.is_ours()
            && let Some(i) = self.links.iter().position(|l| l.ifindex == r.ifindex && l.plan.ipv6.as_ref().is_some_and(|p| p.gateway.is_none()))
        {
            // The router the hook's copy in the uplink's table follows (under NetworkManager).
            self.hook.route_changed(i);
            self.read_gateway6(i).await;
        }
    }

    pub(super) fn feed6(&mut self, i: usize, event: Event) {
        let now = self.now();
        let l = &mut self.links[i];
        let name = l.name().to_string();
        let Some(v6) = l.v6.as_mut() else { return };
        let wake_before = v6.fsm.wake_at();
        // A carrier change may shadow or unshadow its routes (see [`shadowed`]) with no
        // transition (a side forced down).
        self.v6.dirty |= matches!(event, Event::Carrier(_));
        if let Some(t) = v6.fsm.handle(now, event) {
            v6.reason = t.reason.clone();
            let (from, to) = (t.from.to_string(), Shown::of(t.to, v6.path.poor().is_some()).to_string());
            self.pending.push(Logged { interface: name, from, to, reason: t.reason, ipv6: true });
            self.v6.dirty = true;
            // So that the transition is logged and the snapshot shows it in this converge.
            self.verdicts_dirty = true;
        }
        self.wake_dirty |= v6.fsm.wake_at() != wake_before;
        v6.probes_wanted.store(v6.fsm.probes_per_round(), Ordering::Relaxed);
        v6.follow_ups.store(v6.fsm.follow_ups(), Ordering::Relaxed);
    }

    pub(super) fn on_round6(&mut self, done: RoundDone) {
        let i = done.link;
        let (now, limits) = (self.now(), quality::Limits::from(&self.probe));
        let Some(v6) = self.links.get_mut(i).and_then(|l| l.v6.as_mut()) else { return };
        if v6.prober.as_ref().map(|(_, g, _)| *g) != Some(done.generation) {
            return;
        }
        let round = Round { sent: done.result.sent, answered: done.result.answered, rtt: done.result.rtt };
        let shown = v6.shown_state();
        let change = v6.path.record(now, round, v6.fsm.state() == fsm::State::Down, LOSS_WINDOW, &limits);
        v6.rtt = done.result.rtt;
        // A poor side's loss ranks it against the other poor ones (see `quality::carriers`).
        self.v6.dirty |= v6.path.poor().is_some();
        if let Some(change) = change {
            let (to, reason) = match change {
                quality::Change::Poor(why) => (Shown::Poor, why),
                quality::Change::Trusted(why) => (v6.fsm.state().into(), why),
            };
            v6.reason = reason.clone();
            let interface = self.links[i].name().to_string();
            self.pending.push(Logged { interface, from: shown.to_string(), to: to.to_string(), reason, ipv6: true });
            self.v6.dirty = true;
            self.verdicts_dirty = true;
        }
        self.touched.push(i);
        for _ in 0..if done.result.ok { 1 } else { done.result.rounds.max(1) } {
            self.feed6(i, Event::Round(done.result.ok));
        }
    }

    /// IPv6 probers where an IPv6 side has an address, IPv6 targets or a router, and probing
    /// makes sense.
    pub(super) fn sync_probers6(&mut self) {
        let arp = self.probe.arp_gateway;
        for (i, l) in self.links.iter_mut().enumerate() {
            let (Some(plan6), Some(v6)) = (l.plan.ipv6.as_ref(), l.v6.as_mut()) else { continue };
            // Its own IPv6 `ProbeTarget=`, else [Probe]'s IPv6 targets (see `plan::UplinkProbe`).
            let targets6 = &l.plan.probe.targets6;
            let gateway = v6.gateway(plan6);
            let key = match (l.ifindex, v6.address, v6.fsm.probing()) {
                (Some(ifindex), Some(address), true) if !targets6.is_empty() || (arp && gateway.is_some()) => {
                    Some(ProberKey { ifindex, source: address.addr(), arp: if arp { gateway } else { None } })
                }
                _ => None,
            };
            if v6.prober.as_ref().map(|(k, _, _)| k) == key.as_ref() {
                continue;
            }
            v6.stop_prober();
            let Some(key) = key else { continue };
            self.generation += 1;
            let task = tokio::spawn(probe_loop::<Wire6>(ProberTask {
                link: i,
                generation: self.generation,
                interface: l.plan.interface.clone(),
                key: key.clone(),
                targets: targets6.clone(),
                probe: self.probe.clone(),
                own: l.plan.probe.clone(),
                wanted: v6.probes_wanted.clone(),
                follow_ups: v6.follow_ups.clone(),
                rounds: self.rounds.clone(),
            }));
            v6.prober = Some((key, self.generation, task));
        }
    }

    fn carrying6(&self, i: usize) -> Option<Carrying<Ipv6Net>> {
        let l = &self.links[i];
        let (plan6, v6) = (l.plan.ipv6.as_ref()?, l.v6.as_ref()?);
        if !v6.fsm.state().carries_traffic() {
            return None;
        }
        Some(Carrying { ifindex: l.ifindex?, address: v6.address?, gateway: v6.gateway(plan6)?, metric: l.plan.metric })
    }

    /// Which IPv6 sides carry new IPv6 connections: those the state machine trusts, less the
    /// poor ones while one that is not poor is among them (see [`quality::carriers`]).
    fn carriers6(&self) -> Vec<bool> {
        let fit: Vec<usize> = (0..self.links.len()).filter(|&i| self.carrying6(i).is_some()).collect();
        let judged = |i: usize| self.links[i].v6.as_ref().map_or((false, 0.0), |v6| (v6.path.poor().is_some(), v6.path.judged_loss()));
        let verdicts = quality::carriers(&fit.iter().map(|&i| judged(i)).collect::<Vec<_>>());
        let mut carriers = vec![false; self.links.len()];
        for (&i, v) in fit.iter().zip(verdicts) {
            carriers[i] = v;
        }
        carriers
    }

    /// The IPv6 copies as the IPv6 verdicts say; the snapshot's IPv6 fields.
    pub(super) async fn converge6(&mut self) {
        if !self.v6.needs_converge() {
            return;
        }
        self.v6.dirty = false;
        self.sync_probers6();
        if self.v6.foreign_dirty {
            match self.nl.routes6_in(plan::Table::Main).await {
                Ok(main) => {
                    self.v6.foreign = routes6::foreign(&main);
                    self.v6.foreign_dirty = false;
                }
                Err(e) => {
                    tracing::error!("cannot read the IPv6 main table: {e}; retrying in {RETRY_AFTER:?}");
                    self.retry_at = Some(tokio::time::Instant::now() + RETRY_AFTER);
                }
            }
        }
        self.v6.carriers = self.carriers6();
        let carrying: Vec<Carrying<Ipv6Net>> = (0..self.links.len()).filter(|&i| self.v6.carriers[i]).filter_map(|i| self.carrying6(i)).collect();
        // Demoted by the state machine (or, behind a global router, without carrier), or fit but
        // poor while a better side carries: either way its routes in main are live and need the
        // copies in front (as for IPv4).
        let demoted: Vec<Ipv6Net> = (0..self.links.len())
            .filter_map(|i| {
                let (l, v6) = (&self.links[i], self.links[i].v6.as_ref()?);
                let router = l.plan.ipv6.as_ref()?.router();
                let passed_over = self.carrying6(i).is_some() && !self.v6.carriers[i];
                if shadowed(v6.fsm.state(), l.carrier, router) || passed_over { v6.address.or(v6.last_address) } else { None }
            })
            .collect();
        let want = routes::desired(&carrying, &demoted, &self.v6.foreign);
        if self.v6.routes_dirty || self.v6.last_routes.as_ref() != Some(&want) {
            if let Err(e) = routes6::reconcile(&self.nl, &want).await {
                tracing::error!("cannot update the daemon's IPv6 routes in main: {e}; retrying in {RETRY_AFTER:?}");
                self.retry_at = Some(tokio::time::Instant::now() + RETRY_AFTER);
            }
            self.v6.last_routes = Some(want);
            self.v6.routes_dirty = false;
        }
        let active = (0..self.links.len()).find(|&i| self.v6.carriers[i]).map(|i| self.links[i].name().to_string()).unwrap_or_default();
        if active != self.v6.active && self.links.iter().any(|l| l.v6.is_some()) {
            self.verdicts_dirty = true;
            // Logged after the transitions that led to it (see `Daemon::converge`).
            self.v6.announce = Some(if active.is_empty() {
                "no uplink's IPv6 is healthy: the IPv6 main table decides".to_string()
            } else {
                format!("new IPv6 connections leave via {active}")
            });
        }
        self.v6.active = active;
    }

    /// Uplink `i`'s IPv6 side as the bus shows it; `None` without one.
    pub(super) fn status6(&self, i: usize) -> Option<FamilyStatus> {
        let l = &self.links[i];
        let (plan6, v6) = (l.plan.ipv6.as_ref()?, l.v6.as_ref()?);
        Some(FamilyStatus {
            state: v6.shown_state(),
            loss_percent: v6.path.loss(),
            latency_ms: v6.rtt.map(|d| d.as_secs_f64() * 1000.0),
            reason: v6.reason.clone(),
            carrying: self.v6.carriers.get(i).copied().unwrap_or(false),
            address: v6.address.map(|a| a.to_string()).unwrap_or_default(),
            gateway: v6.gateway(plan6).map(|g| g.to_string()).unwrap_or_default(),
        })
    }
}

/// The IPv6 side a (re)loaded uplink plan needs: kept when it had one, new when IPv6 came in,
/// none when it went.
pub(super) fn side_for(plan: &UplinkPlan, old: Option<Side6>, cfg: fsm::Config) -> Option<Side6> {
    plan.ipv6.as_ref()?;
    Some(match old {
        Some(mut s) => {
            s.fsm.reconfigure(cfg);
            s.stop_prober();
            s
        }
        None => Side6::new(fsm::Uplink::new(cfg)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan6(addresses: &[&str], accept_ra: bool) -> Ipv6Plan {
        Ipv6Plan {
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            gateway: None,
            dhcp: false,
            accept_ra,
            routes: Vec::new(),
            rules: Vec::new(),
        }
    }

    fn nets(s: &[&str]) -> Vec<Ipv6Net> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn a_global_routers_side_without_carrier_is_shadowed_and_a_link_local_ones_is_not() {
        use Ipv6Router::{Global, LinkLocal};
        use fsm::State::*;
        // (state, carrier, router, shadowed)
        let table = [
            (Up, true, Global, false),
            (Unknown, true, Global, false),
            (Down, true, LinkLocal, true),
            (Recovering, true, Global, true),
            (ForcedDown, true, LinkLocal, true),
            // Without carrier: the kernel skips a link-local router's routes, not a global one's.
            (NoCarrier, false, LinkLocal, false),
            (NoCarrier, false, Global, true),
            (ForcedDown, false, LinkLocal, false),
            (ForcedDown, false, Global, true),
        ];
        for (state, carrier, router, want) in table {
            assert_eq!(shadowed(state, carrier, router), want, "{state} carrier={carrier} {router:?}");
        }
    }

    #[test]
    fn a_static_address_wins_over_slaac_and_slaac_serves_without_one() {
        let present = nets(&["2001:db8:178:0:ffff::1/64", "2001:db8:178::99/64"]);
        assert_eq!(choose_address(&plan6(&["2001:db8:178::99/64"], true), &present), Some(present[1]));
        assert_eq!(choose_address(&plan6(&[], true), &present), Some(present[1]), "the lowest global address, stable across temporary ones");
        assert_eq!(choose_address(&plan6(&["2001:db8:178::98/64"], false), &present), None, "a static uplink waits for its own address");
        assert_eq!(choose_address(&plan6(&[], true), &[]), None);
    }
}
