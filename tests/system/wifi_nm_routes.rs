//! Routes mode over real Wi-Fi with NetworkManager (issue 25, item 2): NetworkManager runs the
//! machine, with the administrator's profiles: eth0 wired (static), wlan1 and wlan0 Wi-Fi
//! (SSID, WPA2-PSK, DHCP) on the hwsim stations of tests/system/wifi.rs, associated by
//! NetworkManager through wpa_supplicant. First `multihome init` on that host (issue 27): the
//! policy it prints puts wired eth0 before the Wi-Fi uplinks and passes `multihome check`. Then
//! the seed with its Wi-Fi uplinks by DHCP (Backend=networkmanager) is applied, which amends
//! those profiles, and the shipped unit's daemon runs. eth0's cable is pulled, so new connections
//! leave via wlan1; wlan1's access point stops (disassociation): new connections move to wlan0;
//! the access point returns: NetworkManager's own retry associates wlan1 again, the new lease
//! gets its rules, and wlan1 carries new connections again. A new connection every 100 ms
//! (tests/system/wifi_routes.rs' prober) counts what that costs; the figures are printed.

use std::time::Duration;

use super::bond::INTERNET;
use super::image;
use super::machine::Machine;
use super::network::Network;
use super::wifi;
use super::wifi_routes::{SEED_WITH_DHCP_WIFI, access_point_lost, deauthenticated, lease, now, rules_for, start_prober, wlan1_carries};

/// The seed with its Wi-Fi uplinks by DHCP ([`SEED_WITH_DHCP_WIFI`]), through NetworkManager.
fn seed_with_dhcp_wifi_nm() -> String {
    SEED_WITH_DHCP_WIFI.replace("Backend=networkd", "Backend=networkmanager")
}

/// A shell test that holds while NetworkManager has `device` connected with `profile`.
pub fn connected(device: &str, profile: &str) -> String {
    format!("nmcli -t -f GENERAL.STATE,GENERAL.CONNECTION device show {device} | tr '\\n' ' ' | grep -q '100 (connected) GENERAL.CONNECTION:{profile}'")
}

/// A shell test that holds once `station` is associated again and NetworkManager has it
/// connected with its profile: NetworkManager may still show a station connected for a while
/// after its access point is gone (here for the whole of a 6 s loss), so its word alone does
/// not say the station is back.
pub fn reassociated(station: &str) -> String {
    format!("{} && {}", wifi::linked(station), connected(station, &format!("home-{station}")))
}

/// The first line of `policy` that is `line`, by its place: where an `[Uplink]` stands.
fn place(policy: &str, line: &str) -> Option<usize> {
    policy.lines().position(|l| l.trim() == line)
}

/// The administrator's NetworkManager host with real Wi-Fi: the access points, NetworkManager
/// instead of networkd, eth0 wired and static, each station with its SSID and PSK, all three
/// connected.
pub fn networkmanager_host(net: &Network) -> anyhow::Result<Machine> {
    let mut vm = wifi::boot_installed(net, "seed-wifi-nm.conf", &seed_with_dhcp_wifi_nm())?;
    // The access points take eth4 and eth5 into their namespace before NetworkManager starts.
    wifi::start_access_points(&mut vm)?;

    // The machine moves to NetworkManager (tests/system/wifi_networkmanager.rs), and the
    // administrator's profiles: eth0 wired and static, each station with its SSID and PSK.
    wifi::use_networkmanager(&mut vm)?;
    vm.ok("nmcli connection add type ethernet ifname eth0 con-name home-eth0 ipv4.method manual ipv4.addresses 192.168.178.99/24 ipv4.gateway 192.168.178.1 ipv6.method disabled")?;
    for s in ["wlan1", "wlan0"] {
        vm.ok(&format!(
            "nmcli connection add type wifi ifname {s} con-name home-{s} ssid mh-{s} wifi-sec.key-mgmt wpa-psk wifi-sec.psk secret-of-mh-{s} ipv4.method auto ipv6.method disabled"
        ))?;
    }
    for d in ["eth0", "wlan1", "wlan0"] {
        vm.wait_for(&format!("{d} connected"), &connected(d, &format!("home-{d}")), Duration::from_secs(90))?;
    }

    Ok(vm)
}

