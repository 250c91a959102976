//! Applying the plan through a running NetworkManager, as a transaction: survey (read only) ->
//! checkpoint -> update each uplink's profile (or create `multihome-IFACE`) -> reapply in place,
//! else activate -> verify on the devices -> remove the routes multihome took out of a profile
//! that NetworkManager left in the kernel ([`leftovers`]) -> destroy the checkpoint. Any error
//! or failed verification rolls the checkpoint back and says what failed. A profile whose
//! multihome-owned values already match is not sent at all, so a second apply changes nothing.

use crate::backend::Root;
use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use zbus::{Connection, ObjectPath, OwnedObjectPath, Variant};

use super::leftovers;
use super::proxies::{self, ConnectionProxy, DeviceProxy, NetworkManagerProxy, SettingsOut, SettingsProxy};
use super::settings::{self, Profile};
use super::survey::{Released, Stale, Survey, Target, survey};
use super::verify::verify;
use crate::backend::diff::{self, Action};
use crate::backend::files::{self, Change};
use crate::backend::sysctl::{self, SysctlChange};
use crate::plan::Plan;

pub use proxies::NM_BUS_NAME;

/// For a plain apply: how long NetworkManager waits before rolling back by itself should
/// multihome die between checkpoint and commit. Far above a normal apply (about a second).
const APPLY_ROLLBACK_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) fn to_wire(p: &Profile) -> SettingsOut<'_> {
    p.iter().map(|(k, s)| (k.as_str(), s.iter().map(|(k, v)| (k.as_str(), Variant::from(v.clone()))).collect())).collect()
}

pub async fn system_bus() -> anyhow::Result<Connection> {
    let bus = Connection::system().await.context("cannot connect to the system D-Bus to talk to NetworkManager")?;
    settings_exported(&bus).await?;
    Ok(bus)
}

/// "No such object (yet)": zbus reports the standard D-Bus names as `Error::FDO`, others as
/// `MethodError`.
fn not_exported(e: &zbus::Error) -> bool {
    match e {
        zbus::Error::FDO(e) => matches!(**e, zbus::fdo::Error::UnknownMethod(_) | zbus::fdo::Error::UnknownObject(_)),
        zbus::Error::MethodError(name, _, _) => {
            matches!(name.as_str(), "org.freedesktop.DBus.Error.UnknownMethod" | "org.freedesktop.DBus.Error.UnknownObject")
        }
        _ => false,
    }
}

/// How long a NetworkManager that has just started may take to export its settings.
const STARTUP_WAIT: Duration = Duration::from_secs(30);

/// NetworkManager takes its bus name before it has loaded its profiles and exported
/// /org/freedesktop/NetworkManager/Settings; `systemctl start NetworkManager && multihome apply`
/// (and a boot) lands in that gap, seen as "Object does not exist" from a busy machine. So wait,
/// bounded, for the settings to answer. Without NetworkManager there is nothing to wait for: the
/// caller says it is not running.
async fn settings_exported(bus: &Connection) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STARTUP_WAIT;
    loop {
        if !crate::bus::has_owner(bus, NM_BUS_NAME).await.unwrap_or(false) {
            return Ok(());
        }
        match SettingsProxy::new(bus).await?.list_connections().await {
            Ok(_) => return Ok(()),
            Err(e) if not_exported(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("NetworkManager owns {NM_BUS_NAME} but its settings do not answer (waited up to {} s after its start)", STARTUP_WAIT.as_secs())
                });
            }
        }
    }
}

/// Whether NetworkManager owns its name on the system bus (for `--backend auto`).
pub async fn is_running() -> bool {
    crate::bus::runs_on_system_bus(NM_BUS_NAME).await
}

/// The sysctl.d file NetworkManager does not write: rendered once for every backend.
pub(super) fn sysctl_file_changes(plan: &Plan, root: &Root) -> anyhow::Result<Vec<Change>> {
    files::compare(root, &Vec::from_iter(sysctl::file(plan)), &[sysctl::OWNED])
}

