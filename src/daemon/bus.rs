//! The daemon on the system bus: `org.multihome1` at `/org/multihome1`, interface
//! `org.multihome1.Daemon` (dbus/org.multihome1.Daemon.xml). Anyone may read the properties;
//! the mutating methods are for root, and for whom polkit allows `org.multihome1.manage`
//! (polkit/org.multihome1.policy) — checked here, whatever the bus policy lets through.
//!
//! Properties are read from a snapshot the daemon loop keeps current; methods turn into
//! [`Command`]s for that loop, which answers each one.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, DeserializeDict, SerializeDict, Type, fdo, interface, proxy};

use super::fsm::Force;

pub const BUS_NAME: &str = "org.multihome1";
pub const OBJECT_PATH: &str = "/org/multihome1";
pub const INTERFACE: &str = "org.multihome1.Daemon";

/// One uplink as `status` shows it and `status --json` writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UplinkStatus {
    pub interface: String,
    pub rank: u32,
    pub state: String,
    pub loss_percent: f64,
    /// Fastest answer of the last round; `None` when it had none.
    pub latency_ms: Option<f64>,
    pub reason: String,
    pub carrying: bool,
    pub address: String,
    pub gateway: String,
    /// Mode=bond: whether the bond's active slave is this one; absent in Mode=routes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bond_active: Option<bool>,
    /// Mode=bond: the bond's MII state of this slave (up, going-down, down, going-back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mii: Option<String>,
    /// Mode=bond: the slave's priority in the kernel (IFLA_BOND_SLAVE_PRIO, higher is taken
    /// first when the active slave fails; the daemon sets it from the policy's order); absent
    /// on a kernel before 6.0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bond_prio: Option<i32>,
    /// Its IPv6 side, judged on its own; absent when the policy gives it no IPv6.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Status6>,
    /// Its MPTCP endpoint and the open MPTCP connections with a subflow through it, read from
    /// the kernel when asked (see [`super::mptcp_view`]); `None` where there is none.
    #[serde(flatten)]
    pub mptcp: super::mptcp::UplinkMptcp,
}

/// An uplink's IPv6 side, with the meanings of [`UplinkStatus`]'s fields of the same names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status6 {
    pub state: String,
    pub loss_percent: f64,
    pub latency_ms: Option<f64>,
    pub reason: String,
    pub carrying: bool,
    pub address: String,
    pub gateway: String,
}

/// One uplink on the bus: a dictionary (`a{sv}`, keys as the field names), so a field added later
/// is a new key that older clients skip, and an unknown latency is a missing key rather than a
/// magic number. dbus/org.multihome1.Daemon.xml documents the keys.
#[derive(Debug, Clone, PartialEq, Default, SerializeDict, DeserializeDict, Type)]
#[zbus(signature = "a{sv}")]
pub struct UplinkEntry {
    pub interface: String,
    pub rank: u32,
    pub state: String,
    pub loss_percent: f64,
    pub latency_ms: Option<f64>,
    pub reason: String,
    pub carrying: bool,
    pub address: String,
    pub gateway: String,
    pub bond_active: Option<bool>,
    pub mii: Option<String>,
    pub bond_prio: Option<i32>,
    /// The IPv6 side's keys (added with IPv6): all absent for an uplink without IPv6, and
    /// `latency_ms6` also when the last IPv6 round had no answer.
    pub state6: Option<String>,
    pub loss_percent6: Option<f64>,
    pub latency_ms6: Option<f64>,
    pub reason6: Option<String>,
    pub carrying6: Option<bool>,
    pub address6: Option<String>,
    pub gateway6: Option<String>,
    pub mptcp_id: Option<u32>,
    pub mptcp_address: Option<String>,
    pub mptcp_flags: Option<Vec<String>>,
    pub mptcp_connections: Option<u32>,
}

impl From<&UplinkStatus> for UplinkEntry {
    fn from(u: &UplinkStatus) -> UplinkEntry {
        let UplinkStatus { interface, rank, state, loss_percent, latency_ms, reason, carrying, address, gateway, bond_active, mii, bond_prio, ipv6, mptcp } =
            u.clone();
        let super::mptcp::UplinkMptcp { mptcp_id, mptcp_address, mptcp_flags, mptcp_connections } = mptcp;
        let mut e = UplinkEntry {
            interface,
            rank,
            state,
            loss_percent,
            latency_ms,
            reason,
            carrying,
            address,
            gateway,
            bond_active,
            mii,
            bond_prio,
            mptcp_id,
            mptcp_address,
            mptcp_flags,
            mptcp_connections,
            ..UplinkEntry::default()
        };
        if let Some(v6) = ipv6 {
            e.state6 = Some(v6.state);
            e.loss_percent6 = Some(v6.loss_percent);
            e.latency_ms6 = v6.latency_ms;
            e.reason6 = Some(v6.reason);
            e.carrying6 = Some(v6.carrying);
            e.address6 = Some(v6.address);
            e.gateway6 = Some(v6.gateway);
        }
        e
    }
}

