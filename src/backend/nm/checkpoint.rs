//! The transaction both modes apply in: a NetworkManager checkpoint over the devices they
//! change, the sysctls and sysctl.d file NetworkManager does not write, each profile added or
//! updated inside it, and then commit (destroy the checkpoint) or revert (roll it back and put
//! the files and sysctls back). Like nmstate's checkpoint module, it knows nothing of the mode.

use crate::backend::Root;
use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use zbus::{Connection, ObjectPath, OwnedObjectPath};

use super::connection::{system_bus, to_wire};
use super::proxies::{self, ConnectionProxy, NetworkManagerProxy, SettingsProxy};
use super::secrets;
use super::settings::Profile;
use crate::backend::files::{self, Change};
use crate::backend::sysctl::{self, SysctlChange};
use crate::plan::{Plan, Sysctl};

/// What one apply did and still holds: the checkpoint (while a `try` waits) and the sysctls and
/// sysctl.d file to put back.
#[derive(Debug, Default)]
pub struct Applied {
    pub checkpoint: Option<OwnedObjectPath>,
    pub undo_files: Vec<Change>,
    pub undo_sysctls: Vec<SysctlChange>,
    /// One line per thing changed, for the user.
    pub changes: Vec<String>,
}

impl Applied {
    pub fn changed_anything(&self) -> bool {
        !self.changes.is_empty() || !self.undo_files.is_empty() || !self.undo_sysctls.is_empty()
    }
}

/// The sysctl.d file NetworkManager does not write: rendered once for every backend.
pub fn sysctl_file_changes(plan: &Plan, root: &Root) -> anyhow::Result<Vec<Change>> {
    files::compare(root, &Vec::from_iter(sysctl::file(plan)), &[sysctl::OWNED])
}

/// Opens the checkpoint over `devices`, which NetworkManager rolls back by itself after
/// `rollback_timeout` unless [`commit`] destroys it first.
pub async fn open(bus: &Connection, devices: &[ObjectPath<'_>], rollback_timeout: Duration) -> anyhow::Result<Applied> {
    let nm = NetworkManagerProxy::new(bus).await?;
    let secs = u32::try_from(rollback_timeout.as_secs().max(1)).unwrap_or(u32::MAX);
    let checkpoint = nm
        .checkpoint_create(devices, secs, proxies::CHECKPOINT_DELETE_NEW_CONNECTIONS)
        .await
        .context("NetworkManager refused a checkpoint (is a `multihome try` still waiting?); nothing was changed")?;
    Ok(Applied { checkpoint: Some(checkpoint), ..Applied::default() })
}

/// The host's part, first: ignore_routes_with_linkdown must be on before the new default routes
/// are, and the sysctl.d file keeps the values over a reboot.
pub fn write_host_files(applied: &mut Applied, root: &Root, sysctls: &[Sysctl], file_changes: &[Change]) -> anyhow::Result<()> {
    applied.undo_sysctls = sysctl::apply(sysctls)?;
    applied.undo_files = files::apply(root, file_changes)?;
    Ok(())
}

/// Keeps `applied` when the changes inside the checkpoint succeeded, else rolls everything back
/// and says so in the error.
pub async fn settle(result: anyhow::Result<()>, mut applied: Applied, root: &Root) -> anyhow::Result<Applied> {
    let Err(e) = result else { return Ok(applied) };
    Err(match revert(&mut applied, root).await {
        Ok(()) => e.context("the NetworkManager checkpoint was rolled back; the previous configuration is back"),
        Err(r) => e.context(format!("and rolling back failed too: {r:#}")),
    })
}

/// Sends `wanted` when it `differs` from the profile `found` (updated on disk, with the secrets
/// it stores: [`secrets`]) or when there is none (added); returns the profile's path.
pub async fn put(
    bus: &Connection,
    found: Option<&(OwnedObjectPath, Profile)>,
    wanted: &Profile,
    differs: bool,
    label: &str,
    applied: &mut Applied,
) -> anyhow::Result<OwnedObjectPath> {
    match found {
        Some((path, current)) => {
            if differs {
                secrets::update(bus, path, current, wanted, label).await?;
                applied.changes.push(format!("updated {label}"));
            }
            Ok(path.clone())
        }
        None => {
            let path = SettingsProxy::new(bus).await?.add_connection(to_wire(wanted)).await.with_context(|| format!("NetworkManager refused the {label}"))?;
            applied.changes.push(format!("created {label}"));
            Ok(path)
        }
    }
}

/// Removes a profile of multihome's own that the plan no longer has.
pub async fn remove(bus: &Connection, path: &OwnedObjectPath, name: &str, why: &str, applied: &mut Applied) -> anyhow::Result<()> {
    let conn = ConnectionProxy::builder(bus).path(path.clone()).build().await?;
    conn.delete().await.with_context(|| format!("NetworkManager refused to remove profile {name:?}"))?;
    applied.changes.push(format!("removed profile {name:?}: {why}"));
    Ok(())
}

/// Keeps what an apply did: destroys the checkpoint. When that fails, NetworkManager has
/// rolled the profiles back by itself (its timer ran out) or will when the timer does, so the
/// sysctls and the sysctl.d file are put back too: nothing stays half-applied.
pub async fn commit(applied: &mut Applied, root: &Root) -> anyhow::Result<()> {
    let Some(checkpoint) = applied.checkpoint.take() else { return Ok(()) };
    let destroyed = async {
        let bus = system_bus().await?;
        let nm = NetworkManagerProxy::new(&bus).await?;
        nm.checkpoint_destroy(&checkpoint.as_ref()).await?;
        anyhow::Ok(())
    }
    .await;
    let Err(e) = destroyed else { return Ok(()) };
    let e = e.context("cannot commit: the NetworkManager checkpoint is gone (it rolled back by itself after its timeout)");
    Err(match revert(applied, root).await {
        Ok(()) => e.context("the sysctls and the sysctl.d file are back as they were"),
        Err(r) => e.context(format!("and putting the sysctls and the sysctl.d file back failed too: {r:#}")),
    })
}

/// Undoes what an apply did: NetworkManager rolls the checkpoint back (profiles, created
/// ones removed, devices reactivated as they were), multihome puts back the sysctls and the
/// sysctl.d file. Each part is tried even when an earlier one fails.
pub async fn revert(applied: &mut Applied, root: &Root) -> anyhow::Result<()> {
    let checkpoint = match applied.checkpoint.take() {
        Some(c) => rollback(&c).await,
        None => Ok(()),
    };
    let sysctls = sysctl::revert(&applied.undo_sysctls);
    let files = files::apply(root, &applied.undo_files).map(|_| ());
    applied.undo_sysctls.clear();
    applied.undo_files.clear();
    checkpoint.and(sysctls).and(files)
}

async fn rollback(checkpoint: &OwnedObjectPath) -> anyhow::Result<()> {
    let bus = system_bus().await?;
    let nm = NetworkManagerProxy::new(&bus).await?;
    let results = match nm.checkpoint_rollback(&checkpoint.as_ref()).await {
        Ok(r) => r,
        // NetworkManager's own timer was first: the state before is back already.
        Err(_) if !nm.checkpoints().await?.contains(checkpoint) => HashMap::new(),
        Err(e) => return Err(e).context("NetworkManager could not roll the checkpoint back"),
    };
    let failed: Vec<String> = results.iter().filter(|(_, r)| **r != 0).map(|(d, r)| format!("{d} (result {r})")).collect();
    if !failed.is_empty() {
        bail!("NetworkManager could not restore {}", failed.join(", "));
    }
    Ok(())
}
