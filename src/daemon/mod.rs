//! The failover daemon (`multihome daemon`): probes every uplink out of that uplink alone, runs
//! each uplink's health state machine, and while an uplink is demoted puts copies of the healthy
//! uplinks' default and link routes in main just in front of the uplinks' own ([`routes`] says
//! why there and nowhere else). It never edits what networkd, NetworkManager or anyone else own,
//! and adds no rule: every other route and rule of the host resolves as without it.
//!
//! Links, carrier and addresses come from rtnetlink events, not polling. Every route the daemon
//! adds carries `plan::PROTOCOL`; after a crash the next daemon finds them, adopts the previous
//! verdicts (an uplink with a copy was trusted, one without was demoted) and converges. On
//! SIGTERM it removes its routes, and the plain policy remains.

mod bond;
mod bond_failover;
mod bond_order;
pub mod bpf;
pub mod bus;
mod family6;
pub mod forced;
pub mod fsm;
mod hook;
mod link;
mod mptcp;
mod mptcp_view;
pub mod notify;
mod polkit;
#[cfg(test)]
mod private_net;
pub mod probe;
pub mod probe6;
pub mod probe_rate;
pub mod quality;
mod random;
pub mod routes;
pub mod routes6;
mod stamp;
pub mod status;
pub mod status_record;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::dispatch::ipv6::AdvertisedRouter;
use crate::netlink::{self, Monitor, Netlink};
use crate::plan::{self, Plan};
use crate::policy::{self, Probe};
use bus::Command;
use fsm::Event;
use link::{LOSS_WINDOW, Link, ProberKey, ProberTask, RoundDone, probe_loop};
use status_record::{FamilyStatus, Shown, Snapshot, UplinkStatus};

/// A change of an uplink's shown state, to log and to signal on the bus.
struct Logged {
    interface: String,
    from: String,
    to: String,
    reason: String,
    /// A transition of the uplink's IPv6 side.
    ipv6: bool,
}

/// How soon a failed change of the table is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

struct Daemon {
    config: PathBuf,
    plan: Plan,
    probe: Probe,
    links: Vec<Link>,
    nl: Netlink,
    started: Instant,
    rounds: mpsc::UnboundedSender<RoundDone>,
    generation: u64,
    snapshot: Arc<Mutex<Snapshot>>,
    bus: Option<zbus::Connection>,
    active: String,
    /// Transitions not yet logged and signalled.
    pending: Vec<Logged>,
    /// Main may differ from what it should be (a route of ours vanished, a restart).
    routes_dirty: bool,
    last_routes: Option<Vec<routes::FailoverRoute>>,
    /// The other routes in main, which decide the metrics of the copies; reread when a route
    /// event in main says they changed.
    foreign: Vec<routes::Foreign>,
    foreign_dirty: bool,
    /// After a failed table update: when to try again (not at every event, which would flood
    /// the journal with the same error many times a second).
    retry_at: Option<Instant>,
    /// Which uplinks carry new connections, as of the last [`Daemon::converge`] that found
    /// `verdicts_dirty`.
    carriers: Vec<bool>,
    /// An uplink's verdict, link, address or gateway changed: who carries, the copies, the
    /// probers and the whole snapshot are worked out again. An ordinary round changes none of
    /// them and costs only its own uplink's figures: the daemon's work per round does not grow
    /// with the number of uplinks.
    verdicts_dirty: bool,
    /// Uplinks whose figures (loss, latency) changed since the snapshot was last updated.
    touched: Vec<usize>,
    /// The earliest hold that may run out, while `wake_dirty` is false.
    wake: Option<Instant>,
    wake_dirty: bool,
    /// Mode=bond: the kernel's bond, watched instead of uplinks.
    bond: Option<bond::Watch>,
    /// The same for the uplinks' IPv6 sides (see [`family6`]).
    v6: family6::State6,
    /// The MPTCP endpoints removed at carrier loss (see [`mptcp`]).
    mptcp: mptcp::Steering,
    /// The hook's work for the uplinks whose links or addresses changed (see [`hook`]).
    hook: hook::HookWork,
}

