//! Routes mode through a running NetworkManager: survey (read only) -> checkpoint -> update each
//! uplink's profile (or create `multihome-IFACE`) -> reapply in place, else activate -> verify on
//! the devices -> remove the routes multihome took out of a profile that NetworkManager left in
//! the kernel ([`leftovers`]). A profile whose multihome-owned values already match is not sent
//! at all, so a second apply changes nothing.

use crate::backend::Root;
use std::time::Duration;

use anyhow::Context;
use zbus::{Connection, ObjectPath};

use super::checkpoint::{self, Applied, sysctl_file_changes};
use super::connection::system_bus;
use super::leftovers;
use super::proxies::{DeviceProxy, NetworkManagerProxy, SettingsOut};
use super::secrets;
use super::settings;
use super::survey::{Released, Stale, Survey, Target, survey};
use super::verify::verify;
use crate::backend::diff::{self, Action};
use crate::backend::files::Change;
use crate::backend::sysctl;
use crate::plan::Plan;

/// `multihome plan --backend networkmanager`: each profile's change in nmcli's words, and what
/// would happen on the device.
pub async fn plan_diff(plan: &Plan, root: &Root) -> anyhow::Result<Vec<diff::Change>> {
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
            note: Some(format!("{}: the policy no longer has {}; {}", r.label(), r.interface, r.what())),
            diff: if r.was_slave {
                settings::bond::diff(&r.label(), Some(&r.profile), &r.released)
            } else {
                settings::diff(&r.label(), Some(&r.profile), &r.released)
            },
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

/// Applies routes mode inside a checkpoint that NetworkManager rolls back by itself after
/// `rollback_timeout` unless it is committed first.
pub async fn apply_kept(plan: &Plan, root: &Root, rollback_timeout: Duration) -> anyhow::Result<Applied> {
    let bus = system_bus().await?;
    let Survey { targets, stale, released } = survey(&bus, plan).await?;
    let sysctls = crate::backend::reset::sysctls_for_apply(plan, root)?;
    let file_changes = sysctl_file_changes(plan, root)?;
    let nothing = targets.iter().all(|t| !t.profile_changes() && !t.needs_activation())
        && stale.is_empty()
        && released.is_empty()
        && file_changes.iter().all(|c| c.is_noop());
    if nothing {
        // Still set live sysctls that something else reset; that is no NetworkManager change.
        return Ok(Applied { undo_sysctls: sysctl::apply(&sysctls)?, ..Applied::default() });
    }
    let devices: Vec<ObjectPath<'_>> = targets
        .iter()
        .map(|t| t.device.as_ref())
        .chain(stale.iter().filter_map(|s| s.device.as_ref().map(|d| d.as_ref())))
        .chain(released.iter().filter_map(|r| r.active_on.as_ref().map(|d| d.as_ref())))
        .collect();
    let mut applied = checkpoint::open(&bus, &devices, rollback_timeout).await?;
    let result = change_and_verify(&bus, root, &Survey { targets, stale, released }, &sysctls, &file_changes, &mut applied).await;
    checkpoint::settle(result, applied, root).await
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
    checkpoint::write_host_files(applied, root, sysctls, file_changes)?;
    for s in stale {
        checkpoint::remove(bus, &s.path, &s.name, "the policy no longer has its uplink", applied).await?;
    }
    let nm = NetworkManagerProxy::new(bus).await?;
    let mut activated = Vec::new();
    for t in targets {
        let differs = t.profile.as_ref().is_some_and(|(_, current)| settings::needs_update(current, &t.merged));
        let path = checkpoint::put(bus, t.profile.as_ref(), &t.merged, differs, &t.label(), applied).await?;
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
    secrets::update(bus, &r.path, &r.profile, &r.released, &r.label()).await?;
    applied.changes.push(if r.was_slave {
        format!("freed {} from multihome's bond: the policy no longer has {}", r.label(), r.interface)
    } else {
        format!("removed multihome's routes and rules from {}: the policy no longer has {}", r.label(), r.interface)
    });
    let Some(device) = &r.active_on else { return Ok(()) };
    if r.was_slave {
        // Out of the bond is a new activation: no reapply makes a slave a plain profile.
        let nm = NetworkManagerProxy::new(bus).await?;
        nm.activate_connection(&r.path.as_ref(), &device.as_ref(), &ObjectPath::from_static_str_unchecked("/"))
            .await
            .with_context(|| format!("NetworkManager could not activate {}", r.label()))?;
        applied.changes.push(format!("activated {}", r.label()));
        return Ok(());
    }
    let dev = DeviceProxy::builder(bus).path(device.clone()).build().await?;
    dev.reapply(SettingsOut::new(), 0, 0).await.with_context(|| format!("NetworkManager could not reapply {}", r.label()))?;
    applied.changes.push(format!("reapplied {} in place", r.label()));
    let routes = settings::installed_routes(&r.profile, &r.released);
    for route in leftovers::remove(&r.interface, &routes).await.context("cannot remove the routes NetworkManager left behind")? {
        applied.changes.push(format!("removed route {} that NetworkManager left behind", crate::plan::show_route(&route, &r.interface)));
    }
    Ok(())
}
