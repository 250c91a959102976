//! `multihome init` (issue 27) against the real managers in the lab host: NetworkManager with a
//! profile per uplink at different route metrics (one from DHCP, one with a spare profile beside
//! it), and systemd-networkd with .network files at different metrics (one of them where netplan
//! writes, in /run/systemd/network, with netplan's `[DHCP] RouteMetric=`). For each: the printed
//! policy passes `check`, orders the uplinks as the manager did (the kernel's default routes in
//! main, by metric), and `plan` takes it; `init --write` writes it once and refuses a second time.
//!
//! The lab's "Wi-Fi" uplinks wlan1 and wlan0 are veths, so NetworkManager's profiles for them are
//! ethernet ones and networkd describes them as Type=ether: here all three are wired, and the
//! order is the metrics'. Wired before Wi-Fi is proven by the unit tests of `import::init`, with
//! profiles and links of the shapes the managers give for real Wi-Fi devices.

use std::fs;
use std::time::Duration;

use common::lab::{dhcp_options, host_ok, nmcli, require_for, write_in_host};
use multihome::backend::files::write_atomically;
use multihome::lab::{Lab, Manager};

#[allow(dead_code)]
mod common;

/// The uplinks in the order of the kernel's IPv4 default routes in main (lowest metric first):
/// the order the manager made.
fn kernel_order(lab: &Lab) -> anyhow::Result<Vec<String>> {
    let out = lab.ip_host(&["-4", "route", "show", "table", "main", "default"])?;
    let mut routes: Vec<(u32, String)> = out
        .lines()
        .filter_map(|l| {
            let word = |key: &str| l.split_whitespace().skip_while(|w| *w != key).nth(1).map(str::to_string);
            Some((word("metric").and_then(|m| m.parse().ok()).unwrap_or(0), word("dev")?))
        })
        .collect();
    routes.sort();
    Ok(routes.into_iter().map(|(_, dev)| dev).collect())
}

/// Waits until the manager has a default route through each of the three uplinks.
fn wait_for_default_routes(lab: &Lab) -> anyhow::Result<()> {
    lab.wait_for(Duration::from_secs(30), || kernel_order(lab).is_ok_and(|o| o.len() == 3))
        .map_err(|_| anyhow::anyhow!("not three default routes in main: {}\n{}", lab.ip_host(&["-4", "route"]).unwrap_or_default(), lab.manager_log()))
}

/// The `Interface=` lines of a policy, in order.
fn policy_order(policy: &str) -> Vec<String> {
    policy.lines().filter_map(|l| l.strip_prefix("Interface=")).map(str::to_string).collect()
}

/// `init` printed, then `init --write`, `check` and `plan` on what it wrote, and a second
/// `--write` refused with the file left as it was. Returns the policy and the notes.
fn init_check_plan(lab: &Lab) -> anyhow::Result<(String, String)> {
    let out = lab.multihome(&["init"])?;
    let (policy, notes) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    anyhow::ensure!(out.status.success(), "init failed: {notes}");
    eprintln!("init printed:\n{policy}\nand said:\n{notes}");
    let written = lab.dir().join("etc/multihome/multihome.conf");
    anyhow::ensure!(!written.exists(), "a policy before init --write");
    let said = lab.multihome_ok(&["init", "--write"])?;
    assert!(said.starts_with("Wrote /etc/multihome/multihome.conf (3 uplink(s)"), "{said}");
    assert_eq!(fs::read_to_string(&written)?, policy, "--write wrote another policy than init printed");
    lab.multihome_ok(&["check"])?;
    let plan = lab.multihome_ok(&["plan"])?;
    eprintln!("plan:\n{plan}");
    let again = lab.multihome(&["init", "--write"])?;
    assert!(!again.status.success(), "a second init --write succeeded");
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("/etc/multihome/multihome.conf exists") && err.contains("nothing was written"), "{err}");
    assert_eq!(fs::read_to_string(&written)?, policy, "the refused --write changed the file");
    Ok((policy, notes))
}

/// A keyfile in the lab's NetworkManager (0600, as NetworkManager wants them).
fn keyfile(lab: &Lab, id: &str, text: &str) -> anyhow::Result<()> {
    let path = lab.dir().join(format!("etc/NetworkManager/system-connections/{id}.nmconnection"));
    write_atomically(&path, format!("[connection]\nid={id}\ntype=ethernet\n{text}").as_bytes(), 0o600)
}

