//! multihome keeps a host with several uplinks online: one policy file becomes a routing table
//! per uplink, `from`/`to` rules and metric-ordered default routes, realised by
//! systemd-networkd or NetworkManager, kept right at run time by dispatcher hooks and a daemon.

pub mod backend;
pub mod bonding;
pub mod bus;
pub mod daemon;
pub mod dispatch;
pub mod docs;
pub mod import;
pub mod json;
pub mod lab;
pub mod log;
pub mod netlink;
pub mod numbers;
pub mod plan;
pub mod plot;
pub mod policy;
