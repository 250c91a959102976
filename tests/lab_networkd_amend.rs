//! Issue 8, item 2, with the real systemd-networkd in the lab: a host whose eth0 has the
//! administrator's own .network file (MTU, DNS, search domains) and whose wlan1 has netplan's
//! generated one in /run (its address, DNS, domain) gets the seed policy. multihome amends both
//! files with drop-ins instead of shadowing them: networkd keeps reporting their MTU, DNS and
//! domains and uses them with the drop-ins, and the policy holds (rules, tables, metrics 100,
//! 101, 102 in main, symmetric inbound, carrier failover and back). A regenerated netplan file
//! keeps its drop-in; an uplink taken out of the policy loses its drop-in and keeps netplan's.

use std::time::Duration;

use common::lab::{host_ok, inbound_is_symmetric, require, seed_fails_over_to_wlan0_and_back, write_in_host};
use multihome::backend::networkd::live;
use multihome::lab::policies::SEED;
use multihome::lab::{Lab, LabOptions, Manager};

#[allow(dead_code)]
mod common;

const WIRED: &str = "/etc/systemd/network/20-wired.network";
const WIRED_TEXT: &str = "\
# The administrator's own file for the wired uplink.
[Match]
Name=eth0

[Link]
MTUBytes=1400

[Network]
DNS=192.168.178.1
Domains=lab.example home.arpa
";

const NETPLAN: &str = "/run/systemd/network/10-netplan-wlan1.network";
/// What netplan generates for a static wlan1 without a gateway.
const NETPLAN_TEXT: &str = "\
[Match]
Name=wlan1

[Network]
LinkLocalAddressing=ipv6
Address=192.168.178.98/24
DNS=192.168.178.1
Domains=wlan.example
";

const WIRED_DROPIN: &str = "/etc/systemd/network/20-wired.network.d/60-multihome.conf";
const NETPLAN_DROPIN: &str = "/etc/systemd/network/10-netplan-wlan1.network.d/60-multihome.conf";

/// The seed without wlan1.
const WITHOUT_WLAN1: &str = "\
[Uplink]
Interface=eth0
Priority=1
Address=192.168.178.99/24
Gateway=192.168.178.1

[Uplink]
Interface=wlan0
Priority=3
Address=192.168.178.97/24
Gateway=192.168.178.1
";

