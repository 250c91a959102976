//! `multihome status --json`, typed: the shape src/daemon/status_record.rs declares (`Snapshot`,
//! `UplinkStatus`, its `FamilyStatus` per family, the MPTCP keys), written here on its own so that
//! the test reads the JSON as a user's program would. Unknown keys are refused, so a key the daemon
//! adds or renames fails here (tests/layout.rs checks this against the daemon's own types)
//! rather than passing unread.

use std::fmt;

use multihome::lab::Lab;
use serde::{Deserialize, Serialize};

/// An uplink's (or its IPv6 side's) state, as `status` names it: the state machine's
/// (src/daemon/fsm.rs), `poor` for an uplink that carries traffic on a path of poor quality, and
/// in Mode=bond the slave's words (`no-bond`, `not-enslaved`, its MII state, `path-...`), kept
/// as `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum State {
    Unknown,
    Up,
    Degraded,
    Down,
    Recovering,
    NoCarrier,
    NoAddress,
    ForcedDown,
    ForcedUp,
    Poor,
    Other(String),
}

const NAMED: [(State, &str); 10] = [
    (State::Unknown, "unknown"),
    (State::Up, "up"),
    (State::Degraded, "degraded"),
    (State::Down, "down"),
    (State::Recovering, "recovering"),
    (State::NoCarrier, "no-carrier"),
    (State::NoAddress, "no-address"),
    (State::ForcedDown, "forced-down"),
    (State::ForcedUp, "forced-up"),
    (State::Poor, "poor"),
];

impl From<String> for State {
    fn from(word: String) -> State {
        NAMED.iter().find(|(_, w)| *w == word).map_or(State::Other(word), |(s, _)| s.clone())
    }
}

impl From<State> for String {
    fn from(state: State) -> String {
        match state {
            State::Other(word) => word,
            named => NAMED.iter().find(|(s, _)| *s == named).map(|(_, w)| w.to_string()).expect("every named state has its word"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {
    /// The version of multihome that wrote it (src/json.rs).
    pub version: String,
    pub uplinks: Vec<Uplink>,
    /// The uplink new connections leave through; "" when none is healthy.
    pub active: String,
    /// The same for IPv6; "" when none is healthy or none has IPv6.
    pub active6: String,
    pub policy: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uplink {
    pub interface: String,
    pub rank: u32,
    pub state: State,
    pub loss_percent: f64,
    pub latency_ms: Option<f64>,
    pub reason: String,
    pub carrying: bool,
    pub address: String,
    pub gateway: String,
    /// Mode=bond only (absent in Mode=routes, as the daemon writes it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bond_active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mii: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bond_prio: Option<i32>,
    /// Absent when the policy gives the uplink no IPv6.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Side6>,
    pub mptcp_id: Option<u32>,
    pub mptcp_address: Option<String>,
    pub mptcp_flags: Option<Vec<String>>,
    pub mptcp_connections: Option<u32>,
}

/// An uplink's IPv6 side, judged on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Side6 {
    pub state: State,
    pub loss_percent: f64,
    pub latency_ms: Option<f64>,
    pub reason: String,
    pub carrying: bool,
    pub address: String,
    pub gateway: String,
}

impl Status {
    /// Parses `status --json`'s output; the error names what did not fit.
    pub fn parse(json: &str) -> anyhow::Result<Status> {
        serde_json::from_str(json).map_err(|e| anyhow::anyhow!("`status --json` is not the daemon's status: {e}\n{json}"))
    }

    pub fn uplink(&self, interface: &str) -> Option<&Uplink> {
        self.uplinks.iter().find(|u| u.interface == interface)
    }

    pub fn state(&self, interface: &str) -> Option<State> {
        self.uplink(interface).map(|u| u.state.clone())
    }

    /// The state of `interface`'s IPv6 side; `None` without one.
    pub fn state6(&self, interface: &str) -> Option<State> {
        self.uplink(interface)?.ipv6.as_ref().map(|v6| v6.state.clone())
    }

    /// The uplinks' names, in the daemon's order.
    pub fn interfaces(&self) -> Vec<&str> {
        self.uplinks.iter().map(|u| u.interface.as_str()).collect()
    }
}

/// The JSON again, for failure messages.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| fmt::Error)?)
    }
}

/// `multihome status --json` in the lab host. An error when it fails (no daemon: exit 5) or
/// prints something else than a status, with what it printed.
pub fn read(lab: &Lab) -> anyhow::Result<Status> {
    let out = lab.multihome(&["status", "--json"])?;
    if !out.status.success() {
        anyhow::bail!("multihome status --json: {}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    Status::parse(&String::from_utf8_lossy(&out.stdout))
}

/// The exit code of `multihome status --json` in the lab host (0: the daemon answered; 5: none
/// runs).
pub fn code(lab: &Lab) -> i32 {
    lab.multihome(&["status", "--json"]).ok().and_then(|o| o.status.code()).unwrap_or(-1)
}

/// The state of `interface` now; `None` while no daemon answers or it has no such uplink.
pub fn state(lab: &Lab, interface: &str) -> Option<State> {
    read(lab).ok()?.state(interface)
}

/// Whether the daemon answers and judges every one of `interfaces` up.
pub fn all_up(lab: &Lab, interfaces: &[&str]) -> bool {
    read(lab).is_ok_and(|s| interfaces.iter().all(|i| s.state(i) == Some(State::Up)))
}

/// Whether the daemon judges both families of every one of `interfaces` up.
pub fn all_up_both_families(lab: &Lab, interfaces: &[&str]) -> bool {
    read(lab).is_ok_and(|s| interfaces.iter().all(|i| s.state(i) == Some(State::Up) && s.state6(i) == Some(State::Up)))
}

/// The status as JSON, or why there is none: for failure messages.
pub fn show(lab: &Lab) -> String {
    read(lab).map_or_else(|e| format!("(no status: {e:#})"), |s| s.to_string())
}
