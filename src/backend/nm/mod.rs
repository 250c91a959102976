//! The NetworkManager backend: the plan realised as NetworkManager profiles over D-Bus (so
//! `nmcli` shows it and it survives reboots), or rendered as keyfiles for a machine where
//! NetworkManager does not run yet.
//!
//! `settings` and `keyfile` are pure; `apply` does the D-Bus work inside a checkpoint, after
//! `survey` has read what is there and before `verify` checks the devices.

pub mod apply;
pub mod bond;
mod bond_apply;
mod checkpoint;
pub mod connection;
pub mod keyfile;
mod keyfile_names;
mod leftovers;
pub mod proxies;
mod routes_apply;
pub mod secrets;
pub mod settings;
pub mod survey;
mod verify;

pub use apply::{Applied, NM_BUS_NAME, apply, plan_diff};
