//! The seed, dual-stack, realised by the real systemd-networkd in the lab (issue 12): static
//! IPv6 addresses and SLAAC from the router's advertisements on the uplinks, each static
//! address answering inbound through its own interface, and IPv6 egress failing over eth0 ->
//! wlan1 -> wlan0 and back on carrier loss, beside IPv4 doing the same. And static IPv6 by the
//! real NetworkManager over D-Bus, the same way; and SLAAC and DHCPv6 by NetworkManager, with
//! the hook run by the real nm-dispatcher copying the advertised router into each uplink's
//! table and giving every dynamic address its rules, through carrier flaps, a change of the
//! router's lifetime and a new temporary address.

use std::net::Ipv6Addr;
use std::ops::{Deref, DerefMut};
use std::sync::MutexGuard;
use std::time::Duration;

use common::lab::{inbound_is_symmetric, inbound6_is_symmetric, inbound6_is_symmetric_on, require_for};
use common::serial;
use multihome::lab::ipv6::STATIC_ADDRESSES6;
use multihome::lab::policies::{DUAL_STACK, STATIC_DUAL_STACK};
use multihome::lab::{Lab, LabOptions, Manager};

#[allow(dead_code)]
mod common;

/// A lab of this file, holding the file's lock until it is gone (fields drop in order: the lab
/// first).
struct SerialLab {
    lab: Lab,
    _serial: MutexGuard<'static, ()>,
}

impl Deref for SerialLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

impl DerefMut for SerialLab {
    fn deref_mut(&mut self) -> &mut Lab {
        &mut self.lab
    }
}

/// A dual-stack lab under `manager` (DHCPv6 served if asked), once this file's previous one is
/// gone; `None` where the lab's prerequisites are missing (`require_for` fails that with CI=true).
fn start(manager: Manager, dhcpv6: bool) -> anyhow::Result<Option<SerialLab>> {
    let options = LabOptions { ipv6: true, dhcpv6, ..LabOptions::new(manager, common::binary()) };
    if !require_for(&options) {
        return Ok(None);
    }
    let _serial = serial();
    let lab = Lab::start(options)?;
    Ok(Some(SerialLab { lab, _serial }))
}

/// The hook as the package installs it (fs::copy keeps its mode): nm-dispatcher runs it.
fn install_hook(lab: &Lab) -> anyhow::Result<()> {
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/nm-dispatcher/90-multihome"), lab.dir().join("etc/NetworkManager/dispatcher.d/90-multihome"))?;
    Ok(())
}

/// Outbound over IPv6: eth0, then wlan1, then wlan0 as links lose carrier; back on return.
/// `within`: how long each of the four moves may take (returning carrier waits for the manager).
fn fails_over_in_order6(lab: &Lab, within: [u64; 4]) -> anyhow::Result<()> {
    let steps = [("eth0", false, "wlan1"), ("wlan1", false, "wlan0"), ("wlan1", true, "wlan1"), ("eth0", true, "eth0")];
    for ((link, up, settles_on), secs) in steps.into_iter().zip(within) {
        lab.set_carrier(link, up)?;
        lab.outbound6_settles_on(settles_on, Duration::from_secs(secs))?;
    }
    Ok(())
}

