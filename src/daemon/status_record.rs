//! The daemon's status of an uplink, declared once: [`UplinkStatus`] (with one [`FamilyStatus`]
//! per family and its [`UplinkMptcp`]) and the whole [`Snapshot`]. Both ways out are derived
//! from it: `status --json` is its serde form (the IPv6 side nested under `ipv6`), and the D-Bus
//! `a{sv}` of an uplink is [`UplinkStatus::to_entry`] (the IPv6 side flat, as the same keys with
//! a `6`), read back by [`UplinkStatus::from_entry`]. The bus module only carries entries.
//!
//! A state is a [`Shown`], one name each, whether the state machine, path quality or the
//! kernel's bond gave it.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use zbus::{OwnedVariant, Variant};

use super::counters::Counters;
use super::fsm;
use crate::netlink::bond::Mii;

/// A state as the log, `status` and the bus show it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Shown {
    /// The state machine's verdict on a family of an uplink.
    Machine(fsm::State),
    /// Trusted by the state machine, but its path quality is below the limits.
    Poor,
    /// Mode=bond: the probes' verdict on the path through the active slave, or on a slave whose
    /// path failed (`path-down`).
    Path(fsm::State),
    /// Mode=bond: a slave's MII state in the kernel's bond (`up`, `down` read as the machine's
    /// words of the same meaning).
    GoingDown,
    GoingBack,
    /// Mode=bond: the bond does not exist.
    NoBond,
    /// Mode=bond: the slave is not in the bond.
    NotEnslaved,
    /// A word this build does not know (a newer daemon's, an MII state of a newer kernel).
    Other(String),
    /// Before anything was read.
    #[default]
    Unread,
}

impl Shown {
    /// The state of one family: the machine's, or [`Shown::Poor`] while it trusts a path whose
    /// quality is below the limits.
    pub fn of(state: fsm::State, poor: bool) -> Shown {
        if poor && state.carries_traffic() { Shown::Poor } else { Shown::Machine(state) }
    }

    /// Reads a state word from the bus.
    pub fn parse(word: &str) -> Shown {
        if let Some(s) = fsm::State::parse(word) {
            return Shown::Machine(s);
        }
        if let Some(s) = word.strip_prefix("path-").and_then(fsm::State::parse) {
            return Shown::Path(s);
        }
        match word {
            "poor" => Shown::Poor,
            "going-down" => Shown::GoingDown,
            "going-back" => Shown::GoingBack,
            "no-bond" => Shown::NoBond,
            "not-enslaved" => Shown::NotEnslaved,
            "" => Shown::Unread,
            other => Shown::Other(other.to_string()),
        }
    }
}

impl From<fsm::State> for Shown {
    fn from(s: fsm::State) -> Shown {
        Shown::Machine(s)
    }
}

impl From<Mii> for Shown {
    fn from(m: Mii) -> Shown {
        match m {
            Mii::Up => Shown::Machine(fsm::State::Up),
            Mii::Down => Shown::Machine(fsm::State::Down),
            Mii::GoingDown => Shown::GoingDown,
            Mii::GoingBack => Shown::GoingBack,
            other => Shown::Other(other.word()),
        }
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that a table's `{:<12}` lines the states up.
        match self {
            Shown::Machine(s) => f.pad(s.as_str()),
            Shown::Poor => f.pad("poor"),
            Shown::Path(s) => f.pad(&format!("path-{s}")),
            Shown::GoingDown => f.pad("going-down"),
            Shown::GoingBack => f.pad("going-back"),
            Shown::NoBond => f.pad("no-bond"),
            Shown::NotEnslaved => f.pad("not-enslaved"),
            Shown::Other(w) => f.pad(w),
            Shown::Unread => f.pad(""),
        }
    }
}

