//! `multihome plan`'s answer: each thing an apply would change, what happens to it, and the
//! change itself as a unified diff, for people (as text) and for scripts (`plan --json`).

use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::files;

/// What an apply would do to one subject (a file, a profile, a device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Remove,
    /// A user's profile gives back the routes and rules multihome wrote there.
    Release,
    /// A device takes its profile: activated, or the changed profile reapplied in place.
    Activate,
    Reapply,
    /// Nothing now: the device has no carrier, and its manager activates it when it comes up.
    AwaitCarrier,
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// A file's full path, a profile (`profile "Wired 1" on eth0`), or an interface.
    pub subject: String,
    pub action: Action,
    /// Why, for a change that is not obvious from its diff; shown as a `# ` line before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// A unified diff (of the file, or of the profile's lines in nmcli's words); empty when the
    /// change has no content of its own.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff: String,
}

impl Change {
    /// Each changed file under `root`.
    pub fn of_files(root: &Path, changes: &[files::Change]) -> Vec<Change> {
        changes
            .iter()
            .filter(|c| !c.is_noop())
            .map(|c| {
                let action = match (&c.old, &c.new) {
                    (None, _) => Action::Create,
                    (_, None) => Action::Remove,
                    _ => Action::Update,
                };
                Change { subject: root.join(&c.path).display().to_string(), action, note: None, diff: files::unified_diff(root, std::slice::from_ref(c)) }
            })
            .collect()
    }
}

/// Everything an apply would change with one backend under one root.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub backend: &'static str,
    pub root: String,
    /// Where each uplink's configuration goes (networkd: a drop-in for whose file, or a file of
    /// multihome's own) and what the survey found; shown with or without changes.
    pub placement: Vec<String>,
    pub changes: Vec<Change>,
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.placement {
            writeln!(f, "{line}")?;
        }
        if self.changes.is_empty() {
            return writeln!(f, "No changes: {} under {} already matches the policy.", self.backend, self.root);
        }
        for c in &self.changes {
            if let Some(note) = &c.note {
                writeln!(f, "# {note}")?;
            }
            f.write_str(&c.diff)?;
        }
        Ok(())
    }
}