/// The seed (DHCP Wi-Fi) applied to [`networkmanager_host`]'s profiles, the daemon started;
/// returns with eth0's cable pulled, new connections via wlan1, the prober running, and
/// wlan1's and wlan0's leases.
pub fn apply_the_seed_without_eth0(vm: &mut Machine) -> anyhow::Result<(String, String)> {
    // The seed, applied to NetworkManager's profiles, and the daemon.
    vm.ok("mkdir -p /etc/multihome && cp /mnt/seed-wifi-nm.conf /etc/multihome/multihome.conf && multihome check")?;
    let applied = vm.ok("multihome apply 2>&1")?;
    anyhow::ensure!(applied.contains("NetworkManager's checkpoint committed"), "apply: {applied}");
    // apply amends the administrator's profiles: each device stays on its own.
    for d in ["eth0", "wlan1", "wlan0"] {
        vm.wait_for(&format!("{d} connected after apply"), &connected(d, &format!("home-{d}")), Duration::from_secs(90))?;
    }
    anyhow::ensure!(vm.ok("nmcli -g ipv4.route-metric connection show home-wlan1")?.trim() == "101", "apply did not amend home-wlan1:\n{applied}");
    let wlan1 = lease(vm, "wlan1")?;
    let wlan0 = lease(vm, "wlan0")?;
    vm.ok("systemctl start multihome")?;
    rules_for(vm, &wlan1, 102)?;
    rules_for(vm, &wlan0, 103)?;
    vm.wait_for("eth0's rules", "ip -4 rule show | grep -q 'from 192.168.178.99 lookup 101'", Duration::from_secs(60))?;
    vm.wait_for("the daemon: eth0 first", "multihome status | grep -q 'New connections leave via eth0'", Duration::from_secs(60))?;
    for addr in ["192.168.178.99", wlan1.as_str(), wlan0.as_str()] {
        vm.wait_for("the internet host answering", &format!("ping -n -c1 -W2 -I {addr} {INTERNET}"), Duration::from_secs(30))?;
    }

    // eth0's cable pulled: new connections leave via wlan1.
    vm.set_link("eth0", false)?;
    vm.wait_for("new connections via wlan1", &format!("ip -4 route get {INTERNET} | grep -q 'dev wlan1 '"), Duration::from_secs(30))?;
    start_prober(vm)?;
    let started = now(vm)?;
    wlan1_carries(vm, &wlan1, started)?;
    Ok((wlan1, wlan0))
}

#[test]
fn networkmanager_routes_mode_follows_real_wifi_through_an_access_points_loss() -> anyhow::Result<()> {
    let _one = crate::one_machine_at_a_time();
    if !image::require() {
        return Ok(());
    }
    let (net, _servers) = wifi::network_with_servers()?;
    let mut vm = networkmanager_host(&net)?;
    // init on this host: wired eth0 first, then the Wi-Fi uplinks, and the policy passes check.
    let init = vm.sh("multihome init 2>/run/mh-init.notes >/run/mh-init.conf; echo exit=$?; cat /run/mh-init.notes")?;
    let printed = vm.ok("cat /run/mh-init.conf")?;
    println!("multihome init printed:\n{printed}\nand said: {}", init.output);
    assert!(init.output.starts_with("exit=0"), "init failed: {}", init.output);
    assert!(place(&printed, "Backend=networkmanager").is_some(), "init's policy names another manager:\n{printed}");
    let (eth0, wlan1, wlan0) = (place(&printed, "Interface=eth0"), place(&printed, "Interface=wlan1"), place(&printed, "Interface=wlan0"));
    assert!(
        matches!((eth0, wlan1, wlan0), (Some(e), Some(w1), Some(w0)) if e < w1 && e < w0),
        "init's policy does not have wired eth0 before both Wi-Fi uplinks:\n{printed}"
    );
    let checked = vm.sh("multihome -c /run/mh-init.conf check 2>&1")?;
    assert_eq!(checked.code, 0, "init's policy does not pass check:\n{}", checked.output);

    let (wlan1, wlan0) = apply_the_seed_without_eth0(&mut vm)?;

    // wlan1's access point stops for 5 s: disassociated, new connections go to wlan0. When it
    // returns, NetworkManager associates wlan1 again by itself (its own autoconnect and scans),
    // takes a lease, and wlan1 carries new connections again.
    let (stopped, wlan1_again, associated) = access_point_lost(&mut vm, &reassociated("wlan1"), &wlan0, Duration::from_secs(5))?;

    // wlan1's access point deauthenticates it: the wpa_supplicant NetworkManager drives
    // associates it again, NetworkManager keeps or renews its lease, the rules follow.
    let (deauthenticated, wlan1_third) = deauthenticated(&mut vm, "wpa_supplicant", &reassociated("wlan1"), &wlan0)?;
    vm.ok("systemctl stop mh-probe")?;

    let secs = |t: Option<f64>| t.map_or("never".to_string(), |t| format!("{t:.2} s"));
    println!(
        "NetworkManager: wlan1's access point stopped for 5 s: {} of {} new connections failed; first through wlan0 {} after the stop; \
         NetworkManager had wlan1 connected again within {associated:.1} s of hostapd's restart; wlan1 ({wlan1} -> {wlan1_again}) carried again {} after it",
        stopped.failed,
        stopped.attempts,
        secs(stopped.to_fallback),
        secs(stopped.restored)
    );
    assert!(stopped.to_fallback.is_some(), "no new connection left via wlan0 while wlan1's access point was down");
    assert!(stopped.restored.is_some(), "wlan1 did not carry new connections again");
    assert!(stopped.failed <= 3, "{} new connections failed when wlan1's access point stopped", stopped.failed);
    println!(
        "NetworkManager: wlan1 deauthenticated: {} of {} new connections failed; first through wlan0 {}; wlan1 ({}) carried again {} after the deauthentication",
        deauthenticated.failed,
        deauthenticated.attempts,
        secs(deauthenticated.to_fallback),
        wlan1_third,
        secs(deauthenticated.restored)
    );
    assert!(deauthenticated.restored.is_some(), "wlan1 did not carry new connections again after its deauthentication");
    assert!(deauthenticated.failed <= 3, "{} new connections failed when wlan1 was deauthenticated", deauthenticated.failed);
    let status = vm.ok("multihome status")?;
    assert!(status.contains("New connections leave via wlan1"), "{status}");
    vm.set_link("eth0", true)?;
    vm.wait_for("eth0 first again", &format!("ip -4 route get {INTERNET} | grep -q 'dev eth0 '"), Duration::from_secs(60))?;
    vm.journal()?;
    vm.passed();
    Ok(())
}