impl From<UplinkEntry> for UplinkStatus {
    fn from(u: UplinkEntry) -> UplinkStatus {
        let UplinkEntry {
            interface,
            rank,
            state,
            loss_percent,
            latency_ms,
            reason,
            carrying,
            address,
            gateway,
            bond_active,
            mii,
            bond_prio,
            state6,
            mptcp_id,
            mptcp_address,
            mptcp_flags,
            mptcp_connections,
            ..
        } = u.clone();
        let mptcp = super::mptcp::UplinkMptcp { mptcp_id, mptcp_address, mptcp_flags, mptcp_connections };
        let ipv6 = state6.map(|state| Status6 {
            state,
            loss_percent: u.loss_percent6.unwrap_or(0.0),
            latency_ms: u.latency_ms6,
            reason: u.reason6.unwrap_or_default(),
            carrying: u.carrying6.unwrap_or(false),
            address: u.address6.unwrap_or_default(),
            gateway: u.gateway6.unwrap_or_default(),
        });
        UplinkStatus { interface, rank, state, loss_percent, latency_ms, reason, carrying, address, gateway, bond_active, mii, bond_prio, ipv6, mptcp }
    }
}

/// What the bus shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    pub uplinks: Vec<UplinkStatus>,
    /// The uplink new connections leave through; "" when none is healthy (main table decides).
    pub active: String,
    /// The uplink new IPv6 connections leave through; "" when none is healthy or none has IPv6.
    pub active6: String,
    pub policy: String,
}

/// A request from the bus for the daemon loop.
#[derive(Debug)]
pub enum Command {
    Reload(oneshot::Sender<Result<(), String>>),
    Force { interface: String, order: Force, reply: oneshot::Sender<Result<(), String>> },
}

pub struct Service {
    snapshot: Arc<Mutex<Snapshot>>,
    commands: mpsc::UnboundedSender<Command>,
    /// The uplinks' MPTCP endpoints and connection counts, read off the probes' thread.
    mptcp: super::mptcp_view::View,
}

impl Service {
    pub fn new(snapshot: Arc<Mutex<Snapshot>>, commands: mpsc::UnboundedSender<Command>) -> Service {
        Service { snapshot, commands, mptcp: Default::default() }
    }

    async fn ask(&self, make: impl FnOnce(oneshot::Sender<Result<(), String>>) -> Command) -> fdo::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).map_err(|_| fdo::Error::Failed("the daemon is stopping".into()))?;
        rx.await.map_err(|_| fdo::Error::Failed("the daemon is stopping".into()))?.map_err(fdo::Error::Failed)
    }

    async fn force(&self, header: &Header<'_>, conn: &Connection, interface: &str, order: Force) -> fdo::Result<()> {
        require_root(header, conn).await?;
        let interface = interface.to_string();
        self.ask(|reply| Command::Force { interface, order, reply }).await
    }
}

/// Allows root, and another caller when polkit allows it the action `org.multihome1.manage`;
/// whatever the bus policy says, nobody else.
async fn require_root(header: &Header<'_>, conn: &Connection) -> fdo::Result<()> {
    let sender = header.sender().ok_or_else(|| fdo::Error::AccessDenied("no sender".into()))?;
    let dbus = fdo::DBusProxy::new(conn).await?;
    let uid = dbus.get_connection_unix_user(sender.clone().into()).await?;
    if uid == 0 {
        return Ok(());
    }
    super::polkit::check(conn, sender).await.map_err(|why| fdo::Error::AccessDenied(format!("only root may change multihome (caller uid {uid}; {why})")))
}

#[interface(name = "org.multihome1.Daemon")]
impl Service {
    /// Every uplink, most preferred first (see [`UplinkEntry`]). Changes are announced by
    /// StateChanged and an invalidation; loss and latency change every round without a signal.
    /// The MPTCP keys are at most a second old (see [`super::mptcp_view`]).
    #[zbus(property(emits_changed_signal = "invalidates"))]
    async fn uplinks(&self) -> Vec<UplinkEntry> {
        let reading = self.mptcp.current().await;
        let mut uplinks = self.snapshot.lock().expect("snapshot lock").uplinks.clone();
        super::mptcp_view::annotate(&reading, &mut uplinks);
        uplinks.iter().map(UplinkEntry::from).collect()
    }

