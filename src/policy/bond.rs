//! `Mode=bond`: one active-backup bond over the uplinks' interfaces instead of a table per uplink.
//! The kernel's bonding driver moves the one address and MAC between its slaves, so established
//! connections survive a failover; the `[Uplink]` sections name the slaves and their order.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::Serialize;

use super::{Addressing, timespan};

/// The `[Bond]` section, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bond {
    /// The bond's interface name (`bond0`).
    pub name: String,
    pub addressing: Addressing,
    /// Required for static addressing; with DHCP the lease's router.
    pub gateway: Option<Ipv4Addr>,
    /// The `[Uplink]` interfaces, most preferred (lowest Priority=) first.
    pub slaves: Vec<Slave>,
    /// The slave that is active whenever it is up (PrimaryReselectPolicy= permitting).
    pub primary: String,
    pub primary_reselect: PrimaryReselect,
    pub monitor: Monitor,
    pub fail_over_mac: FailOverMac,
    /// `ProbeFailover=yes`: when the daemon's probes through the bond fail while the active
    /// slave's MII is up (a silent failure the MII monitor cannot see), the daemon makes the next
    /// slave active; no (the default): it reports it only.
    pub probe_failover: bool,
    /// Settings the file asked for that were replaced by a safe one, each with its reason, for
    /// `check` to show as warnings (a Wi-Fi slave cannot take another MAC while associated).
    pub notes: Vec<String>,
}

/// One `[Uplink]` in bond mode: an interface and its rank; the address is the bond's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slave {
    pub interface: String,
    pub priority: u32,
}

/// networkd's PrimaryReselectPolicy=, the kernel's primary_reselect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrimaryReselect {
    /// The primary becomes active again as soon as it is back (the kernel's default).
    Always,
    /// ...only if it is faster than the active slave.
    Better,
    /// ...only when the active slave fails.
    Failure,
}

/// How the bond sees that a slave failed: exactly one of the kernel's two monitors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Monitor {
    /// Carrier (MII) polling: fast, blind to a dead gateway behind a live link.
    Mii {
        #[serde(rename = "interval_ms", serialize_with = "timespan::serialize_ms")]
        interval: Duration,
        #[serde(rename = "up_delay_ms", serialize_with = "timespan::serialize_ms")]
        up_delay: Duration,
        #[serde(rename = "down_delay_ms", serialize_with = "timespan::serialize_ms")]
        down_delay: Duration,
    },
    /// ARP requests to targets through the active slave: also sees a dead gateway.
    Arp {
        #[serde(rename = "interval_ms", serialize_with = "timespan::serialize_ms")]
        interval: Duration,
        targets: Vec<Ipv4Addr>,
        validate: ArpValidate,
        all_targets: ArpAllTargets,
    },
}

/// networkd's ARPValidate=, the kernel's arp_validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArpValidate {
    None,
    Active,
    Backup,
    All,
}

/// networkd's ARPAllTargets=, the kernel's arp_all_targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArpAllTargets {
    Any,
    All,
}

/// networkd's FailOverMACPolicy=, the kernel's fail_over_mac.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOverMac {
    /// Every slave takes the bond's MAC when enslaved (the kernel's default).
    None,
    /// The bond takes the active slave's MAC; no slave's MAC ever changes.
    Active,
    /// The active slave takes the bond's MAC, the one it replaces gets the new one's.
    Follow,
}

macro_rules! words {
    ($t:ty { $($v:ident => $w:literal),* $(,)? }) => {
        impl $t {
            /// The word in the policy, in networkd's files and in NetworkManager's options.
            pub fn word(self) -> &'static str {
                match self { $(<$t>::$v => $w),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($w => Some(<$t>::$v),)* _ => None }
            }
        }
    };
}

words!(PrimaryReselect { Always => "always", Better => "better", Failure => "failure" });
words!(ArpValidate { None => "none", Active => "active", Backup => "backup", All => "all" });
words!(ArpAllTargets { Any => "any", All => "all" });
words!(FailOverMac { None => "none", Active => "active", Follow => "follow" });

/// Wi-Fi interfaces by the kernel's and udev's naming (wlan0, wlp2s0, wlx...). A Wi-Fi NIC cannot
/// send with a MAC other than the one it associated with, so it must keep its own.
pub fn is_wifi(interface: &str) -> bool {
    interface.starts_with("wl")
}

/// The MII interval when the policy names no monitor: without one, an active-backup bond never
/// fails over at all (the kernel's miimon defaults to 0).
pub const DEFAULT_MII_INTERVAL: Duration = Duration::from_millis(100);
