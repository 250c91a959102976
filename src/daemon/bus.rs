//! The daemon on the system bus: `org.multihome1` at `/org/multihome1`, interface
//! `org.multihome1.Daemon` (dbus/org.multihome1.Daemon.xml). Anyone may read the properties;
//! the mutating methods are for root only — enforced by the bus policy
//! (dbus/org.multihome1.conf) and checked again here, so a lax policy does not open them.
//!
//! Properties are read from a snapshot the daemon loop keeps current; methods turn into
//! [`Command`]s for that loop, which answers each one.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, fdo, interface, proxy};

use super::fsm::Force;

pub const BUS_NAME: &str = "org.multihome1";
pub const OBJECT_PATH: &str = "/org/multihome1";
pub const INTERFACE: &str = "org.multihome1.Daemon";

/// One uplink on the bus, signature `(susddsbss)`: interface, rank, state, probe loss in percent,
/// latency in milliseconds of the last round (-1: unanswered), reason of the last change, whether it carries new
/// connections now, its address and its gateway ("" when unknown).
pub type UplinkTuple = (String, u32, String, f64, f64, String, bool, String, String);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UplinkStatus {
    pub interface: String,
    pub rank: u32,
    pub state: String,
    pub loss_percent: f64,
    pub latency_ms: Option<f64>,
    pub reason: String,
    pub carrying: bool,
    pub address: String,
    pub gateway: String,
}

impl UplinkStatus {
    pub fn to_tuple(&self) -> UplinkTuple {
        (
            self.interface.clone(),
            self.rank,
            self.state.clone(),
            self.loss_percent,
            self.latency_ms.unwrap_or(-1.0),
            self.reason.clone(),
            self.carrying,
            self.address.clone(),
            self.gateway.clone(),
        )
    }

    pub fn from_tuple(t: UplinkTuple) -> UplinkStatus {
        let (interface, rank, state, loss_percent, latency, reason, carrying, address, gateway) = t;
        UplinkStatus { interface, rank, state, loss_percent, latency_ms: (latency >= 0.0).then_some(latency), reason, carrying, address, gateway }
    }
}

/// What the bus shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    pub uplinks: Vec<UplinkStatus>,
    /// The uplink new connections leave through; "" when none is healthy (main table decides).
    pub active: String,
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
}

impl Service {
    pub fn new(snapshot: Arc<Mutex<Snapshot>>, commands: mpsc::UnboundedSender<Command>) -> Service {
        Service { snapshot, commands }
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

/// Refuses callers other than root, whatever the bus policy says.
async fn require_root(header: &Header<'_>, conn: &Connection) -> fdo::Result<()> {
    let sender = header.sender().ok_or_else(|| fdo::Error::AccessDenied("no sender".into()))?;
    let dbus = fdo::DBusProxy::new(conn).await?;
    let uid = dbus.get_connection_unix_user(sender.clone().into()).await?;
    if uid != 0 {
        return Err(fdo::Error::AccessDenied(format!("only root may change multihome (caller uid {uid})")));
    }
    Ok(())
}

#[interface(name = "org.multihome1.Daemon")]
impl Service {
    /// Every uplink, most preferred first (see [`UplinkTuple`]). Changes are announced by
    /// StateChanged and an invalidation; loss and latency change every round without a signal.
    #[zbus(property(emits_changed_signal = "invalidates"))]
    fn uplinks(&self) -> Vec<UplinkTuple> {
        self.snapshot.lock().expect("snapshot lock").uplinks.iter().map(UplinkStatus::to_tuple).collect()
    }

    /// The uplink new connections leave through, "" when none is healthy.
    #[zbus(property)]
    fn active(&self) -> String {
        self.snapshot.lock().expect("snapshot lock").active.clone()
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
    fn uplinks(&self) -> zbus::Result<Vec<UplinkTuple>>;
    #[zbus(property)]
    fn active(&self) -> zbus::Result<String>;
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
