//! Backends realise a [`crate::plan::Plan`] with the system's own network manager. [`Backend`]
//! is the one interface `plan`, `apply`, `try` and the lab use: a diff for `plan`, an apply that
//! can still be taken back, then commit or revert. A new backend is a module here and an arm in
//! each method below; nothing outside this folder branches on which one runs.

pub mod diff;
pub mod files;
pub mod networkd;
pub mod nm;
pub mod reset;
pub mod root;
pub mod sysctl;
pub mod try_apply;

use std::time::Duration;

use crate::plan::Plan;
use crate::policy;
pub use diff::Diff;
pub use root::Root;

/// The network manager that realises the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Networkd,
    NetworkManager,
}

/// Where an apply goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// An image or another root: files only; the running kernel and manager are not this root's.
    Image,
    /// This system before its manager runs (early boot, the lab): files and live sysctls.
    LiveNoReload,
    /// This running system: its manager takes the change, and it is verified.
    Live,
}

/// What one apply did and still holds, so that it can be committed or taken back.
#[derive(Debug)]
pub enum Applied {
    Networkd(networkd::Applied),
    NetworkManager(nm::Applied),
}

/// How long NetworkManager keeps a plain apply's checkpoint before rolling it back by itself,
/// should multihome die between apply and commit.
const APPLY_HOLD: Duration = Duration::from_secs(60);

impl Backend {
    /// The policy's (or the command line's) choice made concrete: `auto` is NetworkManager when
    /// it owns its name on the system bus, else systemd-networkd. An image (`root` other than
    /// `/`) has no running manager to ask, and gets networkd files.
    pub async fn choose(choice: policy::Backend, root: &Root) -> Backend {
        match choice {
            policy::Backend::Networkd => Backend::Networkd,
            policy::Backend::NetworkManager => Backend::NetworkManager,
            policy::Backend::Auto if is_live(root) && nm::apply::is_running().await => Backend::NetworkManager,
            policy::Backend::Auto => Backend::Networkd,
        }
    }

    /// What `apply` would change under `root`, for people (`multihome plan`).
    pub async fn diff(self, plan: &Plan, root: &Root) -> anyhow::Result<Diff> {
        let (placement, changes) = match self {
            Backend::NetworkManager => (Vec::new(), nm::plan_diff(plan, root).await?),
            Backend::Networkd => {
                // The running networkd knows its links better than names alone, when this is its root.
                let prepared = networkd::compare(plan, root, is_live(root)).await?;
                (prepared.layout.to_string().lines().map(String::from).collect(), diff::Change::of_files(root.path(), &prepared.changes))
            }
        };
        Ok(Diff { backend: self.name(), root: root.path().display().to_string(), placement, changes })
    }

    /// Realises the plan under `root`, verified, but not yet committed: [`Backend::commit`] keeps
    /// it, [`Backend::revert`] takes it back. `hold`: how long NetworkManager waits before rolling
    /// back by itself should multihome die before either (networkd keeps the previous files).
    pub async fn apply(self, plan: &Plan, root: &Root, target: Target, hold: Duration) -> anyhow::Result<Applied> {
        match self {
            Backend::NetworkManager => {
                if target == Target::Image {
                    anyhow::bail!("--root is for images, where no NetworkManager runs: use `multihome render --backend nm-keyfile --out DIR`");
                }
                Ok(Applied::NetworkManager(nm::apply::apply_kept(plan, root, hold).await?))
            }
            Backend::Networkd => Ok(Applied::Networkd(networkd::apply(plan, root, target).await?)),
        }
    }

    /// Apply and commit in one: `multihome apply`.
    pub async fn apply_and_commit(self, plan: &Plan, root: &Root, target: Target) -> anyhow::Result<Applied> {
        let mut applied = self.apply(plan, root, target, APPLY_HOLD).await?;
        self.commit(&mut applied, root).await?;
        Ok(applied)
    }

    pub async fn commit(self, applied: &mut Applied, root: &Root) -> anyhow::Result<()> {
        match applied {
            Applied::NetworkManager(a) => nm::apply::commit(a, root).await,
            // The files are in place and networkd took them: nothing is held.
            Applied::Networkd(_) => Ok(()),
        }
    }

    pub async fn revert(self, applied: &mut Applied, root: &Root) -> anyhow::Result<()> {
        match applied {
            Applied::NetworkManager(a) => nm::apply::revert(a, root).await,
            Applied::Networkd(a) => networkd::revert(a, root, true).await,
        }
    }

    /// How the user names it in messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Networkd => "systemd-networkd",
            Backend::NetworkManager => "NetworkManager",
        }
    }
}

impl Applied {
    pub fn changed_anything(&self) -> bool {
        match self {
            Applied::Networkd(a) => a.changed_anything(),
            Applied::NetworkManager(a) => a.changed_anything(),
        }
    }

    /// Warnings worth a line on stderr (conflicts a drop-in could not settle silently).
    pub fn warnings(&self) -> Vec<String> {
        match self {
            Applied::Networkd(a) => a.layout.as_ref().map(networkd::warnings).unwrap_or_default(),
            Applied::NetworkManager(_) => Vec::new(),
        }
    }

    /// What changed, a line each, then a summary; empty when nothing did.
    pub fn report(&self, target: Target) -> Vec<String> {
        if !self.changed_anything() {
            return Vec::new();
        }
        match self {
            Applied::Networkd(a) => {
                let mut lines: Vec<String> = a.renewed.iter().map(ToString::to_string).collect();
                let reloaded = if target == Target::Live { ", systemd-networkd reloaded" } else { "" };
                lines.push(format!("Applied: {} file(s) and {} sysctl(s) changed{reloaded}.", a.undo_files.len(), a.undo_sysctls.len()));
                lines
            }
            Applied::NetworkManager(a) => {
                let mut lines = a.changes.clone();
                lines.push(format!(
                    "Applied: {} sysctl(s) and {} file(s) changed; NetworkManager's checkpoint committed.",
                    a.undo_sysctls.len(),
                    a.undo_files.len()
                ));
                lines
            }
        }
    }
}

fn is_live(root: &Root) -> bool {
    root.is_system()
}
