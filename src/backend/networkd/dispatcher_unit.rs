//! networkd-dispatcher's unit, started by a live apply when it was skipped at boot.
//!
//! Debian's networkd-dispatcher.service starts only when a hook exists
//! (`ConditionPathExistsGlob=|/usr/lib/networkd-dispatcher/*/*`, `|/etc/networkd-dispatcher/*/*`).
//! On a host that had none, it was skipped at boot, and installing multihome (whose hooks then
//! exist) starts nothing: installing changes nothing on the network. So until the next boot the
//! hooks that give a DHCP uplink its per-lease rules would not run. `apply` is the moment the
//! administrator asks for the network to change; it starts the unit then, only when the
//! administrator has it enabled and it is inactive (a failed or masked unit is theirs to look at).

use anyhow::Context;
use zbus::OwnedObjectPath;
use zbus::proxy;

pub const UNIT: &str = "networkd-dispatcher.service";

#[proxy(interface = "org.freedesktop.systemd1.Manager", default_service = "org.freedesktop.systemd1", default_path = "/org/freedesktop/systemd1")]
trait Systemd {
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
}

#[proxy(interface = "org.freedesktop.systemd1.Unit", default_service = "org.freedesktop.systemd1")]
trait Unit {
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn unit_file_state(&self) -> zbus::Result<String>;
}

/// What systemd says of the unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    pub load: String,
    pub active: String,
    pub file: String,
}

/// Whether to start it: installed, enabled by the administrator, and neither running nor failed.
pub fn wants_start(state: &UnitState) -> bool {
    state.load == "loaded" && state.file == "enabled" && state.active == "inactive"
}

/// Starts networkd-dispatcher when [`wants_start`] says so; returns what was done, for the
/// administrator, or None when nothing was to do.
pub async fn start_if_skipped() -> anyhow::Result<Option<String>> {
    let bus = zbus::Connection::system().await.context("cannot connect to the system D-Bus to ask systemd about networkd-dispatcher")?;
    let systemd = SystemdProxy::new(&bus).await?;
    let path = systemd.load_unit(UNIT).await.with_context(|| format!("systemd LoadUnit {UNIT}"))?;
    let unit = UnitProxy::builder(&bus).path(path).build().await?;
    let state = UnitState { load: unit.load_state().await?, active: unit.active_state().await?, file: unit.unit_file_state().await? };
    if !wants_start(&state) {
        return Ok(None);
    }
    systemd.start_unit(UNIT, "replace").await.with_context(|| format!("systemd StartUnit {UNIT}"))?;
    Ok(Some(format!(
        "started {UNIT}: it is enabled, and it had skipped its start because no hook existed then; multihome's hooks give DHCP uplinks their rules"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(load: &str, active: &str, file: &str) -> UnitState {
        UnitState { load: load.into(), active: active.into(), file: file.into() }
    }

    #[test]
    fn only_an_enabled_inactive_unit_is_started() {
        assert!(wants_start(&state("loaded", "inactive", "enabled")));
        // Running already, failed (the administrator's to look at), disabled, masked, absent.
        assert!(!wants_start(&state("loaded", "active", "enabled")));
        assert!(!wants_start(&state("loaded", "failed", "enabled")));
        assert!(!wants_start(&state("loaded", "inactive", "disabled")));
        assert!(!wants_start(&state("masked", "inactive", "masked")));
        assert!(!wants_start(&state("not-found", "inactive", "")));
    }
}
