//! The part of NetworkManager's D-Bus API (org.freedesktop.NetworkManager, 1.42) that multihome
//! calls, and nothing more.

use std::collections::HashMap;

use zbus::{OwnedObjectPath, OwnedVariant, Variant, proxy};

/// Settings as they come over the bus.
pub type SettingsIn = HashMap<String, HashMap<String, OwnedVariant>>;
/// Settings as they are sent.
pub type SettingsOut<'a> = HashMap<&'a str, HashMap<&'a str, Variant<'a>>>;

/// NetworkManager's name on the system bus; an owner makes `--backend auto` choose it.
pub const NM_BUS_NAME: &str = crate::bus::NETWORK_MANAGER;

/// NMCheckpointCreateFlags: remove profiles added after the checkpoint when rolling back, so a
/// created `multihome-IFACE` goes away with the rest.
pub const CHECKPOINT_DELETE_NEW_CONNECTIONS: u32 = 0x2;

/// NMSettingsUpdate2Flags: keep the change across restarts (the keyfile is rewritten).
pub const UPDATE2_TO_DISK: u32 = 0x1;

/// NMDeviceState: what a device is doing, as NetworkManager numbers it. The order matters:
/// from `Disconnected` on, a device can take a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeviceState {
    Unknown,
    Unmanaged,
    Unavailable,
    Disconnected,
    Prepare,
    Config,
    NeedAuth,
    IpConfig,
    IpCheck,
    Secondaries,
    Activated,
    Deactivating,
    Failed,
}

impl DeviceState {
    const ALL: [DeviceState; 13] = [
        DeviceState::Unknown,
        DeviceState::Unmanaged,
        DeviceState::Unavailable,
        DeviceState::Disconnected,
        DeviceState::Prepare,
        DeviceState::Config,
        DeviceState::NeedAuth,
        DeviceState::IpConfig,
        DeviceState::IpCheck,
        DeviceState::Secondaries,
        DeviceState::Activated,
        DeviceState::Deactivating,
        DeviceState::Failed,
    ];

    /// NetworkManager's number for the state: 0, 10, 20, ... 120.
    pub fn number(self) -> u32 {
        10 * self as u32
    }

    /// The state NetworkManager's number names; a number a newer NetworkManager may add
    /// counts as `Unknown`.
    pub fn from_number(n: u32) -> DeviceState {
        DeviceState::ALL.into_iter().find(|s| s.number() == n).unwrap_or(DeviceState::Unknown)
    }

    /// nmcli's word for the state.
    pub fn name(self) -> &'static str {
        match self {
            DeviceState::Unknown => "unknown",
            DeviceState::Unmanaged => "unmanaged",
            DeviceState::Unavailable => "unavailable",
            DeviceState::Disconnected => "disconnected",
            DeviceState::Prepare => "connecting (prepare)",
            DeviceState::Config => "connecting (configuring)",
            DeviceState::NeedAuth => "connecting (need authentication)",
            DeviceState::IpConfig => "connecting (getting IP configuration)",
            DeviceState::IpCheck => "connecting (checking IP connectivity)",
            DeviceState::Secondaries => "connecting (starting secondary connections)",
            DeviceState::Activated => "connected",
            DeviceState::Deactivating => "deactivating",
            DeviceState::Failed => "connection failed",
        }
    }
}

impl std::fmt::Display for DeviceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.number())
    }
}

