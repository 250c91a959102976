//! The daemon in bond mode: the kernel's bonding driver fails over by itself on what its own
//! monitor sees; the daemon reads the bond's active slave and each slave's MII state from the
//! kernel ([`crate::netlink::bond`]), logs and signals a failover, and shows the slaves in
//! `status` and on D-Bus (the `bond_active` and `mii` keys of an uplink).
//!
//! It keeps the backups in the policy's order ([`bond_order`]): each slave's priority in the
//! kernel (most preferred highest), set at start and whenever a slave is enslaved again; on a
//! kernel without priorities it makes the most preferred slave up active after a failover.
//!
//! With `[Probe]` it also probes through the bond (the bond is one interface with one address:
//! one [`probe_loop`] over [`probe::Wire4`], as for an uplink), and judges the path through the
//! active slave with the uplinks' state machine ([`fsm`]). When that path is declared down while
//! the active slave's MII is up (a silent failure: the MII monitor sees a live link), the status
//! and the log say which slave; with `ProbeFailover=yes` the daemon makes another slave active
//! ([`bond_failover`] decides which, and when to try a more preferred one again).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::bond_failover::{self, Failover, Holds};
use super::bond_order;
use super::counters::Counters;
use super::fsm::{self, Event, State};
use super::probe;
use super::prober::{ProberKey, ProberTask, RoundDone, probe_loop};
use super::status_record::{FamilyStatus, Shown, UplinkStatus};
use crate::netlink::Netlink;
use crate::netlink::bond::{BondState, Mii};
use crate::plan::bond::BondPlan;
use crate::plan::{Addresses, UplinkProbe};
use crate::policy::Probe;

/// The kernel announces a failover on the netlink socket; this read is the fallback should an
/// announcement be lost, cheap enough (one link dump) to do every few seconds.
pub const REREAD: Duration = Duration::from_secs(2);

/// One change the daemon logs and signals (StateChanged: interface, from, to, reason).
pub struct Change {
    pub interface: String,
    pub from: String,
    pub to: String,
    pub reason: String,
}

pub struct Watch {
    plan: BondPlan,
    /// `None` until read, and while the bond does not exist.
    state: Option<BondState>,
    read_once: bool,
    /// The last active slave seen, to tell the kernel's failover from the previous read.
    last_active: Option<String>,
    /// Priorities the kernel refused (slave index, priority): not asked again (every event
    /// would repeat the error) until a read no longer sees that slave in the bond (released, to
    /// be enslaved anew) or the wanted priority changes.
    prio_refused: Vec<(u32, i32)>,
    pub next_read: Instant,
    /// With `[Probe]`: the path through the active slave, probed and judged.
    probing: Option<Probing>,
}

/// The probes through the bond and what they say of the active slave's path.
struct Probing {
    probe: Probe,
    /// Judges the path through `path`; a new one whenever another slave becomes active.
    fsm: fsm::Uplink,
    /// The slave whose path `fsm` judges (the active one when it was last read).
    path: Option<String>,
    failover: Failover,
    /// The bond's address to probe from.
    address: Option<std::net::Ipv4Addr>,
    prober: Option<(ProberKey, u64, JoinHandle<()>)>,
    wanted: Arc<AtomicU32>,
    follow_ups: Arc<AtomicU32>,
    rtt: Option<Duration>,
    /// For the metrics: each slave's probe rounds and path transitions while its path was probed
    /// (one entry per slave, made at its first round: no allocation per round after that).
    counters: Vec<(String, Counters)>,
    /// Transitions of the path, to log and signal with the next refresh.
    pending: Vec<Change>,
    /// The path's verdict changed since the last decision.
    decide: bool,
}

impl Probing {
    /// The counters of `slave`'s path.
    fn counters_of(&mut self, slave: &str) -> &mut Counters {
        let at = match self.counters.iter().position(|(s, _)| s == slave) {
            Some(at) => at,
            None => {
                self.counters.push((slave.to_string(), Counters::default()));
                self.counters.len() - 1
            }
        };
        &mut self.counters[at].1
    }

