//! The systemd-networkd backend: render the plan as files, write them, ask networkd to reload,
//! and put the previous generation back if networkd fails a link with them.

pub mod dbus;
pub mod render;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::backend::files::{self, Change};
use crate::backend::sysctl::{self, SysctlChange};
use crate::plan::Plan;

/// What one apply did, so that `try` (or a failed verification) can take it back.
#[derive(Debug, Default)]
pub struct Applied {
    pub undo_files: Vec<Change>,
    pub undo_sysctls: Vec<SysctlChange>,
}

impl Applied {
    pub fn changed_anything(&self) -> bool {
        !self.undo_files.is_empty() || !self.undo_sysctls.is_empty()
    }
}

/// How long networkd gets to take the new files before a link in state "failed" is blamed on them.
const VERIFY_WINDOW: Duration = Duration::from_secs(3);

pub fn compare(plan: &Plan, root: &Path) -> anyhow::Result<Vec<Change>> {
    files::compare(root, &render::render(plan), &render::owned_patterns())
}

/// Where an apply goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// An image or another root: files only; the running kernel and networkd are not this root's.
    Image,
    /// This system before networkd runs (early boot, the lab): files and live sysctls.
    LiveNoReload,
    /// This running system: files, live sysctls, and a networkd reload that is verified.
    Live,
}

/// Writes the plan's files under `root` and, for a live target, sets its sysctls and asks the
/// running networkd to reload, checking that no uplink fails with the new files; when anything
/// fails, everything is put back as it was.
pub async fn apply(plan: &Plan, root: &Path, target: Target) -> anyhow::Result<Applied> {
    let changes = compare(plan, root)?;
    let undo_files = files::apply(root, &changes)?;
    let sysctls: &[_] = if target == Target::Image { &[] } else { &plan.sysctls };
    let undo_sysctls = match sysctl::apply(sysctls) {
        Ok(u) => u,
        Err(e) => {
            let _ = files::apply(root, &undo_files);
            return Err(e);
        }
    };
    let applied = Applied { undo_files, undo_sysctls };
    if target == Target::Live && applied.changed_anything() {
        if let Err(e) = reload_and_verify(plan).await {
            let restored = revert(&applied, root, true).await;
            return Err(match restored {
                Ok(()) => e.context("networkd did not take the new configuration; the previous files are back"),
                Err(r) => e.context(format!("networkd did not take the new configuration, and restoring the previous files failed too: {r:#}")),
            });
        }
        if applied.undo_files.iter().any(|c| c.path.starts_with(render::NETWORKD_CONF_DIR)) {
            // networkd reads networkd.conf only when it starts; Reload does not cover it.
            if let Err(e) = restart_networkd().await {
                eprintln!(
                    "multihome: warning: {} changed, and networkd reads it only when it starts; \
                     restart systemd-networkd (could not ask systemd: {e:#})",
                    render::NETWORKD_CONF_FILE
                );
            }
        }
    }
    Ok(applied)
}

/// Takes an apply back: the previous files, the previous sysctl values, and a reload. Each part
/// is tried even when an earlier one fails, so as much as possible is back; the first failure
/// is returned.
pub async fn revert(applied: &Applied, root: &Path, reload: bool) -> anyhow::Result<()> {
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

async fn reload_and_verify(plan: &Plan) -> anyhow::Result<()> {
    reload_networkd().await?;
    let bus = zbus::Connection::system().await?;
    let manager = dbus::ManagerProxy::new(&bus).await?;
    let deadline = Instant::now() + VERIFY_WINDOW;
    loop {
        let mut failed = Vec::new();
        let mut settling = false;
        for u in &plan.uplinks {
            // An uplink that does not exist yet (a USB adapter not plugged in) is not an error.
            let Ok((_, path)) = manager.get_link_by_name(&u.interface).await else { continue };
            let link = dbus::LinkProxy::builder(&bus).path(path).build().await?;
            match link.administrative_state().await?.as_str() {
                "failed" => failed.push(u.interface.clone()),
                "pending" | "initialized" => settling = true,
                _ => {}
            }
        }
        if !failed.is_empty() {
            bail!("systemd-networkd failed to configure {} (see its journal)", failed.join(", "));
        }
        if !settling && Instant::now() + VERIFY_WINDOW / 3 >= deadline || Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
