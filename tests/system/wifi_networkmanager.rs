//! NetworkManager's own Wi-Fi profiles on real stations (tests/system/wifi.rs): the
//! administrator's profiles for wlan1 and wlan0 (SSID, WPA2-PSK secret, DHCP), which NetworkManager
//! associates through wpa_supplicant; multihome amends them (`apply`: route metric, MPTCP flags,
//! its routes and rules), `try` changes them and reverts when nobody confirms, and `reset` takes
//! its routes and rules away. After each, each
//! profile still has its SSID and its secret (NetworkManager's answer to GetSecrets, and its keyfile),
//! and its station associates with them.

use std::time::Duration;

use super::image;
use super::machine::Machine;
use super::network::Network;
use super::wifi;

/// The seed with its Wi-Fi uplinks by DHCP, through NetworkManager.
const POLICY: &str = "\
[Policy]
Backend=networkmanager
Mode=routes

[Uplink]
Interface=eth0
Priority=1
Address=192.168.178.99/24
Gateway=192.168.178.1

[Uplink]
Interface=wlan1
Priority=2
DHCP=ipv4

[Uplink]
Interface=wlan0
Priority=3
DHCP=ipv4
";

/// Prints NetworkManager's answer to GetSecrets for the Wi-Fi security of the profile named
/// by the command's argument, as multihome asks it (src/backend/nm/secrets.rs). Not `nmcli -s`,
/// which asks the same but merges the answer into its own copy of the profile: NetworkManager
/// updates the profile in memory while it answers ("get-new-secrets"), and here about one
/// `nmcli -s` in sixty printed the profile without its PSK while GetSecrets, asked 360 times
/// alongside, always answered with it.
const GET_SECRETS: &str = "get_secrets() { u=$(nmcli -g connection.uuid connection show \"$1\") && \
    p=$(busctl call org.freedesktop.NetworkManager /org/freedesktop/NetworkManager/Settings org.freedesktop.NetworkManager.Settings GetConnectionByUuid s \"$u\" | cut -d'\"' -f2) && \
    busctl call org.freedesktop.NetworkManager \"$p\" org.freedesktop.NetworkManager.Settings.Connection GetSecrets s 802-11-wireless-security; }; get_secrets";

/// Fails unless each Wi-Fi profile still has its SSID and secret, for NetworkManager and on
/// disk, and its station is connected with it.
fn profiles_keep_their_secrets(vm: &mut Machine, after: &str) -> anyhow::Result<()> {
    for s in ["wlan1", "wlan0"] {
        let got = vm.ok(&format!("nmcli -g 802-11-wireless.ssid,802-11-wireless-security.key-mgmt connection show home-{s}"))?;
        let psk = vm.ok(&format!("{GET_SECRETS} home-{s} | grep -o '\"psk\" s \"[^\"]*\"' | cut -d'\"' -f4"))?;
        let keyfile = vm.ok(&format!("cat /etc/NetworkManager/system-connections/home-{s}.nmconnection"))?;
        assert_eq!(
            format!("{}\n{}", got.trim(), psk.trim()),
            format!("mh-{s}\nwpa-psk\nsecret-of-mh-{s}"),
            "home-{s}'s SSID and secret after {after}; its keyfile:\n{keyfile}"
        );
        assert!(
            keyfile.contains(&format!("ssid=mh-{s}")) && keyfile.contains(&format!("psk=secret-of-mh-{s}")),
            "home-{s}'s keyfile after {after}:\n{keyfile}"
        );
        vm.wait_for(
            &format!("{s} connected with home-{s} after {after}"),
            &format!("nmcli -t -f GENERAL.STATE,GENERAL.CONNECTION device show {s} | tr '\\n' ' ' | grep -q '100 (connected) GENERAL.CONNECTION:home-{s}'"),
            Duration::from_secs(90),
        )?;
        vm.wait_for(&format!("{s} associated after {after}"), &format!("iw dev {s} link | grep -q 'SSID: mh-{s}'"), Duration::from_secs(30))?;
    }
    Ok(())
}

/// The seed's bond over the same uplinks (tests/system/wifi_bond.rs), through NetworkManager.
fn bond_policy() -> String {
    super::wifi_bond::BOND.replace("Backend=networkd", "Backend=networkmanager")
}