/// `multihome plan --backend networkmanager`: each profile's change in nmcli's words, and what
/// would happen on the device.
pub async fn plan_diff(plan: &Plan, root: &Root) -> anyhow::Result<Vec<diff::Change>> {
    if let Some(b) = &plan.bond {
        return super::bond_apply::plan_diff(plan, b, root).await;
    }
    let bus = system_bus().await?;
    let Survey { targets, stale, released } = survey(&bus, plan).await?;
    let mut out = Vec::new();
    for s in &stale {
        out.push(diff::Change {
            subject: format!("profile {:?}", s.name),
            action: Action::Remove,
            note: Some(format!("profile {:?} is removed: the policy no longer has its uplink", s.name)),
            diff: String::new(),
        });
    }
    for r in &released {
        out.push(diff::Change {
            subject: r.label(),
            action: Action::Release,
            note: Some(format!("{}: the policy no longer has {}; the routes and rules multihome wrote there are removed", r.label(), r.interface)),
            diff: settings::diff(&r.label(), Some(&r.profile), &r.released),
        });
    }
    for t in &targets {
        let current = t.profile.as_ref().map(|(_, p)| p);
        let text = settings::diff(&t.label(), current, &t.merged);
        if !text.is_empty() {
            let action = if current.is_some() { Action::Update } else { Action::Create };
            out.push(diff::Change { subject: t.label(), action, note: None, diff: text });
        }
        let device = |action, note: String| diff::Change { subject: t.interface.clone(), action, note: Some(note), diff: String::new() };
        if t.needs_activation() {
            let (action, how) = if t.active_with_profile { (Action::Reapply, "reapplied in place") } else { (Action::Activate, "activated") };
            out.push(device(action, format!("{}: the profile is {how}", t.interface)));
        } else if !t.can_activate() {
            out.push(device(Action::AwaitCarrier, format!("{}: no carrier; NetworkManager activates the profile when it comes up", t.interface)));
        }
    }
    out.extend(diff::Change::of_files(root.path(), &sysctl_file_changes(plan, root)?));
    Ok(out)
}

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
    if let Some(b) = &plan.bond {
        return super::bond_apply::apply_kept(plan, b, root, rollback_timeout).await;
    }
    let bus = system_bus().await?;
    let nm = NetworkManagerProxy::new(&bus).await?;
    let Survey { targets, stale, released } = survey(&bus, plan).await?;
    let sysctls = crate::backend::reset::sysctls_for_apply(plan, root)?;
    let file_changes = sysctl_file_changes(plan, root)?;
    let mut applied = Applied::default();
    let nothing = targets.iter().all(|t| !t.profile_changes() && !t.needs_activation())
        && stale.is_empty()
        && released.is_empty()
        && file_changes.iter().all(|c| c.is_noop());
    if nothing {
        // Still set live sysctls that something else reset; that is no NetworkManager change.
        applied.undo_sysctls = sysctl::apply(&sysctls)?;
        return Ok(applied);
    }
    let devices: Vec<ObjectPath<'_>> = targets
        .iter()
        .map(|t| t.device.as_ref())
        .chain(stale.iter().filter_map(|s| s.device.as_ref().map(|d| d.as_ref())))
        .chain(released.iter().filter_map(|r| r.active_on.as_ref().map(|d| d.as_ref())))
        .collect();
    let secs = u32::try_from(rollback_timeout.as_secs().max(1)).unwrap_or(u32::MAX);
    let checkpoint = nm
        .checkpoint_create(&devices, secs, proxies::CHECKPOINT_DELETE_NEW_CONNECTIONS)
        .await
        .context("NetworkManager refused a checkpoint (is a `multihome try` still waiting?); nothing was changed")?;
    applied.checkpoint = Some(checkpoint.clone());
    let result = change_and_verify(&bus, root, &Survey { targets, stale, released }, &sysctls, &file_changes, &mut applied).await;
    if let Err(e) = result {
        let restored = revert(&mut applied, root).await;
        return Err(match restored {
            Ok(()) => e.context("the NetworkManager checkpoint was rolled back; the previous configuration is back"),
            Err(r) => e.context(format!("and rolling back failed too: {r:#}")),
        });
    }
    Ok(applied)
}