impl Serialize for Shown {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One family of an uplink (its IPv4 side, or its IPv6 side judged on its own).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FamilyStatus {
    pub state: Shown,
    pub loss_percent: f64,
    /// Fastest answer of the last round; `None` when it had none.
    pub latency_ms: Option<f64>,
    pub reason: String,
    pub carrying: bool,
    pub address: String,
    pub gateway: String,
    /// What the metrics count (probes, transitions, round trips); neither JSON nor the bus
    /// carries it.
    #[serde(skip)]
    pub counters: Counters,
}

/// An uplink's MPTCP endpoint and the open MPTCP connections with a subflow through it, read
/// from the kernel when asked (see [`super::mptcp_view`]); `None` where there is none.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UplinkMptcp {
    /// Its endpoint's id, address and flags ("subflow", "backup", ...); `None` without one.
    pub mptcp_id: Option<u32>,
    pub mptcp_address: Option<String>,
    pub mptcp_flags: Option<Vec<String>>,
    /// Open MPTCP connections with a subflow through it; `None` where the kernel has no MPTCP.
    pub mptcp_connections: Option<u32>,
}

/// One uplink as `status` shows it and `status --json` writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UplinkStatus {
    pub interface: String,
    pub rank: u32,
    /// Its IPv4 side (in Mode=bond: the slave), at the top level as before IPv6.
    #[serde(flatten)]
    pub v4: FamilyStatus,
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
    pub ipv6: Option<FamilyStatus>,
    #[serde(flatten)]
    pub mptcp: UplinkMptcp,
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
    /// `[Probe] MaxLoss=` while the policy probes, for the metrics' alerting rules.
    #[serde(skip)]
    pub max_loss_percent: Option<u8>,
}

/// One uplink on the bus: a dictionary (`a{sv}`, keys as the record's field names), so a field
/// added later is a new key that older clients skip, and an unknown latency is a missing key
/// rather than a magic number. dbus/org.multihome1.Daemon.xml documents the keys.
pub type Entry = HashMap<String, OwnedVariant>;

fn put(e: &mut Entry, key: &str, value: impl Into<Variant<'static>>) {
    e.insert(key.to_string(), OwnedVariant::try_from(value.into()).expect("a plain value holds no file descriptor"));
}

fn put_some(e: &mut Entry, key: &str, value: Option<impl Into<Variant<'static>>>) {
    if let Some(v) = value {
        put(e, key, v);
    }
}

/// The value under `key`, if present and of the type (a key of another type is one this build
/// does not know: skipped, as an unknown key is).
fn get<T: TryFrom<OwnedVariant>>(e: &Entry, key: &str) -> Option<T> {
    e.get(key).and_then(|v| v.try_clone().ok()).and_then(|v| T::try_from(v).ok())
}

impl FamilyStatus {
    /// Its keys, each name followed by `suffix` ("" for IPv4, "6" for IPv6); the latency only
    /// when a round had an answer.
    fn put(&self, e: &mut Entry, suffix: &str) {
        let FamilyStatus { state, loss_percent, latency_ms, reason, carrying, address, gateway, counters: _ } = self;
        put(e, &format!("state{suffix}"), state.to_string());
        put(e, &format!("loss_percent{suffix}"), *loss_percent);
        put_some(e, &format!("latency_ms{suffix}"), *latency_ms);
        put(e, &format!("reason{suffix}"), reason.clone());
        put(e, &format!("carrying{suffix}"), *carrying);
        put(e, &format!("address{suffix}"), address.clone());
        put(e, &format!("gateway{suffix}"), gateway.clone());
    }

    /// The family whose keys end in `suffix`; `None` without its state key.
    fn take(e: &Entry, suffix: &str) -> Option<FamilyStatus> {
        let key = |name: &str| format!("{name}{suffix}");
        Some(FamilyStatus {
            state: Shown::parse(&get::<String>(e, &key("state"))?),
            loss_percent: get(e, &key("loss_percent")).unwrap_or(0.0),
            latency_ms: get(e, &key("latency_ms")),
            reason: get(e, &key("reason")).unwrap_or_default(),
            carrying: get(e, &key("carrying")).unwrap_or(false),
            address: get(e, &key("address")).unwrap_or_default(),
            gateway: get(e, &key("gateway")).unwrap_or_default(),
            counters: Counters::default(),
        })
    }
}

