//! The policy file: what the owner of a multi-homed host wants, as a validated value.
//!
//! `load`/`parse` turn `/etc/multihome/multihome.conf` into a [`Policy`]; everything after this
//! module may rely on its invariants (unique interfaces, priorities and tables, gateways inside an
//! uplink prefix, kernel-valid interface names).

pub mod bond;
mod error;
pub mod timespan;
pub mod unit_file;
mod validate;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use ipnet::{Ipv4Net, Ipv6Net};
use serde::Serialize;

pub use error::{Diagnostic, Diagnostics};

/// The default location of the policy file.
pub const DEFAULT_PATH: &str = "/etc/multihome/multihome.conf";

/// Which network manager realises the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Whichever of NetworkManager and systemd-networkd runs on the machine.
    Auto,
    Networkd,
    NetworkManager,
}

/// How failover is realised (`[Policy] Mode=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Failover {
    /// A table per uplink, `from`/`to` rules and metric-ordered default routes; the uplinks in
    /// file order.
    Routes(Vec<Uplink>),
    /// One active-backup bond over the uplinks' interfaces (see [`bond`]): its `[Uplink]`
    /// sections are the bond's slaves, no uplinks of their own.
    Bond(bond::Bond),
}

/// Which families an uplink asks DHCP for, as far as IPv4 goes (DHCPv6 is [`Ipv6::dhcp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dhcp {
    Ipv4,
    /// `DHCP=yes`: a DHCPv4 lease and DHCPv6; IPv6 is under the policy only when the uplink
    /// says more about it ([`Uplink::ipv6`]), else left to the network manager as before.
    Yes,
}

/// The uplink's IPv4 addressing. `Static` with no address: an IPv6-only uplink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Addressing {
    Static(Vec<Ipv4Net>),
    Dhcp(Dhcp),
}

/// The uplink's IPv6 side, when the policy says anything about it (an IPv6 `Address=` or
/// `Gateway=`, `DHCP=ipv6|yes`, `IPv6AcceptRA=`); otherwise IPv6 is left to the network manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ipv6 {
    /// Static global addresses (never link-local: the kernel makes that one itself).
    pub addresses: Vec<Ipv6Net>,
    /// The router: static, or `None` for the one router advertisements name. Link-local
    /// (`fe80::1`, on this uplink's link) or inside one of `addresses`.
    pub gateway: Option<Ipv6Addr>,
    /// DHCPv6 addresses (`DHCP=ipv6` or `yes`).
    pub dhcp: bool,
    /// `IPv6AcceptRA=`: SLAAC addresses and the advertised router as the default route.
    pub accept_ra: bool,
}

/// What an uplink's address does for MPTCP connections (`[Uplink] MPTCP=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Subflows {
    /// An endpoint that carries subflows alongside the others.
    Subflow,
    /// An endpoint whose subflows carry data only when no normal one can.
    Backup,
    /// No endpoint on this uplink.
    No,
}

/// One `[Uplink]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Uplink {
    pub interface: String,
    /// Lower is preferred.
    pub priority: u32,
    pub addressing: Addressing,
    /// Required for static addressing; with DHCP the lease's router is used when absent.
    pub gateway: Option<Ipv4Addr>,
    /// `None`: the policy says nothing about IPv6 on this uplink.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6>,
    /// Explicit routing table, or `None` to let the planner pick one.
    pub table: Option<u32>,
    /// `MPTCP=` of the uplink, or `None` to derive it from the priority (see `plan::mptcp`).
    pub mptcp: Option<Subflows>,
    /// `ProbeTarget=`'s IPv4 addresses: this uplink's own probe targets, in place of `[Probe]`'s
    /// IPv4 ones (mwan3's per-interface `track_ip`); empty: `[Probe]`'s IPv4 `Target=`.
    pub probe_targets: Vec<Ipv4Addr>,
    /// `ProbeTarget=`'s IPv6 addresses: its IPv6 side's own targets, in place of `[Probe]`'s IPv6
    /// ones (each family is replaced on its own); empty: `[Probe]`'s IPv6 `Target=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probe_targets6: Vec<Ipv6Addr>,
    /// `ProbeInterval=`: this uplink's own round interval (a metered uplink probed less often);
    /// `None`: `[Probe] Interval=`.
    #[serde(rename = "probe_interval_ms", serialize_with = "timespan::serialize_ms_opt")]
    pub probe_interval: Option<Duration>,
}