#[test]
fn networkmanager_profiles_become_a_policy_in_its_metric_order() -> anyhow::Result<()> {
    let options = dhcp_options(Manager::NetworkManager);
    if !require_for(&options) {
        return Ok(());
    }
    let _serial = common::serial();
    let lab = Lab::start(options)?;
    // eth0 static at metric 300 with static IPv6; wlan1 static at 100, with a spare DHCP profile
    // of a lower autoconnect priority beside it; wlan0 DHCP at 200.
    keyfile(
        &lab,
        "lab-eth0",
        "interface-name=eth0\n[ipv4]\nmethod=manual\naddress1=192.168.178.99/24,192.168.178.1\nroute-metric=300\n[ipv6]\nmethod=manual\naddress1=2001:db8:178::99/64,2001:db8:178::1\n",
    )?;
    keyfile(
        &lab,
        "lab-wlan1",
        "interface-name=wlan1\n[ipv4]\nmethod=manual\naddress1=192.168.178.98/24,192.168.178.1\nroute-metric=100\n[ipv6]\nmethod=disabled\n",
    )?;
    keyfile(&lab, "lab-wlan1-spare", "interface-name=wlan1\nautoconnect-priority=-5\n[ipv4]\nmethod=auto\n[ipv6]\nmethod=disabled\n")?;
    keyfile(&lab, "lab-wlan0", "interface-name=wlan0\n[ipv4]\nmethod=auto\nroute-metric=200\n[ipv6]\nmethod=disabled\n")?;
    nmcli(&lab, &["connection", "reload"]);
    for id in ["lab-eth0", "lab-wlan1", "lab-wlan0"] {
        nmcli(&lab, &["--wait", "30", "connection", "up", id]);
    }
    wait_for_default_routes(&lab)?;
    let manager_order = kernel_order(&lab)?;
    assert_eq!(manager_order, ["wlan1", "wlan0", "eth0"]);

    let (policy, _) = init_check_plan(&lab)?;
    assert_eq!(policy_order(&policy), manager_order, "{policy}");
    assert!(policy.contains("Backend=networkmanager\nMode=routes\n"), "{policy}");
    assert!(policy.contains("# wlan1: profile \"lab-wlan1\" (active).\n"), "the active profile, not the spare: {policy}");
    assert!(policy.contains("NetworkManager device type veth, taken as wired"), "{policy}");
    assert!(policy.contains("Interface=wlan1\nPriority=1\nAddress=192.168.178.98/24\nGateway=192.168.178.1\n"), "{policy}");
    assert!(policy.contains("Interface=wlan0\nPriority=2\nDHCP=ipv4\n"), "{policy}");
    assert!(policy.contains("# Its lease's router now: 192.168.178.1 (probed)."), "{policy}");
    assert!(
        policy.contains("Interface=eth0\nPriority=3\nAddress=192.168.178.99/24\nAddress=2001:db8:178::99/64\nGateway=192.168.178.1\nGateway=2001:db8:178::1\n"),
        "{policy}"
    );
    assert!(policy.contains("After wlan0: wired (NetworkManager device type veth, taken as wired), route metric 300 (ipv4.route-metric)"), "{policy}");
    assert!(
        policy.contains("[Probe]\n# The uplinks' routers; add a host behind them to see a dead provider too.\nTarget=192.168.178.1\nTarget=2001:db8:178::1\n"),
        "{policy}"
    );
    Ok(())
}

const ETH0: &str = "/etc/systemd/network/20-eth0.network";
const ETH0_TEXT: &str = "[Match]\nName=eth0\n\n[Network]\nAddress=192.168.178.99/24\n\n[Route]\nGateway=192.168.178.1\nMetric=300\n";
/// As netplan generates it for a DHCP interface with `dhcp4-overrides: {route-metric: 200}`.
const NETPLAN: &str = "/run/systemd/network/10-netplan-wlan1.network";
const NETPLAN_TEXT: &str = "[Match]\nName=wlan1\n\n[Network]\nDHCP=ipv4\nLinkLocalAddressing=ipv6\n\n[DHCP]\nRouteMetric=200\nUseMTU=true\n";
const WLAN0: &str = "/etc/systemd/network/30-wlan0.network";
const WLAN0_TEXT: &str = "[Match]\nName=wlan0\n\n[Network]\nAddress=192.168.178.97/24\n\n[Route]\nGateway=192.168.178.1\nMetric=250\n";

#[test]
fn networkd_files_become_a_policy_in_its_metric_order() -> anyhow::Result<()> {
    let options = dhcp_options(Manager::Networkd);
    if !require_for(&options) {
        return Ok(());
    }
    let _serial = common::serial();
    let lab = Lab::start(options)?;
    for (path, text) in [(ETH0, ETH0_TEXT), (NETPLAN, NETPLAN_TEXT), (WLAN0, WLAN0_TEXT)] {
        write_in_host(&lab, path, text)?;
    }
    host_ok(&lab, "networkctl", &["reload"])?;
    wait_for_default_routes(&lab)?;
    let manager_order = kernel_order(&lab)?;
    assert_eq!(manager_order, ["wlan1", "wlan0", "eth0"]);

    let (policy, notes) = init_check_plan(&lab)?;
    assert_eq!(policy_order(&policy), manager_order, "{policy}");
    assert!(policy.contains("Backend=networkd\nMode=routes\n"), "{policy}");
    assert!(policy.contains(&format!("# wlan1: {NETPLAN}.\n")), "{policy}");
    assert!(policy.contains(&format!("route metric 200 ([DHCP] RouteMetric= at {NETPLAN}:9)")), "{policy}");
    assert!(policy.contains("networkd's Type=ether, Kind=veth, taken as wired"), "{policy}");
    assert!(policy.contains("Interface=wlan1\nPriority=1\nDHCP=ipv4\n"), "{policy}");
    assert!(policy.contains("# Its lease's router now: 192.168.178.1 (probed)."), "{policy}");
    assert!(policy.contains("Interface=wlan0\nPriority=2\nAddress=192.168.178.97/24\nGateway=192.168.178.1\n"), "{policy}");
    assert!(policy.contains(&format!("route metric 250 ([Route] Metric= at {WLAN0}:9)")), "{policy}");
    assert!(policy.contains("Interface=eth0\nPriority=3\nAddress=192.168.178.99/24\nGateway=192.168.178.1\n"), "{policy}");
    // The files' own default routes are the policy's now: said, so that plan's warning is expected.
    assert!(notes.contains(&format!("eth0: [Route] Metric= at {ETH0}:9: the default route through 192.168.178.1")), "{notes}");
    Ok(())
}
