//! The NetworkManager backend against the real NetworkManager in the lab host (private system
//! bus, keyfiles in the lab): the seed applied over D-Bus, a user's own profiles kept, failed
//! applies and unconfirmed `try`s rolled back, and failover on carrier loss with and without
//! multihome's sysctls.

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::lab::{inbound_is_symmetric, nmcli, require, seed_fails_over_to_wlan0_and_back};
use common::policy::Policy;
use common::serial;
use multihome::lab::policies::SEED;
use multihome::lab::probe::{Prober, outage};
use multihome::lab::{INTERNET, Lab, LabOptions, Manager, SEED_ADDRESSES, UPLINKS, seed_address};
use nix::sys::signal::Signal;

#[allow(dead_code)]
mod common;

/// The issue's measure for a live failover: a new connection every 10 ms.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);
/// Probes run this long before a fault, so the records show the uplink working.
const BEFORE_FAULT: Duration = Duration::from_millis(500);

fn nm_lab() -> anyhow::Result<Lab> {
    Lab::start(LabOptions::new(Manager::NetworkManager, common::binary()))
}

/// The seed applied over D-Bus and settled on eth0, with the state it left.
fn seed_applied() -> anyhow::Result<(Lab, String)> {
    let lab = nm_lab()?;
    lab.write_policy(SEED)?;
    lab.multihome_ok(&["apply"])?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    let before = state(&lab);
    Ok((lab, before))
}

/// What new connections saw around a carrier loss.
///
/// The kernel handles the carrier loss of a link whose iflink is its own ifindex (a physical NIC,
/// and the lab's eth0, whose veth peer happens to have ifindex 2 too) as non-urgent: linkwatch
/// runs it up to 1 s after its previous run anywhere on the machine, and only then marks the
/// routes linkdown, sets the operstate DOWN and tells the network managers. What happens
/// before is the same with any manager; what happens after is what the policy decides. So the
/// outage is split at the moment the operstate turned DOWN.
#[derive(Debug)]
struct CarrierLoss {
    /// From the fault until the kernel processed it.
    kernel: Duration,
    lost_before_kernel: usize,
    /// Lost after the kernel processed the carrier loss: what the policy is judged by.
    lost_after_kernel: usize,
    restore_after_kernel: Duration,
    /// The uplink that new connections used at the end.
    source_at_end: Option<Ipv4Addr>,
}

impl std::fmt::Display for CarrierLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kernel processed it after {:?} ({} probes lost meanwhile); after that {} lost, new connections working again {:?} later; at the end via {:?}",
            self.kernel, self.lost_before_kernel, self.lost_after_kernel, self.restore_after_kernel, self.source_at_end
        )
    }
}

/// Cuts `iface`'s carrier while probing every 10 ms, and watches for `observe`.
fn carrier_loss(lab: &Lab, iface: &str, observe: Duration) -> anyhow::Result<CarrierLoss> {
    let prober = Prober::start(&lab.host(), INTERNET, PROBE_INTERVAL)?;
    std::thread::sleep(BEFORE_FAULT);
    let fault = prober.now();
    lab.set_carrier(iface, false)?;
    let mut processed = None;
    while processed.is_none() && prober.now() < fault + Duration::from_secs(3) {
        if lab.operstate(iface) == "DOWN" {
            processed = Some(prober.now());
        }
    }
    let processed = processed.ok_or_else(|| anyhow::anyhow!("the kernel did not process {iface}'s carrier loss within 3 s"))?;
    std::thread::sleep(observe.saturating_sub(prober.now() - fault));
    let records = prober.stop()?;
    let after = outage(&records, processed);
    let all = outage(&records, fault);
    Ok(CarrierLoss {
        kernel: processed - fault,
        lost_before_kernel: all.lost - after.lost,
        lost_after_kernel: after.lost,
        restore_after_kernel: after.restore,
        source_at_end: records.last().and_then(|r| r.source),
    })
}