    fn holds(&self) -> Holds {
        Holds { hold_time: self.probe.hold_time, max_hold_time: self.probe.max_hold_time }
    }

    fn stop_prober(&mut self) {
        if let Some((_, _, task)) = self.prober.take() {
            task.abort();
        }
    }
}

impl Drop for Probing {
    fn drop(&mut self) {
        self.stop_prober();
    }
}

impl Watch {
    pub fn new(plan: &BondPlan, probe: Option<&Probe>) -> Watch {
        let probing = probe.filter(|_| !plan.probe_targets.is_empty()).map(|p| Probing {
            probe: p.clone(),
            fsm: fsm::Uplink::new(fsm::Config::from(p)),
            path: None,
            failover: Failover::default(),
            address: None,
            prober: None,
            wanted: Arc::new(AtomicU32::new(1)),
            follow_ups: Arc::new(AtomicU32::new(0)),
            rtt: None,
            counters: Vec::new(),
            pending: Vec::new(),
            decide: false,
        });
        Watch { plan: plan.clone(), state: None, read_once: false, last_active: None, prio_refused: Vec::new(), next_read: Instant::now(), probing }
    }

    /// Reads the bond again; what changed for each slave (its role or its MII state), and what
    /// the probes through it said since. With `ProbeFailover=yes`, makes another slave active
    /// where the probes ask for it (`now`: the daemon's clock, as its state machines see it).
    pub async fn refresh(&mut self, nl: &Netlink, now: Duration) -> Vec<Change> {
        let previous = self.last_active.clone();
        let mut changes = self.read(nl).await;
        if self.order_backups(nl, previous.as_deref()).await {
            changes.extend(self.read(nl).await);
        }
        if self.probing.is_some() {
            self.read_address(nl).await;
            self.follow_path(now);
            if let Some(switch) = self.decide(now) {
                self.switch(nl, switch, now).await;
                changes.extend(self.read(nl).await);
                self.follow_path(now);
            }
            if let Some(p) = &mut self.probing {
                changes.append(&mut p.pending);
            }
        }
        changes
    }

    /// The backups in the policy's order (see [`bond_order`]): the kernel's priorities where they
    /// differ, or on a kernel without them the most preferred slave up after a failover. `true`
    /// when it changed something (the caller reads the bond again).
    async fn order_backups(&mut self, nl: &Netlink, previous: Option<&str>) -> bool {
        let Some(state) = self.state.clone() else { return false };
        let bond = self.plan.name.clone();
        let mut changed = false;
        for c in bond_order::prio_changes(&self.plan.slaves, &state) {
            if self.prio_refused.contains(&(c.index, c.to)) {
                continue;
            }
            match nl.set_bond_slave_prio(c.index, c.to).await {
                Ok(()) => {
                    tracing::info!(iface = %c.slave, "{bond}: {}'s priority set to {} (was {}): backups follow the policy's order {}", c.slave, c.to, c.from, self.plan.slaves.join(", "));
                    changed = true;
                }
                Err(e) => {
                    tracing::warn!(iface = %c.slave, "{bond}: cannot set {}'s priority to {}: {e}; the kernel chooses its backups in its own order", c.slave, c.to);
                    self.prio_refused.push((c.index, c.to));
                }
            }
        }
        let failed = |s: &str| self.probing.as_ref().is_some_and(|p| p.failover.is_failed(s));
        if let Some(best) = bond_order::reselect(&self.plan.slaves, previous, &state, failed) {
            let from = state.active.clone().unwrap_or_default();
            let Some(slave) = state.slaves.iter().find(|s| s.name == best) else { return changed };
            match nl.set_bond_active(state.index, slave.index).await {
                Ok(()) => {
                    tracing::info!(
                        iface = %best,
                        "{bond}: made {best} the active slave instead of {from}: it comes first in the policy's order among the slaves up (this kernel has no per-slave priority)"
                    );
                    changed = true;
                }
                Err(e) => tracing::error!(iface = %best, "{bond}: cannot make {best} the active slave instead of {from}: {e}"),
            }
        }
        changed
    }

