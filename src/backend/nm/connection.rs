//! The connection to NetworkManager on the system bus: waiting for a NetworkManager that has just
//! started, and profiles in the form its Settings methods take.

use std::time::Duration;

use anyhow::Context;
use zbus::{Connection, Variant};

use super::proxies::{NM_BUS_NAME, SettingsOut, SettingsProxy};
use super::settings::Profile;

pub fn to_wire(p: &Profile) -> SettingsOut<'_> {
    p.iter().map(|(k, s)| (k.as_str(), s.iter().map(|(k, v)| (k.as_str(), Variant::from(v.clone()))).collect())).collect()
}

pub async fn system_bus() -> anyhow::Result<Connection> {
    let bus = Connection::system().await.context("cannot connect to the system D-Bus to talk to NetworkManager")?;
    settings_exported(&bus).await?;
    Ok(bus)
}

/// "No such object (yet)": zbus reports the standard D-Bus names as `Error::FDO`, others as
/// `MethodError`.
fn not_exported(e: &zbus::Error) -> bool {
    match e {
        zbus::Error::FDO(e) => matches!(**e, zbus::fdo::Error::UnknownMethod(_) | zbus::fdo::Error::UnknownObject(_)),
        zbus::Error::MethodError(name, _, _) => {
            matches!(name.as_str(), "org.freedesktop.DBus.Error.UnknownMethod" | "org.freedesktop.DBus.Error.UnknownObject")
        }
        _ => false,
    }
}

/// How long a NetworkManager that has just started may take to export its settings.
const STARTUP_WAIT: Duration = Duration::from_secs(30);

/// NetworkManager takes its bus name before it has loaded its profiles and exported
/// /org/freedesktop/NetworkManager/Settings; `systemctl start NetworkManager && multihome apply`
/// (and a boot) lands in that gap, seen as "Object does not exist" from a busy machine. So wait,
/// bounded, for the settings to answer. Without NetworkManager there is nothing to wait for: the
/// caller says it is not running.
async fn settings_exported(bus: &Connection) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STARTUP_WAIT;
    loop {
        if !crate::bus::has_owner(bus, NM_BUS_NAME).await.unwrap_or(false) {
            return Ok(());
        }
        match SettingsProxy::new(bus).await?.list_connections().await {
            Ok(_) => return Ok(()),
            Err(e) if not_exported(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("NetworkManager owns {NM_BUS_NAME} but its settings do not answer (waited up to {} s after its start)", STARTUP_WAIT.as_secs())
                });
            }
        }
    }
}

/// Whether NetworkManager owns its name on the system bus (for `--backend auto`).
pub async fn is_running() -> bool {
    crate::bus::runs_on_system_bus(NM_BUS_NAME).await
}
