//! The dispatcher hooks with the real dispatchers (issue 3, item 6): a DHCP uplink gets its
//! `from`/`to` rules from `multihome dispatch` when dnsmasq's lease arrives (and with them,
//! connections to the lease's address are answered through that uplink, not the preferred
//! one), and loses them when its link goes down — through nm-dispatcher with NetworkManager and
//! multihome's NetworkManager backend merged into the user's profile, and through
//! networkd-dispatcher with systemd-networkd and multihome's networkd backend.

use std::fs;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::lab::{dhcp_options, dhcp_wlan0_rules, lease, our_rules, require_for};
use common::repo;
use multihome::lab::policies::DHCP_WLAN0 as POLICY;
use multihome::lab::{Lab, LabOptions, Manager};

#[allow(dead_code)]
mod common;

/// multihome's MPTCP endpoint for wlan0 (rank 2 of 2: id 241, a normal subflow), if any: the
/// hook makes it for the lease (issue 15).
fn wlan0_endpoint(lab: &Lab) -> Option<String> {
    lab.ip_host(&["mptcp", "endpoint", "show"]).unwrap_or_default().lines().find(|l| l.contains(" id 241 ")).map(|l| l.trim().to_string())
}

fn expected_endpoint(a: Ipv4Addr) -> Option<String> {
    Some(format!("{a} id 241 subflow dev wlan0"))
}