#[test]
fn dual_stack_is_symmetric_inbound_and_fails_over_in_order_over_ipv6() -> anyhow::Result<()> {
    let Some(lab) = start(Manager::Networkd, false)? else {
        return Ok(());
    };
    lab.write_policy(DUAL_STACK)?;
    let out = lab.multihome_ok(&["apply"])?;
    assert!(out.contains("Applied"), "{out}");
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    lab.outbound6_settles_on("eth0", Duration::from_secs(15))?;

    // SLAAC where the policy accepts advertisements (eth0, wlan0), and only there.
    let slaac_eth0 = lab.wait_for_slaac("eth0", STATIC_ADDRESSES6[0].1, Duration::from_secs(15))?;
    let slaac_wlan0 = lab.wait_for_slaac("wlan0", STATIC_ADDRESSES6[2].1, Duration::from_secs(15))?;
    assert_eq!(lab.addresses6("wlan1"), [STATIC_ADDRESSES6[1].1], "wlan1 (IPv6AcceptRA unset, a static router) took an advertised prefix");

    // Each family in one order: the advertised router is wlan0's default in main at its metric
    // and in its table; eth0's advertised router is not used (it names fe80::1 itself).
    let main = lab.routes6("main")?;
    let defaults: Vec<&str> = main.lines().filter(|l| l.starts_with("default")).collect();
    let has = |dev: &str, what: &str| defaults.iter().any(|l| l.contains(&format!("dev {dev} ")) && l.contains(what));
    assert!(has("eth0", "via fe80::1") && has("eth0", "metric 100"), "eth0's default route:\n{main}");
    assert!(has("wlan1", "via 2001:db8:178::1") && has("wlan1", "metric 101"), "wlan1's default route:\n{main}");
    assert!(has("wlan0", "proto ra") && has("wlan0", "metric 102"), "wlan0's advertised default route:\n{main}");
    assert_eq!(defaults.len(), 3, "exactly one IPv6 default route per uplink in main:\n{main}");
    let t103 = lab.routes6("103")?;
    assert!(t103.lines().any(|l| l.starts_with("default via fe80::") && l.contains("dev wlan0")), "wlan0's table has the advertised router:\n{t103}");
    let rules = lab.ip_host(&["-6", "rule"])?;
    for (i, (_, addr)) in STATIC_ADDRESSES6.iter().enumerate() {
        let (priority, table) = (10000 + 100 * i, 101 + i);
        assert!(rules.contains(&format!("{priority}:\tfrom {addr} lookup {table}")), "no IPv6 from rule for {addr}:\n{rules}");
    }

    // Inbound: each static IPv6 address answers, through the interface that owns it.
    inbound6_is_symmetric(&lab, 20)?;

    // The hook gives each SLAAC address its rules (after the static address's priorities) when
    // it runs for the uplink, as networkd-dispatcher runs it; wlan0's SLAAC address then answers
    // through wlan0, where main's default route (eth0) would send the answers otherwise.
    for (iface, slaac, priority, table) in [("eth0", slaac_eth0, 10002, 101), ("wlan0", slaac_wlan0, 10202, 103)] {
        let said = lab.dispatch_networkd(iface, "routable")?;
        assert!(said.contains(&slaac.to_string()), "{said}");
        let rules = lab.ip_host(&["-6", "rule"])?;
        assert!(rules.contains(&format!("{priority}:\tfrom {slaac} lookup {table} proto 77")), "no rule for {slaac}:\n{rules}");
        assert!(rules.contains(&format!("{}:\tfrom all to {slaac} lookup {table} proto 77", priority + 1)), "no to rule for {slaac}:\n{rules}");
    }
    inbound6_is_symmetric_on(&lab, &[("eth0", slaac_eth0), ("wlan0", slaac_wlan0)], 20)?;
    // A second run changes nothing.
    let again = lab.dispatch_networkd("wlan0", "routable")?;
    assert!(again.contains("already in place"), "{again}");

    fails_over_in_order6(&lab, [3, 3, 15, 15])?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    inbound6_is_symmetric(&lab, 5)?;
    inbound_is_symmetric(&lab, 5)?;

    // An address that goes loses its rules when the hook next runs (unless the next
    // advertisement brought it back already).
    lab.ip_host(&["-6", "addr", "del", &format!("{slaac_wlan0}/64"), "dev", "wlan0"])?;
    lab.dispatch_networkd("wlan0", "routable")?;
    let rules = lab.ip_host(&["-6", "rule"])?;
    if !lab.addresses6("wlan0").contains(&slaac_wlan0) {
        assert!(!rules.contains(&slaac_wlan0.to_string()), "the rules of the removed {slaac_wlan0} stayed:\n{rules}");
    }
    // Carrier loss: networkd-dispatcher says no-carrier, and the uplink's SLAAC rules go.
    lab.set_carrier("eth0", false)?;
    lab.dispatch_networkd("eth0", "no-carrier")?;
    let rules = lab.ip_host(&["-6", "rule"])?;
    assert!(!rules.lines().any(|l| l.contains("lookup 101 proto 77")), "eth0's SLAAC rules stayed after no-carrier:\n{rules}");
    lab.set_carrier("eth0", true)?;
    lab.outbound6_settles_on("eth0", Duration::from_secs(15))?;

    // Every key multihome wrote is one this networkd understands.
    let complaints = lab.networkd_complaints();
    assert!(complaints.is_empty(), "networkd complained about multihome's files:\n{}", complaints.join("\n"));
    // apply runs the hook for every uplink too: eth0's SLAAC address, back with carrier, gets its
    // rules again; then a second apply changes nothing.
    lab.wait_for_slaac("eth0", STATIC_ADDRESSES6[0].1, Duration::from_secs(15))?;
    let out = lab.multihome_ok(&["apply"])?;
    let rules = lab.ip_host(&["-6", "rule"])?;
    assert!(rules.lines().any(|l| l.contains("lookup 101 proto 77")), "apply did not give eth0's SLAAC address its rules:\n{out}\n{rules}");
    let again = lab.multihome_ok(&["apply"])?;
    assert!(again.contains("Nothing to do"), "second apply: {again}");
    Ok(())
}