    /// The uplink new connections leave through, "" when none is healthy.
    #[zbus(property)]
    fn active(&self) -> String {
        self.snapshot.lock().expect("snapshot lock").active.clone()
    }

    /// The uplink new IPv6 connections leave through, "" when none is healthy.
    #[zbus(property)]
    fn active6(&self) -> String {
        self.snapshot.lock().expect("snapshot lock").active6.clone()
    }

    /// The policy file the daemon follows.
    #[zbus(property)]
    fn policy(&self) -> String {
        self.snapshot.lock().expect("snapshot lock").policy.clone()
    }

    /// Rereads the policy file.
    async fn reload(&self, #[zbus(header)] header: Header<'_>, #[zbus(connection)] conn: &Connection) -> fdo::Result<()> {
        require_root(&header, conn).await?;
        self.ask(Command::Reload).await
    }

    /// Maintenance: demote the uplink whatever the probes say, until Release.
    async fn force_down(&self, interface: &str, #[zbus(header)] header: Header<'_>, #[zbus(connection)] conn: &Connection) -> fdo::Result<()> {
        self.force(&header, conn, interface, Force::Down).await
    }

    /// Maintenance: trust the uplink whatever the probes say, until Release.
    async fn force_up(&self, interface: &str, #[zbus(header)] header: Header<'_>, #[zbus(connection)] conn: &Connection) -> fdo::Result<()> {
        self.force(&header, conn, interface, Force::Up).await
    }

    /// Ends ForceDown/ForceUp: the probes decide again.
    async fn release(&self, interface: &str, #[zbus(header)] header: Header<'_>, #[zbus(connection)] conn: &Connection) -> fdo::Result<()> {
        self.force(&header, conn, interface, Force::Release).await
    }

