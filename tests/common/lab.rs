//! Lab helpers of the tests: whether a lab can run here (skip or fail), a lab with a policy
//! applied as each manager takes it, the daemon's logs and the host's state as tests read them,
//! the checks the seed scenario makes, and [`both_managers!`](crate::both_managers) to write a
//! scenario once and run it under systemd-networkd and NetworkManager.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use anyhow::bail;
use multihome::lab::ipv6::STATIC_ADDRESSES6;
use multihome::lab::policies::SEED;
use multihome::lab::{self, Lab, LabOptions, Manager, SEED_ADDRESSES, UPLINKS};

/// How long a test waits for one probe's answer where it only asks "which way now".
pub const QUICK: Duration = Duration::from_millis(300);

/// `true` when a lab with `manager` can run. Outside CI a missing prerequisite skips with a
/// message; in CI (CI=true) it fails, so a lab test never passes without having run.
pub fn require(manager: Manager) -> bool {
    require_for(&LabOptions { manager, ..Default::default() })
}

/// [`require`] for a lab with these options (DHCP, networkd-dispatcher: their tools too).
pub fn require_for(options: &LabOptions) -> bool {
    match lab::prerequisites(options) {
        Ok(()) => true,
        Err(why) => super::tools::unavailable(&format!("lab prerequisite missing: {why}")),
    }
}