#[test]
fn static_dual_stack_under_networkmanager_is_symmetric_inbound_and_fails_over_in_order() -> anyhow::Result<()> {
    let Some(lab) = start(Manager::NetworkManager, false)? else {
        return Ok(());
    };
    lab.write_policy(STATIC_DUAL_STACK)?;
    let out = lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    assert!(out.contains("Applied"), "{out}");
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    lab.outbound6_settles_on("eth0", Duration::from_secs(15))?;

    // ipv6.method=manual: the static addresses alone, the advertised prefix is not taken.
    for (uplink, addr) in STATIC_ADDRESSES6 {
        assert_eq!(lab.addresses6(uplink), [addr], "{uplink}'s IPv6 addresses");
    }
    let main = lab.routes6("main")?;
    let defaults: Vec<&str> = main.lines().filter(|l| l.starts_with("default")).collect();
    for (dev, via, metric) in [("eth0", "fe80::1", 100), ("wlan1", "2001:db8:178::1", 101), ("wlan0", "fe80::1", 102)] {
        assert!(
            defaults.iter().any(|l| l.contains(&format!("via {via} dev {dev} ")) && l.contains(&format!("metric {metric} "))),
            "{dev}'s IPv6 default route:\n{main}"
        );
    }
    assert_eq!(defaults.len(), 3, "one IPv6 default route per uplink in main:\n{main}");
    for (table, via, dev) in [("101", "fe80::1", "eth0"), ("102", "2001:db8:178::1", "wlan1"), ("103", "fe80::1", "wlan0")] {
        let routes = lab.routes6(table)?;
        assert!(routes.lines().any(|l| l.starts_with(&format!("default via {via} dev {dev} "))), "table {table}:\n{routes}");
    }

    inbound6_is_symmetric(&lab, 20)?;
    inbound_is_symmetric(&lab, 5)?;

    // NetworkManager keeps a link's routes for seconds after carrier loss; the kernel skips
    // eth0's at once (ignore_routes_with_linkdown), and wlan1's (a global router, see the
    // plan's sysctls) once NetworkManager removes them.
    fails_over_in_order6(&lab, [3, 15, 20, 20])?;
    inbound6_is_symmetric(&lab, 5)?;

    let again = lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    assert!(again.contains("Nothing to do"), "second apply: {again}");
    Ok(())
}

