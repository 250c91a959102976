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
mod counters;
mod event_hooks;
pub mod events;
mod families;
mod family;
mod family_state;
pub mod forced;
pub mod fsm;
mod hook;
mod hook_work;
mod link;
mod metrics;
mod metrics_serve;
mod mode;
mod mptcp;
mod mptcp_view;
pub mod notify;
mod polkit;
#[cfg(test)]
mod private_net;
pub mod probe;
pub mod probe6;
#[cfg(test)]
mod probe_filters;
pub mod probe_rate;
mod prober;
pub mod quality;
mod random;
pub mod routes;
mod side;
mod stamp;
pub mod status;
pub mod status_record;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use ipnet::{Ipv4Net, Ipv6Net};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::dispatch::ipv6::AdvertisedRouter;
use crate::netlink::{self, Monitor, Netlink};
use crate::plan::{self, Plan};
use crate::policy::{self, Probe};
use bus::Command;
use family_state::States;
use fsm::Event;
use link::Link;
use mode::Mode;
use probe::Family;
use prober::RoundDone;
use status_record::{Snapshot, UplinkStatus};

/// A change of an uplink's shown state, to log and to signal on the bus.
struct Logged {
    interface: String,
    from: String,
    to: String,
    reason: String,
    /// Which side of the uplink changed.
    family: Family,
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
    /// The uplink new connections leave through (Mode=bond: the active slave); "" for none.
    active: String,
    /// Transitions not yet logged and signalled.
    pending: Vec<Logged>,
    /// Each family's carriers, copies and what of them must be worked out again.
    fam: States,
    /// After a failed table update: when to try again (not at every event, which would flood
    /// the journal with the same error many times a second).
    retry_at: Option<Instant>,
    /// Something the log, the snapshot, the hook or the MPTCP steering must see (a transition,
    /// a link or address event): the whole converge runs, IPv4's included.
    verdicts_dirty: bool,
    /// Uplinks whose figures (loss, latency) changed since the snapshot was last updated.
    touched: Vec<usize>,
    /// The earliest hold that may run out, while `wake_dirty` is false.
    wake: Option<Instant>,
    wake_dirty: bool,
    /// Mode=routes or Mode=bond (the kernel's bond, watched instead of uplinks).
    mode: Box<dyn Mode>,
    /// The MPTCP endpoints removed at carrier loss (see [`mptcp`]).
    mptcp: mptcp::Steering,
    /// The hook's work for the uplinks whose links or addresses changed (see [`hook`]).
    hook: hook_work::HookWork,
    /// `[Metrics] TextfileDirectory=`: told after every converge that changed something.
    textfile_changed: Option<Arc<tokio::sync::Notify>>,
    /// `[Metrics]` as the daemon started with it: a reload does not rebind the listener.
    metrics: policy::Metrics,
    /// The queue to the event hooks of /etc/multihome/events.d (see [`event_hooks`]).
    hooks: event_hooks::Hooks,
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
    let mode = mode::of(&plan);
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
        fam: States::new(),
        retry_at: None,
        verdicts_dirty: true,
        touched: Vec::new(),
        wake: None,
        wake_dirty: true,
        mode,
        mptcp: mptcp::Steering::default(),
        hook: hook_work::HookWork::new(router),
        textfile_changed: None,
        metrics: policy.metrics.clone(),
        hooks: event_hooks::Hooks::start(event_hooks::EVENTS_DIR.into()),
    };
    // The bus name first: a second daemon must stop before it touches a route.
    match start_bus(snapshot, commands_tx).await {
        Ok(conn) => d.bus = Some(conn),
        Err(e) if e.downcast_ref::<NameTaken>().is_some() => return Err(e),
        Err(e) => tracing::warn!("D-Bus: {e:#}; running without `multihome status`"),
    }
    d.textfile_changed = start_metrics(&policy.metrics, &d.snapshot).await?;
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
    routes::remove_all::<Ipv4Net>(&d.nl).await.context("cannot remove the daemon's routes")?;
    routes::remove_all::<Ipv6Net>(&d.nl).await.context("cannot remove the daemon's IPv6 routes")?;
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
    let left = routes::current::<Ipv4Net>(&nl).await.context("cannot read the main table")?.len()
        + routes::current::<Ipv6Net>(&nl).await.context("cannot read the IPv6 main table")?.len();
    routes::remove_all::<Ipv4Net>(&nl).await.context("cannot remove the daemon's routes")?;
    routes::remove_all::<Ipv6Net>(&nl).await.context("cannot remove the daemon's IPv6 routes")?;
    let legacy = routes::remove_legacy(&nl).await.context("cannot remove an older daemon's rule and table")?;
    match (left, legacy) {
        (0, false) => tracing::info!("no routes of the daemon were left"),
        (n, legacy) => tracing::info!("removed {n} route(s) the daemon left{}", if legacy { ", and an older daemon's rule and table" } else { "" }),
    }
    Ok(())
}