/// Waits for `cond`; how long it took.
fn time_until(lab: &Lab, within: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    if lab.wait_for(within, &mut cond).is_err() {
        panic!(
            "{what}: not within {within:?}\nrules:\n{}\naddresses:\n{}\nmanager log (tail):\n{}",
            lab.ip_host(&["rule", "show"]).unwrap_or_default(),
            lab.ip_host(&["-4", "addr"]).unwrap_or_default(),
            tail(&lab.manager_log(), 40)
        );
    }
    start.elapsed()
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The whole cycle once the manager is handing out the lease: rules with the lease, the link
/// route in table 103, no rules after carrier loss, rules again on return.
fn lease_gives_rules_and_down_takes_them(lab: &Lab, down_within: Duration) {
    let mut address = None;
    let got_lease = time_until(lab, Duration::from_secs(30), "wlan0 got no lease", || {
        address = lease(lab);
        address.is_some()
    });
    let a = address.expect("checked");
    let rules_after_lease = time_until(lab, Duration::from_secs(10), &format!("no rules for the lease {a}"), || our_rules(lab) == dhcp_wlan0_rules(a));
    assert_eq!(wlan0_endpoint(lab), expected_endpoint(a), "{}", lab.ip_host(&["mptcp", "endpoint", "show"]).unwrap_or_default());
    let table = lab.ip_host(&["route", "show", "table", "103"]).unwrap();
    assert!(table.contains(&format!("192.168.178.0/24 dev wlan0 proto 77 scope link src {a}")), "table 103:\n{table}");
    // Nothing else of ours: eth0 is static (the manager's), the daemon is not running.
    assert_eq!(our_rules(lab), dhcp_wlan0_rules(a));
    eprintln!("lease {a} after {got_lease:?}; its rules {rules_after_lease:?} later");
    inbound_to_the_lease_is_answered_through_wlan0(lab, a);

    lab.set_carrier("wlan0", false).unwrap();
    let gone = time_until(lab, down_within, "the rules stayed after carrier loss", || our_rules(lab).is_empty());
    let table = lab.ip_host(&["route", "show", "table", "103"]).unwrap();
    assert!(!table.contains("proto 77"), "table 103 after down:\n{table}");
    assert_eq!(wlan0_endpoint(lab), None, "the lease's MPTCP endpoint stayed after down");
    eprintln!("rules gone {gone:?} after carrier loss");

    lab.set_carrier("wlan0", true).unwrap();
    let mut back = None;
    let again = time_until(lab, Duration::from_secs(30), "no rules after the link returned", || {
        back = lease(lab);
        back.is_some_and(|b| our_rules(lab) == dhcp_wlan0_rules(b) && wlan0_endpoint(lab) == expected_endpoint(b))
    });
    eprintln!("rules for {} back {again:?} after carrier returned", back.expect("checked"));
}

/// What the rules are for: connections made to the lease's address are answered, and the
/// answers leave through wlan0 although eth0 is the preferred uplink.
fn inbound_to_the_lease_is_answered_through_wlan0(lab: &Lab, a: Ipv4Addr) {
    let tx = |i: &str| lab.tx_packets(i).expect("tx counter");
    let (wlan0, eth0) = (tx("wlan0"), tx("eth0"));
    for _ in 0..10 {
        assert!(
            lab.inbound(a, Duration::from_secs(2)),
            "no answer from the lease {a}\n{}",
            lab.ip_host(&["route", "show", "table", "103"]).unwrap_or_default()
        );
    }
    let (wlan0, eth0) = (tx("wlan0") - wlan0, tx("eth0") - eth0);
    let routes =
        || format!("table 103:\n{}main:\n{}", lab.ip_host(&["route", "show", "table", "103"]).unwrap_or_default(), lab.ip_host(&["route"]).unwrap_or_default());
    assert!(wlan0 >= 30, "only {wlan0} packets left through wlan0 for 10 connections to {a}\n{}", routes());
    assert!(eth0 < 5, "{eth0} packets for connections to {a} left through eth0\n{}", routes());
}

/// The hook's own cost as a dispatcher pays it: a whole `multihome dispatch` process in the lab
/// host, with nothing to change.
fn time_dispatch(lab: &Lab, env: &[String], dispatcher_args: &[&str]) -> (Duration, Duration) {
    let mut args: Vec<&str> = env.iter().map(String::as_str).collect();
    args.extend(["/usr/sbin/multihome", "dispatch", "--"]);
    args.extend(dispatcher_args);
    let before = lab.ip_host(&["rule", "show"]).unwrap();
    let mut times = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        let out = lab.run_in_host("env", &args).unwrap();
        times.push(start.elapsed());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("already in place"), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(lab.ip_host(&["rule", "show"]).unwrap(), before, "an idempotent run changed the rules");
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    (mean, *times.iter().max().unwrap())
}

#[test]
fn networkd_dispatcher_applies_and_removes_a_dhcp_uplinks_rules() {
    let options = LabOptions {
        networkd_dispatcher_scripts: Some(repo("networkd-units/networkd-dispatcher")),
        // Applied before networkd starts, as at boot: networkd reads the networkd.conf.d
        // drop-in that keeps the hook's rules only then.
        policy: Some(POLICY.to_string()),
        ..dhcp_options(Manager::Networkd)
    };
    if !require_for(&options) {
        return;
    }
    let lab = Lab::start(options).unwrap();
    // networkd-dispatcher reports no-carrier at once, so the rules go within a second.
    lease_gives_rules_and_down_takes_them(&lab, Duration::from_secs(2));
    let a = lease(&lab).expect("a lease after the return");
    let (mean, max) = time_dispatch(&lab, &["IFACE=wlan0".into(), "STATE=routable".into(), format!("IP_ADDRS={a}")], &[]);
    eprintln!("multihome dispatch with nothing to change: mean {mean:?}, max {max:?}");
    let log = lab.log("networkd-dispatcher.log");
    assert!(!log.contains("Exit status"), "a hook failed:\n{log}");
    // The DHCP uplink's file (DHCP=, [DHCPv4] RouteMetric=, Gateway=_dhcp4 in its table) is
    // one this networkd takes without a complaint.
    let complaints = lab.networkd_complaints();
    assert!(complaints.is_empty(), "networkd complained about multihome's files:\n{}", complaints.join("\n"));
}

#[test]
fn nm_dispatcher_applies_and_removes_a_dhcp_uplinks_rules() {
    let options = dhcp_options(Manager::NetworkManager);
    if !require_for(&options) {
        return;
    }
    let lab = Lab::start(options).unwrap();
    lab.write_policy(POLICY).unwrap();
    // The hook as a package installs it; fs::copy keeps its mode (root-owned 0755 is required).
    fs::copy(repo("nm-dispatcher/90-multihome"), lab.dir().join("etc/NetworkManager/dispatcher.d/90-multihome")).unwrap();
    lab.activate_user_dhcp_profile("wlan0").unwrap();
    let out = lab.multihome_ok(&["apply", "--backend", "networkmanager"]).unwrap();
    eprintln!("{out}");
    // NetworkManager sends `down` only after its carrier grace (about 6 s).
    lease_gives_rules_and_down_takes_them(&lab, Duration::from_secs(15));
    let a = lease(&lab).expect("a lease after the return");
    let (mean, max) = time_dispatch(
        &lab,
        &["NM_DISPATCHER_ACTION=dhcp4-change".into(), "IP4_NUM_ADDRESSES=1".into(), format!("IP4_ADDRESS_0={a}/24 192.168.178.1")],
        &["wlan0", "dhcp4-change"],
    );
    eprintln!("multihome dispatch with nothing to change: mean {mean:?}, max {max:?}");
}

/// A lease that arrived before the policy (no hook installed yet, so no dispatcher event will
/// bring it): `multihome apply` brings the DHCP uplink's rules up to date itself.
#[test]
fn apply_gives_rules_to_a_lease_that_came_before_the_policy() {
    let options = dhcp_options(Manager::NetworkManager);
    if !require_for(&options) {
        return;
    }
    let lab = Lab::start(options).unwrap();
    lab.activate_user_dhcp_profile("wlan0").unwrap();
    time_until(&lab, Duration::from_secs(15), "a lease for wlan0", || lease(&lab).is_some());
    assert!(our_rules(&lab).is_empty(), "rules before multihome ran: {:?}", our_rules(&lab));

    lab.write_policy(POLICY).unwrap();
    let out = lab.multihome_ok(&["apply", "--backend", "networkmanager"]).unwrap();
    let a = lease(&lab).expect("the lease survives the apply");
    assert!(out.contains(&format!("wlan0: rules for {a}")), "apply did not report the lease's rules:\n{out}");
    assert_eq!(our_rules(&lab), dhcp_wlan0_rules(a), "right after apply, without any dispatcher event");
}