/// The seed with IPv4 static and IPv6 from the router alone: SLAAC and DHCPv6 on every uplink
/// (the advertisements ask for DHCPv6 too), the advertised router as each one's IPv6 default.
const DYNAMIC_IPV6: &str = "\
[Uplink]
Interface=eth0
Priority=1
Address=192.168.178.99/24
Gateway=192.168.178.1
IPv6AcceptRA=yes

[Uplink]
Interface=wlan1
Priority=2
Address=192.168.178.98/24
Gateway=192.168.178.1
DHCP=ipv6

[Uplink]
Interface=wlan0
Priority=3
Address=192.168.178.97/24
Gateway=192.168.178.1
IPv6AcceptRA=yes
";

/// (uplink, table) of [`DYNAMIC_IPV6`].
const TABLES: [(&str, u32); 3] = [("eth0", 101), ("wlan1", 102), ("wlan0", 103)];

/// Every dynamic IPv6 address of every uplink (SLAAC, and DHCPv6 where the lab serves it),
/// once each has them.
fn dynamic_addresses(lab: &Lab, dhcpv6: bool, within: Duration) -> anyhow::Result<Vec<(&'static str, Ipv6Addr)>> {
    let mut out = Vec::new();
    for (uplink, _) in TABLES {
        out.push((uplink, lab.wait_for_slaac(uplink, Ipv6Addr::UNSPECIFIED, within)?));
        if dhcpv6 {
            out.push((uplink, lab.wait_for_dhcpv6(uplink, within)?));
        }
    }
    Ok(out)
}

/// What is missing of the hook's work for `addresses`: a `from`/`to` rule pair (protocol 77)
/// into the uplink's table for each, and in the table of each of `uplinks` the advertised
/// router that NetworkManager put in main. Empty when all is there.
fn missing_hook_work(lab: &Lab, addresses: &[(&str, Ipv6Addr)], uplinks: &[(&str, u32)]) -> Vec<String> {
    let rules = lab.ip_host(&["-6", "rule"]).unwrap_or_default();
    let mut missing = Vec::new();
    for (uplink, addr) in addresses {
        let table = TABLES.iter().find(|(u, _)| u == uplink).expect("an uplink of the policy").1;
        for rule in [format!("from {addr} lookup {table} proto 77"), format!("from all to {addr} lookup {table} proto 77")] {
            if !rules.contains(&rule) {
                missing.push(format!("rule {rule}"));
            }
        }
    }
    for (uplink, table) in uplinks {
        let routes = lab.routes6(&table.to_string()).unwrap_or_default();
        if !routes.lines().any(|l| l.starts_with("default via fe80:") && l.contains(&format!("dev {uplink} ")) && l.contains("proto 77")) {
            missing.push(format!("the advertised router in table {table}:\n{routes}"));
        }
    }
    missing
}

/// What is still missing of the hook's work (see [`missing_hook_work`]) once all is there or
/// `within` has passed: empty when it came in time.
fn hook_work_missing_after(lab: &Lab, addresses: &[(&str, Ipv6Addr)], uplinks: &[(&str, u32)], within: Duration) -> Vec<String> {
    let mut missing = Vec::new();
    // The last look decides: `missing` is empty exactly when the wait succeeded.
    let _ = lab.wait_for(within, || {
        missing = missing_hook_work(lab, addresses, uplinks);
        missing.is_empty()
    });
    missing
}

/// The temporary (privacy) addresses the kernel made on `uplink`.
fn temporary_addresses(lab: &Lab, uplink: &str) -> Vec<Ipv6Addr> {
    let json = lab.ip_host(&["-6", "-j", "addr", "show", "dev", uplink, "scope", "global"]).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    v[0]["addr_info"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["temporary"].as_bool() == Some(true) && a["tentative"].as_bool() != Some(true))
        .filter_map(|a| a["local"].as_str()?.parse().ok())
        .collect()
}