/// How the per-target probe results of one round combine into "the uplink answered".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Require {
    /// At least this many targets answered.
    AtLeast(usize),
    All,
}

/// The `[Probe]` section: health checks the daemon runs through each uplink alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub targets: Vec<Ipv4Addr>,
    /// IPv6 targets: an uplink's IPv6 side is judged on these alone, as its IPv4 side on `targets`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets6: Vec<Ipv6Addr>,
    #[serde(rename = "interval_ms", serialize_with = "timespan::serialize_ms")]
    pub interval: Duration,
    /// How long one probe waits for its answer.
    #[serde(rename = "timeout_ms", serialize_with = "timespan::serialize_ms")]
    pub timeout: Duration,
    /// Consecutive failed rounds before an uplink is declared down.
    pub fail_after: u32,
    /// Consecutive good rounds before a down uplink is trusted again.
    pub recover_after: u32,
    pub require: Require,
    /// Also ask the gateway by ARP: a live gateway with a dead upstream still answers ICMP for
    /// itself, but a dead gateway is seen by ARP alone without needing a target behind it.
    pub arp_gateway: bool,
    /// The shortest time a demoted uplink stays demoted.
    #[serde(rename = "hold_time_ms", serialize_with = "timespan::serialize_ms")]
    pub hold_time: Duration,
    /// Flap damping: each failure within this time of the last doubles the hold, up to here.
    #[serde(rename = "max_hold_time_ms", serialize_with = "timespan::serialize_ms")]
    pub max_hold_time: Duration,
    /// Path quality over the last rounds (see `daemon::quality`): loss at or above this (percent)
    /// demotes an uplink while a better one is healthy...
    pub max_loss: u8,
    /// ...and it is trusted again once loss stays at or below this for the hold time.
    pub recover_loss: u8,
    /// The same for the average round-trip time of the answered probes; off unless given.
    #[serde(rename = "max_latency_ms", serialize_with = "timespan::serialize_ms_opt")]
    pub max_latency: Option<Duration>,
    #[serde(rename = "recover_latency_ms", serialize_with = "timespan::serialize_ms_opt")]
    pub recover_latency: Option<Duration>,
}

impl Default for Probe {
    fn default() -> Self {
        Probe {
            targets: Vec::new(),
            targets6: Vec::new(),
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(200),
            fail_after: 3,
            recover_after: 5,
            require: Require::AtLeast(1),
            arp_gateway: true,
            hold_time: Duration::from_secs(2),
            max_hold_time: Duration::from_secs(60),
            max_loss: 50,
            recover_loss: 20,
            max_latency: None,
            recover_latency: None,
        }
    }
}

/// A validated policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// Where it came from, for messages and for the header of rendered files.
    pub source: String,
    pub backend: Backend,
    pub failover: Failover,
    pub probe: Option<Probe>,
    /// `[Policy] MPTCP=`: whether multihome gives the uplinks MPTCP endpoints (where the kernel
    /// has MPTCP enabled); `false` keeps its hands off the kernel's path manager.
    pub mptcp: bool,
    /// `[Metrics]`: the daemon's OpenMetrics exposition; off unless given.
    #[serde(skip_serializing_if = "Metrics::is_off")]
    pub metrics: Metrics,
}

/// `[Metrics]`: where the daemon shows its figures to Prometheus. Both off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Metrics {
    /// `Listen=`: the address and port of the HTTP listener that answers `GET /metrics`.
    pub listen: Option<std::net::SocketAddr>,
    /// `TextfileDirectory=`: where `multihome.prom` is written for node_exporter's textfile
    /// collector (absolute).
    pub textfile_directory: Option<std::path::PathBuf>,
}

impl Metrics {
    pub fn is_off(&self) -> bool {
        self.listen.is_none() && self.textfile_directory.is_none()
    }
}

impl Policy {
    /// The uplinks in file order; none in bond mode.
    pub fn uplinks(&self) -> &[Uplink] {
        match &self.failover {
            Failover::Routes(uplinks) => uplinks,
            Failover::Bond(_) => &[],
        }
    }

