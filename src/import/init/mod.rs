//! `multihome init`: a first policy from the network manager that runs, as it is configured.
//!
//! [`read`] is the only part that does I/O: it asks which manager runs (as `--backend auto`
//! does), then reads NetworkManager's devices and profiles over D-Bus, or networkd's .network
//! files (with its precedence and drop-ins, multihome's own left out) and its links, and the
//! kernel's default routes for the routers that leases gave. What it read is a plain value;
//! [`nm`] and [`networkd`] turn it into [`Candidate`]s, one per wired or Wi-Fi device whose
//! configuration gives a default route, and [`write`] orders them as the manager prefers them and
//! writes the policy (through `import::policy_text`, as `import ifupdown` does), every choice
//! explained in a `#` line. Those three are pure and unit-tested with values of the shapes the
//! managers give.

pub mod networkd;
pub mod nm;
pub mod read;
pub mod write;

use std::net::IpAddr;

use super::policy_text::UplinkKeys;

/// What kind of device an uplink is: wired ones come first in the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Medium {
    Wired,
    WiFi,
}

impl Medium {
    pub fn word(self) -> &'static str {
        match self {
            Medium::Wired => "wired",
            Medium::WiFi => "Wi-Fi",
        }
    }
}

/// One device whose configuration gives a default route: an `[Uplink]` to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub keys: UplinkKeys,
    pub medium: Medium,
    /// How the medium was told: "NetworkManager device type ethernet".
    pub medium_why: String,
    /// The metric of the default route the manager gives it (lower is preferred)...
    pub metric: u32,
    /// ...and where that number comes from: "ipv4.route-metric", "networkd's default for DHCPv4".
    pub metric_why: String,
    /// NetworkManager's connection.autoconnect-priority (higher is preferred); 0 under networkd.
    pub autoconnect_priority: i32,
    /// The device's place in the manager's own list, the last tie-breaker.
    pub order: u32,
    /// Where its configuration came from and what each family became, a `#` line each.
    pub explain: Vec<String>,
    /// Routers to probe: the static gateways, and the router a lease gave now.
    pub targets: Vec<IpAddr>,
}

/// What was read from one manager, turned into candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The manager as the policy's header names it: "NetworkManager 1.42.4".
    pub manager: String,
    /// The policy's `Backend=`.
    pub backend: &'static str,
    /// What decides ties after the metric, in the manager's words.
    pub tie_breakers: &'static str,
    /// What the last tie-breaker ([`Candidate::order`]) is called.
    pub order_word: &'static str,
    pub candidates: Vec<Candidate>,
    /// What was left out and why, for stderr.
    pub notes: Vec<String>,
}

/// The policy text, and the notes to show beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Init {
    pub policy: String,
    pub notes: Vec<String>,
}
