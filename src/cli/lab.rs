//! `multihome lab`: the seed's network in namespaces, a fault, and the timeline of what new
//! connections see.

use super::args::{LabBackend, LabFault};

pub fn lab(backend: Option<LabBackend>, fault: LabFault, uplink: String, script: Option<String>, no_daemon: bool) -> anyhow::Result<()> {
    use multihome::lab::{self, scenario};
    let can_run = |manager| lab::prerequisites(&lab::LabOptions { manager, ..Default::default() }).is_ok();
    let manager = match backend {
        Some(LabBackend::Networkd) => lab::Manager::Networkd,
        Some(LabBackend::NetworkManager) => lab::Manager::NetworkManager,
        None if !can_run(lab::Manager::Networkd) && can_run(lab::Manager::NetworkManager) => lab::Manager::NetworkManager,
        None => lab::Manager::Networkd,
    };
    lab::prerequisites(&lab::LabOptions { manager, ipv6: true, ..Default::default() }).map_err(anyhow::Error::msg)?;
    let steps = match script {
        Some(text) => scenario::parse_script(&text)?,
        None => {
            anyhow::ensure!(lab::UPLINKS.contains(&uplink.as_str()), "--uplink: the lab's uplinks are {}", lab::UPLINKS.join(", "));
            let kind = match fault {
                LabFault::Link => scenario::FaultKind::Link,
                LabFault::Silent => scenario::FaultKind::Silent,
                LabFault::Silent6 => scenario::FaultKind::Silent6,
            };
            scenario::default_script(&uplink, kind)
        }
    };
    scenario::run(scenario::Options { manager, steps, tail: std::time::Duration::from_secs(3), daemon: !no_daemon })?;
    Ok(())
}