    /// `Mode=`'s word for the failover: `routes` or `bond`.
    pub fn mode(&self) -> &'static str {
        match self.failover {
            Failover::Routes(_) => "routes",
            Failover::Bond(_) => "bond",
        }
    }

    /// The bond, in bond mode.
    pub fn bond(&self) -> Option<&bond::Bond> {
        match &self.failover {
            Failover::Routes(_) => None,
            Failover::Bond(b) => Some(b),
        }
    }

    /// Uplinks from most to least preferred.
    pub fn ranked(&self) -> Vec<&Uplink> {
        let mut ranked: Vec<&Uplink> = self.uplinks().iter().collect();
        ranked.sort_by_key(|u| u.priority);
        ranked
    }
}

/// Parses policy text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Policy, Diagnostics> {
    let sections = unit_file::parse(file, text)?;
    validate::policy(file, &sections)
}

/// Reads and parses the policy file at `path`.
pub fn load(path: &Path) -> anyhow::Result<Policy> {
    let text = read_bounded(path).with_context(|| format!("cannot read policy file {}", path.display()))?;
    Ok(parse(&path.display().to_string(), &text)?)
}

/// The largest policy file read: a policy for the most uplinks the plan allows, with comments,
/// is far smaller; /dev/zero or a runaway generator is refused instead of exhausting memory.
pub const MAX_POLICY_BYTES: u64 = 1 << 20;

/// Reads a regular file of at most [`MAX_POLICY_BYTES`]. Opened without blocking, so a FIFO in
/// its place is refused at once instead of hanging `check` or the daemon's reload.
fn read_bounded(path: &Path) -> anyhow::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        anyhow::bail!("not a regular file");
    }
    let mut bytes = Vec::new();
    file.take(MAX_POLICY_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_POLICY_BYTES {
        anyhow::bail!("larger than {} KiB; a policy file is a few lines per uplink", MAX_POLICY_BYTES / 1024);
    }
    String::from_utf8(bytes).map_err(|e| anyhow::anyhow!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()))
}

/// The kernel's rule for interface names (`dev_valid_name`): 1 to 15 bytes, not `.` or `..`,
/// no `/`, `:` or whitespace; `%` never survives in a name (the kernel numbers it away). Glob
/// characters (and a leading `!`) are refused too: networkd's `[Match] Name=` would read them as
/// a pattern matching other interfaces.
/// An interface the policy may name as an uplink: a valid kernel name (see
/// [`valid_interface_name`]) that is not one of the kernel's pseudo-names, and that the files
/// multihome writes can carry without quoting.
pub fn valid_uplink_name(name: &str) -> Result<(), String> {
    valid_interface_name(name)?;
    if matches!(name, "all" | "default" | "lo") {
        // /proc/sys/net/ipv4/conf/{all,default}: the uplink's sysctls would apply to every
        // interface; lo carries no uplink.
        return Err(format!(
            "{name:?} is not an uplink: {}",
            if name == "lo" { "it is the loopback interface" } else { "the kernel uses that name for the settings of every interface" }
        ));
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '\\' | '"' | '\'' | '$' | '=' | '#' | ';')) {
        return Err(format!("{name:?} contains {c:?}, which would need quoting in networkd's files and sysctl.d; rename the interface"));
    }
    Ok(())
}

/// A name the kernel's dev_valid_name accepts (1 to 15 bytes, not `.` or `..`, no `/`, `:` or
/// space), without what networkd would read as a pattern, control characters or `%`.
pub fn valid_interface_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an interface name cannot be empty".into());
    }
    if name.len() > 15 {
        return Err(format!("{name:?} is {} bytes long; the kernel allows at most 15", name.len()));
    }
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not a valid interface name"));
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '/' | ':' | '%') || c.is_whitespace() || c.is_control()) {
        return Err(format!("{name:?} contains {c:?}, which the kernel refuses in interface names"));
    }
    // The kernel's isspace() is Latin-1's: the byte 0xa0 (no-break space) is a space to it, also
    // inside a UTF-8 character such as 'à' (c3 a0), so dev_valid_name refuses such a name.
    if let Some(c) = name.chars().find(|c| c.to_string().bytes().any(|b| b == 0xa0)) {
        return Err(format!("{name:?} contains {c:?}, whose byte 0xa0 the kernel counts as a space and refuses in interface names"));
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '*' | '?' | '[' | ']')).or(name.starts_with('!').then_some('!')) {
        return Err(format!("{name:?} contains {c:?}, which networkd would read as a pattern matching other interfaces; name one interface"));
    }
    Ok(())
}