fn host_file(lab: &Lab, path: &str) -> Option<String> {
    let out = lab.run_in_host("cat", &[path]).ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// networkd's state file of a link (/run/systemd/netif/links/IFINDEX) as KEY=value pairs.
fn link_state(lab: &Lab, iface: &str) -> anyhow::Result<Vec<(String, String)>> {
    let json: serde_json::Value = serde_json::from_str(&lab.ip_host(&["-j", "link", "show", "dev", iface])?)?;
    let index = json[0]["ifindex"].as_u64().ok_or_else(|| anyhow::anyhow!("no ifindex for {iface}"))?;
    let text = host_file(lab, &format!("/run/systemd/netif/links/{index}")).unwrap_or_default();
    Ok(text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn state_value(state: &[(String, String)], key: &str) -> Option<String> {
    state.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn mtu(lab: &Lab, iface: &str) -> anyhow::Result<u64> {
    let json: serde_json::Value = serde_json::from_str(&lab.ip_host(&["-j", "link", "show", "dev", iface])?)?;
    json[0]["mtu"].as_u64().ok_or_else(|| anyhow::anyhow!("no mtu for {iface}"))
}

/// Waits until networkd reports `file` as the .network file of `iface`.
fn wait_for_network_file(lab: &Lab, iface: &str, file: &str) -> anyhow::Result<()> {
    lab.wait_for(Duration::from_secs(10), || link_state(lab, iface).is_ok_and(|s| state_value(&s, "NETWORK_FILE").as_deref() == Some(file)))
        .map_err(|_| anyhow::anyhow!("networkd does not use {file} for {iface}: {:?}\n{}", link_state(lab, iface), lab.manager_log()))
}

/// What the administrator's and netplan's files set, as networkd reports it.
fn their_settings_apply(lab: &Lab) -> anyhow::Result<()> {
    let eth0 = link_state(lab, "eth0")?;
    assert_eq!(state_value(&eth0, "NETWORK_FILE").as_deref(), Some(WIRED), "{eth0:?}");
    assert_eq!(state_value(&eth0, "DNS").as_deref(), Some("192.168.178.1"), "{eth0:?}");
    assert_eq!(state_value(&eth0, "DOMAINS").as_deref(), Some("lab.example home.arpa"), "{eth0:?}");
    assert_eq!(mtu(lab, "eth0")?, 1400);
    let wlan1 = link_state(lab, "wlan1")?;
    assert_eq!(state_value(&wlan1, "NETWORK_FILE").as_deref(), Some(NETPLAN), "{wlan1:?}");
    assert_eq!(state_value(&wlan1, "DNS").as_deref(), Some("192.168.178.1"), "{wlan1:?}");
    assert_eq!(state_value(&wlan1, "DOMAINS").as_deref(), Some("wlan.example"), "{wlan1:?}");
    Ok(())
}

/// The drop-ins networkd says it uses for a link: its state file's NETWORK_FILE_DROPINS=, or
/// `NetworkFileDropins` in its D-Bus Describe. `None` when it says neither: systemd 252 (Debian
/// 12) reports only NETWORK_FILE=, and then the drop-in shows by its effect alone (the
/// addresses, routes and rules that only the drop-in holds, see `policy_holds`).
fn dropins_in_use(lab: &Lab, iface: &str) -> anyhow::Result<Option<Vec<String>>> {
    let state = link_state(lab, iface)?;
    if let Some(line) = state_value(&state, "NETWORK_FILE_DROPINS") {
        return Ok(Some(line.split_whitespace().map(|s| s.trim_matches('"').to_string()).collect()));
    }
    let out = host_ok(
        lab,
        "busctl",
        &["--system", "--json=short", "call", "org.freedesktop.network1", "/org/freedesktop/network1", "org.freedesktop.network1.Manager", "Describe"],
    )?;
    let reply: serde_json::Value = serde_json::from_str(&out)?;
    let json = reply["data"][0].as_str().ok_or_else(|| anyhow::anyhow!("Describe answered {out}"))?;
    let described: serde_json::Value = serde_json::from_str(json)?;
    let reports = described["Interfaces"].as_array().is_some_and(|links| links.iter().any(|l| l.get("NetworkFileDropins").is_some()));
    let links = live::parse_describe(json)?;
    Ok(reports.then(|| links.get(iface).map(|l| l.network_file_dropins.clone()).unwrap_or_default()))
}

/// The policy's rules, tables and main-table metrics, as the kernel has them.
fn policy_holds(lab: &Lab, uplinks: &[(&str, &str, u32, u32)]) -> anyhow::Result<()> {
    let rules = lab.ip_host(&["-4", "rule"])?;
    let main = lab.ip_host(&["-4", "route", "show", "table", "main"])?;
    for (iface, addr, table, metric) in uplinks {
        let rank = metric - 100;
        let (from, to) = (10000 + 100 * rank, 10001 + 100 * rank);
        assert!(rules.contains(&format!("{from}:\tfrom {addr} lookup {table}")), "no from-rule for {iface}:\n{rules}");
        assert!(rules.contains(&format!("{to}:\tfrom all to {addr} lookup {table}")), "no to-rule for {iface}:\n{rules}");
        let t = lab.ip_host(&["-4", "route", "show", "table", &table.to_string()])?;
        assert!(t.contains(&format!("default via 192.168.178.1 dev {iface}")), "table {table}:\n{t}");
        assert!(t.contains(&format!("192.168.178.0/24 dev {iface} proto static scope link src {addr}")), "table {table}:\n{t}");
        assert!(main.contains(&format!("default via 192.168.178.1 dev {iface} proto static metric {metric} onlink")), "main:\n{main}");
        assert!(main.contains(&format!("192.168.178.0/24 dev {iface} proto kernel scope link src {addr} metric {metric}")), "main:\n{main}");
    }
    // Nothing else competes in main: no default route without a metric.
    assert!(!main.lines().any(|l| l.starts_with("default") && !l.contains(" metric ")), "main:\n{main}");
    Ok(())
}

const SEED_UPLINKS: [(&str, &str, u32, u32); 3] =
    [("eth0", "192.168.178.99", 101, 100), ("wlan1", "192.168.178.98", 102, 101), ("wlan0", "192.168.178.97", 103, 102)];

#[test]
fn administrators_and_netplans_files_are_amended_and_the_policy_holds() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let lab = Lab::start(LabOptions::new(Manager::Networkd, common::binary()))?;
    // The host as it runs before multihome: the administrator's file and netplan's, taken by a
    // running networkd (which configured wlan1's address from netplan's file).
    write_in_host(&lab, WIRED, WIRED_TEXT)?;
    write_in_host(&lab, NETPLAN, NETPLAN_TEXT)?;
    host_ok(&lab, "networkctl", &["reload"])?;
    wait_for_network_file(&lab, "eth0", WIRED)?;
    wait_for_network_file(&lab, "wlan1", NETPLAN)?;

    lab.write_policy(SEED)?;
    let plan = lab.multihome_ok(&["plan"])?;
    assert!(plan.contains(&format!("eth0: amends {WIRED} with the drop-in {WIRED_DROPIN}")), "{plan}");
    assert!(plan.contains(&format!("wlan1: amends {NETPLAN} with the drop-in {NETPLAN_DROPIN}")), "{plan}");
    assert!(plan.contains("wlan0: writes /etc/systemd/network/10-multihome-wlan0.network"), "{plan}");

    let out = lab.multihome_ok(&["apply"])?;
    eprintln!("apply said:\n{out}");
    assert!(out.contains("Applied"), "{out}");
    // netplan's file had put 192.168.178.98/24 on wlan1 without a metric before the policy.
    assert!(out.contains("wlan1: 192.168.178.98/24 carried route metric 0 from before the policy"), "{out}");

    // Their files stay, and networkd uses them, with the drop-ins.
    assert_eq!(host_file(&lab, WIRED).as_deref(), Some(WIRED_TEXT));
    assert_eq!(host_file(&lab, NETPLAN).as_deref(), Some(NETPLAN_TEXT));
    wait_for_network_file(&lab, "eth0", WIRED)?;
    wait_for_network_file(&lab, "wlan1", NETPLAN)?;
    wait_for_network_file(&lab, "wlan0", "/etc/systemd/network/10-multihome-wlan0.network")?;
    their_settings_apply(&lab)?;
    for (iface, dropin) in [("eth0", WIRED_DROPIN), ("wlan1", NETPLAN_DROPIN)] {
        match dropins_in_use(&lab, iface)? {
            Some(used) => assert_eq!(used, [dropin]),
            None => {
                eprintln!("this networkd does not report drop-ins; {dropin} shows by its effect")
            }
        }
    }
    eprintln!("eth0: {:?}\nwlan1: {:?}", link_state(&lab, "eth0")?, link_state(&lab, "wlan1")?);
    eprintln!("{}", lab.ip_host(&["-4", "route", "show", "table", "main"])?);

    // The policy holds: rules, tables, metrics; eth0 first; symmetric inbound; carrier failover.
    policy_holds(&lab, &SEED_UPLINKS)?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    inbound_is_symmetric(&lab, 20)?;
    lab.set_carrier("eth0", false)?;
    lab.outbound_settles_on("wlan1", Duration::from_secs(3))?;
    seed_fails_over_to_wlan0_and_back(&lab)?;
    // After the links came back, networkd configured them again from the same files.
    their_settings_apply(&lab)?;
    policy_holds(&lab, &SEED_UPLINKS)?;

    // Applying twice changes nothing.
    let again = lab.multihome_ok(&["apply"])?;
    assert!(again.contains("Nothing to do"), "second apply: {again}");

    // netplan regenerates its file (same name, new DNS): the drop-in stays and still applies.
    let regenerated = NETPLAN_TEXT.replace("DNS=192.168.178.1", "DNS=192.168.178.2");
    write_in_host(&lab, NETPLAN, &regenerated)?;
    let plan = lab.multihome_ok(&["plan"])?;
    assert!(plan.contains("No changes"), "{plan}");
    host_ok(&lab, "networkctl", &["reload"])?;
    lab.wait_for(Duration::from_secs(10), || link_state(&lab, "wlan1").is_ok_and(|s| state_value(&s, "DNS").as_deref() == Some("192.168.178.2")))?;
    if let Some(used) = dropins_in_use(&lab, "wlan1")? {
        assert_eq!(used, [NETPLAN_DROPIN]);
    }
    policy_holds(&lab, &SEED_UPLINKS)?;

    // Every file networkd read, the administrator's, netplan's and multihome's, parsed cleanly.
    let log = lab.manager_log();
    let complaints: Vec<&str> =
        log.lines().filter(|l| ["Unknown key", "Unknown section", "Failed to parse", "Invalid"].iter().any(|w| l.contains(w))).collect();
    assert!(complaints.is_empty(), "networkd complained about a file:\n{}", complaints.join("\n"));

    // wlan1 leaves the policy: its drop-in goes, netplan's file keeps the link.
    lab.write_policy(WITHOUT_WLAN1)?;
    let out = lab.multihome_ok(&["apply"])?;
    assert!(out.contains("Applied"), "{out}");
    assert_eq!(host_file(&lab, NETPLAN_DROPIN), None);
    assert!(!lab.dir().join("etc/systemd/network/10-netplan-wlan1.network.d").exists(), "the emptied drop-in directory stays");
    lab.wait_for(Duration::from_secs(10), || dropins_in_use(&lab, "wlan1").is_ok_and(|d| d.is_none_or(|d| d.is_empty())))?;
    let wlan1 = link_state(&lab, "wlan1")?;
    assert_eq!(state_value(&wlan1, "NETWORK_FILE").as_deref(), Some(NETPLAN), "{wlan1:?}");
    assert_eq!(state_value(&wlan1, "DNS").as_deref(), Some("192.168.178.2"), "{wlan1:?}");
    assert!(lab.ip_host(&["-4", "addr", "show", "dev", "wlan1"])?.contains("192.168.178.98/24"));
    let rules = lab.ip_host(&["-4", "rule"])?;
    assert!(!rules.contains("192.168.178.98"), "wlan1's rules should be gone:\n{rules}");
    Ok(())
}
