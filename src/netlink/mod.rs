//! The thin typed edge over rtnetlink: read and change rules, routes, links and addresses,
//! and watch them change.
//!
//! Callers (the dispatcher hook, the failover daemon) speak `plan::Rule`/`plan::Route` and the
//! small types of this module; netlink-packet-route types never leave `src/netlink/`. Everything
//! multihome adds is tagged with [`crate::plan::PROTOCOL`], so it can find and remove exactly its
//! own. The socket lives in the network namespace of the thread that calls [`Netlink::connect`].

mod advertised6;
pub mod bond;
mod error;
mod links;
mod monitor;
pub mod mptcp;
mod route_family;
mod routes;
mod rules;
#[cfg(test)]
pub(crate) mod testns;
#[cfg(test)]
mod tests;

use tokio::task::JoinHandle;

pub use advertised6::{DefaultRoute6, PROTOCOL_RA};
pub use error::Error;
pub use links::{LinkState, OperState};
pub use monitor::{Event, Monitor};
pub use route_family::RouteFamily;
pub use routes::{KernelRoute, KernelRoute6, RouteKind};
pub use rules::{KernelRule, RuleAction};

/// A netlink route socket and the task that drives it.
pub struct Netlink {
    handle: rtnetlink::Handle,
    connection: JoinHandle<()>,
}

impl Netlink {
    /// Opens a route socket in the calling thread's network namespace. Must run inside a tokio
    /// runtime, which drives the socket until the handle is dropped.
    pub fn connect() -> Result<Netlink, Error> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(Error::Socket)?;
        let connection = tokio::spawn(connection);
        Ok(Netlink { handle, connection })
    }
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.connection.abort();
    }
}