async fn change_and_verify(
    bus: &Connection,
    root: &Root,
    survey: &Survey,
    sysctls: &[crate::plan::Sysctl],
    file_changes: &[Change],
    applied: &mut Applied,
) -> anyhow::Result<()> {
    let (targets, stale): (&[Target], &[Stale]) = (&survey.targets, &survey.stale);
    // Sysctls first: ignore_routes_with_linkdown must be on before the new default routes are.
    applied.undo_sysctls = sysctl::apply(sysctls)?;
    applied.undo_files = files::apply(root, file_changes)?;
    for s in stale {
        let conn = ConnectionProxy::builder(bus).path(s.path.clone()).build().await?;
        conn.delete().await.with_context(|| format!("NetworkManager refused to remove profile {:?}", s.name))?;
        applied.changes.push(format!("removed profile {:?}: the policy no longer has its uplink", s.name));
    }
    let nm = NetworkManagerProxy::new(bus).await?;
    let settings_proxy = SettingsProxy::new(bus).await?;
    let mut activated = Vec::new();
    for t in targets {
        let path = match &t.profile {
            Some((path, current)) => {
                if settings::needs_update(current, &t.merged) {
                    let conn = ConnectionProxy::builder(bus).path(path.clone()).build().await?;
                    conn.update2(to_wire(&t.merged), proxies::UPDATE2_TO_DISK, HashMap::new())
                        .await
                        .with_context(|| format!("NetworkManager refused the update of {}", t.label()))?;
                    applied.changes.push(format!("updated {}", t.label()));
                }
                path.clone()
            }
            None => {
                let path = settings_proxy.add_connection(to_wire(&t.merged)).await.with_context(|| format!("NetworkManager refused the {}", t.label()))?;
                applied.changes.push(format!("created {}", t.label()));
                path
            }
        };
        if !t.can_activate() {
            applied.changes.push(format!("{}: no carrier; NetworkManager activates the profile when it comes up", t.interface));
            continue;
        }
        if !t.needs_activation() {
            continue;
        }
        let dev = DeviceProxy::builder(bus).path(t.device.clone()).build().await?;
        let reapplied = t.active_with_profile && dev.reapply(SettingsOut::new(), 0, 0).await.is_ok();
        if reapplied {
            applied.changes.push(format!("reapplied {} in place", t.label()));
        } else {
            // Reapply refuses changes it cannot make in place; activation takes the link down briefly.
            nm.activate_connection(&path.as_ref(), &t.device.as_ref(), &ObjectPath::from_static_str_unchecked("/"))
                .await
                .with_context(|| format!("NetworkManager could not activate {}", t.label()))?;
            applied.changes.push(format!("activated {}", t.label()));
        }
        activated.push(t);
    }
    verify(bus, &activated).await?;
    for r in &survey.released {
        release(bus, r, applied).await?;
    }
    for t in targets {
        let Some((_, current)) = &t.profile else { continue };
        let routes = settings::installed_routes(current, &t.merged);
        for r in leftovers::remove(&t.interface, &routes).await.context("cannot remove the routes NetworkManager left behind")? {
            applied.changes.push(format!("removed route {} that NetworkManager left behind", crate::plan::show_route(&r, &t.interface)));
        }
    }
    Ok(())
}

/// Takes multihome's routes and rules out of a user's profile whose interface left the policy,
/// reapplies it where it is active, and removes the routes NetworkManager leaves of them.
async fn release(bus: &Connection, r: &Released, applied: &mut Applied) -> anyhow::Result<()> {
    let conn = ConnectionProxy::builder(bus).path(r.path.clone()).build().await?;
    conn.update2(to_wire(&r.released), proxies::UPDATE2_TO_DISK, HashMap::new())
        .await
        .with_context(|| format!("NetworkManager refused the update of {}", r.label()))?;
    applied.changes.push(format!("removed multihome's routes and rules from {}: the policy no longer has {}", r.label(), r.interface));
    let Some(device) = &r.active_on else { return Ok(()) };
    let dev = DeviceProxy::builder(bus).path(device.clone()).build().await?;
    dev.reapply(SettingsOut::new(), 0, 0).await.with_context(|| format!("NetworkManager could not reapply {}", r.label()))?;
    applied.changes.push(format!("reapplied {} in place", r.label()));
    let routes = settings::installed_routes(&r.profile, &r.released);
    for route in leftovers::remove(&r.interface, &routes).await.context("cannot remove the routes NetworkManager left behind")? {
        applied.changes.push(format!("removed route {} that NetworkManager left behind", crate::plan::show_route(&route, &r.interface)));
    }
    Ok(())
}

/// Keeps what [`apply_kept`] did: destroys the checkpoint. When that fails, NetworkManager has
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

/// Undoes what [`apply_kept`] did: NetworkManager rolls the checkpoint back (profiles, created
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