/// Runs the daemon until SIGTERM or SIGINT; then removes its rule and table.
pub async fn run(config: &Path) -> anyhow::Result<()> {
    // Before anything is added: a SIGTERM during startup must reach the loop below (which
    // removes the rule and table), not the default action that would leave them behind.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let policy = policy::load(config)?;
    let plan = plan::plan(&policy);
    let nl = Netlink::connect().context("cannot open a netlink socket")?;
    // Subscribed before the first read, so no change between the two is missed.
    let mut monitor = Monitor::connect().context("cannot subscribe to netlink events")?;
    let (rounds_tx, mut rounds_rx) = mpsc::unbounded_channel();
    let (commands_tx, mut commands_rx) = mpsc::unbounded_channel();
    let probe = plan.probe.clone().unwrap_or_default();
    let router = AdvertisedRouter::on_this_host(policy.backend).await;
    let snapshot = Arc::new(Mutex::new(Snapshot { policy: config.display().to_string(), ..Snapshot::default() }));
    let mut d = Daemon {
        config: config.to_path_buf(),
        links: Vec::new(),
        probe,
        plan,
        nl,
        started: Instant::now(),
        rounds: rounds_tx,
        generation: 0,
        snapshot: snapshot.clone(),
        bus: None,
        active: String::new(),
        pending: Vec::new(),
        routes_dirty: true,
        last_routes: None,
        foreign: Vec::new(),
        foreign_dirty: true,
        retry_at: None,
        carriers: Vec::new(),
        verdicts_dirty: true,
        touched: Vec::new(),
        wake: None,
        wake_dirty: true,
        bond: None,
        v6: family6::State6::new(),
        mptcp: mptcp::Steering::default(),
        hook: hook::HookWork::new(router),
    };
    d.bond = d.plan.bond.as_ref().map(|b| bond::Watch::new(b, d.plan.probe.as_ref()));
    // The bus name first: a second daemon must stop before it touches a route.
    match start_bus(snapshot, commands_tx).await {
        Ok(conn) => d.bus = Some(conn),
        Err(e) if e.downcast_ref::<NameTaken>().is_some() => return Err(e),
        Err(e) => tracing::warn!("D-Bus: {e:#}; running without `multihome status`"),
    }
    d.adopt().await?;
    d.converge().await;
    d.flush_signals().await;
    notify::ready(&d.status_line());

    let watchdog = notify::watchdog_interval();
    let mut watchdog_tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    watchdog_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let wake = d.next_wake();
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                if let Err(e) = d.reload().await {
                    tracing::error!("reload failed, keeping the previous policy: {e}");
                }
            }
            event = monitor.next() => match event {
                Some(event) => d.on_netlink(event).await,
                None => anyhow::bail!("the netlink event stream ended"),
            },
            Some(done) = rounds_rx.recv() => d.on_round(done),
            Some(command) = commands_rx.recv() => d.on_command(command).await,
            _ = tokio::time::sleep_until(wake) => d.on_tick(),
            _ = watchdog_tick.tick(), if watchdog.is_some() => notify::watchdog(),
        }
        d.converge().await;
        d.flush_signals().await;
    }
    notify::stopping();
    let orders = d.forced_orders();
    if !orders.is_empty() {
        let list = orders.iter().map(|(i, f)| format!("{i} {f:?}").to_lowercase()).collect::<Vec<_>>().join(", ");
        match forced::path() {
            Some(p) => tracing::info!("maintenance orders kept in {} for a restart (a stop drops them): {list}", p.display()),
            None => tracing::warn!("dropping the maintenance orders ({list}): no runtime directory to keep them in"),
        }
    }
    for l in &mut d.links {
        l.stop_probers();
    }
    // The plan's flags back, as the routes: without the daemon nothing is demoted.
    d.steer_mptcp(&vec![true; d.links.len()], true);
    routes::remove_all(&d.nl).await.context("cannot remove the daemon's routes")?;
    routes6::remove_all(&d.nl).await.context("cannot remove the daemon's IPv6 routes")?;
    tracing::info!("stopped: removed the daemon's routes; the plain policy routes alone");
    Ok(())
}

/// Removes every route a daemon (this one or one before 0.2) left, whatever the policy says now:
/// for the unit's ExecStopPost, after the daemon ended for any reason (a SIGTERM it handled
/// itself, kill -9, a crash, the watchdog), so that no routing outlives it. The MPTCP endpoints
/// get the policy's flags back, and those removed at carrier loss come back (see [`mptcp::restore`]).
pub async fn cleanup(config: &Path) -> anyhow::Result<()> {
    let nl = Netlink::connect().context("cannot open a netlink socket")?;
    mptcp::restore(config, &nl).await;
    let left =
        routes::current(&nl).await.context("cannot read the main table")?.len() + routes6::current(&nl).await.context("cannot read the IPv6 main table")?.len();
    routes::remove_all(&nl).await.context("cannot remove the daemon's routes")?;
    routes6::remove_all(&nl).await.context("cannot remove the daemon's IPv6 routes")?;
    let legacy = routes::remove_legacy(&nl).await.context("cannot remove an older daemon's rule and table")?;
    match (left, legacy) {
        (0, false) => tracing::info!("no routes of the daemon were left"),
        (n, legacy) => tracing::info!("removed {n} route(s) the daemon left{}", if legacy { ", and an older daemon's rule and table" } else { "" }),
    }
    Ok(())
}

