//! `multihome dispatch`: the hook that nm-dispatcher and networkd-dispatcher run on every
//! link event. It reads the event ([`event`], pure), and for a DHCP uplink of the policy makes
//! its per-address rules and link routes match the addresses it has now ([`hook`]); for an
//! uplink with SLAAC or DHCPv6 addresses, its IPv6 rules too ([`ipv6`]); and the uplinks' MPTCP
//! endpoints the addresses they have now (`netlink::mptcp::sync`).

pub mod event;
pub mod hook;
pub mod ipv6;
pub mod quote;
pub mod rule_range;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::path::Path;

use anyhow::Context;

use crate::netlink::Netlink;
use crate::netlink::mptcp;
use crate::plan;
use crate::policy;

pub use event::{Environment, Event, Kind, Refused};
pub use hook::{Outcome, Refreshed, Swept};

/// Runs the hook for one dispatcher call. Quiet (and successful) for events that are not
/// multihome's business; one line on stderr (the journal) when it looked at an uplink. The
/// arguments and environment are bytes as the dispatcher passed them (see [`event::parse`]).
pub fn run(args: &[OsString], env: &Environment, policy_path: &Path) -> anyhow::Result<()> {
    // Refuse hostile input before reading anything else.
    let event = event::parse(args, env)?;
    if event.kind == Kind::Ignore {
        return Ok(());
    }
    if !policy_path.exists() {
        eprintln!("multihome dispatch: {event}: no policy at {}; nothing to do", policy_path.display());
        return Ok(());
    }
    let plan = plan::plan(&policy::load(policy_path)?);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let (outcome, mptcp) = rt.block_on(async {
        let nl = Netlink::connect()?;
        let outcome = hook::apply(&plan, &event, &nl).await;
        // Every uplink event, static ones too: an address that came or went (a lease, or a
        // static address the manager put back) is when its endpoint must follow.
        let mptcp = match plan.uplink(&event.interface) {
            Some(_) => Some(mptcp::sync(&plan, &nl, mptcp::Flags::Kept).await),
            None => None,
        };
        anyhow::Ok((outcome, mptcp))
    })?;
    if let Some(outcome) = outcome.with_context(|| format!("{event}"))? {
        eprintln!("multihome dispatch: {event}: {outcome}");
    }
    if let Some(synced) = mptcp.transpose().with_context(|| format!("{event}: MPTCP endpoints"))?
        && (synced.changed_anything() || !synced.blocked.is_empty())
    {
        eprintln!("multihome dispatch: {event}: {synced}");
    }
    Ok(())
}

/// Brings the MPTCP endpoints and limits in line with the plan (see [`mptcp::sync`]): after
/// `multihome apply` and a kept `try`, with either backend, for the static uplinks' addresses
/// and the leases that are already there.
pub async fn sync_mptcp(plan: &plan::Plan, flags: mptcp::Flags) -> anyhow::Result<mptcp::Synced> {
    let nl = Netlink::connect()?;
    Ok(mptcp::sync(plan, &nl, flags).await?)
}

/// What [`sync_mptcp`] would change (see [`mptcp::preview`]), for `multihome plan`.
pub async fn preview_mptcp(plan: &plan::Plan, flags: mptcp::Flags) -> anyhow::Result<mptcp::Preview> {
    let nl = Netlink::connect()?;
    Ok(mptcp::preview(plan, &nl, flags).await?)
}

/// The hook for every DHCP uplink at once, without an event, from the addresses the kernel has
/// now: after `multihome apply`, an uplink whose lease arrived before the policy gets its rules
/// without waiting for its next lease event, and what the hook added under an earlier policy
/// goes. Runs also without DHCP uplinks: one may have become static or left the policy.
pub async fn refresh(plan: &plan::Plan, router: ipv6::AdvertisedRouter) -> anyhow::Result<hook::Refreshed> {
    let nl = Netlink::connect()?;
    Ok(hook::refresh(plan, router, &nl).await?)
}
