//! The system bus as every part of multihome meets it: whether a service is there to talk to
//! (NetworkManager for `--backend auto`, the daemon for `status`).

use zbus::Connection;
use zbus::names::BusName;

/// NetworkManager's name on the system bus: its backend talks to it, and the daemon asks
/// whether it runs (who copies the advertised IPv6 router, see `dispatch::ipv6`).
pub const NETWORK_MANAGER: &str = "org.freedesktop.NetworkManager";

/// Whether someone owns `name` on `bus`. A name that is not a valid bus name has no owner.
pub async fn has_owner(bus: &Connection, name: &str) -> zbus::Result<bool> {
    let Ok(name) = BusName::try_from(name) else { return Ok(false) };
    zbus::fdo::DBusProxy::new(bus).await?.name_has_owner(name).await.map_err(zbus::Error::from)
}

/// Whether someone owns `name` on the system bus; no system bus means no.
pub async fn runs_on_system_bus(name: &str) -> bool {
    match Connection::system().await {
        Ok(bus) => has_owner(&bus, name).await.unwrap_or(false),
        Err(_) => false,
    }
}
