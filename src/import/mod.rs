//! Policies from what a host was configured with before multihome: `multihome import FORMAT`
//! (each format a module of pure functions: text in, policy text and notes out; the command line
//! does the reading) and `multihome init` (the running network manager, read by `init::read`,
//! converted by pure functions). Both write their policies through `policy_text`.

pub mod ifupdown;
pub mod init;
pub mod policy_text;