/// Another process owns the daemon's bus name: another daemon, which owns the routes.
#[derive(Debug, thiserror::Error)]
#[error("another multihome daemon is running (it owns {} on the system bus); stop it first, or use `multihome reload`", bus::BUS_NAME)]
pub struct NameTaken;

/// Owns the bus name exclusively: neither replacing an owner nor replaceable, so two daemons
/// never edit the same routes (zbus's default flags allow both).
async fn start_bus(snapshot: Arc<Mutex<Snapshot>>, commands: mpsc::UnboundedSender<Command>) -> anyhow::Result<zbus::Connection> {
    let conn = zbus::connection::Builder::system()
        .serve_at(bus::OBJECT_PATH, bus::Service::new(snapshot, commands))
        .build()
        .await
        .context("cannot connect to the system bus")?;
    let reply = match conn.request_name_with_flags(bus::BUS_NAME, zbus::fdo::RequestNameFlags::DO_NOT_QUEUE).await {
        Err(zbus::Error::NameTaken) => return Err(NameTaken.into()),
        other => other.with_context(|| format!("cannot own {} on the system bus", bus::BUS_NAME))?,
    };
    match reply {
        zbus::fdo::RequestNameReply::PrimaryOwner | zbus::fdo::RequestNameReply::AlreadyOwner => Ok(conn),
        _ => Err(NameTaken.into()),
    }
}

impl Daemon {
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn fsm_config(&self) -> fsm::Config {
        fsm::Config::from(&self.probe)
    }

    /// First start or restart: reads the kernel, and if a previous daemon's routes are there,
    /// takes over its verdicts instead of starting blind. (A previous daemon without routes had
    /// nothing demoted: starting blind then changes nothing either.)
    async fn adopt(&mut self) -> anyhow::Result<()> {
        if routes::remove_legacy(&self.nl).await.context("cannot remove an older daemon's rule and table")? {
            tracing::info!("removed the rule and table of a daemon before 0.2");
        }
        let previous = routes::current(&self.nl).await.context("cannot read the daemon's routes in main")?;
        let restart = !previous.is_empty();
        let cfg = self.fsm_config();
        let now = self.now();
        let kernel_links = self.nl.links().await.context("cannot list links")?;
        let plans = self.plan.uplinks.clone();
        for p in plans {
            let ifindex = kernel_links.iter().find(|l| l.name == p.interface).map(|l| l.index);
            let was_carrying = ifindex.is_some_and(|i| previous.iter().any(|r| r.ifindex == Some(i) && r.destination.prefix_len() == 0));
            let machine = if restart { fsm::Uplink::adopted(cfg, now, was_carrying) } else { fsm::Uplink::new(cfg) };
            self.links.push(Link::new(p, machine));
        }
        if restart {
            let carrying: Vec<&str> = self.links.iter().filter(|l| l.fsm.state().carries_traffic()).map(Link::name).collect();
            tracing::info!(
                "adopted the routes of a previous daemon: {}",
                if carrying.is_empty() { "no uplink was carrying traffic".to_string() } else { format!("{} carrying traffic", carrying.join(", ")) }
            );
        }
        self.adopt6(&kernel_links).await;
        for i in 0..self.links.len() {
            self.read_link(i).await;
        }
        self.restore_forced();
        Ok(())
    }