/// `[Metrics]`: the listener bound (a failure stops the start, naming the address) and the
/// textfile's writer started; the latter's wake-up returned.
async fn start_metrics(m: &policy::Metrics, snapshot: &Arc<Mutex<Snapshot>>) -> anyhow::Result<Option<Arc<tokio::sync::Notify>>> {
    let source = metrics_serve::Source { snapshot: snapshot.clone(), mptcp: mptcp_view::View::default() };
    if let Some(address) = m.listen {
        metrics_serve::listen(address, source.clone()).await?;
    }
    let Some(dir) = &m.textfile_directory else { return Ok(None) };
    let changed = Arc::new(tokio::sync::Notify::new());
    metrics_serve::write_textfile(dir.clone(), source, changed.clone());
    Ok(Some(changed))
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
        let previous = routes::current::<Ipv4Net>(&self.nl).await.context("cannot read the daemon's routes in main")?;
        let restart = !previous.is_empty();
        let cfg = self.fsm_config();
        let kernel_links = self.nl.links().await.context("cannot list links")?;
        self.links = self.plan.uplinks().iter().map(|p| Link::new(p.clone(), cfg)).collect();
        if restart {
            self.adopt_sides::<Ipv4Net>(&previous, &kernel_links);
            let carrying: Vec<&str> = self.links.iter().filter(|l| l.v4.fsm.state().carries_traffic()).map(Link::name).collect();
            tracing::info!(
                "adopted the routes of a previous daemon: {}",
                if carrying.is_empty() { "no uplink was carrying traffic".to_string() } else { format!("{} carrying traffic", carrying.join(", ")) }
            );
        }
        // IPv6 as IPv4, on its own copies: a side whose `::/0` copy is in main was trusted.
        match routes::current::<Ipv6Net>(&self.nl).await {
            Ok(previous) => self.adopt_sides::<Ipv6Net>(&previous, &kernel_links),
            Err(e) => tracing::warn!("cannot read the daemon's IPv6 routes in main: {e}; judging IPv6 afresh"),
        }
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
        self.links.iter().filter_map(|l| Some((l.name().to_string(), l.v4.fsm.forced()?))).collect()
    }

    fn save_forced(&self) {
        let Some(path) = forced::path() else { return };
        if let Err(e) = forced::save(&path, &self.forced_orders()) {
            tracing::warn!("cannot keep the maintenance orders in {}: {e}; a restart would drop them", path.display());
        }
    }

    /// Reads one uplink's link, addresses and routers from the kernel and feeds what changed to
    /// its state machines.
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
        self.read_sides(i).await;
    }

    /// Both families' addresses and routers of uplink `i`.
    async fn read_sides(&mut self, i: usize) {
        self.read_family::<Ipv4Net>(i).await;
        self.read_family::<Ipv6Net>(i).await;
    }

    fn set_carrier(&mut self, i: usize, carrier: bool) {
        if self.links[i].carrier != carrier {
            self.links[i].carrier = carrier;
            self.feed(i, Event::Carrier(carrier));
        }
    }

    /// When the loop must wake without an event: the earliest hold that may run out, or a retry.
    /// The holds are gathered again only when one of them changed (not after every round).
    fn next_wake(&mut self) -> Instant {
        if self.wake_dirty {
            let v6 = self.links.iter().filter_map(|l| l.v6.as_ref()?.fsm.wake_at());
            self.wake = self.links.iter().filter_map(|l| l.v4.fsm.wake_at()).chain(v6).map(|t| self.started + t).min();
            self.wake_dirty = false;
        }
        let far = self.started + self.now() + Duration::from_secs(3600);
        self.wake.into_iter().chain(self.retry_at).chain(self.mode.wake(self.started)).min().unwrap_or(far)
    }

    fn on_tick(&mut self) {
        if self.mode.wake(self.started).is_some_and(|t| t <= Instant::now()) {
            self.verdicts_dirty = true;
        }
        if self.retry_at.is_some_and(|t| t <= Instant::now()) {
            self.retry_at = None;
            self.fam.v4.reread();
            self.fam.v6.reread();
            self.hook.retry();
        }
        for i in 0..self.links.len() {
            self.feed(i, Event::Tick);
        }
    }

    fn on_round(&mut self, done: RoundDone) {
        let now = self.now();
        match self.mode.take_round(done, now) {
            Ok(changed) => self.verdicts_dirty |= changed,
            Err(done) if done.family == Family::V4 => self.on_side_round::<Ipv4Net>(done),
            Err(done) => self.on_side_round::<Ipv6Net>(done),
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
                        self.read_sides(i).await;
                    }
                }
            }
            E::LinkRemoved(ls) => {
                if let Some(i) = self.links.iter().position(|l| l.ifindex == Some(ls.index)) {
                    self.links[i].ifindex = None;
                    self.set_carrier(i, false);
                    self.hook.link_changed(i);
                    self.read_sides(i).await;
                }
            }
            E::AddressAdded { ifindex, .. } | E::AddressRemoved { ifindex, .. } => {
                if let Some(i) = self.links.iter().position(|l| l.ifindex == Some(ifindex)) {
                    self.hook.link_changed(i);
                    self.read_addresses::<Ipv4Net>(i).await;
                }
            }
            E::Address6Changed { ifindex } => {
                if let Some(i) = self.links.iter().position(|l| l.ifindex == Some(ifindex)) {
                    self.hook.link_changed(i);
                    self.read_addresses::<Ipv6Net>(i).await;
                }
            }
            E::Route6Changed(r) => self.on_route::<Ipv6Net>(r).await,
            E::RouteAdded(r) | E::RouteRemoved(r) => self.on_route::<Ipv4Net>(r).await,
            E::RuleAdded(_) | E::RuleRemoved(_) => {}
            E::Overrun => {
                tracing::warn!("netlink events were lost; reading the kernel's state again");
                for i in 0..self.links.len() {
                    self.read_link(i).await;
                }
                self.fam.v4.reread();
                self.fam.v6.reread();
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
        if policy.metrics != self.metrics {
            // Rebinding would drop scrapes in flight and could fail half-way; the old settings
            // stay, and the journal says so.
            tracing::warn!("[Metrics] changed: the metrics keep the settings the daemon started with until `systemctl restart multihome`");
        }
        self.probe = plan.probe.clone().unwrap_or_default();
        let cfg = self.fsm_config();
        let mut old: Vec<Link> = std::mem::take(&mut self.links);
        for p in plan.uplinks() {
            let link = match old.iter().position(|l| l.name() == p.interface) {
                Some(j) => {
                    let mut l = old.swap_remove(j);
                    l.reconfigure(p, cfg);
                    l
                }
                None => Link::new(p.clone(), cfg),
            };
            self.links.push(link);
        }
        for mut gone in old {
            gone.stop_probers();
            tracing::info!(iface = %gone.name(), "{}: no longer in the policy", gone.name());
        }
        self.mode = mode::of(&plan);
        self.plan = plan;
        self.hook.router = AdvertisedRouter::on_this_host(policy.backend).await;
        for i in 0..self.links.len() {
            self.read_link(i).await;
        }
        self.verdicts_dirty = true;
        self.wake_dirty = true;
        self.fam.v4.routes_dirty = true;
        self.fam.v6.reread();
        tracing::info!("reloaded {}", self.config.display());
        // Before the caller hears back: a `multihome status` right after a reload shows it.
        self.fam.v4.carriers = self.carriers::<Ipv4Net>();
        self.update_snapshot();
        Ok(())
    }

    /// Probers where they can run, the tables as the states say, the snapshot current.
    async fn converge(&mut self) {
        // The failover first, the hook's work after it: at a carrier loss new connections must
        // leave the dead uplink within milliseconds, and the hook's netlink reads and rule
        // changes for its leases (a few ms) would come before that otherwise.
        self.converge_family::<Ipv6Net>().await;
        self.follow_active6();
        if !(self.verdicts_dirty || self.fam.v4.needs_converge()) {
            self.run_hook().await;
            // An ordinary round: nothing but its uplink's figures changed.
            self.update_touched();
            return;
        }
        self.verdicts_dirty = false;
        self.touched.clear();
        // Whatever made the whole converge run: IPv4's carriers and copies with it.
        self.fam.v4.dirty = true;
        self.converge_family::<Ipv4Net>().await;
        // Before the steering: the endpoints the hook's sync adds get the daemon's flags at once.
        self.run_hook().await;
        let carriers = self.fam.v4.carriers.clone();
        self.steer_mptcp(&carriers, false);
        let mut active = self.first_carrier::<Ipv4Net>();
        let now = self.now();
        if let Some((changes, mode_active)) = self.mode.refresh(&self.nl, now, &self.rounds, &mut self.generation).await {
            for c in changes {
                self.pending.push(Logged { interface: c.interface, from: c.from, to: c.to, reason: c.reason, family: Family::V4 });
            }
            active = mode_active;
        }
        self.log_transitions(active);
        self.update_snapshot();
        if let Some(changed) = &self.textfile_changed {
            changed.notify_one();
        }
    }

    /// IPv6's carrier after its converge: a change is announced after the transitions that led
    /// to it (see [`Daemon::log_transitions`]).
    fn follow_active6(&mut self) {
        let active = self.first_carrier::<Ipv6Net>();
        if active != self.fam.v6.active && self.links.iter().any(|l| l.v6.is_some()) {
            self.verdicts_dirty = true;
            let phrase = if active.is_empty() {
                "no uplink's IPv6 is healthy: the IPv6 main table decides".to_string()
            } else {
                format!("new IPv6 connections leave via {active}")
            };
            self.fam.v6.announce = Some((self.fam.v6.active.clone(), phrase));
        }
        self.fam.v6.active = active;
    }

    /// Logs the pending transitions, the new active uplink after the last of them, each with its
    /// journal id, and hands them to the event hooks in the same order.
    fn log_transitions(&mut self, active: String) {
        let previous = std::mem::replace(&mut self.active, active);
        let active_changed = previous != self.active;
        let n = self.pending.len();
        for (k, t) in self.pending.iter().enumerate() {
            let tail = if active_changed && k + 1 == n { format!("; {}", self.active_phrase()) } else { String::new() };
            let name = &t.interface;
            let family = if t.family == Family::V6 { " IPv6" } else { "" };
            let line = format!("{name}{family}: {} -> {} ({}){tail}", t.from, t.to, t.reason);
            let family_active = if t.family == Family::V6 { &self.fam.v6.active } else { &self.active };
            let change = events::Change {
                kind: events::Kind::of_state(&t.to),
                family: t.family,
                uplink: name.clone(),
                old: t.from.clone(),
                new: t.to.clone(),
                reason: t.reason.clone(),
                active: family_active.clone(),
            };
            change.log(&line);
            self.hooks.send(change);
        }
        if active_changed {
            let bond = matches!(self.plan.failover, plan::Failover::Bond(_));
            let reason = self.pending.last().map(|t| format!("{}: {}", t.interface, t.reason)).unwrap_or_default();
            self.announce_active(Family::V4, previous, self.active.clone(), bond, reason, n == 0);
        }
        if let Some((previous, phrase)) = self.fam.v6.announce.take() {
            let reason = self.pending.iter().rfind(|t| t.family == Family::V6).map(|t| format!("{}: {}", t.interface, t.reason)).unwrap_or_default();
            let change = self.active_change(Family::V6, previous, self.fam.v6.active.clone(), false, reason);
            change.log(&phrase);
            self.hooks.send(change);
        }
    }

    /// The active uplink of `family` changed from `old` to `new`: logged on a line of its own
    /// when no transition's line carried it (`line`), always to the hooks.
    fn announce_active(&mut self, family: Family, old: String, new: String, bond: bool, reason: String, line: bool) {
        let change = self.active_change(family, old, new, bond, reason);
        if line {
            change.log(&self.active_phrase());
        } else {
            // The phrase went out with the last transition's line on stderr; the journal gets
            // the change as an entry of its own, with its id.
            change.log_journal_only(&self.active_phrase());
        }
        self.hooks.send(change);
    }

    fn active_change(&self, family: Family, old: String, new: String, bond: bool, reason: String) -> events::Change {
        let kind = if bond { events::Kind::BondSlaveChanged } else { events::Kind::ActiveChanged };
        events::Change { kind, family, uplink: new.clone(), old, new: new.clone(), reason, active: new }
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
        let judged: Vec<bool> = self.links.iter().map(|l| stopping || l.v4.fsm.state() != fsm::State::Unknown).collect();
        let want = mptcp::desired(&uplinks, carriers, &carrier, &judged);
        let links = &self.links;
        let of = |id: u8| links.iter().find(|l| l.plan.mptcp.is_some_and(|m| m.id == id));
        let ours = |e: &netlink::mptcp::Endpoint| of(e.id).is_some_and(|l| l.ifindex.is_some() && l.ifindex == e.ifindex);
        let locate = |id: u8| of(id).and_then(|l| Some((l.v4.address?.addr(), l.ifindex?)));
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
        self.mode.phrase(&self.active)
    }

    /// systemd's STATUS=: the active uplink first, then every uplink's state.
    fn status_line(&self) -> String {
        let states = self.links.iter().map(|l| format!("{} {}", l.name(), l.v4.shown_state())).collect::<Vec<_>>().join(", ");
        format!("{}; {states}", self.active_phrase())
    }

    /// Uplink `i` as the bus shows it, from the carriers of the last converge.
    fn uplink_status(&self, i: usize) -> UplinkStatus {
        let l = &self.links[i];
        UplinkStatus {
            interface: l.name().to_string(),
            rank: l.plan.rank as u32,
            v4: self.side_status::<Ipv4Net>(i).unwrap_or_default(),
            ipv6: self.side_status::<Ipv6Net>(i),
            ..Default::default()
        }
    }

    fn update_snapshot(&self) {
        let uplinks = self.mode.statuses().unwrap_or_else(|| (0..self.links.len()).map(|i| self.uplink_status(i)).collect());
        let mut s = self.snapshot.lock().expect("snapshot lock");
        s.uplinks = uplinks;
        s.active = self.active.clone();
        s.active6 = self.fam.v6.active.clone();
        s.max_loss_percent = self.plan.probe.as_ref().map(|p| p.max_loss);
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
        for t in pending.iter().filter(|t| t.family == Family::V4) {
            let _ = bus::Service::state_changed(emitter, &t.interface, &t.from, &t.to, &t.reason).await;
        }
        let service = iface.get().await;
        let _ = service.uplinks_invalidate(emitter).await;
        let _ = service.active_changed(emitter).await;
    }
}
