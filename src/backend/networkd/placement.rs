//! Where each uplink's part of the plan goes among networkd's files: a drop-in for the
//! administrator's (or netplan's, or cloud-init's) .network file that networkd uses for the link,
//! so that file keeps applying, or multihome's own 10-multihome-IFACE.network when no other file
//! takes the link. Pure: a function of the plan, the survey and what the running networkd said.
//!
//! Being conservative where matching cannot be decided (a [Match] on MACAddress=, Type=, ... in an
//! image): a file whose `Name=` names the uplink is taken to be its file (a drop-in for a file
//! that turns out not to apply is inert, and `apply` on the running system asks networkd); a file
//! that does not name it (a catch-all such as `Type=wlan`) is taken not to be. Both are said.
//! A drop-in applies to every link its file takes, so only a file that takes this one link is
//! amended; a vendor catch-all in /usr/lib is overridden by multihome's own file, as an
//! administrator's file would; an administrator's catch-all is an error.

use std::collections::BTreeMap;
use std::fmt;

use super::conflicts::{self, Amendment};
use super::findings::{Finding, Severity};
use super::live::LiveLink;
use super::matcher::{LinkFacts, MatchKeys, Verdict};
use super::names::{DROPIN_NAME, NETWORK_DIR, network_file_name};
use super::survey::{NetworkFile, NetworkFiles};
use crate::plan::Plan;

/// Where every uplink's settings go, and what was found on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// In the plan's order (in bond mode: the bond's slaves).
    pub uplinks: Vec<Placement>,
    /// Most severe first, then in the plan's order.
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub interface: String,
    pub home: Home,
    /// What the drop-in sets beyond the plan (empty for an own file).
    pub amendment: Amendment,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Home {
    /// multihome's own 10-multihome-IFACE.network; `why` says why no other file is amended.
    Own { why: String },
    /// A drop-in for the .network file networkd uses for the link (as the host names it).
    DropIn { network: String },
}

impl Placement {
    /// The file multihome writes for this uplink, relative to the root.
    pub fn path(&self) -> String {
        match &self.home {
            Home::Own { .. } => format!("{NETWORK_DIR}/{}", network_file_name(&self.interface)),
            Home::DropIn { network } => {
                format!("{NETWORK_DIR}/{}.d/{DROPIN_NAME}", file_name(network))
            }
        }
    }
}

impl Layout {
    pub fn placement(&self, interface: &str) -> Option<&Placement> {
        self.uplinks.iter().find(|p| p.interface == interface)
    }

    pub fn errors(&self) -> Vec<Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Error).cloned().collect()
    }
}

/// What `multihome plan` says before the diff: one line per uplink, then the findings.
impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.uplinks {
            match &p.home {
                Home::Own { why } => writeln!(f, "{}: writes /{} ({why})", p.interface, p.path())?,
                Home::DropIn { network } => writeln!(f, "{}: amends {network} with the drop-in /{}", p.interface, p.path())?,
            }
        }
        for finding in &self.findings {
            writeln!(f, "{}: {finding}", finding.severity)?;
        }
        Ok(())
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn is_vendor(path: &str) -> bool {
    ["/usr/lib/", "/lib/", "/usr/local/lib/"].iter().any(|d| path.starts_with(d))
}

/// Where everything goes on a host with no other .network files: multihome's own files.
pub fn alone(plan: &Plan) -> Layout {
    place(plan, &NetworkFiles::default(), &BTreeMap::new())
}