impl UplinkStatus {
    /// The uplink's `a{sv}` on the bus: absent keys for what it does not have (no IPv6, no
    /// bond, no MPTCP endpoint, no answer).
    pub fn to_entry(&self) -> Entry {
        let UplinkStatus { interface, rank, v4, bond_active, mii, bond_prio, ipv6, mptcp } = self;
        let UplinkMptcp { mptcp_id, mptcp_address, mptcp_flags, mptcp_connections } = mptcp;
        let mut e = Entry::new();
        put(&mut e, "interface", interface.clone());
        put(&mut e, "rank", *rank);
        v4.put(&mut e, "");
        put_some(&mut e, "bond_active", *bond_active);
        put_some(&mut e, "mii", mii.clone());
        put_some(&mut e, "bond_prio", *bond_prio);
        if let Some(v6) = ipv6 {
            v6.put(&mut e, "6");
        }
        put_some(&mut e, "mptcp_id", *mptcp_id);
        put_some(&mut e, "mptcp_address", mptcp_address.clone());
        put_some(&mut e, "mptcp_flags", mptcp_flags.clone());
        put_some(&mut e, "mptcp_connections", *mptcp_connections);
        e
    }

    /// An uplink read from the bus (see [`UplinkStatus::to_entry`]).
    pub fn from_entry(e: &Entry) -> UplinkStatus {
        UplinkStatus {
            interface: get(e, "interface").unwrap_or_default(),
            rank: get(e, "rank").unwrap_or(0),
            v4: FamilyStatus::take(e, "").unwrap_or_default(),
            bond_active: get(e, "bond_active"),
            mii: get(e, "mii"),
            bond_prio: get(e, "bond_prio"),
            ipv6: FamilyStatus::take(e, "6"),
            mptcp: UplinkMptcp {
                mptcp_id: get(e, "mptcp_id"),
                mptcp_address: get(e, "mptcp_address"),
                mptcp_flags: get(e, "mptcp_flags"),
                mptcp_connections: get(e, "mptcp_connections"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_word_reads_back_as_itself() {
        let mut all: Vec<Shown> = fsm::State::ALL.iter().map(|&s| Shown::Machine(s)).collect();
        all.extend(fsm::State::ALL.iter().map(|&s| Shown::Path(s)));
        all.extend([Shown::Poor, Shown::GoingDown, Shown::GoingBack, Shown::NoBond, Shown::NotEnslaved, Shown::Other("mii-7".into())]);
        for s in all {
            assert_eq!(Shown::parse(&s.to_string()), s, "{s}");
            assert_eq!(serde_json::to_value(&s).unwrap(), serde_json::Value::String(s.to_string()));
        }
        assert_eq!(Shown::Path(fsm::State::Down).to_string(), "path-down");
        assert_eq!(Shown::from(Mii::Up).to_string(), "up");
        assert_eq!(format!("{:<6}|", Shown::Poor), "poor  |", "a table pads a state");
    }

    /// `status --json` keeps its shape: the IPv4 side at the top level, the IPv6 side nested,
    /// the MPTCP keys at the top level, absent what an uplink does not have.
    #[test]
    fn the_json_has_the_shape_clients_parse() {
        let u = UplinkStatus {
            interface: "eth0".into(),
            rank: 0,
            v4: FamilyStatus { state: Shown::Poor, loss_percent: 4.0, latency_ms: None, carrying: true, ..Default::default() },
            ipv6: Some(FamilyStatus { state: fsm::State::Down.into(), latency_ms: Some(1.5), ..Default::default() }),
            mptcp: UplinkMptcp { mptcp_id: Some(240), ..Default::default() },
            ..Default::default()
        };
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(
            json,
            r#"{"interface":"eth0","rank":0,"state":"poor","loss_percent":4.0,"latency_ms":null,"reason":"","carrying":true,"address":"","gateway":"","ipv6":{"state":"down","loss_percent":0.0,"latency_ms":1.5,"reason":"","carrying":false,"address":"","gateway":""},"mptcp_id":240,"mptcp_address":null,"mptcp_flags":null,"mptcp_connections":null}"#
        );
    }
}
