//! The plan's sysctls: the sysctl.d file that sets them at every boot (the same whichever manager
//! runs, so both backends write it from here), and setting them on the running kernel. Values
//! are per network namespace, which is what lets the lab test this for real.

use std::fmt::Write;
use std::fs;
use std::path::Path;

use anyhow::Context;

use crate::backend::files::{GeneratedFile, Owned, marker};
use crate::plan::{Plan, Sysctl};

/// The sysctl.d file, under a root.
pub const FILE: &str = "etc/sysctl.d/60-multihome.conf";

/// What multihome owns in sysctl.d, so a stale file of its own can be found.
pub const OWNED: Owned = ("etc/sysctl.d", "60-multihome", ".conf");

/// The sysctl.d file for `plan`, each value with why it is set; none for a plan that sets no
/// sysctl (`multihome reset`'s), so a file of an earlier apply goes.
pub fn file(plan: &Plan) -> Option<GeneratedFile> {
    if plan.sysctls.is_empty() {
        return None;
    }
    let mut s = marker(&plan.source, '#');
    for c in &plan.sysctls {
        let _ = write!(s, "\n# {}\n{} = {}\n", c.why, c.key, c.value);
    }
    Some(GeneratedFile::new(FILE, s, 0o644))
}

/// One sysctl as it was before, to put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysctlChange {
    pub path: String,
    pub value: String,
}

/// Writes the values that differ; returns the previous values. Keys of interfaces that do not
/// exist yet are skipped: the sysctl.d file and the `default` key cover them when they appear.
pub fn apply(sysctls: &[Sysctl]) -> anyhow::Result<Vec<SysctlChange>> {
    let mut undo = Vec::new();
    for s in sysctls {
        let path = s.proc_path();
        if !Path::new(&path).exists() {
            continue;
        }
        let old = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?.trim().to_string();
        if old == s.value {
            continue;
        }
        if let Err(e) = fs::write(&path, &s.value).with_context(|| format!("cannot set {} = {}", s.key, s.value)) {
            let _ = revert(&undo);
            return Err(e);
        }
        undo.push(SysctlChange { path, value: old });
    }
    Ok(undo)
}

/// Puts the previous values back, newest first. Every one is tried even when one fails (a
/// revert that stops half-way leaves a mix of both generations); the first failure is returned.
pub fn revert(undo: &[SysctlChange]) -> anyhow::Result<()> {
    let mut first_error = None;
    for u in undo.iter().rev() {
        if let Err(e) = fs::write(&u.path, &u.value).with_context(|| format!("cannot restore {}", u.path)) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}
