//! Roaming on real Wi-Fi (issue 25, item 4), routes mode with systemd-networkd: wlan1's SSID has
//! a second access point (tests/system/wifi.rs' ROAM_AP, hwsim's fifth radio on another channel,
//! in the same bridge as the first, so behind both the same switch, router and DHCP server).
//! With eth0's cable pulled, so that wlan1 carries new connections, wlan1 roams to the second
//! access point (`wpa_cli roam`, as wpa_supplicant's own background scan would), then that access
//! point stops and wpa_supplicant takes wlan1 back to the first one by itself. A new connection
//! every 100 ms (tests/system/wifi_routes.rs' prober) counts what each move costs; after each,
//! wlan1's address (the same lease or a new one) has its rules and its MPTCP endpoint, and wlan1
//! carries new connections again. The figures are printed.

use std::time::Duration;

use super::bond::INTERNET;
use super::image;
use super::machine::Machine;
use super::wifi::{self, FIRST_BSSID, ROAM_AP, ROAM_BSSID};
use super::wifi_routes::{Cost, Probe, SEED_WITH_DHCP_WIFI, cost, lease, now, probes, rules_for, start_prober, wlan1_carries};

/// wlan1's MPTCP endpoint: the policy's second uplink, id 240 + 1 (src/numbers.rs), on `addr`.
fn endpoint_for(vm: &mut Machine, addr: &str) -> anyhow::Result<()> {
    vm.wait_for(
        &format!("wlan1's MPTCP endpoint on {addr}"),
        &format!("ip mptcp endpoint show | grep -qE '^{} id 241 .*dev wlan1'", addr.replace('.', "\\.")),
        Duration::from_secs(30),
    )?;
    Ok(())
}

/// A shell test that holds while wlan1 is associated with the access point `bssid`.
fn associated_with(bssid: &str) -> String {
    format!("{} && wpa_cli -i wlan1 status | grep -qx bssid={bssid}", wifi::associated("wlan1"))
}

/// wlan1 associated with `bssid` after a move, networkd done with it, and its address (the lease
/// it kept or the new one) with its rules and MPTCP endpoint, carrying every new connection
/// again (the last ten, a second's worth); the address.
fn settled_on(vm: &mut Machine, bssid: &str) -> anyhow::Result<String> {
    vm.wait_for(&format!("wlan1 associated with {bssid}"), &associated_with(bssid), Duration::from_secs(60))?;
    let associated = now(vm)?;
    vm.wait_for("networkd done with wlan1", "networkctl status wlan1 --no-pager | grep -q 'State: routable (configured)'", Duration::from_secs(60))?;
    let addr = lease(vm, "wlan1")?;
    rules_for(vm, &addr, 102)?;
    endpoint_for(vm, &addr)?;
    wlan1_carries(vm, &addr, associated)?;
    vm.wait_for(
        "every new connection through wlan1 again",
        &format!("tail -n 10 /run/mh-probe.log | awk -v a={addr} '$2 != \"ok\" || $3 != a {{bad=1}} END {{exit bad}}'"),
        Duration::from_secs(60),
    )?;
    Ok(addr)
}

/// When new connections went through `home` for good again after `from`: the first one through
/// it after the last one through anything else (or failed) before `to`; None if none was.
fn back_for_good(all: &[Probe], from: f64, to: f64, home: &str) -> Option<f64> {
    let window: Vec<&Probe> = all.iter().filter(|p| p.at >= from && p.at <= to).collect();
    let last_other = window.iter().rev().find(|p| p.source.as_deref() != Some(home)).map_or(from, |p| p.at);
    window.iter().find(|p| p.at > last_other && p.source.as_deref() == Some(home)).map(|p| p.at - from)
}

/// New connections through `via` (a source address) among the probes between `from` and `to`.
fn through(all: &[Probe], from: f64, to: f64, via: &str) -> usize {
    all.iter().filter(|p| p.at >= from && p.at <= to && p.source.as_deref() == Some(via)).count()
}

/// The longest time, between `from` and `to`, without a new connection through `home`.
fn longest_without(all: &[Probe], from: f64, to: f64, home: &str) -> f64 {
    let mut last = from;
    let mut longest: f64 = 0.0;
    for p in all.iter().filter(|p| p.at >= from && p.at <= to && p.source.as_deref() == Some(home)) {
        longest = longest.max(p.at - last);
        last = p.at;
    }
    longest.max(to - last)
}

/// One move's figures, printed.
fn report(what: &str, c: &Cost, via_wlan0: usize, without_wlan1: f64, back: Option<f64>, before: &str, after: &str) {
    let secs = |t: Option<f64>| t.map_or("never".to_string(), |t| format!("{t:.2} s"));
    let lease = if before == after { format!("the same lease ({after})") } else { format!("a new lease ({before} -> {after})") };
    println!(
        "{what}: {} of {} new connections failed, {via_wlan0} left via wlan0 (the first {} after the move); \
         longest without a new connection through wlan1 {without_wlan1:.2} s; wlan1 carried every new connection again {} after the move, with {lease}",
        c.failed,
        c.attempts,
        secs(c.to_fallback),
        secs(back),
    );
}