    /// An uplink changed state.
    #[zbus(signal)]
    pub async fn state_changed(emitter: &SignalEmitter<'_>, interface: &str, from: &str, to: &str, reason: &str) -> zbus::Result<()>;
}

/// The client side, for `multihome status` and the maintenance commands.
#[proxy(interface = "org.multihome1.Daemon", default_service = "org.multihome1", default_path = "/org/multihome1")]
pub trait Daemon {
    #[zbus(property)]
    fn uplinks(&self) -> zbus::Result<Vec<UplinkEntry>>;
    #[zbus(property)]
    fn active(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn active6(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn policy(&self) -> zbus::Result<String>;
    fn reload(&self) -> zbus::Result<()>;
    fn force_down(&self, interface: &str) -> zbus::Result<()>;
    fn force_up(&self, interface: &str) -> zbus::Result<()>;
    fn release(&self, interface: &str) -> zbus::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::object_server::Interface;

    /// An uplink crosses the bus as a dictionary and comes back as it was; an unknown latency is
    /// an absent key.
    #[test]
    fn an_uplink_crosses_the_bus_unchanged() {
        let ctxt = zbus::wire::serialized::Context::new(zbus::wire::LE, 0);
        for latency_ms in [Some(12.5), None] {
            let status = UplinkStatus {
                interface: "eth0".into(),
                rank: 1,
                state: "up".into(),
                loss_percent: 4.0,
                latency_ms,
                reason: "probes answered".into(),
                carrying: true,
                address: "192.168.178.99".into(),
                gateway: "192.168.178.1".into(),
                bond_active: None,
                bond_prio: None,
                mii: None,
                ipv6: None,
                mptcp: match latency_ms {
                    Some(_) => super::super::mptcp::UplinkMptcp {
                        mptcp_id: Some(240),
                        mptcp_address: Some("192.168.178.99".into()),
                        mptcp_flags: Some(vec!["subflow".into(), "backup".into()]),
                        mptcp_connections: Some(2),
                    },
                    None => Default::default(),
                },
            };
            let wire = zbus::wire::to_bytes(ctxt, &UplinkEntry::from(&status)).unwrap();
            let (back, _): (UplinkEntry, _) = wire.deserialize().unwrap();
            assert_eq!(UplinkStatus::from(back), status);
            let (keys, _): (std::collections::HashMap<String, zbus::OwnedVariant>, _) = wire.deserialize().unwrap();
            assert_eq!(keys.contains_key("latency_ms"), latency_ms.is_some(), "{keys:?}");
            for key in ["mptcp_id", "mptcp_address", "mptcp_flags", "mptcp_connections"] {
                assert_eq!(keys.contains_key(key), latency_ms.is_some(), "{key}: {keys:?}");
            }
            assert_eq!(keys.len(), if latency_ms.is_some() { 13 } else { 8 }, "an uplink without IPv6 has no IPv6 keys: {keys:?}");
        }
        assert_eq!(UplinkEntry::SIGNATURE.to_string(), "a{sv}");
    }

    /// A bond's slave carries more keys, `bond_active`, `mii` and `bond_prio`; an uplink in
    /// Mode=routes has none of them (see above).
    #[test]
    fn a_bonds_slave_carries_its_role_and_mii_state() {
        let ctxt = zbus::wire::serialized::Context::new(zbus::wire::LE, 0);
        let status = UplinkStatus {
            interface: "eth4".into(),
            rank: 1,
            state: "up".into(),
            loss_percent: 0.0,
            latency_ms: None,
            reason: "the active slave of bond0".into(),
            carrying: true,
            address: String::new(),
            gateway: "192.168.178.1".into(),
            bond_active: Some(true),
            mii: Some("up".into()),
            bond_prio: Some(2),
            ipv6: None,
            ..Default::default()
        };
        let wire = zbus::wire::to_bytes(ctxt, &UplinkEntry::from(&status)).unwrap();
        let (back, _): (UplinkEntry, _) = wire.deserialize().unwrap();
        assert_eq!(UplinkStatus::from(back), status);
        let (keys, _): (std::collections::HashMap<String, zbus::OwnedVariant>, _) = wire.deserialize().unwrap();
        assert!(bool::try_from(keys["bond_active"].clone()).unwrap());
        assert_eq!(String::try_from(keys["mii"].clone()).unwrap(), "up");
        assert_eq!(i32::try_from(keys["bond_prio"].clone()).unwrap(), 2);
        let shipped = include_str!("../../dbus/org.multihome1.Daemon.xml");
        for key in keys.keys() {
            assert!(shipped.contains(&format!("{key} (")), "dbus/org.multihome1.Daemon.xml does not document the key {key}");
        }
    }

    /// Both families cross the bus: the IPv4 keys as before, the IPv6 side's beside them.
    #[test]
    fn a_dual_stack_uplink_crosses_the_bus_with_both_families() {
        let ctxt = zbus::wire::serialized::Context::new(zbus::wire::LE, 0);
        let status = UplinkStatus {
            interface: "eth0".into(),
            rank: 0,
            state: "up".into(),
            loss_percent: 0.0,
            latency_ms: Some(0.3),
            reason: String::new(),
            carrying: true,
            address: "192.168.178.99/24".into(),
            gateway: "192.168.178.1".into(),
            bond_active: None,
            bond_prio: None,
            mii: None,
            ipv6: Some(Status6 {
                state: "down".into(),
                loss_percent: 100.0,
                latency_ms: None,
                reason: "3 probe rounds in a row failed".into(),
                carrying: false,
                address: "2001:db8:178::99/64".into(),
                gateway: "fe80::1".into(),
            }),
            ..Default::default()
        };
        let wire = zbus::wire::to_bytes(ctxt, &UplinkEntry::from(&status)).unwrap();
        let (back, _): (UplinkEntry, _) = wire.deserialize().unwrap();
        assert_eq!(UplinkStatus::from(back), status);
        let (keys, _): (std::collections::HashMap<String, zbus::OwnedVariant>, _) = wire.deserialize().unwrap();
        for key in ["state", "carrying", "state6", "loss_percent6", "reason6", "carrying6", "address6", "gateway6"] {
            assert!(keys.contains_key(key), "{key} missing: {keys:?}");
        }
        assert!(!keys.contains_key("latency_ms6"), "no answer: no latency");
    }

    /// Every `<property>`, `<method>`, `<signal>` and `<arg>` line of the shipped XML, reduced to
    /// its element name and attributes, in order.
    fn members(xml: &str) -> Vec<String> {
        xml.lines()
            .map(str::trim)
            .filter(|l| ["<property ", "<method ", "<signal ", "<arg "].iter().any(|p| l.starts_with(p)))
            .map(|l| l.trim_end_matches("/>").trim_end_matches('>').trim().to_string())
            .collect()
    }

    #[test]
    fn the_xml_matches_the_service() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let service = Service::new(Arc::new(Mutex::new(Snapshot::default())), tx);
        let mut generated = String::new();
        service.introspect_to_writer(&mut generated, 0);
        let shipped = include_str!("../../dbus/org.multihome1.Daemon.xml");
        assert!(generated.contains(&format!("<interface name=\"{INTERFACE}\">")), "{generated}");
        assert_eq!(members(shipped), members(&generated), "dbus/org.multihome1.Daemon.xml and src/daemon/bus.rs disagree");
    }
}