/// An update that drops one of a profile's settings carries the secrets NetworkManager stores
/// (src/backend/nm/secrets.rs): before, `reset` took its routes and rules out of a profile by an
/// update without the `user` setting that held multihome's record, NetworkManager then merged
/// none of the stored secrets into it, and the keyfile's [wifi-security] kept only
/// key-mgmt=wpa-psk (issue 25). The `try` and the bond steps found two more ways to lose a
/// station (a stale applied connection; slaves of a removed bond), both fixed.
#[test]
fn networkmanagers_wifi_profiles_keep_ssid_and_secret_through_apply_try_and_reset() -> anyhow::Result<()> {
    let _one = crate::one_machine_at_a_time();
    if !image::require() {
        return Ok(());
    }
    let mut net = Network::build(&wifi::nics())?;
    net.start_dhcp()?;
    let mut vm = wifi::boot_installed(&net, "wifi-nm.conf", POLICY)?;
    // The access points take eth4 and eth5 into their namespace before NetworkManager starts.
    wifi::start_access_points(&mut vm)?;

    wifi::use_networkmanager(&mut vm)?;
    // The administrator's Wi-Fi profiles, as `nmcli device wifi connect` would make them.
    for s in ["wlan1", "wlan0"] {
        vm.ok(&format!(
            "nmcli connection add type wifi ifname {s} con-name home-{s} ssid mh-{s} wifi-sec.key-mgmt wpa-psk wifi-sec.psk secret-of-mh-{s} ipv4.method auto ipv6.method disabled"
        ))?;
    }
    profiles_keep_their_secrets(&mut vm, "the administrator made them")?;

    vm.ok("mkdir -p /etc/multihome && cp /mnt/wifi-nm.conf /etc/multihome/multihome.conf")?;
    let applied = vm.ok("multihome apply 2>&1")?;
    assert!(applied.contains("NetworkManager's checkpoint committed"), "{applied}");
    println!("apply:\n{applied}");
    let metric = vm.ok("nmcli -g ipv4.route-metric connection show home-wlan1")?;
    assert_eq!(metric.trim(), "101", "apply did not amend home-wlan1:\n{applied}");
    profiles_keep_their_secrets(&mut vm, "apply")?;
    vm.wait_for("wlan1's lease's rules", "ip -4 rule show | grep -qE 'from 192\\.168\\.178\\.1[5-9][0-9] lookup 102'", Duration::from_secs(90))?;

    // reset right after apply: multihome's routes and rules go, the profiles stay with their
    // SSID and secret; then apply again.
    let reset = vm.ok("multihome reset 2>&1")?;
    assert!(reset.contains("home-wlan1"), "{reset}");
    profiles_keep_their_secrets(&mut vm, "reset after apply")?;
    let applied = vm.ok("multihome apply 2>&1")?;
    assert!(applied.contains("NetworkManager's checkpoint committed"), "{applied}");
    profiles_keep_their_secrets(&mut vm, "apply after reset")?;

    // try, not confirmed: the order of the Wi-Fi uplinks swapped, then NetworkManager's
    // checkpoint rolls back.
    vm.ok("sed -i 's/^Priority=2$/Priority=X/; s/^Priority=3$/Priority=2/; s/^Priority=X$/Priority=3/' /etc/multihome/multihome.conf")?;
    // (stdin open and silent: nobody answers.)
    let tried = vm.sh("sleep 30 | multihome try --timeout 10s 2>&1")?;
    assert_eq!(tried.code, 3, "try, not confirmed:\n{}", tried.output);
    assert_eq!(vm.ok("nmcli -g ipv4.route-metric connection show home-wlan1")?.trim(), "101", "try's rollback");
    profiles_keep_their_secrets(&mut vm, "try's rollback")?;

    // reset: multihome's amendments go, the profiles stay with their SSID and secret.
    vm.ok("cp /mnt/wifi-nm.conf /etc/multihome/multihome.conf")?;
    let reset = vm.ok("multihome reset 2>&1")?;
    println!("reset:\n{reset}");
    for s in ["wlan1", "wlan0"] {
        assert!(
            reset.contains(&format!("# profile \"home-{s}\" on {s}: the policy no longer has {s}; the routes and rules multihome wrote there are removed")),
            "{reset}"
        );
    }
    // (reset leaves the route metric apply gave the profile: printed, not asserted.)
    println!("home-wlan1's ipv4.route-metric after reset: {}", vm.ok("nmcli -g ipv4.route-metric connection show home-wlan1")?.trim());
    profiles_keep_their_secrets(&mut vm, "reset")?;

    // The bond: apply makes both Wi-Fi profiles the bond's slaves (their SSID and secret stay,
    // the stations associate as slaves, FailOverMACPolicy=active), reset frees them again.
    vm.ok(&format!("cat >/etc/multihome/multihome.conf <<'EOF'\n{}EOF", bond_policy()))?;
    let applied = vm.ok("multihome apply 2>&1")?;
    println!("apply, bond:\n{applied}");
    assert!(applied.contains("NetworkManager's checkpoint committed"), "{applied}");
    vm.wait_for("bond0 with eth0 active", "grep -qx 'Currently Active Slave: eth0' /proc/net/bonding/bond0", Duration::from_secs(90))?;
    for s in ["wlan1", "wlan0"] {
        assert_eq!(
            vm.ok(&format!("nmcli -g connection.master,connection.slave-type connection show home-{s}"))?.trim(),
            "bond0\nbond",
            "home-{s} is not bond0's slave"
        );
        vm.wait_for(&format!("{s} associated in the bond"), &wifi::associated(s), Duration::from_secs(90))?;
        vm.wait_for(
            &format!("{s}'s MII up in the bond"),
            &format!("grep -A1 -x 'Slave Interface: {s}' /proc/net/bonding/bond0 | grep -qx 'MII Status: up'"),
            Duration::from_secs(60),
        )?;
    }
    assert!(vm.ok("cat /sys/class/net/bond0/bonding/fail_over_mac")?.starts_with("active"), "bond0's fail_over_mac");
    profiles_keep_their_secrets(&mut vm, "apply with the bond")?;
    let reset = vm.ok("multihome reset 2>&1")?;
    println!("reset, bond:\n{reset}");
    for s in ["wlan1", "wlan0"] {
        assert!(
            reset.contains(&format!("# profile \"home-{s}\" on {s}: the policy no longer has {s}; it is no longer a slave of multihome's bond")),
            "{reset}"
        );
        assert_eq!(vm.ok(&format!("nmcli -g connection.master connection show home-{s}"))?.trim(), "", "reset left home-{s} a slave");
    }
    profiles_keep_their_secrets(&mut vm, "reset of the bond")?;
    vm.journal()?;
    vm.passed();
    Ok(())
}
