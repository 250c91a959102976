//! The systemd-networkd backend: survey the .network files networkd already reads, place each
//! uplink (a drop-in for the file that takes its link, or a file of multihome's own), render the
//! plan as files, write them, ask networkd to reload, and put the previous generation back if
//! networkd fails a link with them or does not use them.
//!
//! Plan, then apply: `survey` is the only reader of the administrator's files and `live` the
//! only one that asks the running networkd; `placement`, `conflicts` and `render` are pure.

pub mod address_metrics;
pub mod conflicts;
pub mod dbus;
pub mod dispatcher_unit;
pub mod findings;
pub mod live;
pub mod matcher;
pub mod names;
pub mod netdev;
pub mod placement;
pub mod render;
pub mod survey;

#[cfg(test)]
mod tests;

use crate::backend::Root;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::backend::files::{self, Change, GeneratedFile};
use crate::backend::sysctl::{self, SysctlChange};
use crate::plan::Plan;
use findings::{Conflicts, Finding, Severity};
use placement::{Home, Layout};

/// What one apply did, so that `try` (or a failed verification) can take it back.
#[derive(Debug, Default)]
pub struct Applied {
    pub undo_files: Vec<Change>,
    pub undo_sysctls: Vec<SysctlChange>,
    /// Where the uplinks went, and the warnings to show.
    pub layout: Option<Layout>,
    /// Addresses whose stale prefix-route metric was renewed (see `address_metrics`).
    pub renewed: Vec<address_metrics::Stale>,
}

impl Applied {
    pub fn changed_anything(&self) -> bool {
        !self.undo_files.is_empty() || !self.undo_sysctls.is_empty() || !self.renewed.is_empty()
    }
}

/// How long networkd gets to take the new files before a link in state "failed" is blamed on them.
const VERIFY_WINDOW: Duration = Duration::from_secs(3);

/// What an apply would write under a root, and where each uplink went.
#[derive(Debug)]
pub struct Prepared {
    pub layout: Layout,
    pub changes: Vec<Change>,
}

/// Places the plan among the .network files under `root` and renders it. `live`: `root` is the
/// running system, whose networkd is asked about the links (where it cannot be, by name alone).
/// A conflict that a drop-in cannot settle is an error that lists every finding.
pub async fn layout(plan: &Plan, root: &Root, live: bool) -> anyhow::Result<(Layout, Vec<GeneratedFile>)> {
    let files = survey::read(root)?;
    let (links, asked) = if live {
        match live::links().await {
            Ok(links) => (links, None),
            Err(e) => (BTreeMap::new(), Some(e)),
        }
    } else {
        (BTreeMap::new(), None)
    };
    let mut layout = placement::place(plan, &files, &links);
    if let Some(e) = asked {
        layout.findings.push(Finding::new(Severity::Note, "networkd", None, format!("not asked about the links ({e:#}); placed by their names alone")));
    }
    if layout.findings.iter().any(|f| f.severity == Severity::Error) {
        return Err(Conflicts(layout.findings).into());
    }
    let rendered = render::render(plan, &layout);
    Ok((layout, rendered))
}

/// The findings of a placement worth a line on stderr: warnings (errors stop the apply).
pub fn warnings(layout: &Layout) -> Vec<String> {
    layout.findings.iter().filter(|f| f.severity == Severity::Warning).map(ToString::to_string).collect()
}

pub async fn compare(plan: &Plan, root: &Root, live: bool) -> anyhow::Result<Prepared> {
    let (layout, rendered) = layout(plan, root, live).await?;
    let changes = files::compare(root, &rendered, &names::owned_patterns())?;
    Ok(Prepared { layout, changes })
}

pub use super::Target;

/// Writes the plan's files under `root` and, for a live target, sets its sysctls and asks the
/// running networkd to reload, checking that no uplink fails with the new files; when anything
/// fails, everything is put back as it was.
pub async fn apply(plan: &Plan, root: &Root, target: Target) -> anyhow::Result<Applied> {
    if target == Target::Live && plan.bond().is_some() {
        crate::bonding::available()?;
    }
    let Prepared { layout, changes } = compare(plan, root, target == Target::Live).await?;
    // Before the files: the sysctl.d file being replaced names what an earlier apply set.
    let sysctls = if target == Target::Image { Vec::new() } else { crate::backend::reset::sysctls_for_apply(plan, root)? };
    let undo_files = files::apply(root, &changes)?;
    let undo_sysctls = match sysctl::apply(&sysctls) {
        Ok(u) => u,
        Err(e) => {
            let _ = files::apply(root, &undo_files);
            return Err(e);
        }
    };
    let mut applied = Applied { undo_files, undo_sysctls, layout: Some(layout), renewed: Vec::new() };
    if target == Target::Live {
        let changed = applied.changed_anything();
        let verified = async {
            if changed {
                reload_and_verify(plan, applied.layout.as_ref().expect("set above")).await?;
            }
            // Also when no file changed: an address from before the policy may still carry its
            // old metric, and the system does not match the policy until it is renewed.
            address_metrics::renew(plan).await
        }
        .await;
        match verified {
            Ok(renewed) => applied.renewed = renewed,
            Err(e) => {
                let restored = revert(&applied, root, changed).await;
                return Err(match restored {
                    Ok(()) => e.context("networkd did not take the new configuration; the previous files are back"),
                    Err(r) => e.context(format!("networkd did not take the new configuration, and restoring the previous files failed too: {r:#}")),
                });
            }
        }
    }
    // networkd reads networkd.conf only when it starts; Reload does not cover it.
    if target == Target::Live
        && applied.undo_files.iter().any(|c| c.path.starts_with(names::NETWORKD_CONF_DIR))
        && let Err(e) = restart_networkd().await
    {
        eprintln!(
            "multihome: warning: {} changed, and networkd reads it only when it starts; \
             restart systemd-networkd (could not ask systemd: {e:#})",
            names::NETWORKD_CONF_FILE
        );
    }
    if target == Target::Live {
        match dispatcher_unit::start_if_skipped().await {
            Ok(Some(said)) => eprintln!("multihome: {said}"),
            Ok(None) => {}
            Err(e) => eprintln!("multihome: warning: could not check {}: {e:#}", dispatcher_unit::UNIT),
        }
    }
    Ok(applied)
}

