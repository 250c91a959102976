//! `multihome plan`'s answer: each thing an apply would change, what happens to it, and the
//! change itself as a unified diff, for people (as text) and for scripts (`plan --json`).

use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::files;
use crate::netlink::mptcp;

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

impl Change {
    /// The MPTCP endpoints an apply would add, change or remove (`netlink::mptcp::preview`),
    /// each as `ip mptcp endpoint show` prints it, and the subflow limit it would raise;
    /// `names` gives the interfaces' names by index.
    pub fn of_mptcp(steps: &[mptcp::Change], raise: Option<(u32, u32)>, names: &[(u32, String)]) -> Vec<Change> {
        let name = |i: Option<u32>| i.and_then(|i| names.iter().find(|(n, _)| *n == i)).map_or_else(|| "?".to_string(), |(_, n)| n.clone());
        let wanted = |w: &mptcp::Wanted, backup: bool| format!("{} id {} subflow{} dev {}", w.address, w.id, if backup { " backup" } else { "" }, w.interface);
        let kernel = |k: &mptcp::Endpoint| {
            let address = k.address.map_or_else(|| "(IPv6)".to_string(), |a| a.to_string());
            format!("{address} id {} {} dev {}", k.id, k.flag_names().join(" "), name(k.ifindex))
        };
        let one = |id: u8, interface: &str, action: Action, old: Option<String>, new: Option<String>| {
            let subject = format!("MPTCP endpoint id {id} ({interface})");
            let mut diff = format!("--- {subject}\n+++ {subject}\n");
            diff.extend(old.map(|l| format!("-{l}\n")));
            diff.extend(new.map(|l| format!("+{l}\n")));
            Change { subject, action, note: None, diff }
        };
        let mut out: Vec<Change> = steps
            .iter()
            .filter_map(|s| match s {
                mptcp::Change::Delete(k) => Some(one(k.id, &name(k.ifindex), Action::Remove, Some(kernel(k)), None)),
                mptcp::Change::Add(w) => Some(one(w.id, &w.interface, Action::Create, None, Some(wanted(w, w.backup)))),
                mptcp::Change::SetBackup(w) => Some(one(w.id, &w.interface, Action::Update, Some(wanted(w, !w.backup)), Some(wanted(w, w.backup)))),
                // `apply` says why; nothing of it would change.
                mptcp::Change::Blocked(..) => None,
            })
            .collect();
        if let Some((from, to)) = raise {
            let subject = "MPTCP limits".to_string();
            out.push(Change {
                subject: subject.clone(),
                action: Action::Update,
                note: None,
                diff: format!("--- {subject}\n+++ {subject}\n-subflows {from}\n+subflows {to}\n"),
            });
        }
        out
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
