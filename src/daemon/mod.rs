//! The failover daemon.

pub mod fsm;