/// Takes an apply back: the previous files, the previous sysctl values, and a reload. Each part
/// is tried even when an earlier one fails, so as much as possible is back; the first failure
/// is returned.
pub async fn revert(applied: &Applied, root: &Root, reload: bool) -> anyhow::Result<()> {
    let files = files::apply(root, &applied.undo_files).map(|_| ());
    let sysctls = sysctl::revert(&applied.undo_sysctls);
    // Reloading matters even when a file could not be restored: networkd then takes the rest.
    let reloaded = if reload { reload_networkd().await } else { Ok(()) };
    files.and(sysctls).and(reloaded)
}

pub async fn reload_networkd() -> anyhow::Result<()> {
    let bus = zbus::Connection::system().await.context("cannot connect to the system D-Bus to reload systemd-networkd")?;
    let manager = dbus::ManagerProxy::new(&bus).await?;
    manager.reload().await.context("systemd-networkd refused Reload (is it running?)")?;
    Ok(())
}

/// Asks systemd to restart networkd (for networkd.conf.d changes).
async fn restart_networkd() -> anyhow::Result<()> {
    let bus = zbus::Connection::system().await?;
    bus.call_method(
        Some("org.freedesktop.systemd1"),
        "/org/freedesktop/systemd1",
        Some("org.freedesktop.systemd1.Manager"),
        "RestartUnit",
        &("systemd-networkd.service", "replace"),
    )
    .await
    .context("org.freedesktop.systemd1 RestartUnit")?;
    Ok(())
}

async fn reload_and_verify(plan: &Plan, layout: &Layout) -> anyhow::Result<()> {
    reload_networkd().await?;
    let bus = zbus::Connection::system().await?;
    let manager = dbus::ManagerProxy::new(&bus).await?;
    let deadline = Instant::now() + VERIFY_WINDOW;
    loop {
        let mut failed = Vec::new();
        let mut settling = false;
        // In bond mode, the bond and its slaves.
        let bond = plan.bond().into_iter().flat_map(|b| std::iter::once(&b.name).chain(&b.slaves));
        for name in plan.uplinks().iter().map(|u| &u.interface).chain(bond) {
            // An uplink that does not exist yet (a USB adapter not plugged in) is not an error.
            let Ok((_, path)) = manager.get_link_by_name(name).await else { continue };
            let link = dbus::LinkProxy::builder(&bus).path(path).build().await?;
            match link.administrative_state().await?.as_str() {
                "failed" => failed.push(name.clone()),
                "pending" | "initialized" => settling = true,
                _ => {}
            }
        }
        if !failed.is_empty() {
            bail!("systemd-networkd failed to configure {} (see its journal)", failed.join(", "));
        }
        // Each uplink's link must use the file multihome wrote for it, or the one it amended.
        let wrong = wrong_files(layout).await;
        let done = !settling && wrong.is_empty() && Instant::now() + VERIFY_WINDOW / 3 >= deadline;
        if done || Instant::now() >= deadline {
            if !wrong.is_empty() {
                bail!("{}", wrong.join("; "));
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The uplinks whose link networkd configures from another file than the layout expects (an
/// undecidable [Match] that was assumed wrongly, a file that appeared meanwhile). A networkd
/// that cannot be asked, or a link it does not know, is no evidence either way.
async fn wrong_files(layout: &Layout) -> Vec<String> {
    let Ok(links) = live::links().await else { return Vec::new() };
    let mut wrong = Vec::new();
    for p in &layout.uplinks {
        let Some(link) = links.get(&p.interface) else { continue };
        let expected = match &p.home {
            Home::Own { .. } => format!("/{}", p.path()),
            Home::DropIn { network } => network.clone(),
        };
        match &link.network_file {
            Some(used) if *used == expected => {}
            used => wrong.push(format!(
                "networkd configures {} from {}, not from {expected} as multihome expected",
                p.interface,
                used.as_deref().unwrap_or("no .network file")
            )),
        }
    }
    wrong
}
