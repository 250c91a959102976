//! The daemon on the system bus: `org.multihome1` at `/org/multihome1`, interface
//! `org.multihome1.Daemon` (dbus/org.multihome1.Daemon.xml). Anyone may read the properties;
//! the mutating methods are for root, and for whom polkit allows `org.multihome1.manage`
//! (polkit/org.multihome1.policy) — checked here, whatever the bus policy lets through.
//!
//! Properties are read from a snapshot the daemon loop keeps current; methods turn into
//! [`Command`]s for that loop, which answers each one. What an uplink's entry holds is the
//! status record's business ([`super::status_record`]): this module only carries it.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, fdo, interface, proxy};

use super::fsm::Force;
use super::status_record::{Entry, Snapshot, UplinkStatus};

pub const BUS_NAME: &str = "org.multihome1";
pub const OBJECT_PATH: &str = "/org/multihome1";
pub const INTERFACE: &str = "org.multihome1.Daemon";

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
    /// Every uplink, most preferred first (see [`UplinkStatus::to_entry`]). Changes are announced by
    /// StateChanged and an invalidation; loss and latency change every round without a signal.
    /// The MPTCP keys are at most a second old (see [`super::mptcp_view`]).
    #[zbus(property(emits_changed_signal = "invalidates"))]
    async fn uplinks(&self) -> Vec<Entry> {
        let reading = self.mptcp.current().await;
        let mut uplinks = self.snapshot.lock().expect("snapshot lock").uplinks.clone();
        super::mptcp_view::annotate(&reading, &mut uplinks);
        uplinks.iter().map(UplinkStatus::to_entry).collect()
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
    fn uplinks(&self) -> zbus::Result<Vec<Entry>>;
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
    use super::super::fsm::State;
    use super::super::status_record::{FamilyStatus, Shown, UplinkMptcp};
    use super::*;
    use zbus::Type;
    use zbus::object_server::Interface;

    /// `status` through the wire and back, and the keys the bus carries.
    fn cross(status: &UplinkStatus) -> std::collections::HashMap<String, zbus::OwnedVariant> {
        let ctxt = zbus::wire::serialized::Context::new(zbus::wire::LE, 0);
        let wire = zbus::wire::to_bytes(ctxt, &status.to_entry()).unwrap();
        let (back, _): (Entry, _) = wire.deserialize().unwrap();
        assert_eq!(&UplinkStatus::from_entry(&back), status);
        back
    }

    fn family(state: Shown, latency_ms: Option<f64>, carrying: bool, address: &str, gateway: &str) -> FamilyStatus {
        FamilyStatus {
            state,
            loss_percent: 0.0,
            latency_ms,
            reason: String::new(),
            carrying,
            address: address.into(),
            gateway: gateway.into(),
            ..Default::default()
        }
    }

    /// An uplink crosses the bus as a dictionary and comes back as it was; an unknown latency is
    /// an absent key.
    #[test]
    fn an_uplink_crosses_the_bus_unchanged() {
        for latency_ms in [Some(12.5), None] {
            let status = UplinkStatus {
                interface: "eth0".into(),
                rank: 1,
                v4: FamilyStatus {
                    loss_percent: 4.0,
                    reason: "probes answered".into(),
                    ..family(State::Up.into(), latency_ms, true, "192.168.178.99", "192.168.178.1")
                },
                mptcp: match latency_ms {
                    Some(_) => UplinkMptcp {
                        mptcp_id: Some(240),
                        mptcp_address: Some("192.168.178.99".into()),
                        mptcp_flags: Some(vec!["subflow".into(), "backup".into()]),
                        mptcp_connections: Some(2),
                    },
                    None => Default::default(),
                },
                ..Default::default()
            };
            let keys = cross(&status);
            assert_eq!(keys.contains_key("latency_ms"), latency_ms.is_some(), "{keys:?}");
            for key in ["mptcp_id", "mptcp_address", "mptcp_flags", "mptcp_connections"] {
                assert_eq!(keys.contains_key(key), latency_ms.is_some(), "{key}: {keys:?}");
            }
            assert_eq!(keys.len(), if latency_ms.is_some() { 13 } else { 8 }, "an uplink without IPv6 has no IPv6 keys: {keys:?}");
        }
        assert_eq!(Entry::SIGNATURE.to_string(), "a{sv}");
    }

    /// A bond's slave carries more keys, `bond_active`, `mii` and `bond_prio`; an uplink in
    /// Mode=routes has none of them (see above).
    #[test]
    fn a_bonds_slave_carries_its_role_and_mii_state() {
        let status = UplinkStatus {
            interface: "eth4".into(),
            rank: 1,
            v4: FamilyStatus { reason: "the active slave of bond0".into(), ..family(State::Up.into(), None, true, "", "192.168.178.1") },
            bond_active: Some(true),
            mii: Some("up".into()),
            bond_prio: Some(2),
            ..Default::default()
        };
        let keys = cross(&status);
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
        let status = UplinkStatus {
            interface: "eth0".into(),
            rank: 0,
            v4: family(State::Up.into(), Some(0.3), true, "192.168.178.99/24", "192.168.178.1"),
            ipv6: Some(FamilyStatus {
                loss_percent: 100.0,
                reason: "3 probe rounds in a row failed".into(),
                ..family(State::Down.into(), None, false, "2001:db8:178::99/64", "fe80::1")
            }),
            ..Default::default()
        };
        let keys = cross(&status);
        for key in ["state", "carrying", "state6", "loss_percent6", "reason6", "carrying6", "address6", "gateway6"] {
            assert!(keys.contains_key(key), "{key} missing: {keys:?}");
        }
        assert!(!keys.contains_key("latency_ms6"), "no answer: no latency");
        assert_eq!(String::try_from(keys["state6"].clone()).unwrap(), "down");
        assert_eq!(f64::try_from(keys["loss_percent6"].clone()).unwrap(), 100.0);
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
