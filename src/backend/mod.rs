//! Backends realise a [`crate::plan::Plan`] with the system's own network manager.

pub mod files;
pub mod networkd;
pub mod nm;
pub mod sysctl;