    async fn read(&mut self, nl: &Netlink) -> Vec<Change> {
        self.next_read = Instant::now() + REREAD;
        let state = match nl.bond(&self.plan.name).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot read bond {}: {e}", self.plan.name);
                return Vec::new();
            }
        };
        let before: Vec<UplinkStatus> = self.kernel_statuses();
        let (first, was_there) = (!self.read_once, self.state.is_some());
        self.read_once = true;
        self.state = state;
        if let Some(active) = self.state.as_ref().and_then(|s| s.active.clone()) {
            self.last_active = Some(active);
        }
        if let Some(s) = &self.state {
            // A slave released from the bond may be enslaved anew: ask again then.
            self.prio_refused.retain(|(index, _)| s.slaves.iter().any(|x| x.index == *index));
        }
        let after = self.kernel_statuses();
        if self.state.is_none() && (first || was_there) {
            tracing::warn!("{}", self.absent_reason());
        }
        before
            .iter()
            .zip(&after)
            .filter(|(b, a)| b.v4.state != a.v4.state || b.v4.carrying != a.v4.carrying)
            .map(|(b, a)| Change { interface: a.interface.clone(), from: role(b), to: role(a), reason: a.v4.reason.clone() })
            .collect()
    }

    /// The bond's address to probe from: the planned one once the kernel has it, else (DHCP)
    /// its first.
    async fn read_address(&mut self, nl: &Netlink) {
        let Some(p) = &mut self.probing else { return };
        let present = match &self.state {
            Some(s) => nl.ipv4_addresses(s.index).await.unwrap_or_default(),
            None => Vec::new(),
        };
        p.address = match &self.plan.addresses {
            Addresses::Static(planned) => planned.iter().find(|a| present.iter().any(|k| k.addr() == a.addr())).map(|a| a.addr()),
            Addresses::Dhcp(_) => present.first().map(|a| a.addr()),
        };
    }

    /// Another slave is active (the kernel's choice or ours): its path is judged afresh, and
    /// the probe sockets are opened again (with fail_over_mac=active the bond's MAC changed, and
    /// an ARP request with the old one would point the gateway at the old slave).
    fn follow_path(&mut self, now: Duration) {
        let active = self.state.as_ref().and_then(|s| s.active.clone());
        let Some(p) = &mut self.probing else { return };
        if p.path == active {
            return;
        }
        let mut cfg = fsm::Config::from(&p.probe);
        let trial = active.as_ref().is_some_and(|a| p.failover.trial().is_some_and(|t| &t.slave == a));
        if let Some(hold) = active.as_deref().filter(|_| trial).and_then(|a| p.failover.hold_of(a)) {
            // The hold it served, so that its promotion says so.
            cfg.hold_time = hold;
        }
        if !trial {
            p.failover.kernel_switched();
        }
        // A trial starts out demoted: it is trusted after RecoverAfter= good rounds (its hold
        // has already run out), and its first failed round ends it.
        p.fsm = if trial { fsm::Uplink::adopted(cfg, now, false) } else { fsm::Uplink::new(cfg) };
        p.path = active;
        p.stop_prober();
        p.wanted.store(p.fsm.probes_per_round(), Ordering::Relaxed);
        p.follow_ups.store(p.fsm.follow_ups(), Ordering::Relaxed);
    }

    fn decide(&mut self, now: Duration) -> Option<bond_failover::Switch> {
        let state = self.state.as_ref()?;
        let p = self.probing.as_mut()?;
        let decide = std::mem::take(&mut p.decide);
        if !self.plan.probe_failover {
            return None;
        }
        let active = state.active.as_deref()?;
        let slaves: Vec<bond_failover::Slave> = self
            .plan
            .slaves
            .iter()
            .map(|name| bond_failover::Slave { name, mii_up: state.slaves.iter().any(|s| s.name == *name && s.mii == Mii::Up) })
            .collect();
        let due = p.failover.next_retry().is_some_and(|t| t <= now);
        if !decide && !due {
            return None;
        }
        p.failover.next(&slaves, active, p.fsm.state().carries_traffic(), now)
    }

    async fn switch(&mut self, nl: &Netlink, switch: bond_failover::Switch, now: Duration) {
        let Some(state) = &self.state else { return };
        let Some(slave) = state.slaves.iter().find(|s| s.name == switch.slave) else { return };
        let from = state.active.clone().unwrap_or_default();
        let bond = self.plan.name.clone();
        match nl.set_bond_active(state.index, slave.index).await {
            Ok(()) => tracing::info!(iface = %switch.slave, "{bond}: made {} the active slave instead of {from}: {}", switch.slave, switch.why),
            Err(e) => {
                tracing::error!(iface = %switch.slave, "{bond}: cannot make {} the active slave ({}): {e}", switch.slave, switch.why);
                if let Some(p) = &mut self.probing
                    && switch.trial
                {
                    // Counted as a failed trial: tried again after a longer hold.
                    p.failover.path_failed(&switch.slave, now, p.holds());
                    p.failover.kernel_switched();
                }
            }
        }
    }

    /// A round through the bond; `true` when the path's verdict changed (the daemon converges).
    pub fn on_round(&mut self, done: RoundDone, now: Duration) -> bool {
        let active_mii_up = self.active_mii() == Some(Mii::Up);
        let bond = self.plan.name.clone();
        let Some(p) = &mut self.probing else { return false };
        if p.prober.as_ref().map(|(_, g, _)| *g) != Some(done.generation) {
            return false; // the prober of an earlier path
        }
        let Some(path) = p.path.clone() else { return false };
        p.rtt = done.result.rtt;
        p.counters_of(&path).record_round(done.result.sent, done.result.answered, done.result.rtt);
        let trial = p.failover.trial().is_some_and(|t| t.slave == path);
        let mut changed = false;
        for _ in 0..if done.result.ok { 1 } else { done.result.rounds.max(1) } {
            if let Some(t) = p.fsm.handle(now, Event::Round(done.result.ok)) {
                let silent = t.to == State::Down && active_mii_up;
                let reason = if silent {
                    format!("probes through {bond} via {path} fail while {path}'s MII is up: a silent failure ({})", t.reason)
                } else {
                    format!("probes through {bond} via {path}: {}", t.reason)
                };
                p.pending.push(Change { interface: path.clone(), from: format!("path {}", t.from), to: format!("path {}", t.to), reason });
                p.counters_of(&path).transitions += 1;
                if silent {
                    p.failover.path_failed(&path, now, p.holds());
                }
                if t.to.carries_traffic() && p.failover.is_failed(&path) {
                    p.failover.path_trusted(&path, now);
                }
                changed = true;
            }
        }
        if trial && !done.result.ok && !changed {
            // A trial ends at its first failed round: back to the slave it came from.
            p.failover.path_failed(&path, now, p.holds());
            p.counters_of(&path).transitions += 1;
            p.pending.push(Change {
                interface: path.clone(),
                from: "path trial".into(),
                to: "path down".into(),
                reason: format!("probes through {bond} via {path} still fail while {path}'s MII is up"),
            });
            changed = true;
        }
        p.wanted.store(p.fsm.probes_per_round(), Ordering::Relaxed);
        p.follow_ups.store(p.fsm.follow_ups(), Ordering::Relaxed);
        p.decide |= changed;
        changed
    }

    /// Starts the prober through the bond where it can run (the bond with its address).
    pub fn sync_prober(&mut self, rounds: &mpsc::UnboundedSender<RoundDone>, generation: &mut u64) {
        let index = self.state.as_ref().map(|s| s.index);
        let gateway = self.plan.gateway;
        let name = self.plan.name.clone();
        let targets = self.plan.probe_targets.clone();
        let Some(p) = &mut self.probing else { return };
        let key = match (index, p.address, p.path.is_some()) {
            (Some(ifindex), Some(source), true) => Some(ProberKey { ifindex, source, arp: if p.probe.arp_gateway { gateway } else { None } }),
            _ => None,
        };
        if p.prober.as_ref().map(|(k, _, _)| k) == key.as_ref() {
            return;
        }
        p.stop_prober();
        let Some(key) = key else { return };
        *generation += 1;
        let own = UplinkProbe {
            targets: targets.clone(),
            targets6: Vec::new(),
            interval: p.probe.interval,
            timeout: p.probe.timeout.min(p.probe.interval),
            own: false,
        };
        let task = tokio::spawn(probe_loop::<probe::Wire4>(ProberTask {
            link: 0,
            generation: *generation,
            interface: name,
            key: key.clone(),
            targets,
            probe: p.probe.clone(),
            own,
            wanted: p.wanted.clone(),
            follow_ups: p.follow_ups.clone(),
            rounds: rounds.clone(),
        }));
        p.prober = Some((key, *generation, task));
    }

    /// When the daemon must look again without an event: a slave's hold runs out.
    pub fn retry_at(&self, started: Instant) -> Option<Instant> {
        let p = self.probing.as_ref().filter(|_| self.plan.probe_failover)?;
        p.failover.next_retry().map(|t| started + t).filter(|t| *t > Instant::now())
    }

    fn active_mii(&self) -> Option<Mii> {
        let s = self.state.as_ref()?;
        s.slaves.iter().find(|x| x.active).map(|x| x.mii)
    }

    fn absent_reason(&self) -> String {
        let why = match crate::bonding::available() {
            Err(_) => "this kernel has no bonding driver",
            Ok(()) => "the network manager has not made it (yet)",
        };
        format!("bond {} does not exist: {why}", self.plan.name)
    }

    /// The bond's name.
    pub fn name(&self) -> &str {
        &self.plan.name
    }

    /// The active slave, "" when there is none (or no bond).
    pub fn active(&self) -> String {
        self.state.as_ref().and_then(|s| s.active.clone()).unwrap_or_default()
    }

    /// Every slave of the policy as `status` and the bus show it: the kernel's view, and where
    /// the daemon probes, what the probes say of the active slave's path (its state and reason)
    /// and which slaves' paths failed.
    pub fn statuses(&self) -> Vec<UplinkStatus> {
        let mut all = self.kernel_statuses();
        let Some(p) = &self.probing else { return all };
        for u in &mut all {
            u.v4.counters = p.counters.iter().find(|(s, _)| *s == u.interface).map(|(_, c)| *c).unwrap_or_default();
            if p.path.as_deref() == Some(u.interface.as_str()) && u.v4.carrying {
                u.v4.address = p.address.map(|a| a.to_string()).unwrap_or_default();
                u.v4.latency_ms = p.rtt.map(|d| d.as_secs_f64() * 1000.0);
                let state = p.fsm.state();
                let trial = p.failover.trial().is_some_and(|t| t.slave == u.interface);
                if state != State::Up && state != State::Unknown {
                    u.v4.state = Shown::Path(state);
                    let why = if trial { "tried again after its hold, trusted after RecoverAfter= good rounds" } else { p.fsm.down_reason() };
                    u.v4.reason = format!("probes through {} via {}: {why} (MII {})", self.plan.name, u.interface, u.mii.as_deref().unwrap_or("?"));
                } else if state == State::Up {
                    u.v4.reason = format!("{}; probes through it answer", u.v4.reason);
                }
            } else if p.failover.is_failed(&u.interface) {
                u.v4.state = Shown::Path(State::Down);
                u.v4.reason = format!("probes through {} via {} failed while its MII was up; tried again after a hold", self.plan.name, u.interface);
            }
        }
        all
    }

    /// The slaves as the kernel shows them, most preferred first.
    fn kernel_statuses(&self) -> Vec<UplinkStatus> {
        let gateway = self.plan.gateway.map(|g| g.to_string()).unwrap_or_default();
        self.plan
            .slaves
            .iter()
            .enumerate()
            .map(|(rank, name)| {
                let seen = self.state.as_ref().and_then(|s| s.slaves.iter().find(|x| x.name == *name));
                let (state, mii, active, reason) = match (&self.state, seen) {
                    (None, _) => (Shown::NoBond, None, false, self.absent_reason()),
                    (Some(_), None) => (Shown::NotEnslaved, None, false, format!("{name} is not a slave of {}", self.plan.name)),
                    (Some(_), Some(s)) => {
                        let role = if s.active { "the active slave" } else { "a backup slave" };
                        let prio = s.prio.map(|p| format!(", prio {p}")).unwrap_or_default();
                        (Shown::from(s.mii), Some(s.mii.word()), s.active, format!("{role} of {}{prio}", self.plan.name))
                    }
                };
                UplinkStatus {
                    interface: name.clone(),
                    rank: rank as u32,
                    v4: FamilyStatus { state, reason, carrying: active, gateway: gateway.clone(), ..Default::default() },
                    bond_active: Some(active),
                    mii,
                    bond_prio: seen.and_then(|s| s.prio),
                    ..Default::default()
                }
            })
            .collect()
    }
}