#[test]
fn wlan1_roams_between_two_access_points_of_its_ssid_and_its_rules_follow() -> anyhow::Result<()> {
    let _one = crate::one_machine_at_a_time();
    if !image::require() {
        return Ok(());
    }
    let (net, _servers) = wifi::network_with_servers()?;
    let mut vm = wifi::boot_installed(&net, "seed-wifi.conf", SEED_WITH_DHCP_WIFI)?;

    wifi::start_access_points_for_roaming(&mut vm)?;
    for s in ["wlan1", "wlan0"] {
        wifi::start_station(&mut vm, s)?;
    }
    // Only the first access point of mh-wlan1 runs yet: wlan1 is on it.
    vm.wait_for("wlan1 on the first access point", &associated_with(FIRST_BSSID), Duration::from_secs(90))?;
    vm.wait_for("wlan0 associated", &wifi::associated("wlan0"), Duration::from_secs(90))?;
    vm.ok("mkdir -p /etc/multihome && cp /mnt/seed-wifi.conf /etc/multihome/multihome.conf && multihome check")?;
    let applied = vm.ok("multihome apply 2>&1")?;
    assert!(applied.contains("Applied"), "{applied}");
    let wlan1 = lease(&mut vm, "wlan1")?;
    let wlan0 = lease(&mut vm, "wlan0")?;
    // The lease's rules and endpoint come from the daemon (networkd-dispatcher was skipped at
    // boot, before the package brought its hooks: tests/system/wifi_routes.rs).
    vm.ok("systemctl start multihome")?;
    rules_for(&mut vm, &wlan1, 102)?;
    rules_for(&mut vm, &wlan0, 103)?;
    vm.wait_for("the daemon: eth0 first", "multihome status | grep -q 'New connections leave via eth0'", Duration::from_secs(60))?;
    endpoint_for(&mut vm, &wlan1)?;

    // The second access point of mh-wlan1 comes up, and wlan1's supplicant sees it in a scan.
    wifi::start_ap(&mut vm, ROAM_AP)?;
    vm.wait_for(
        "the second access point in wlan1's scan",
        &format!("wpa_cli -i wlan1 scan >/dev/null; sleep 2; wpa_cli -i wlan1 scan_results | grep -q '^{ROAM_BSSID}.*mh-wlan1'"),
        Duration::from_secs(60),
    )?;
    assert!(vm.ok("wpa_cli -i wlan1 status")?.contains(&format!("bssid={FIRST_BSSID}")), "wlan1 left the first access point by itself");

    // eth0's cable pulled: wlan1 carries new connections.
    vm.set_link("eth0", false)?;
    vm.wait_for("new connections via wlan1", &format!("ip -4 route get {INTERNET} | grep -q 'dev wlan1 '"), Duration::from_secs(30))?;
    start_prober(&mut vm)?;
    let started = now(&mut vm)?;
    wlan1_carries(&mut vm, &wlan1, started)?;

    // The roam: wlan1 reassociates with the second access point of its SSID.
    let roam = now(&mut vm)?;
    vm.ok(&format!("wpa_cli -i wlan1 roam {ROAM_BSSID} | grep -qx OK"))?;
    let roamed = settled_on(&mut vm, ROAM_BSSID)?;
    let roam_end = now(&mut vm)?;

    // The access point it roamed to stops: wpa_supplicant takes wlan1 back to the first one.
    let stop = now(&mut vm)?;
    wifi::stop_ap(&mut vm, ROAM_AP)?;
    let back = settled_on(&mut vm, FIRST_BSSID)?;
    let stop_end = now(&mut vm)?;
    vm.ok("systemctl stop mh-probe")?;

    let all = probes(&mut vm)?;
    let roamed_cost = cost(&all, roam, roam, roam_end, &roamed, &wlan0);
    let stopped_cost = cost(&all, stop, stop, stop_end, &back, &wlan0);
    let roamed_back = back_for_good(&all, roam, roam_end, &roamed);
    let stopped_back = back_for_good(&all, stop, stop_end, &back);
    report(
        "wlan1 roamed (wpa_cli roam) to the second access point of mh-wlan1",
        &roamed_cost,
        through(&all, roam, roam_end, &wlan0),
        longest_without(&all, roam, roam_end, &roamed),
        roamed_back,
        &wlan1,
        &roamed,
    );
    report(
        "the second access point stopped, wpa_supplicant took wlan1 back to the first",
        &stopped_cost,
        through(&all, stop, stop_end, &wlan0),
        longest_without(&all, stop, stop_end, &back),
        stopped_back,
        &roamed,
        &back,
    );
    // What the kernel's linkdown skip gives, as for the faults of tests/system/wifi_routes.rs:
    // a roam is a reassociation, whose carrier gap new connections go around through wlan0.
    assert!(roamed_cost.failed <= 3, "{} new connections failed during the roam", roamed_cost.failed);
    assert!(stopped_cost.failed <= 3, "{} new connections failed when the access point wlan1 roamed to stopped", stopped_cost.failed);
    assert!(roamed_back.is_some() && stopped_back.is_some(), "wlan1 did not carry new connections again");
    let status = vm.ok("multihome status")?;
    assert!(status.contains("New connections leave via wlan1"), "{status}");
    vm.set_link("eth0", true)?;
    vm.wait_for("eth0 first again", &format!("ip -4 route get {INTERNET} | grep -q 'dev eth0 '"), Duration::from_secs(30))?;
    vm.journal()?;
    vm.passed();
    Ok(())
}
