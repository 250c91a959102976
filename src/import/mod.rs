//! Policies from what a host was configured with before multihome: `multihome import FORMAT`.
//! Each format is a module of pure functions (text in; policy text and notes out); the command
//! line does the reading.

pub mod ifupdown;