/// A slave's role in a log line or signal: "active (up)", "backup (down)", "no-bond".
fn role(s: &UplinkStatus) -> String {
    match &s.mii {
        Some(mii) => format!("{} ({mii})", if s.v4.carrying { "active" } else { "backup" }),
        None => s.v4.state.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::probe::{Family, RoundResult};

    /// The metrics of Mode=bond: each slave's path keeps its own probe and transition counts,
    /// shown on that slave.
    #[tokio::test]
    async fn each_slaves_path_keeps_its_own_counters() {
        let text = "[Policy]\nMode=bond\n[Probe]\nTarget=192.168.178.1\n[Bond]\nAddress=192.168.178.99/24\nGateway=192.168.178.1\n\
                    [Uplink]\nInterface=eth0\nPriority=1\n[Uplink]\nInterface=wlan1\nPriority=2\n";
        let policy = crate::policy::parse("p", text).unwrap();
        let plan = crate::plan::plan(&policy);
        let mut w = Watch::new(plan.bond().unwrap(), plan.probe.as_ref());
        let key = ProberKey { ifindex: 1, source: std::net::Ipv4Addr::new(192, 168, 178, 99), arp: None };
        let p = w.probing.as_mut().unwrap();
        p.path = Some("eth0".into());
        p.prober = Some((key, 7, tokio::spawn(async {})));
        let round = |ok: bool| RoundDone {
            link: 0,
            family: Family::V4,
            generation: 7,
            result: RoundResult { ok, sent: 2, answered: if ok { 2 } else { 0 }, rtt: ok.then(|| Duration::from_millis(3)), rounds: 1, ..Default::default() },
        };
        let now = Duration::from_secs(10);
        w.on_round(round(true), now);
        for _ in 0..4 {
            w.on_round(round(false), now);
        }
        let shown = w.statuses();
        let eth0 = shown.iter().find(|u| u.interface == "eth0").unwrap().v4.counters;
        assert_eq!((eth0.probes_sent, eth0.probes_lost, eth0.rtt_count), (10, 8, 1));
        assert!(eth0.transitions >= 2, "unknown -> up, then towards down: {eth0:?}");
        assert_eq!(shown.iter().find(|u| u.interface == "wlan1").unwrap().v4.counters, Counters::default());
    }
}