/// Everything an apply may change, as text: profiles with their ipv4 values and devices, the
/// kernel's addresses, rules and routes (without the kernel's own `linkdown` marks).
fn state(lab: &Lab) -> String {
    let mut s = nmcli(lab, &["-t", "-f", "NAME,UUID,DEVICE", "connection", "show"]);
    let names: Vec<String> = s.lines().filter_map(|l| l.split(':').next()).map(str::to_string).filter(|n| n != "lo").collect();
    for n in names {
        s.push_str(&nmcli(
            lab,
            &["-t", "-f", "ipv4.method,ipv4.addresses,ipv4.gateway,ipv4.route-metric,ipv4.routes,ipv4.routing-rules", "connection", "show", &n],
        ));
    }
    s.push_str(&lab.kernel_state().unwrap());
    s
}

fn settles_back_to(lab: &Lab, before: &str, what: &str) {
    let mut now = String::new();
    let back = lab.wait_for(Duration::from_secs(15), || {
        now = state(lab);
        now == before
    });
    assert!(
        back.is_ok(),
        "{what}: the state before is not back\n{}",
        similar::TextDiff::from_lines(before, now.as_str()).unified_diff().header("before", "now")
    );
}

/// Profiles a user made by hand with nmcli for the seed's three links, metric-ordered as the
/// seed's answer does, without multihome. eth0's has settings multihome must keep.
fn user_profiles(lab: &Lab) {
    for (i, (iface, a)) in SEED_ADDRESSES.iter().enumerate() {
        let mut args = vec![
            "connection".to_string(),
            "add".into(),
            "type".into(),
            "ethernet".into(),
            "ifname".into(),
            iface.to_string(),
            "con-name".into(),
            format!("user-{iface}"),
            "ipv4.method".into(),
            "manual".into(),
            "ipv4.addresses".into(),
            format!("{a}/24"),
            "ipv4.gateway".into(),
            "192.168.178.1".into(),
            "ipv4.route-metric".into(),
            (100 + i).to_string(),
        ];
        if *iface == "eth0" {
            for kv in ["802-3-ethernet.mtu", "1400", "connection.zone", "work", "ipv6.method", "disabled", "ipv4.dns-search", "lan"] {
                args.push(kv.into());
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        nmcli(lab, &args);
    }
}

#[test]
fn seed_applied_over_dbus_is_symmetric_and_fails_over_at_once_in_order() -> anyhow::Result<()> {
    if !require(Manager::NetworkManager) {
        return Ok(());
    }
    let _serial = serial();
    let lab = nm_lab()?;
    lab.write_policy(SEED)?;
    // `auto`: NetworkManager owns its name on the lab's bus, so it is the backend.
    let out = lab.multihome_ok(&["apply"])?;
    assert!(out.contains("NetworkManager's checkpoint committed"), "{out}");
    for u in UPLINKS {
        assert!(out.contains(&format!("created new profile \"multihome-{u}\" on {u}")), "{out}");
        let keyfile = lab.dir().join(format!("etc/NetworkManager/system-connections/multihome-{u}.nmconnection"));
        let mode = std::fs::metadata(&keyfile)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", keyfile.display());
    }
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    eprintln!(
        "nmcli view of what multihome set:\n{}",
        nmcli(
            &lab,
            &[
                "-f",
                "connection.id,connection.interface-name,ipv4.method,ipv4.addresses,ipv4.gateway,ipv4.route-metric,ipv4.routes,ipv4.routing-rules",
                "connection",
                "show",
                "multihome-eth0"
            ]
        )
    );

    // Inbound: each address answers, through the interface that owns it.
    inbound_is_symmetric(&lab, 20)?;

    // Outbound: carrier loss on eth0 loses no 10 ms probe (ignore_routes_with_linkdown skips the
    // dead route at once, long before NetworkManager removes it), then wlan1, then back.
    let m = carrier_loss(&lab, "eth0", Duration::from_secs(8))?;
    eprintln!("NetworkManager + multihome, eth0 carrier loss: {m}");
    assert!(m.restore_after_kernel <= PROBE_INTERVAL, "{m}");
    assert_eq!(m.lost_after_kernel, 0, "probes lost after the kernel processed the carrier loss, with multihome's policy: {m:?}");
    assert_eq!(m.source_at_end, Some(seed_address("wlan1")), "new connections after eth0's loss must leave by wlan1");
    seed_fails_over_to_wlan0_and_back(&lab)?;

    // Applying twice changes nothing.
    let before = state(&lab);
    let plan = lab.multihome_ok(&["plan"])?;
    let again = lab.multihome_ok(&["apply"])?;
    assert!(plan.contains("No changes"), "plan before the second apply: {plan}");
    assert!(again.contains("Nothing to do"), "second apply: {again}");
    assert_eq!(state(&lab), before);
    Ok(())
}

#[test]
fn user_profiles_keep_their_settings_and_stop_losing_traffic_on_carrier_loss() -> anyhow::Result<()> {
    if !require(Manager::NetworkManager) {
        return Ok(());
    }
    let _serial = serial();
    let lab = nm_lab()?;
    user_profiles(&lab);
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;

    // NetworkManager alone: the dead link's default route stays until NetworkManager removes
    // it, and new connections are lost meanwhile.
    let alone = carrier_loss(&lab, "eth0", Duration::from_secs(10))?;
    eprintln!("NetworkManager alone, eth0 carrier loss: {alone}");
    assert!(alone.lost_after_kernel > 100, "NetworkManager alone lost less than 1 s: the baseline this test compares with is gone: {alone:?}");
    lab.set_carrier("eth0", true)?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;

    lab.write_policy(SEED)?;
    let plan = lab.multihome_ok(&["plan", "--backend", "networkmanager"])?;
    assert!(plan.contains("+ipv4.routing-rules: priority 10000 from 192.168.178.99/32 table 101"), "{plan}");
    let out = lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    for u in UPLINKS {
        assert!(out.contains(&format!("updated profile \"user-{u}\" on {u}")), "{out}");
        assert!(out.contains(&format!("reapplied profile \"user-{u}\" on {u} in place")), "{out}");
    }
    assert!(!out.contains("created"), "the user's profiles are used, none created: {out}");
    // Unrelated settings of the user's profile are as they were.
    let kept = nmcli(&lab, &["-t", "-f", "802-3-ethernet.mtu,connection.zone,ipv6.method,ipv4.dns-search", "connection", "show", "user-eth0"]);
    assert_eq!(kept, "802-3-ethernet.mtu:1400\nconnection.zone:work\nipv6.method:disabled\nipv4.dns-search:lan\n");
    assert!(lab.ip_host(&["link", "show", "eth0"])?.contains("mtu 1400"));
    assert!(lab.ip_host(&["-4", "rule"])?.contains("10000:\tfrom 192.168.178.99 lookup 101"));

    // With multihome's policy: no probe lost.
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    let with = carrier_loss(&lab, "eth0", Duration::from_secs(8))?;
    eprintln!("NetworkManager + multihome (user profiles), eth0 carrier loss: {with}");
    assert!(with.restore_after_kernel <= PROBE_INTERVAL, "{with}");
    assert_eq!(with.lost_after_kernel, 0, "{with:?}");
    assert_eq!(with.source_at_end, Some(seed_address("wlan1")));
    Ok(())
}

#[test]
fn failed_apply_rolls_back_to_the_state_before() -> anyhow::Result<()> {
    if !require(Manager::NetworkManager) {
        return Ok(());
    }
    let _serial = serial();
    let lab = nm_lab()?;
    lab.write_policy(SEED)?;
    lab.multihome_ok(&["apply"])?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    let before = state(&lab);

    // An uplink NetworkManager has no device for: refused before anything changes.
    lab.write_policy(&format!("{SEED}\n[Uplink]\nInterface=eth9\nPriority=4\nAddress=192.168.178.96/24\nGateway=192.168.178.1\n"))?;
    let out = lab.multihome(&["apply"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("NetworkManager has no device eth9"), "{err}");
    assert_eq!(state(&lab), before);

    // eth0 moved to DHCP, with no DHCP server on the LAN, and wlan0 dropped: the device never
    // shows the policy, so the checkpoint is rolled back: the static configuration returns,
    // and so does the removed multihome-wlan0 (same UUID, active again).
    let dhcp_without_wlan0 =
        Policy::seed().without_uplink("wlan0").uplink_without("eth0", "Address").uplink_without("eth0", "Gateway").uplink("eth0", "DHCP", "ipv4");
    lab.write_policy(dhcp_without_wlan0.text())?;
    let out = lab.multihome(&["apply"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "apply succeeded without a lease: {}", String::from_utf8_lossy(&out.stdout));
    assert!(err.contains("eth0") && err.contains("rolled back"), "{err}");
    settles_back_to(&lab, &before, "after the failed apply");
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;

    // The same without the failure: the profile multihome made for wlan0 goes.
    lab.write_policy(Policy::seed().without_uplink("wlan0").text())?;
    let out = lab.multihome_ok(&["apply"])?;
    assert!(out.contains("removed profile \"multihome-wlan0\""), "{out}");
    assert!(!nmcli(&lab, &["-t", "-f", "NAME", "connection", "show"]).contains("multihome-wlan0"));
    Ok(())
}

#[test]
fn try_reverts_unless_confirmed() -> anyhow::Result<()> {
    if !require(Manager::NetworkManager) {
        return Ok(());
    }
    let _serial = serial();
    let (mut lab, before) = seed_applied()?;
    let moved = Policy::seed().uplink("eth0", "Address", "192.168.178.95/24");
    lab.write_policy(moved.text())?;

    // Not confirmed (stdin is /dev/null, no signal; a hangup does not count): reverted.
    let (group, log) = {
        let t = lab.spawn_multihome(&["try", "--timeout", "4s"])?;
        (t.id(), t.log.clone())
    };
    lab.wait_for_log(&log, "Press Enter", Duration::from_secs(5))?;
    assert!(lab.ip_host(&["-4", "-br", "addr", "show", "eth0"])?.contains("192.168.178.95"), "try did not apply");
    signal_group(group, Signal::SIGHUP);
    lab.wait_for_log(&log, "Not confirmed", Duration::from_secs(15))?;
    settles_back_to(&lab, &before, "after an unconfirmed try");

    // Confirmed by SIGUSR1: kept, and the checkpoint is gone so nothing rolls back later.
    let (group, log) = {
        let t = lab.spawn_multihome(&["try", "--timeout", "60s"])?;
        (t.id(), t.log.clone())
    };
    lab.wait_for_log(&log, "Press Enter", Duration::from_secs(5))?;
    signal_group(group, Signal::SIGUSR1);
    lab.wait_for_log(&log, "Kept.", Duration::from_secs(10))?;
    assert_eq!(checkpoints(&lab), "ao 0");
    assert!(lab.ip_host(&["-4", "-br", "addr", "show", "eth0"])?.contains("192.168.178.95"));
    Ok(())
}

/// Signals a lab process group (nsenter and the multihome it runs), as a terminal does.
fn signal_group(group: u32, signal: Signal) {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group as i32), signal).expect("the try process group exists");
}

#[test]
fn rendered_keyfiles_load_and_are_what_apply_wants() -> anyhow::Result<()> {
    if !require(Manager::NetworkManager) {
        return Ok(());
    }
    let _serial = serial();
    let lab = nm_lab()?;
    // eth0 alone: the lab's other links are named like Wi-Fi, whose keyfiles need an SSID.
    lab.write_policy(Policy::seed().without_uplink("wlan1").without_uplink("wlan0").text())?;
    // Into the lab's directory that the host's private mounts show as /etc/NetworkManager:
    // `--out /` is refused (an image option never writes the running system).
    let out = lab.multihome_ok(&["render", "--backend", "nm-keyfile", "--out", &lab.dir().display().to_string()])?;
    assert!(out.contains(&format!("wrote {}/etc/NetworkManager/system-connections/multihome-eth0.nmconnection", lab.dir().display())), "{out}");
    nmcli(&lab, &["connection", "reload"]);
    lab.wait_for(Duration::from_secs(15), || nmcli(&lab, &["-t", "-f", "DEVICE,CONNECTION", "device"]).contains("eth0:multihome-eth0"))?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    assert!(lab.ip_host(&["-4", "rule"])?.contains("10001:\tfrom all to 192.168.178.99 lookup 101"));
    // The same profile (name, UUID, values) as apply wants: nothing to update or create (only
    // eth0's MPTCP endpoint, which a rendered keyfile cannot make: apply adds it).
    let plan: serde_json::Value = serde_json::from_str(&lab.multihome_ok(&["plan", "--backend", "networkmanager", "--json"])?)?;
    let subjects: Vec<&str> = plan["changes"].as_array().into_iter().flatten().filter_map(|c| c["subject"].as_str()).collect();
    assert!(subjects.iter().all(|s| s.starts_with("MPTCP ")), "{plan}");
    let out = lab.multihome_ok(&["apply", "--backend", "networkmanager"])?;
    assert!(!out.contains("updated") && !out.contains("created") && !out.contains("activated"), "{out}");
    Ok(())
}

/// The checkpoints NetworkManager holds, as busctl prints the property (`ao 0`, `ao 1 "/org/..."`).
fn checkpoints(lab: &Lab) -> String {
    let out = lab
        .run_in_host(
            "busctl",
            &["get-property", "org.freedesktop.NetworkManager", "/org/freedesktop/NetworkManager", "org.freedesktop.NetworkManager", "Checkpoints"],
        )
        .expect("busctl runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// multihome killed at the worst moment, after it changed the profiles and before it committed:
/// NetworkManager rolls the change back by itself when the checkpoint's timeout runs out, both
/// for `try` (its timeout plus 2 s) and for a plain apply (60 s), and no checkpoint stays.
#[test]
fn a_killed_try_or_apply_is_rolled_back_by_networkmanager_itself() -> anyhow::Result<()> {
    if !require(Manager::NetworkManager) {
        return Ok(());
    }
    let _serial = serial();
    let (mut lab, before) = seed_applied()?;

    // `try --timeout 4s`, killed while it waits for the answer.
    lab.write_policy(Policy::seed().uplink("eth0", "Address", "192.168.178.95/24").text())?;
    let (group, log) = {
        let t = lab.spawn_multihome(&["try", "--timeout", "4s"])?;
        (t.id(), t.log.clone())
    };
    lab.wait_for_log(&log, "Press Enter", Duration::from_secs(5))?;
    signal_group(group, Signal::SIGKILL);
    assert!(lab.ip_host(&["-4", "-br", "addr", "show", "eth0"])?.contains("192.168.178.95"), "try did not apply");
    assert!(checkpoints(&lab).starts_with("ao 1"), "{}", checkpoints(&lab));
    settles_back_to(&lab, &before, "after a killed try");
    assert_eq!(checkpoints(&lab), "ao 0");

    // A plain apply killed during its verification: eth0 turned to DHCP where no DHCP server
    // answers, so the device stays in "getting IP configuration" and apply keeps waiting.
    let dhcp = Policy::seed().uplink_without("eth0", "Address").uplink_without("eth0", "Gateway").uplink("eth0", "DHCP", "yes");
    lab.write_policy(dhcp.text())?;
    let (group, _log) = {
        let t = lab.spawn_multihome(&["apply"])?;
        (t.id(), t.log.clone())
    };
    let started = std::time::Instant::now();
    lab.wait_for(Duration::from_secs(15), || nmcli(&lab, &["-g", "ipv4.method", "connection", "show", "multihome-eth0"]).trim() == "auto")?;
    signal_group(group, Signal::SIGKILL);
    assert!(checkpoints(&lab).starts_with("ao 1"), "the apply's checkpoint is not held: {}", checkpoints(&lab));
    // Not before its 60 s...
    std::thread::sleep(Duration::from_secs(40).saturating_sub(started.elapsed()));
    assert_eq!(nmcli(&lab, &["-g", "ipv4.method", "connection", "show", "multihome-eth0"]).trim(), "auto", "rolled back too early");
    // ... and then by itself.
    let mut now = String::new();
    let back = lab.wait_for(Duration::from_secs(40), || {
        now = state(&lab);
        now == before
    });
    assert!(
        back.is_ok(),
        "not rolled back 80 s after the apply began:\n{}",
        similar::TextDiff::from_lines(&before, &now).unified_diff().header("before", "now")
    );
    assert_eq!(checkpoints(&lab), "ao 0");
    Ok(())
}
