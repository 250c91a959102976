//! The part of systemd-networkd's D-Bus API (org.freedesktop.network1) that multihome calls.

use zbus::proxy;

#[proxy(interface = "org.freedesktop.network1.Manager", default_service = "org.freedesktop.network1", default_path = "/org/freedesktop/network1")]
pub trait Manager {
    /// Rereads .network/.netdev files and reconfigures the links whose file changed.
    fn reload(&self) -> zbus::Result<()>;
    fn get_link_by_name(&self, name: &str) -> zbus::Result<(i32, zbus::OwnedObjectPath)>;
    fn reconfigure_link(&self, ifindex: i32) -> zbus::Result<()>;
    /// Everything networkd knows, as JSON: per link its properties and the .network file (and
    /// drop-ins) it uses (see `live`).
    fn describe(&self) -> zbus::Result<String>;
}

#[proxy(interface = "org.freedesktop.network1.Link", default_service = "org.freedesktop.network1")]
pub trait Link {
    /// pending, initialized, configuring, configured, unmanaged, failed, linger.
    #[zbus(property)]
    fn administrative_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn operational_state(&self) -> zbus::Result<String>;
}
