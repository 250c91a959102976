//! Applying the plan through a running NetworkManager, as a transaction: the mode's survey (read
//! only) and changes ([`routes_apply`], [`bond_apply`]) inside one [`super::checkpoint`], then
//! commit (destroy the checkpoint). Any error or failed verification rolls the checkpoint back
//! and says what failed. A profile whose multihome-owned values already match is not sent at all,
//! so a second apply changes nothing.

use crate::backend::Root;
use std::time::Duration;

use super::{bond_apply, routes_apply};
use crate::backend::diff;
use crate::plan::{Failover, Plan};

pub use super::checkpoint::{Applied, commit, revert};
pub use super::connection::is_running;
pub use super::proxies::NM_BUS_NAME;

/// For a plain apply: how long NetworkManager waits before rolling back by itself should
/// multihome die between checkpoint and commit. Far above a normal apply (about a second).
const APPLY_ROLLBACK_TIMEOUT: Duration = Duration::from_secs(60);

/// `multihome plan --backend networkmanager`: each profile's change in nmcli's words, and what
/// would happen on the device.
pub async fn plan_diff(plan: &Plan, root: &Root) -> anyhow::Result<Vec<diff::Change>> {
    match &plan.failover {
        Failover::Bond(b) => bond_apply::plan_diff(plan, b, root).await,
        Failover::Routes(_) => routes_apply::plan_diff(plan, root).await,
    }
}

/// Applies the plan and commits it: the checkpoint is destroyed once the devices show the
/// policy. The sysctl.d file is written under `root`.
pub async fn apply(plan: &Plan, root: &Root) -> anyhow::Result<Applied> {
    let mut applied = apply_kept(plan, root, APPLY_ROLLBACK_TIMEOUT).await?;
    commit(&mut applied, root).await?;
    Ok(applied)
}

/// Applies the plan and keeps the checkpoint, which NetworkManager rolls back by itself after
/// `rollback_timeout` unless [`commit`] destroys it first (`multihome try`).
pub async fn apply_kept(plan: &Plan, root: &Root, rollback_timeout: Duration) -> anyhow::Result<Applied> {
    match &plan.failover {
        Failover::Bond(b) => bond_apply::apply_kept(plan, b, root, rollback_timeout).await,
        Failover::Routes(_) => routes_apply::apply_kept(plan, root, rollback_timeout).await,
    }
}