#[proxy(interface = "org.freedesktop.NetworkManager", default_service = "org.freedesktop.NetworkManager", default_path = "/org/freedesktop/NetworkManager")]
pub trait NetworkManager {
    fn get_device_by_ip_iface(&self, iface: &str) -> zbus::Result<OwnedObjectPath>;
    /// The devices NetworkManager knows (realized ones), in its own order.
    fn get_devices(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
    fn activate_connection(
        &self,
        connection: &zbus::ObjectPath<'_>,
        device: &zbus::ObjectPath<'_>,
        specific_object: &zbus::ObjectPath<'_>,
    ) -> zbus::Result<OwnedObjectPath>;
    fn checkpoint_create(&self, devices: &[zbus::ObjectPath<'_>], rollback_timeout: u32, flags: u32) -> zbus::Result<OwnedObjectPath>;
    fn checkpoint_destroy(&self, checkpoint: &zbus::ObjectPath<'_>) -> zbus::Result<()>;
    /// Device path -> NMRollbackResult (0 ok, 1 device gone, 2 unmanaged, 3 failed).
    fn checkpoint_rollback(&self, checkpoint: &zbus::ObjectPath<'_>) -> zbus::Result<HashMap<String, u32>>;
    fn checkpoint_adjust_rollback_timeout(&self, checkpoint: &zbus::ObjectPath<'_>, add_timeout: u32) -> zbus::Result<()>;
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn checkpoints(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
}

#[proxy(
    interface = "org.freedesktop.NetworkManager.Settings",
    default_service = "org.freedesktop.NetworkManager",
    default_path = "/org/freedesktop/NetworkManager/Settings"
)]
pub trait Settings {
    fn list_connections(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
    /// Adds a profile and writes it to disk.
    fn add_connection(&self, connection: SettingsOut<'_>) -> zbus::Result<OwnedObjectPath>;
}

#[proxy(interface = "org.freedesktop.NetworkManager.Settings.Connection", default_service = "org.freedesktop.NetworkManager")]
pub trait Connection {
    /// Without secrets. An update sent from these must carry the stored secrets too
    /// ([`super::secrets`] says why).
    fn get_settings(&self) -> zbus::Result<SettingsIn>;
    /// The secrets NetworkManager stores for `setting` (and those a secret agent of the
    /// caller's session holds), never asking anyone for them. 1.42.4 answers with the secrets
    /// alone; only `setting` is taken from the answer.
    fn get_secrets(&self, setting: &str) -> zbus::Result<SettingsIn>;
    fn update2(&self, settings: SettingsOut<'_>, flags: u32, args: HashMap<&str, Variant<'_>>) -> zbus::Result<HashMap<String, OwnedVariant>>;
    fn delete(&self) -> zbus::Result<()>;
}

#[proxy(interface = "org.freedesktop.NetworkManager.Device", default_service = "org.freedesktop.NetworkManager")]
pub trait Device {
    fn get_applied_connection(&self, flags: u32) -> zbus::Result<(SettingsIn, u64)>;
    /// Takes changed ip settings without taking the link down; an empty `connection` means the
    /// profile's current settings.
    fn reapply(&self, connection: SettingsOut<'_>, version_id: u64, flags: u32) -> zbus::Result<()>;
    #[zbus(property)]
    /// A number: [`DeviceState::from_number`] names it.
    fn state(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn device_type(&self) -> zbus::Result<u32>;
    /// The kernel's name of the device.
    #[zbus(property)]
    fn interface(&self) -> zbus::Result<String>;
    /// The profiles NetworkManager could activate on the device now.
    #[zbus(property)]
    fn available_connections(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
    #[zbus(property)]
    fn active_connection(&self) -> zbus::Result<OwnedObjectPath>;
    #[zbus(property)]
    fn ip4_config(&self) -> zbus::Result<OwnedObjectPath>;
}

#[proxy(interface = "org.freedesktop.NetworkManager.Connection.Active", default_service = "org.freedesktop.NetworkManager")]
pub trait Active {
    /// The settings profile this activation came from.
    #[zbus(property)]
    fn connection(&self) -> zbus::Result<OwnedObjectPath>;
}

#[proxy(interface = "org.freedesktop.NetworkManager.IP4Config", default_service = "org.freedesktop.NetworkManager")]
pub trait Ip4Config {
    /// The addresses on the device (`address`, `prefix`), static or from the lease.
    #[zbus(property)]
    fn address_data(&self) -> zbus::Result<Vec<HashMap<String, OwnedVariant>>>;
    /// The routes NetworkManager put on the device, in every table.
    #[zbus(property)]
    fn route_data(&self) -> zbus::Result<Vec<HashMap<String, OwnedVariant>>>;
}

#[cfg(test)]
mod tests {
    use super::DeviceState;

    #[test]
    fn device_states_carry_networkmanagers_numbers() {
        assert_eq!(DeviceState::Disconnected.number(), 30);
        assert_eq!(DeviceState::Activated.number(), 100);
        assert_eq!(DeviceState::from_number(120), DeviceState::Failed);
        assert_eq!(DeviceState::from_number(35), DeviceState::Unknown);
        assert!(DeviceState::from_number(70) > DeviceState::Disconnected);
        assert_eq!(DeviceState::Activated.to_string(), "connected (100)");
    }
}