/// Runs a scenario written once, `fn(Manager) -> anyhow::Result<()>`, as two tests named as
/// given: one under systemd-networkd, one under NetworkManager, each skipped outside CI (failed
/// in it) where its manager's lab cannot run.
#[macro_export]
macro_rules! both_managers {
    ($(#[$meta:meta])* $networkd:ident, $networkmanager:ident => $scenario:path) => {
        $(#[$meta])*
        #[test]
        fn $networkd() -> anyhow::Result<()> {
            if !$crate::common::lab::require(multihome::lab::Manager::Networkd) {
                return Ok(());
            }
            $scenario(multihome::lab::Manager::Networkd)
        }

        $(#[$meta])*
        #[test]
        fn $networkmanager() -> anyhow::Result<()> {
            if !$crate::common::lab::require(multihome::lab::Manager::NetworkManager) {
                return Ok(());
            }
            $scenario(multihome::lab::Manager::NetworkManager)
        }
    };
}

/// A lab with `options` (its manager, the binary under test) and `policy` applied as each
/// manager takes it, settled on eth0. Under networkd the policy is applied before networkd
/// starts, as on an installed system at boot: networkd reads the drop-in that keeps it away from
/// the daemon's rules and routes (ManageForeign...=no) only when it starts. NetworkManager takes
/// it over D-Bus once it runs.
pub fn applied(options: LabOptions, policy: &str) -> anyhow::Result<Lab> {
    let networkd = options.manager == Manager::Networkd;
    let lab = Lab::start(LabOptions { policy: networkd.then(|| policy.to_string()), ..options })?;
    if !networkd {
        lab.write_policy(policy)?;
        let out = lab.multihome_ok(&["apply"])?;
        anyhow::ensure!(out.contains("Applied"), "apply under NetworkManager: {out}");
    }
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    Ok(lab)
}

/// The seed policy applied under `manager` with the binary under test, settled on eth0.
pub fn seed(manager: Manager) -> anyhow::Result<Lab> {
    applied(LabOptions::new(manager, super::binary()), SEED)
}

/// A lab under `manager` with dnsmasq on the router's LAN.
pub fn dhcp_options(manager: Manager) -> LabOptions {
    LabOptions { dhcp: true, ..LabOptions::new(manager, super::binary()) }
}

/// The logs of every process the test spawned in the lab host (the daemon among them), in the
/// order they were started. They are numbered by the lab's list of processes, which also holds
/// some of its own (an IPv6 lab's router advertisements): a number can be missing.
pub fn spawned_logs(lab: &Lab) -> String {
    let mut logs: Vec<(u32, String)> = fs::read_dir(lab.dir().join("log"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("spawned-")?.strip_suffix(".log")?.parse().ok()?;
            Some((n, fs::read_to_string(e.path()).unwrap_or_default()))
        })
        .collect();
    logs.sort();
    logs.into_iter().map(|(_, text)| text).filter(|t| !t.is_empty()).collect::<Vec<_>>().join("\n---\n")
}

/// How often the daemon's log says `iface` became `to`.
pub fn transitions_to(log: &str, iface: &str, to: &str) -> usize {
    log.lines().filter(|l| l.starts_with(&format!("{iface}: ")) && l.contains(&format!(" -> {to} "))).count()
}

/// wlan0's address from dnsmasq's range (.150 to .199), once it has one.
pub fn lease(lab: &Lab) -> Option<Ipv4Addr> {
    let out = lab.ip_host(&["-j", "-4", "addr", "show", "dev", "wlan0"]).ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    v.get(0)?["addr_info"].as_array()?.iter().filter_map(|a| a["local"].as_str()?.parse::<Ipv4Addr>().ok()).find(|a| (150..=199).contains(&a.octets()[3]))
}

/// The rules tagged with multihome's protocol (77), as `ip rule` prints them.
pub fn our_rules(lab: &Lab) -> Vec<String> {
    lab.ip_host(&["rule", "show"]).unwrap_or_default().lines().filter(|l| l.contains(" proto 77")).map(str::to_string).collect()
}

/// The rules of `policies::DHCP_WLAN0` for wlan0's lease `a` (rank 2 of 2: table 103, priorities
/// 10100 and 10101), as [`our_rules`] lists them.
pub fn dhcp_wlan0_rules(a: Ipv4Addr) -> Vec<String> {
    vec![format!("10100:\tfrom {a} lookup 103 proto 77"), format!("10101:\tfrom all to {a} lookup 103 proto 77")]
}

/// Whether `iface` in the lab host has `address` (as `ip -br addr` writes it, e.g. "192.168.178.95/24").
pub fn has_address(lab: &Lab, iface: &str, address: &str) -> bool {
    lab.ip_host(&["-4", "-br", "addr", "show", iface]).unwrap_or_default().contains(address)
}

/// `nmcli ARGS` in the lab host; fails the test unless it succeeds.
pub fn nmcli(lab: &Lab, args: &[&str]) -> String {
    let out = lab.run_in_host("nmcli", args).expect("nmcli runs");
    assert!(out.status.success(), "nmcli {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The secret `key` of `setting` that NetworkManager stores for `profile`, as it answers
/// GetSecrets on the bus (busctl); "" when it has none. Not `nmcli -s`, which asks the same but
/// merges the answer into its own copy of the profile: NetworkManager updates the profile in
/// memory while it answers GetSecrets ("get-new-secrets"), and on Debian 12's NetworkManager
/// 1.42.4 about one `nmcli -s` in sixty printed the profile without its PSK while GetSecrets,
/// asked 360 times alongside, always answered with it.
pub fn nm_secret(lab: &Lab, profile: &str, setting: &str, key: &str) -> anyhow::Result<String> {
    let uuid = host_ok(lab, "nmcli", &["-g", "connection.uuid", "connection", "show", profile])?;
    let nm = "org.freedesktop.NetworkManager";
    let found = host_ok(
        lab,
        "busctl",
        &["call", nm, "/org/freedesktop/NetworkManager/Settings", "org.freedesktop.NetworkManager.Settings", "GetConnectionByUuid", "s", uuid.trim()],
    )?;
    // `o "/org/freedesktop/NetworkManager/Settings/N"`
    let path = found.split('"').nth(1).ok_or_else(|| anyhow::anyhow!("GetConnectionByUuid answered {found:?}"))?;
    let answer = host_ok(lab, "busctl", &["call", nm, path, "org.freedesktop.NetworkManager.Settings.Connection", "GetSecrets", "s", setting])?;
    Ok(busctl_string(&answer, key).unwrap_or_default())
}

/// The string value of `key` in busctl's printing of a dictionary (`"key" s "value"`).
fn busctl_string(printed: &str, key: &str) -> Option<String> {
    let rest = printed.split_once(&format!("\"{key}\" s \""))?.1;
    Some(rest.split('"').next()?.to_string())
}

/// Writes `text` to `path` inside the lab host (its private /run, or /etc/systemd/network,
/// which is the lab's directory). The text is an argument, never shell syntax.
pub fn write_in_host(lab: &Lab, path: &str, text: &str) -> anyhow::Result<()> {
    let out = lab.run_in_host("sh", &["-c", "mkdir -p \"${2%/*}\" && printf %s \"$1\" >\"$2\"", "sh", text, path])?;
    anyhow::ensure!(out.status.success(), "cannot write {path} in the lab host: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// `PROGRAM ARGS` in the lab host; its stdout, or an error with its stderr unless it succeeds.
pub fn host_ok(lab: &Lab, program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = lab.run_in_host(program, args)?;
    anyhow::ensure!(out.status.success(), "{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The rest of the seed's failover story, once eth0 has lost carrier and new connections leave
/// via wlan1: wlan1 loses carrier too (wlan0 takes over), then wlan1 and eth0 return and take
/// over again in order, and every address answers from outside again.
pub fn seed_fails_over_to_wlan0_and_back(lab: &Lab) -> anyhow::Result<()> {
    // How fast is the benchmark's business (the kernel delays a carrier change by up to a second
    // when other links changed just before); here only where traffic goes.
    lab.set_carrier("wlan1", false)?;
    lab.outbound_settles_on("wlan0", Duration::from_secs(3))?;
    lab.set_carrier("wlan1", true)?;
    lab.outbound_settles_on("wlan1", Duration::from_secs(15))?;
    lab.set_carrier("eth0", true)?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    for (iface, a) in SEED_ADDRESSES {
        if !lab.inbound(a, Duration::from_secs(2)) {
            bail!("no answer from {a} ({iface}) after the links returned");
        }
    }
    Ok(())
}

/// Symmetric inbound on the seed's addresses: `connections` TCP connections from the internet
/// host to each one are answered, and the answers leave through the uplink that owns the address
/// (SYN-ACK, ACK of data, data, FIN...: at least 3 packets each), hardly any elsewhere.
pub fn inbound_is_symmetric(lab: &Lab, connections: u64) -> anyhow::Result<()> {
    let targets: Vec<(&str, IpAddr)> = SEED_ADDRESSES.iter().map(|(u, a)| (*u, (*a).into())).collect();
    inbound_symmetric_on(lab, &targets, connections)
}

/// [`inbound_is_symmetric`] for the static IPv6 addresses of `policies::DUAL_STACK`.
pub fn inbound6_is_symmetric(lab: &Lab, connections: u64) -> anyhow::Result<()> {
    inbound6_is_symmetric_on(lab, &STATIC_ADDRESSES6, connections)
}

/// [`inbound_is_symmetric`] for these (uplink, IPv6 address) pairs; the error shows the host's
/// IPv6 rules and routes.
pub fn inbound6_is_symmetric_on(lab: &Lab, targets: &[(&str, Ipv6Addr)], connections: u64) -> anyhow::Result<()> {
    let targets: Vec<(&str, IpAddr)> = targets.iter().map(|(u, a)| (*u, (*a).into())).collect();
    inbound_symmetric_on(lab, &targets, connections).map_err(|e| {
        let rules = lab.ip_host(&["-6", "rule"]).unwrap_or_default();
        let routes = lab.ip_host(&["-6", "route", "show", "table", "all"]).unwrap_or_default();
        anyhow::anyhow!("{e}\n{rules}\n{routes}")
    })
}

/// [`inbound_is_symmetric`] for these (uplink, address) pairs, of either family.
fn inbound_symmetric_on(lab: &Lab, targets: &[(&str, IpAddr)], connections: u64) -> anyhow::Result<()> {
    let tx_all = || UPLINKS.iter().map(|u| lab.tx_packets(u)).collect::<anyhow::Result<Vec<u64>>>();
    for &(iface, a) in targets {
        let before = tx_all()?;
        for _ in 0..connections {
            if !lab.inbound(a, Duration::from_secs(2)) {
                bail!("no answer from {a} ({iface})");
            }
        }
        for ((u, before), after) in UPLINKS.iter().zip(before).zip(tx_all()?) {
            let sent = after - before;
            if *u == iface && sent < 3 * connections {
                bail!("{iface}: only {sent} packets left through it for {connections} connections to {a}");
            }
            if *u != iface && sent >= 10 {
                bail!("{sent} packets for connections to {a} ({iface}) left through {u}");
            }
        }
    }
    Ok(())
}