/// Whether no IPv6 rule or uplink-table route of the hook is left.
fn hook_work_gone(lab: &Lab) -> bool {
    let rules = lab.ip_host(&["-6", "rule"]).unwrap_or_default();
    let routes: String = TABLES.iter().map(|(_, t)| lab.routes6(&t.to_string()).unwrap_or_default()).collect();
    !rules.contains("proto 77") && !routes.contains("proto 77")
}

#[test]
fn slaac_and_dhcpv6_under_networkmanager_are_symmetric_inbound_and_fail_over_in_order() -> anyhow::Result<()> {
    dynamic_ipv6_under_networkmanager(true)
}

/// SLAAC alone: no DHCPv6 event ever runs the hook, so the addresses and the router must be
/// there when nm-dispatcher says `up` (ipv6.required-timeout).
#[test]
fn slaac_alone_under_networkmanager_gets_its_rules_and_router_at_up() -> anyhow::Result<()> {
    dynamic_ipv6_under_networkmanager(false)
}

fn dynamic_ipv6_under_networkmanager(dhcpv6: bool) -> anyhow::Result<()> {
    let Some(mut lab) = start(Manager::NetworkManager, dhcpv6)? else {
        return Ok(());
    };
    install_hook(&lab)?;
    lab.write_policy(DYNAMIC_IPV6)?;
    let out = lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    assert!(out.contains("Applied"), "{out}");
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    lab.outbound6_settles_on("eth0", Duration::from_secs(20))?;
    let addresses = dynamic_addresses(&lab, dhcpv6, Duration::from_secs(20))?;

    // NetworkManager's advertised routers in main, one per uplink at its metric (ipv6.route-metric).
    let main = lab.routes6("main")?;
    let defaults: Vec<&str> = main.lines().filter(|l| l.starts_with("default")).collect();
    for (dev, metric) in [("eth0", 100), ("wlan1", 101), ("wlan0", 102)] {
        assert!(
            defaults.iter().any(|l| l.starts_with("default via fe80:") && l.contains(&format!("dev {dev} ")) && l.contains(&format!("metric {metric} "))),
            "{dev}'s advertised default route at metric {metric}:\n{main}"
        );
    }
    assert_eq!(defaults.len(), 3, "one IPv6 default route per uplink in main:\n{main}");
    // The hook's work, by apply and by nm-dispatcher's `up` and `dhcp6-change`.
    let mut missing = hook_work_missing_after(&lab, &addresses, &TABLES, Duration::from_secs(15));
    assert!(missing.is_empty(), "missing after apply:\n{}\n{}", missing.join("\n"), lab.ip_host(&["-6", "rule"])?);

    // Inbound: every SLAAC and DHCPv6 address answers through the interface that owns it.
    inbound6_is_symmetric_on(&lab, &addresses, 20)?;
    inbound_is_symmetric(&lab, 5)?;

    fails_over_in_order6(&lab, [3, 3, 30, 30])?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    // Carrier flaps and the advertisements refreshed meanwhile (every 4 s): the copies of the
    // routers in the tables and the rules are there, for the addresses the uplinks have now.
    let addresses = dynamic_addresses(&lab, dhcpv6, Duration::from_secs(30))?;
    missing = hook_work_missing_after(&lab, &addresses, &TABLES, Duration::from_secs(30));
    assert!(missing.is_empty(), "missing after the carrier flaps:\n{}", missing.join("\n"));
    inbound6_is_symmetric_on(&lab, &addresses, 5)?;

    // The router's lifetime changes (600 s -> 1800 s; NetworkManager keeps lifetimes itself, the
    // kernel's routes show none): after a few of the new advertisements the copies in the
    // tables are as they were.
    lab.readvertise(1800)?;
    lab.wait_for(Duration::from_secs(30), || lab.log("dnsmasq-ra.log").matches("RTR-ADVERT").count() >= 3)
        .map_err(|_| anyhow::anyhow!("the router did not advertise again:\n{}", lab.log("dnsmasq-ra.log")))?;
    missing = missing_hook_work(&lab, &addresses, &TABLES);
    assert!(missing.is_empty(), "missing after the router's lifetime changed:\n{}", missing.join("\n"));
    inbound6_is_symmetric_on(&lab, &addresses, 5)?;
    lab.outbound6_settles_on("eth0", Duration::from_secs(5))?;

    // Temporary addresses on eth0 from its next activation; then every uplink's carrier gone
    // past NetworkManager's grace: nm-dispatcher's `down` takes the hook's rules and routes away,
    // and when carrier returns its `up` (after IPv6, ipv6.required-timeout) and `dhcp6-change`
    // bring them for the addresses the uplinks have then, the new temporary one included. Only
    // nm-dispatcher runs the hook meanwhile.
    let privacy = lab.run_in_host("nmcli", &["connection", "modify", "multihome-eth0", "ipv6.ip6-privacy", "2"])?;
    assert!(privacy.status.success(), "nmcli: {}", String::from_utf8_lossy(&privacy.stderr));
    for (uplink, _) in TABLES {
        lab.set_carrier(uplink, false)?;
    }
    lab.wait_for(Duration::from_secs(30), || hook_work_gone(&lab)).map_err(|_| {
        let log = lab.manager_log();
        let dispatcher: Vec<&str> = log.lines().filter(|l| l.contains("dispatch") || l.contains("state change")).collect();
        anyhow::anyhow!(
            "the hook's IPv6 rules and routes stayed after `down`:\n{}\n{}",
            lab.ip_host(&["-6", "rule"]).unwrap_or_default(),
            dispatcher.join("\n")
        )
    })?;
    let before: Vec<Ipv6Addr> = addresses.iter().map(|(_, a)| *a).collect();
    for (uplink, _) in TABLES {
        lab.set_carrier(uplink, true)?;
    }
    let addresses = dynamic_addresses(&lab, dhcpv6, Duration::from_secs(30))?;
    let mut temporary = Vec::new();
    lab.wait_for(Duration::from_secs(20), || {
        temporary = temporary_addresses(&lab, "eth0").into_iter().filter(|a| !before.contains(a)).collect();
        !temporary.is_empty()
    })
    .map_err(|_| anyhow::anyhow!("eth0 got no temporary address: {}", lab.ip_host(&["-6", "addr", "show", "dev", "eth0"]).unwrap_or_default()))?;
    let everything: Vec<(&str, Ipv6Addr)> = addresses.iter().copied().chain(temporary.iter().map(|a| ("eth0", *a))).collect();
    missing = hook_work_missing_after(&lab, &everything, &TABLES, Duration::from_secs(30));
    assert!(missing.is_empty(), "missing after carrier returned:\n{}\n{}", missing.join("\n"), lab.ip_host(&["-6", "rule"])?);
    inbound6_is_symmetric_on(&lab, &everything, 5)?;
    lab.outbound6_settles_on("eth0", Duration::from_secs(15))?;

    // ip6-privacy is the user's: a second apply keeps it and changes nothing.
    let again = lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    assert!(again.contains("Nothing to do"), "second apply: {again}");
    Ok(())
}

