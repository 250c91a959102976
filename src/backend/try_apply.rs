//! `multihome try`: apply the policy, then take it back by itself unless the user confirms in
//! time, as `netplan try` does, so a policy that cuts off the administrator's own session undoes
//! itself.
//!
//! Confirmation is Enter or `y` on standard input, or SIGUSR1. SIGHUP (the session that ran
//! `try` went away, which is exactly the case to protect) is ignored and the revert still comes;
//! end of input is no confirmation either. SIGINT and SIGTERM revert at once.

use crate::backend::Root;
use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

use super::{Backend, Target};
use crate::plan::Plan;

/// How the wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    Confirmed,
    TimedOut,
    /// SIGINT or SIGTERM: revert now.
    Cancelled,
}

/// Listens for the answer. Created before anything is applied, so that a SIGUSR1 or SIGHUP
/// arriving during the apply finds its handler instead of the default action (termination).
pub struct Waiter {
    usr1: Signal,
    hup: Signal,
    int: Signal,
    term: Signal,
}

impl Waiter {
    pub fn new() -> anyhow::Result<Waiter> {
        let s = |k: SignalKind| signal(k).context("cannot install a signal handler");
        Ok(Waiter { usr1: s(SignalKind::user_defined1())?, hup: s(SignalKind::hangup())?, int: s(SignalKind::interrupt())?, term: s(SignalKind::terminate())? })
    }

    pub async fn wait(mut self, timeout: Duration) -> Confirmation {
        let mut lines = stdin_answers();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return Confirmation::TimedOut,
                _ = self.usr1.recv() => return Confirmation::Confirmed,
                _ = self.int.recv() => return Confirmation::Cancelled,
                _ = self.term.recv() => return Confirmation::Cancelled,
                _ = self.hup.recv() => say("multihome: the terminal went away; the policy is still reverted unless confirmed by SIGUSR1"),
                Some(yes) = lines.recv() => if yes { return Confirmation::Confirmed },
            }
        }
    }
}

/// Whether each line typed is a confirmation (an empty line or y/yes). Ends quietly at end of
/// input or when stdin cannot be read (a daemonised or detached `try`).
fn stdin_answers() -> mpsc::UnboundedReceiver<bool> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            let answer = line.trim().to_ascii_lowercase();
            if tx.send(answer.is_empty() || answer == "y" || answer == "yes").is_err() {
                break;
            }
        }
    });
    rx
}

/// Writes to stderr, ignoring failure: after a hangup the terminal is gone, and the revert must
/// not die on a message.
fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

fn ask(timeout: Duration) {
    say(&format!(
        "The policy is applied. Press Enter (or y) within {} s to keep it, or send SIGUSR1 to PID {}; otherwise it is reverted.",
        timeout.as_secs(),
        std::process::id()
    ));
}

/// NetworkManager's own rollback fires this long after `try`'s timeout, so multihome normally
/// rolls back itself (and reports it), and NetworkManager does it should multihome be killed.
const BACKSTOP: Duration = Duration::from_secs(2);

/// Applies, waits, and keeps or reverts, with any backend. Returns whether the new configuration
/// was kept. The waiter listens before anything is applied (see [`Waiter`]).
pub async fn run(backend: Backend, plan: &Plan, root: &Root, timeout: Duration) -> anyhow::Result<bool> {
    let waiter = Waiter::new()?;
    let mut applied = backend.apply(plan, root, Target::Live, timeout + BACKSTOP).await?;
    for w in applied.warnings() {
        say(&format!("multihome: warning: {w}"));
    }
    if !applied.changed_anything() {
        backend.commit(&mut applied, root).await?;
        say("Nothing to do: the system already matches the policy.");
        return Ok(true);
    }
    ask(timeout);
    if waiter.wait(timeout).await == Confirmation::Confirmed {
        backend.commit(&mut applied, root).await?;
        say("Kept.");
        return Ok(true);
    }
    backend.revert(&mut applied, root).await.with_context(|| format!("reverting to the previous {} configuration failed", backend.name()))?;
    say(&format!("Not confirmed: the previous {} configuration is back.", backend.name()));
    Ok(false)
}