/// Places every uplink of `plan` among `files`; `live` holds what the running networkd said about
/// the uplinks' links (empty for an image).
pub fn place(plan: &Plan, files: &NetworkFiles, live: &BTreeMap<String, LiveLink>) -> Layout {
    let mut placed = Vec::new();
    let mut findings = Vec::new();
    let mut taken: BTreeMap<&str, &str> = BTreeMap::new();
    // In bond mode the slaves are placed as uplinks are: an administrator's file for one is
    // amended (its [Link] settings, its wpa_supplicant hooks keep applying), not shadowed.
    let uplinks = plan.uplinks().iter().map(|u| (u.interface.as_str(), Role::Uplink(u)));
    let slaves = plan.bond().into_iter().flat_map(|b| b.slaves.iter().map(|s| (s.as_str(), Role::SlaveOf(&b.name))));
    for (iface, role) in uplinks.chain(slaves) {
        let own_name = network_file_name(iface);
        let Choice { chosen, findings: mut found, assumed_not } = choose(files, iface, live.get(iface));
        findings.append(&mut found);
        let home = match &chosen {
            None => Home::Own { why: format!("no other .network file takes {iface}") },
            Some((file, keys)) if !keys.only(iface) => {
                if is_vendor(&file.path) && file.name > own_name {
                    Home::Own { why: format!("it takes {iface} before the vendor default {}, which matches more links ({})", file.path, keys.describe()) }
                } else {
                    let line = file.sections.iter().find(|s| s.name == "Match").map_or(1, |s| s.line);
                    findings.push(Finding::new(Severity::Error, iface, Some((&file.path, line)), format!(
                        "[Match] {}: this file takes {iface} but also other links, and a drop-in would give {iface}'s addresses and routes to all of them; give {iface} a .network file of its own (Name={iface}, with what it needs from this one) that sorts before {}, or narrow this [Match]",
                        keys.describe(),
                        file.name
                    )));
                    Home::DropIn { network: file.path.clone() }
                }
            }
            Some((file, _)) => {
                if let Some(other) = taken.insert(&file.path, iface) {
                    findings.push(Finding::new(
                        Severity::Error,
                        iface,
                        None,
                        format!(
                            "{} takes both {other} and {iface}; a drop-in would give both the same addresses and routes: give each its own .network file",
                            file.path
                        ),
                    ));
                }
                Home::DropIn { network: file.path.clone() }
            }
        };
        let amendment = match (&home, &chosen) {
            (Home::DropIn { .. }, Some((file, _))) => {
                let mut a = match role {
                    Role::Uplink(u) => conflicts::judge(plan, u, file),
                    Role::SlaveOf(bond) => conflicts::judge_slave(bond, iface, file),
                };
                findings.append(&mut a.findings);
                a
            }
            _ => Amendment::default(),
        };
        // A file assumed not to take the link matters only if it would come first: before the
        // amended file, or before multihome's own file.
        for (name, mut finding) in assumed_not {
            if matches!(home, Home::Own { .. }) && name > own_name {
                finding.severity = Severity::Note;
            }
            findings.push(finding);
        }
        placed.push(Placement { interface: iface.to_string(), home, amendment });
    }
    // Errors first: they are what stops an apply. The sort is stable, so each severity keeps
    // the plan's order and each file's line order.
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Layout { uplinks: placed, findings }
}

/// What a placed link is to the plan.
#[derive(Clone, Copy)]
enum Role<'a> {
    Uplink(&'a crate::plan::UplinkPlan),
    /// Mode=bond: a slave of this bond.
    SlaveOf(&'a str),
}

/// What [`choose`] found.
struct Choice<'a> {
    /// The file networkd uses for the link, as far as can be told, with its [Match] keys.
    chosen: Option<(&'a NetworkFile, MatchKeys)>,
    findings: Vec<Finding>,
    /// Files that might take the link but were assumed not to (by file name), with the warning.
    assumed_not: Vec<(String, Finding)>,
}

fn choose<'a>(files: &'a NetworkFiles, iface: &str, live: Option<&LiveLink>) -> Choice<'a> {
    let facts = live.map_or_else(|| LinkFacts::offline(iface), |l| l.facts.clone());
    // What networkd itself uses, unless that is multihome's own file (which hides the answer).
    let in_use = live.and_then(|l| l.network_file.as_deref()).filter(|p| files.by_path(p).is_some_and(|f| !f.ours));
    let mut findings = Vec::new();
    let mut assumed_not = Vec::new();
    for file in files.files.iter().filter(|f| !f.ours && !f.masked) {
        let keys = MatchKeys::collect(std::iter::once(file.sections.as_slice()).chain(file.dropins.iter().filter(|d| !d.ours).map(|d| d.sections.as_slice())));
        match keys.verdict(&facts) {
            Verdict::DoesNotMatch => continue,
            Verdict::Matches => {
                return Choice { chosen: Some((file, keys)), findings, assumed_not };
            }
            Verdict::Unknown { keys: unknown } => {
                let unknown = unknown.join(", ");
                let line = file.sections.iter().find(|s| s.name == "Match").map_or(1, |s| s.line);
                match in_use {
                    Some(p) if p == file.path => {
                        findings.push(Finding::new(Severity::Note, iface, Some((&file.path, line)), format!(
                            "[Match] {}: networkd reports that it uses this file for {iface}",
                            keys.describe()
                        )));
                        return Choice { chosen: Some((file, keys)), findings, assumed_not };
                    }
                    // networkd uses a later file, so it found this one not to match.
                    Some(_) => continue,
                    None if keys.names(iface) => {
                        findings.push(Finding::new(Severity::Warning, iface, Some((&file.path, line)), format!(
                            "[Match] {}: its Name= takes {iface}, but {unknown} cannot be checked here (only on the running system); assumed to be {iface}'s file, so the policy goes into a drop-in for it (inert if the file does not take {iface})",
                            keys.describe()
                        )));
                        return Choice { chosen: Some((file, keys)), findings, assumed_not };
                    }
                    None => assumed_not.push((file.name.clone(), Finding::new(Severity::Warning, iface, Some((&file.path, line)), format!(
                        "[Match] {}: cannot tell here whether this file takes {iface} ({unknown} can only be checked on the running system); assumed not; `networkctl status {iface}` shows the file networkd uses once it runs",
                        keys.describe()
                    )))),
                }
            }
        }
    }
    Choice { chosen: None, findings, assumed_not }
}