/// `render --backend nm-keyfile` of an uplink with SLAAC: NetworkManager loads the keyfile
/// (ipv6.method=auto, required-timeout), nm-dispatcher runs the hook when it is up, and the
/// profile is what apply wants (nothing to change).
#[test]
fn a_rendered_slaac_keyfile_loads_and_is_what_apply_wants() -> anyhow::Result<()> {
    let Some(lab) = start(Manager::NetworkManager, false)? else {
        return Ok(());
    };
    install_hook(&lab)?;
    // eth0 alone: the lab's other links are named like Wi-Fi, whose keyfiles need an SSID.
    let eth0_only = &DYNAMIC_IPV6[..DYNAMIC_IPV6.find("[Uplink]\nInterface=wlan1").expect("the policy has wlan1")];
    lab.write_policy(eth0_only)?;
    // Into the lab's directory that the host's private mounts show as /etc/NetworkManager:
    // `--out /` is refused (an image option never writes the running system).
    let out = lab.multihome_ok(&["render", "--backend", "nm-keyfile", "--out", &lab.dir().display().to_string()])?;
    assert!(out.contains(&format!("wrote {}/etc/NetworkManager/system-connections/multihome-eth0.nmconnection", lab.dir().display())), "{out}");
    let reload = lab.run_in_host("nmcli", &["connection", "reload"])?;
    assert!(reload.status.success(), "nmcli: {}", String::from_utf8_lossy(&reload.stderr));
    let slaac = lab.wait_for_slaac("eth0", Ipv6Addr::UNSPECIFIED, Duration::from_secs(20))?;
    lab.outbound6_settles_on("eth0", Duration::from_secs(15))?;
    let missing = hook_work_missing_after(&lab, &[("eth0", slaac)], &TABLES[..1], Duration::from_secs(15));
    assert!(missing.is_empty(), "nm-dispatcher's hook did not run for the keyfile's profile:\n{}", missing.join("\n"));
    inbound6_is_symmetric_on(&lab, &[("eth0", slaac)], 5)?;
    let plan = lab.multihome_ok(&["plan", "--backend", "networkmanager"])?;
    assert!(plan.contains("No changes"), "{plan}");
    Ok(())
}

