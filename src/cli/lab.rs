//! `multihome lab`: the seed's network in namespaces, a fault, and the timeline of what new
//! connections see.

use std::process::ExitCode;

use anyhow::Context;

use super::args::{LabBackend, LabFault, LabMode};
use super::exit;

pub fn lab(
    backend: Option<LabBackend>,
    fault: Option<LabFault>,
    uplink: String,
    script: Option<String>,
    no_daemon: bool,
    mode: LabMode,
    plot: Option<std::path::PathBuf>,
) -> anyhow::Result<ExitCode> {
    use multihome::lab::{self, scenario};
    let can_run = |manager| lab::prerequisites(&lab::LabOptions { manager, ..Default::default() }).is_ok();
    let manager = match backend {
        Some(LabBackend::Networkd) => lab::Manager::Networkd,
        Some(LabBackend::NetworkManager) => lab::Manager::NetworkManager,
        None if !can_run(lab::Manager::Networkd) && can_run(lab::Manager::NetworkManager) => lab::Manager::NetworkManager,
        None => lab::Manager::Networkd,
    };
    if mode == LabMode::Bond {
        anyhow::ensure!(plot.is_none(), "--plot draws the timeline of --mode routes");
        return bond(manager, fault, &uplink, script.is_some());
    }
    lab::prerequisites(&lab::LabOptions { manager, ipv6: true, ..Default::default() }).map_err(anyhow::Error::msg)?;
    let steps = match script {
        Some(text) => scenario::parse_script(&text)?,
        None => {
            anyhow::ensure!(lab::UPLINKS.contains(&uplink.as_str()), "--uplink: the lab's uplinks are {}", lab::UPLINKS.join(", "));
            let kind = match fault {
                Some(LabFault::Link) => scenario::FaultKind::Link,
                Some(LabFault::Silent6) => scenario::FaultKind::Silent6,
                Some(LabFault::Silent) | None => scenario::FaultKind::Silent,
            };
            scenario::default_script(&uplink, kind)
        }
    };
    let title = plot_title(manager, &steps, no_daemon);
    let timeline = scenario::run(scenario::Options { manager, steps, tail: std::time::Duration::from_secs(3), daemon: !no_daemon })?;
    // Interrupted before the timeline started: nothing to draw.
    if let Some(path) = plot.filter(|_| !timeline.events.is_empty()) {
        let svg = multihome::plot::timeline::svg(&timeline, &lab::UPLINKS, &title);
        std::fs::write(&path, svg).with_context(|| format!("--plot: cannot write {}", path.display()))?;
        println!("Plotted the timeline into {}.", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The picture's title: the manager, the faults and whether the daemon ran.
fn plot_title(manager: multihome::lab::Manager, steps: &[multihome::lab::scenario::Step], no_daemon: bool) -> String {
    let manager = if manager == multihome::lab::Manager::Networkd { "systemd-networkd" } else { "NetworkManager" };
    let steps: Vec<String> = steps
        .iter()
        .map(|s| {
            let what = match (s.kind, s.fail) {
                (_, false) => "repair",
                (multihome::lab::scenario::FaultKind::Link, true) => "link",
                (multihome::lab::scenario::FaultKind::Silent, true) => "silent",
                (multihome::lab::scenario::FaultKind::Silent6, true) => "silent6",
            };
            format!("{}:{what}@{}s", s.uplink, s.at.as_secs_f64())
        })
        .collect();
    let daemon = if no_daemon { "without the daemon" } else { "with the daemon" };
    format!("multihome lab: {}, {manager} {daemon}", steps.join(", "))
}

/// `--mode bond`: the primary's cable pulled at 3 s and back at 9 s, where the kernel can bond;
/// elsewhere what the lab would do, the reason it cannot, and exit code 6.
fn bond(manager: multihome::lab::Manager, fault: Option<LabFault>, uplink: &str, script: bool) -> anyhow::Result<ExitCode> {
    use multihome::lab::{self, bond};
    use std::time::Duration;
    // The bond's MII monitor sees the primary's carrier (--fault link, the default); a silent
    // failure behind it is seen by the daemon's probes through the bond (--fault silent, with
    // [Probe] and ProbeFailover=yes in the lab's policy). IPv6 is the routes mode's.
    anyhow::ensure!(!script && uplink == "eth0", "--mode bond fails the primary (eth0): --script and --uplink are for --mode routes");
    anyhow::ensure!(
        matches!(fault, None | Some(LabFault::Link) | Some(LabFault::Silent)),
        "--mode bond shows the primary's carrier loss (--fault link) or its silent failure (--fault silent); the bond has no IPv6"
    );
    let silent = fault == Some(LabFault::Silent);
    lab::prerequisites(&lab::LabOptions { manager, ..Default::default() }).map_err(anyhow::Error::msg)?;
    let plan = bond::plan(manager, silent)?;
    if let Err(why) = bond::kernel_can_bond() {
        print!("{}", bond::explain(manager, &plan, silent));
        println!("\nNot run here: {why}.");
        return Ok(ExitCode::from(exit::LAB_CANNOT_BOND));
    }
    bond::run(bond::Options { manager, silent, fail_at: Duration::from_secs(3), repair_at: Duration::from_secs(9), tail: Duration::from_secs(6) })?;
    Ok(ExitCode::SUCCESS)
}
