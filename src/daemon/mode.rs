//! What the daemon does differently in Mode=routes and Mode=bond, behind one trait, so that the
//! loop asks its [`Mode`] instead of checking the plan's mode at every turn. In Mode=routes the
//! uplinks are the daemon's own (`Daemon::converge` and its families decide who carries); in
//! Mode=bond there are no uplinks, and the kernel's bond decides ([`bond::Watch`]).

use std::time::Duration;

use futures::FutureExt;
use futures::future::LocalBoxFuture;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::bond::{self, Change};
use super::prober::RoundDone;
use super::status_record::UplinkStatus;
use crate::netlink::Netlink;
use crate::plan::{Failover, Plan};

pub(super) trait Mode {
    /// The earliest moment it must look again without an event; `None` for never.
    fn wake(&self, started: Instant) -> Option<Instant>;
    /// Takes a probe round of its own, with whether a verdict changed; gives the uplinks'
    /// rounds back.
    fn take_round(&mut self, done: RoundDone, now: Duration) -> Result<bool, RoundDone>;
    /// Reads the kernel's side of the mode and acts on it: the changes to log and signal and
    /// who is active now; `None` where the uplinks' carriers say who is.
    fn refresh<'a>(
        &'a mut self,
        nl: &'a Netlink,
        now: Duration,
        rounds: &'a mpsc::UnboundedSender<RoundDone>,
        generation: &'a mut u64,
    ) -> LocalBoxFuture<'a, Option<(Vec<Change>, String)>>;
    /// Who carries, as the log and systemd's status say it ("" for no one).
    fn phrase(&self, active: &str) -> String;
    /// The rows of `status`; `None`: the uplinks'.
    fn statuses(&self) -> Option<Vec<UplinkStatus>>;
}

/// The plan's mode.
pub(super) fn of(plan: &Plan) -> Box<dyn Mode> {
    match &plan.failover {
        Failover::Bond(b) => Box::new(bond::Watch::new(b, plan.probe.as_ref())),
        Failover::Routes(_) => Box::new(Routes),
    }
}

/// Mode=routes: the uplinks' own routes, the daemon's copies in front of a demoted one's.
struct Routes;

impl Mode for Routes {
    fn wake(&self, _: Instant) -> Option<Instant> {
        None
    }

    fn take_round(&mut self, done: RoundDone, _: Duration) -> Result<bool, RoundDone> {
        Err(done)
    }

    fn refresh<'a>(
        &'a mut self,
        _: &'a Netlink,
        _: Duration,
        _: &'a mpsc::UnboundedSender<RoundDone>,
        _: &'a mut u64,
    ) -> LocalBoxFuture<'a, Option<(Vec<Change>, String)>> {
        async { None }.boxed_local()
    }

    fn phrase(&self, active: &str) -> String {
        if active.is_empty() { "no uplink is healthy: the main table decides".to_string() } else { format!("new connections leave via {active}") }
    }

    fn statuses(&self) -> Option<Vec<UplinkStatus>> {
        None
    }
}

/// Mode=bond: the kernel's bond fails over; the daemon reads it, orders its backups and, with
/// `[Probe]`, probes through it (see [`bond`]).
impl Mode for bond::Watch {
    fn wake(&self, started: Instant) -> Option<Instant> {
        Some(self.next_read.min(self.retry_at(started).unwrap_or(self.next_read)))
    }

    /// Mode=bond has no uplinks: every IPv4 round is the bond's.
    fn take_round(&mut self, done: RoundDone, now: Duration) -> Result<bool, RoundDone> {
        match done.family {
            super::probe::Family::V4 => Ok(self.on_round(done, now)),
            super::probe::Family::V6 => Err(done),
        }
    }

    fn refresh<'a>(
        &'a mut self,
        nl: &'a Netlink,
        now: Duration,
        rounds: &'a mpsc::UnboundedSender<RoundDone>,
        generation: &'a mut u64,
    ) -> LocalBoxFuture<'a, Option<(Vec<Change>, String)>> {
        async move {
            let changes = bond::Watch::refresh(self, nl, now).await;
            self.sync_prober(rounds, generation);
            Some((changes, self.active()))
        }
        .boxed_local()
    }

    fn phrase(&self, active: &str) -> String {
        let name = self.name();
        if active.is_empty() { format!("{name} has no active slave") } else { format!("{name}'s active slave is {active}") }
    }

    fn statuses(&self) -> Option<Vec<UplinkStatus>> {
        Some(bond::Watch::statuses(self))
    }
}