/// [`DUAL_STACK`] under NetworkManager: static addresses and routers beside SLAAC (eth0 names
/// its router, wlan0 takes the advertised one), each address symmetric, one default route per
/// uplink in main.
#[test]
fn dual_stack_with_slaac_under_networkmanager_is_symmetric_inbound() -> anyhow::Result<()> {
    let Some(lab) = start(Manager::NetworkManager, false)? else {
        return Ok(());
    };
    install_hook(&lab)?;
    lab.write_policy(DUAL_STACK)?;
    lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    lab.outbound6_settles_on("eth0", Duration::from_secs(20))?;
    let slaac_eth0 = lab.wait_for_slaac("eth0", STATIC_ADDRESSES6[0].1, Duration::from_secs(20))?;
    let slaac_wlan0 = lab.wait_for_slaac("wlan0", STATIC_ADDRESSES6[2].1, Duration::from_secs(20))?;
    let main = lab.routes6("main")?;
    assert_eq!(main.lines().filter(|l| l.starts_with("default")).count(), 3, "one IPv6 default route per uplink in main:\n{main}");
    // wlan0's table gets the advertised router from the hook, and the SLAAC addresses their
    // rules (apply or nm-dispatcher's `up`, whichever comes first); eth0's table has its
    // static router only.
    let hooked = || {
        let rules = lab.ip_host(&["-6", "rule"]).unwrap_or_default();
        let t103 = lab.routes6("103").unwrap_or_default();
        t103.lines().any(|l| l.starts_with("default via fe80:") && l.contains("dev wlan0") && l.contains("proto 77"))
            && [(slaac_eth0, 101), (slaac_wlan0, 103)].iter().all(|(a, t)| rules.contains(&format!("from {a} lookup {t} proto 77")))
    };
    lab.wait_for(Duration::from_secs(15), hooked).map_err(|_| {
        anyhow::anyhow!("the hook's work is missing:\n{}\n{}", lab.ip_host(&["-6", "rule"]).unwrap_or_default(), lab.routes6("103").unwrap_or_default())
    })?;
    let t101 = lab.routes6("101")?;
    assert!(!t101.contains("proto 77") && t101.lines().any(|l| l.starts_with("default via fe80::1 dev eth0")), "table 101:\n{t101}");
    inbound6_is_symmetric(&lab, 10)?;
    inbound6_is_symmetric_on(&lab, &[("eth0", slaac_eth0), ("wlan0", slaac_wlan0)], 10)?;
    Ok(())
}