    /// The orders of the last run (see [`forced`]), for the uplinks still in the policy.
    fn restore_forced(&mut self) {
        let Some(path) = forced::path() else { return };
        let (orders, errors) = match forced::load(&path) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!("cannot read the maintenance orders in {}: {e}; starting without them", path.display());
                return;
            }
        };
        for e in errors {
            tracing::warn!("{}: {e}", path.display());
        }
        for (iface, order) in orders {
            match self.links.iter().position(|l| l.name() == iface) {
                Some(i) => {
                    tracing::info!(iface = %iface, "{iface}: keeping the maintenance order from before the restart");
                    self.feed(i, Event::Force(order));
                }
                None => tracing::warn!(iface = %iface, "{iface}: dropping its maintenance order: no longer in the policy"),
            }
        }
        self.save_forced();
    }

    fn forced_orders(&self) -> Vec<(String, fsm::Force)> {
        self.links.iter().filter_map(|l| Some((l.name().to_string(), l.fsm.forced()?))).collect()
    }

    fn save_forced(&self) {
        let Some(path) = forced::path() else { return };
        if let Err(e) = forced::save(&path, &self.forced_orders()) {
            tracing::warn!("cannot keep the maintenance orders in {}: {e}; a restart would drop them", path.display());
        }
    }

    /// Reads one uplink's link, addresses and (DHCP) gateway from the kernel and feeds what
    /// changed to its state machine.
    async fn read_link(&mut self, i: usize) {
        let name = self.links[i].name().to_string();
        let (ifindex, carrier) = match self.nl.link(&name).await {
            Ok(l) => (Some(l.index), l.admin_up && l.carrier),
            Err(e) if e.is_not_found() => (None, false),
            Err(e) => {
                tracing::warn!(iface = %name, "{name}: cannot read the link: {e}");
                return;
            }
        };
        self.links[i].ifindex = ifindex;
        self.set_carrier(i, carrier);
        self.hook.link_changed(i);
        self.read_addresses(i).await;
        self.read_gateway(i).await;
        self.read_link6(i).await;
    }

    async fn read_addresses(&mut self, i: usize) {
        let present = match self.links[i].ifindex {
            Some(ifx) => match self.nl.ipv4_addresses(ifx).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(iface = %self.links[i].name(), "{}: cannot read addresses: {e}", self.links[i].name());
                    return;
                }
            },
            None => Vec::new(),
        };
        let chosen = self.links[i].choose_address(&present);
        self.links[i].address = chosen;
        if self.links[i].has_address != chosen.is_some() {
            self.links[i].has_address = chosen.is_some();
            self.feed(i, Event::Address(chosen.is_some()));
        }
        self.routes_dirty = true;
        self.verdicts_dirty = true;
    }

    async fn read_gateway(&mut self, i: usize) {
        if self.links[i].plan.gateway.is_some() {
            return;
        }
        let Some(ifx) = self.links[i].ifindex else {
            self.links[i].learned_gateway = None;
            return;
        };
        let own_table = self.links[i].plan.table;
        match self.nl.routes().await {
            Ok(routes) => {
                let gw = routes
                    .iter()
                    .filter(|r| r.destination.prefix_len() == 0 && r.ifindex == Some(ifx) && !r.is_ours())
                    .filter(|r| r.table == plan::Table::Main.number() || r.table == own_table)
                    .find_map(|r| r.gateway);
                if gw != self.links[i].learned_gateway {
                    self.links[i].learned_gateway = gw;
                    self.routes_dirty = true;
                    self.verdicts_dirty = true;
                }
            }
            Err(e) => tracing::warn!(iface = %self.links[i].name(), "{}: cannot read routes: {e}", self.links[i].name()),
        }
    }

    fn set_carrier(&mut self, i: usize, carrier: bool) {
        if self.links[i].carrier != carrier {
            self.links[i].carrier = carrier;
            self.feed(i, Event::Carrier(carrier));
        }
    }

    fn feed(&mut self, i: usize, event: Event) {
        let now = self.now();
        let l = &mut self.links[i];
        let wake_before = l.fsm.wake_at();
        if let Some(t) = l.fsm.handle(now, event) {
            l.reason = t.reason.clone();
            let (from, to) = (t.from.to_string(), Shown::of(t.to, l.path.poor().is_some()).to_string());
            self.pending.push(Logged { interface: l.name().to_string(), from, to, reason: t.reason, ipv6: false });
            self.verdicts_dirty = true;
        }
        self.wake_dirty |= l.fsm.wake_at() != wake_before;
        l.probes_wanted.store(l.fsm.probes_per_round(), Ordering::Relaxed);
        l.follow_ups.store(l.fsm.follow_ups(), Ordering::Relaxed);
        // The link's events (carrier, maintenance, time) are both families'.
        if matches!(event, Event::Carrier(_) | Event::Force(_) | Event::Tick) {
            self.feed6(i, event);
        }
    }

    /// When the loop must wake without an event: the earliest hold that may run out, or a retry.
    /// The holds are gathered again only when one of them changed (not after every round).
    fn next_wake(&mut self) -> Instant {
        if self.wake_dirty {
            let v6 = self.links.iter().filter_map(|l| l.v6.as_ref()?.fsm.wake_at());
            self.wake = self.links.iter().filter_map(|l| l.fsm.wake_at()).chain(v6).map(|t| self.started + t).min();
            self.wake_dirty = false;
        }
        let far = self.started + self.now() + Duration::from_secs(3600);
        let bond = self.bond.as_ref().map(|b| b.next_read.min(b.retry_at(self.started).unwrap_or(b.next_read)));
        self.wake.into_iter().chain(self.retry_at).chain(bond).min().unwrap_or(far)
    }

    fn on_tick(&mut self) {
        if self.bond.as_ref().is_some_and(|b| b.next_read <= Instant::now() || b.retry_at(self.started).is_some_and(|t| t <= Instant::now())) {
            self.verdicts_dirty = true;
        }
        if self.retry_at.is_some_and(|t| t <= Instant::now()) {
            self.retry_at = None;
            self.routes_dirty = true;
            self.foreign_dirty = true;
            self.v6.reread();
            self.hook.retry();
        }
        for i in 0..self.links.len() {
            self.feed(i, Event::Tick);
        }
    }

    fn on_round(&mut self, done: RoundDone) {
        if done.ipv6 {
            return self.on_round6(done);
        }
        let now = self.now();
        if let Some(watch) = &mut self.bond {
            // Mode=bond has no uplinks: every IPv4 round is the bond's.
            self.verdicts_dirty |= watch.on_round(done, now);
            return;
        }
        let i = done.link;
        if self.links.get(i).and_then(|l| l.prober.as_ref()).map(|(_, g, _)| *g) != Some(done.generation) {
            return; // from a prober that has since been replaced (or a reload reordered the uplinks)
        }
        let now = self.now();
        let limits = quality::Limits::from(&self.probe);
        let round = quality::Round { sent: done.result.sent, answered: done.result.answered, rtt: done.result.rtt };
        let shown = self.shown_state(i);
        let l = &mut self.links[i];
        let change = l.path.record(now, round, l.fsm.state() == fsm::State::Down, LOSS_WINDOW, &limits);
        // An unanswered round clears it: a dead uplink shows no latency rather than an old one.
        l.rtt = done.result.rtt;
        // A poor uplink's loss ranks it against the other poor ones (see `quality::carriers`).
        self.verdicts_dirty |= l.path.poor().is_some();
        self.touched.push(i);
        if let Some(change) = change {
            let (to, reason) = match change {
                quality::Change::Poor(why) => (Shown::Poor, why),
                quality::Change::Trusted(why) => (self.links[i].fsm.state().into(), why),
            };
            self.links[i].reason = reason.clone();
            self.pending.push(Logged { interface: self.links[i].name().to_string(), from: shown.to_string(), to: to.to_string(), reason, ipv6: false });
            self.verdicts_dirty = true;
        }
        // A round whose follow-ups were all lost stands for that many failed rounds.
        for _ in 0..if done.result.ok { 1 } else { done.result.rounds.max(1) } {
            self.feed(i, Event::Round(done.result.ok));
        }
    }

    async fn on_netlink(&mut self, event: netlink::Event) {
        use netlink::Event as E;
        // Rare next to rounds, and any of them may change a link, an address or main.
        self.verdicts_dirty = true;
        match event {
            E::Link(ls) => {
                if let Some(i) = self.links.iter().position(|l| l.name() == ls.name) {
                    let new_index = self.links[i].ifindex != Some(ls.index);
                    self.links[i].ifindex = Some(ls.index);
                    self.set_carrier(i, ls.admin_up && ls.carrier);
                    self.hook.link_changed(i);
                    if new_index {
                        self.read_addresses(i).await;
                        self.read_gateway(i).await;
                        self.read_link6(i).await;
                    }
                }
            }
            E::LinkRemoved(ls) => {
                if let Some(i) = self.links.iter().position(|l| l.ifindex == Some(ls.index)) {
                    self.links[i].ifindex = None;
                    self.set_carrier(i, false);
                    self.hook.link_changed(i);
                    self.read_addresses(i).await;
                    self.read_link6(i).await;
                }
            }
            E::AddressAdded { ifindex, .. } | E::AddressRemoved { ifindex, .. } => {
                if let Some(i) = self.links.iter().position(|l| l.ifindex == Some(ifindex)) {
                    self.hook.link_changed(i);
                    self.read_addresses(i).await;
                }
            }
            E::Address6Changed { ifindex } => {
                if let Some(i) = self.links.iter().position(|l| l.ifindex == Some(ifindex)) {
                    self.hook.link_changed(i);
                    self.read_addresses6(i).await;
                }
            }
            E::Route6Changed(r) => self.on_route6(r).await,
            E::RouteAdded(r) | E::RouteRemoved(r) if r.is_ours() => {
                // Our own changes come back as events too; reconciling again is a no-op then.
                if r.table() == plan::Table::Main {
                    self.routes_dirty = true;
                }
            }
            E::RouteAdded(r) | E::RouteRemoved(r) => {
                if r.table() == plan::Table::Main {
                    // A VPN's default route came or went, a manager re-added a route: the
                    // copies' metrics may have to move.
                    self.foreign_dirty = true;
                }
                // The manager's default route through an uplink: the router the hook's copy in
                // the uplink's table follows (NetworkManager's DHCP uplinks).
                if r.destination.prefix_len() == 0
                    && let Some(i) = self.links.iter().position(|l| l.ifindex == r.ifindex)
                {
                    self.hook.route_changed(i);
                    if self.links[i].plan.gateway.is_none() {
                        self.read_gateway(i).await;
                    }
                }
            }
            E::RuleAdded(_) | E::RuleRemoved(_) => {}
            E::Overrun => {
                tracing::warn!("netlink events were lost; reading the kernel's state again");
                for i in 0..self.links.len() {
                    self.read_link(i).await;
                }
                self.routes_dirty = true;
                self.foreign_dirty = true;
                self.v6.reread();
            }
        }
    }

    /// Answers only once the routes say what the command did: `multihome force release eth0`
    /// returns when new connections leave via eth0 again, not a moment before (seen under load:
    /// a connection right after the answer still took the copy of wlan1's route).
    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Reload(reply) => {
                let r = self.reload().await;
                self.converge().await;
                let _ = reply.send(r);
            }
            Command::Force { interface, order, reply } => {
                let r = match self.links.iter().position(|l| l.name() == interface) {
                    Some(i) => {
                        self.feed(i, Event::Force(order));
                        self.save_forced();
                        Ok(())
                    }
                    None => Err(format!("{interface} is not an uplink of the policy")),
                };
                self.converge().await;
                let _ = reply.send(r);
            }
        }
    }

    /// Rereads the policy; uplinks that stay keep their state machines and history.
    async fn reload(&mut self) -> Result<(), String> {
        let policy = policy::load(&self.config).map_err(|e| format!("{e:#}"))?;
        let plan = plan::plan(&policy);
        self.probe = plan.probe.clone().unwrap_or_default();
        let cfg = self.fsm_config();
        let mut old: Vec<Link> = std::mem::take(&mut self.links);
        for p in &plan.uplinks {
            let link = match old.iter().position(|l| l.name() == p.interface) {
                Some(j) => {
                    let mut l = old.swap_remove(j);
                    l.fsm.reconfigure(cfg);
                    l.plan = p.clone();
                    l.stop_probers();
                    l.v6 = family6::side_for(p, l.v6.take(), cfg);
                    l
                }
                None => Link::new(p.clone(), fsm::Uplink::new(cfg)),
            };
            self.links.push(link);
        }
        for mut gone in old {
            gone.stop_probers();
            tracing::info!(iface = %gone.name(), "{}: no longer in the policy", gone.name());
        }
        self.bond = plan.bond.as_ref().map(|b| bond::Watch::new(b, plan.probe.as_ref()));
        self.plan = plan;
        self.hook.router = AdvertisedRouter::on_this_host(policy.backend).await;
        for i in 0..self.links.len() {
            self.read_link(i).await;
        }
        self.routes_dirty = true;
        self.verdicts_dirty = true;
        self.wake_dirty = true;
        self.v6.reread();
        tracing::info!("reloaded {}", self.config.display());
        // Before the caller hears back: a `multihome status` right after a reload shows it.
        self.carriers = self.carriers_now();
        self.update_snapshot();
        Ok(())
    }

    /// Probers where they can run, the table as the states say, the snapshot current.
    async fn converge(&mut self) {
        // The failover first, the hook's work after it: at a carrier loss new connections must
        // leave the dead uplink within milliseconds, and the hook's netlink reads and rule
        // changes for its leases (a few ms) would come before that otherwise.
        self.converge6().await;
        if !(self.verdicts_dirty || self.routes_dirty || self.foreign_dirty) {
            self.run_hook().await;
            // An ordinary round: nothing but its uplink's figures changed.
            self.update_touched();
            return;
        }
        self.verdicts_dirty = false;
        self.touched.clear();
        self.sync_probers();
        if self.foreign_dirty {
            match self.nl.routes_in(plan::Table::Main).await {
                Ok(main) => {
                    self.foreign = routes::foreign(&main);
                    self.foreign_dirty = false;
                }
                Err(e) => {
                    tracing::error!("cannot read the main table: {e}; retrying in {RETRY_AFTER:?}");
                    self.retry_at = Some(Instant::now() + RETRY_AFTER);
                }
            }
        }
        self.carriers = self.carriers_now();
        let carriers = self.carriers.clone();
        let carrying: Vec<routes::Carrying> = self.links.iter().zip(&carriers).filter(|(_, c)| **c).filter_map(|(l, _)| l.carrying()).collect();
        // Demoted by the state machine, or fit but poor while a better uplink carries: either
        // way its routes in main are live and need the copies in front.
        let demoted: Vec<ipnet::Ipv4Net> =
            self.links.iter().zip(&carriers).filter_map(|(l, c)| l.demoted_address().or_else(|| (l.fit() && !c).then_some(l.address).flatten())).collect();
        let want = routes::desired(&carrying, &demoted, &self.foreign);
        if self.routes_dirty || self.last_routes.as_ref() != Some(&want) {
            if let Err(e) = routes::reconcile(&self.nl, &want).await {
                tracing::error!("cannot update the daemon's routes in main: {e}; retrying in {RETRY_AFTER:?}");
                self.retry_at = Some(Instant::now() + RETRY_AFTER);
            }
            self.last_routes = Some(want);
            self.routes_dirty = false;
        }
        // Before the steering: the endpoints the hook's sync adds get the daemon's flags at once.
        self.run_hook().await;
        self.steer_mptcp(&carriers, false);
        let mut active = self.links.iter().zip(&carriers).find(|(_, c)| **c).map(|(l, _)| l.name().to_string()).unwrap_or_default();
        let now = self.now();
        if let Some(watch) = &mut self.bond {
            for c in watch.refresh(&self.nl, now).await {
                self.pending.push(Logged { interface: c.interface, from: c.from, to: c.to, reason: c.reason, ipv6: false });
            }
            watch.sync_prober(&self.rounds, &mut self.generation);
            active = watch.active();
        }
        let active_changed = active != self.active;
        self.active = active;
        let n = self.pending.len();
        for (k, t) in self.pending.iter().enumerate() {
            let tail = if active_changed && k + 1 == n { format!("; {}", self.active_phrase()) } else { String::new() };
            let name = &t.interface;
            let family = if t.ipv6 { " IPv6" } else { "" };
            tracing::info!(iface = %name, state = t.to.as_str(), ipv6 = t.ipv6, "{name}{family}: {} -> {} ({}){tail}", t.from, t.to, t.reason);
        }
        if active_changed && n == 0 {
            tracing::info!("{}", self.active_phrase());
        }
        if let Some(phrase) = self.v6.announce.take() {
            tracing::info!("{phrase}");
        }
        self.update_snapshot();
    }

    /// The uplinks' MPTCP endpoints as `carriers` says (see [`mptcp`]): on every converge that
    /// found a verdict, link or address changed, also to take back what a hook's sync reset.
    /// An uplink without a verdict keeps its endpoint's flag, unless `stopping` (the plan's
    /// flags for all).
    fn steer_mptcp(&mut self, carriers: &[bool], stopping: bool) {
        if self.plan.mptcp.is_none() {
            return;
        }
        let uplinks: Vec<&plan::UplinkPlan> = self.links.iter().map(|l| &l.plan).collect();
        let carrier: Vec<bool> = self.links.iter().map(|l| l.carrier).collect();
        let judged: Vec<bool> = self.links.iter().map(|l| stopping || l.fsm.state() != fsm::State::Unknown).collect();
        let want = mptcp::desired(&uplinks, carriers, &carrier, &judged);
        let links = &self.links;
        let of = |id: u8| links.iter().find(|l| l.plan.mptcp.is_some_and(|m| m.id == id));
        let ours = |e: &netlink::mptcp::Endpoint| of(e.id).is_some_and(|l| l.ifindex.is_some() && l.ifindex == e.ifindex);
        let locate = |id: u8| of(id).and_then(|l| Some((l.address?.addr(), l.ifindex?)));
        match self.mptcp.steer(&want, ours, locate) {
            Ok(done) => {
                for (id, line) in done {
                    let name = of(id).map_or("?", |l| l.name());
                    tracing::info!(iface = %name, "{name}: {line}");
                }
            }
            Err(e) => tracing::warn!("cannot steer the MPTCP endpoints: {e}"),
        }
    }

    fn active_phrase(&self) -> String {
        if let Some(b) = &self.plan.bond {
            return if self.active.is_empty() { format!("{} has no active slave", b.name) } else { format!("{}'s active slave is {}", b.name, self.active) };
        }
        if self.active.is_empty() { "no uplink is healthy: the main table decides".to_string() } else { format!("new connections leave via {}", self.active) }
    }

    /// systemd's STATUS=: the active uplink first, then every uplink's state.
    fn status_line(&self) -> String {
        let states = (0..self.links.len()).map(|i| format!("{} {}", self.links[i].name(), self.shown_state(i))).collect::<Vec<_>>().join(", ");
        format!("{}; {states}", self.active_phrase())
    }

    fn sync_probers(&mut self) {
        let arp = self.probe.arp_gateway;
        for (i, l) in self.links.iter_mut().enumerate() {
            let key = match (l.ifindex, l.address, l.fsm.probing()) {
                (Some(ifindex), Some(address), true) => Some(ProberKey { ifindex, source: address.addr(), arp: if arp { l.gateway() } else { None } }),
                _ => None,
            };
            if l.prober.as_ref().map(|(k, _, _)| k) == key.as_ref() {
                continue;
            }
            l.stop_prober();
            let Some(key) = key else { continue };
            self.generation += 1;
            let task = tokio::spawn(probe_loop::<probe::Wire4>(ProberTask {
                link: i,
                generation: self.generation,
                interface: l.name().to_string(),
                key: key.clone(),
                targets: l.plan.probe.targets.clone(),
                probe: self.probe.clone(),
                own: l.plan.probe.clone(),
                wanted: l.probes_wanted.clone(),
                follow_ups: l.follow_ups.clone(),
                rounds: self.rounds.clone(),
            }));
            l.prober = Some((key, self.generation, task));
        }
    }

    /// Which uplinks carry new connections: those the state machine trusts, less the poor ones
    /// while one that is not poor is among them (see [`quality::carriers`]).
    fn carriers_now(&self) -> Vec<bool> {
        let fit: Vec<usize> = (0..self.links.len()).filter(|&i| self.links[i].fit()).collect();
        let verdicts = quality::carriers(&fit.iter().map(|&i| (self.links[i].path.poor().is_some(), self.links[i].path.judged_loss())).collect::<Vec<_>>());
        let mut carriers = vec![false; self.links.len()];
        for (&i, v) in fit.iter().zip(verdicts) {
            carriers[i] = v;
        }
        carriers
    }

    /// The state as the log, `status` and the bus show it: the state machine's, or "poor" for
    /// an uplink it trusts whose path quality is below the limits.
    fn shown_state(&self, i: usize) -> Shown {
        let l = &self.links[i];
        Shown::of(l.fsm.state(), l.path.poor().is_some())
    }

    /// Uplink `i` as the bus shows it, from the carriers of the last converge.
    fn uplink_status(&self, i: usize) -> UplinkStatus {
        let l = &self.links[i];
        UplinkStatus {
            interface: l.name().to_string(),
            rank: l.plan.rank as u32,
            v4: FamilyStatus {
                state: self.shown_state(i),
                loss_percent: l.path.loss(),
                latency_ms: l.rtt.map(|d| d.as_secs_f64() * 1000.0),
                reason: l.reason.clone(),
                carrying: self.carriers.get(i).copied().unwrap_or(false),
                address: l.address.map(|a| a.to_string()).unwrap_or_default(),
                gateway: l.gateway().map(|g| g.to_string()).unwrap_or_default(),
            },
            ipv6: self.status6(i),
            ..Default::default()
        }
    }

    fn update_snapshot(&self) {
        let uplinks = match &self.bond {
            Some(watch) => watch.statuses(),
            None => (0..self.links.len()).map(|i| self.uplink_status(i)).collect(),
        };
        let mut s = self.snapshot.lock().expect("snapshot lock");
        s.uplinks = uplinks;
        s.active = self.active.clone();
        s.active6 = self.v6.active.clone();
    }

    /// Only the uplinks whose figures changed since the last update (one per round).
    fn update_touched(&mut self) {
        let touched = std::mem::take(&mut self.touched);
        let fresh: Vec<(usize, UplinkStatus)> = touched.iter().map(|&i| (i, self.uplink_status(i))).collect();
        let mut s = self.snapshot.lock().expect("snapshot lock");
        if s.uplinks.len() != self.links.len() {
            drop(s);
            self.update_snapshot();
            return;
        }
        for (i, status) in fresh {
            s.uplinks[i] = status;
        }
    }

    /// Logged transitions become D-Bus signals.
    async fn flush_signals(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return;
        }
        notify::status(&self.status_line());
        let Some(conn) = &self.bus else { return };
        let Ok(iface) = conn.object_server().interface::<_, bus::Service>(bus::OBJECT_PATH).await else { return };
        let emitter = iface.signal_emitter();
        // IPv6 changes show in Uplinks (its state6 key); the signal keeps meaning the uplink's
        // IPv4 state, as clients before IPv6 read it.
        for t in pending.iter().filter(|t| !t.ipv6) {
            let _ = bus::Service::state_changed(emitter, &t.interface, &t.from, &t.to, &t.reason).await;
        }
        let service = iface.get().await;
        let _ = service.uplinks_invalidate(emitter).await;
        let _ = service.active_changed(emitter).await;
    }
}
