//! The numbers every layer shares: metrics, rule priorities, the protocol on what multihome adds
//! at run time, limits, and the tables that are not ours to take. A leaf module (it imports
//! nothing of the crate), so the policy's validation, the planner, the backends, the hook and
//! the daemon all read them from one place. Each is explained where it is chosen.

/// Main-table metric of the most preferred uplink; the next ones get 101, 102, ... as in the
/// seed's answer. Below NetworkManager's automatic metrics (ethernet 100 is matched only by the
/// first uplink, Wi-Fi 600) and networkd's DHCP default (1024), so routes of links outside the
/// policy never win over an uplink by accident.
pub const METRIC_BASE: u32 = 100;

/// How many metrics just below [`METRIC_BASE`] the daemon may use for the routes it puts in
/// front of a demoted uplink's (68..=99): few enough that a full-tunnel VPN's usual default
/// route (NetworkManager: 50, OpenVPN: 0, wg-quick: its own table) stays in front and never
/// collides with one of them.
pub const FAILOVER_METRIC_SLOTS: u32 = 32;

/// Uplink rules start here: above 0 (`local`) and far below main (32766), leaving 1..9999 for the
/// administrator's own rules, which then win over multihome's.
pub const RULE_PRIORITY_BASE: u32 = 10000;

/// Rule priorities per uplink: room for 50 addresses, each with a `from` and a `to` rule.
pub const RULE_PRIORITY_STRIDE: u32 = 100;

/// Uplink rules end before this priority: after the administrator's and Tailscale's (5210-5270),
/// well before wg-quick's (32764, 32765) and main (32766).
pub const RULE_PRIORITY_END: u32 = 32000;

/// The table and rule priority of the daemon before 0.2 (a rule ahead of main that hid every
/// other route): a new daemon removes what an old one left there, and nothing else uses them.
pub const LEGACY_DAEMON_TABLE: u32 = 0x6d68; // "mh"
pub const LEGACY_DAEMON_RULE_PRIORITY: u32 = 32000;

/// Routing protocol number on the routes and rules multihome adds at run time (the hook and the
/// daemon), so it finds and removes exactly its own (as wg-quick does). Not assigned in
/// /etc/iproute2/rt_protos.
pub const PROTOCOL: u8 = 77;

/// The most addresses one uplink may have: each takes two priorities of its stride.
pub const MAX_ADDRESSES: usize = (RULE_PRIORITY_STRIDE / 2) as usize;

/// The most uplinks a policy may have: the last one's rules still come before [`RULE_PRIORITY_END`].
pub const MAX_UPLINKS: usize = ((RULE_PRIORITY_END - RULE_PRIORITY_BASE) / RULE_PRIORITY_STRIDE) as usize;

/// The kernel's own tables, by number and the name `ip` gives them: never an uplink's table.
pub const KERNEL_TABLES: [(u32, &str); 4] = [(0, "unspec"), (253, "default"), (254, "main"), (255, "local")];

/// MPTCP endpoint ids multihome gives the uplinks: `FIRST_ID + rank`, one per uplink, for the
/// first [`MPTCP_MAX_ENDPOINTS`] uplinks. Endpoints carry no owner mark, so the id is the mark:
/// the kernel numbers an endpoint added without an id (`ip mptcp endpoint add ADDR ...`, mptcpd,
/// NetworkManager) with the lowest free id from 1 up, which reaches this range only after 239
/// others; an endpoint here is still only taken as multihome's when it is also on the uplink's
/// interface (`netlink::mptcp`).
pub const MPTCP_FIRST_ID: u8 = 240;

/// Uplinks that can have an endpoint: the ids up to 255 (the kernel's largest). The kernel
/// opens at most 8 extra subflows per connection anyway (its `subflows` limit).
pub const MPTCP_MAX_ENDPOINTS: usize = (u8::MAX - MPTCP_FIRST_ID) as usize + 1;

/// The kernel's largest `ip mptcp limits set subflows` (MPTCP_PM_ADDR_MAX).
pub const MPTCP_MAX_SUBFLOWS: u32 = 8;

/// How long NetworkManager's activation of an uplink with SLAAC or DHCPv6 waits for IPv6
/// (`ipv6.required-timeout`) before it counts as up on IPv4 alone: a router answers a
/// solicitation within half a second (RFC 4861) and DHCPv6 takes a few round trips, so this is
/// only reached without an IPv6 router. Until then nm-dispatcher's `up`, which runs multihome's
/// hook for the new addresses and the advertised router, waits too.
pub const NM_IPV6_REQUIRED_TIMEOUT_MS: u32 = 10_000;

/// How often the daemon rewrites `[Metrics] TextfileDirectory=`'s file when nothing changed:
/// node_exporter reads it at every scrape and reports its age (`node_textfile_mtime_seconds`),
/// so a file that stops changing means a daemon that stopped; the default scrape interval of
/// Prometheus is 15 s.
pub const METRICS_TEXTFILE_REFRESH_SECS: u64 = 15;

/// The largest HTTP request the metrics listener reads (request line and headers): a scraper's
/// `GET /metrics` is a few hundred bytes; anything longer is refused, not buffered.
pub const METRICS_MAX_REQUEST: usize = 8192;

/// How long the metrics listener waits for a request's headers before it drops the connection,
/// so an idle or slow client holds nothing for long.
pub const METRICS_READ_TIMEOUT_MS: u64 = 2_000;

/// Connections the metrics listener serves at once; more wait in the kernel's backlog.
pub const METRICS_MAX_CONNECTIONS: usize = 8;
