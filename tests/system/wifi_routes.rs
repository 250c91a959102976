//! Routes mode over real Wi-Fi with systemd-networkd: the seed's eth0 (static) and the stations
//! wlan1 and wlan0 (tests/system/wifi.rs), associated by wpa_supplicant@wlanN and addressed by
//! DHCP from the lab's dnsmasq through their access points, with multihome's .network files and
//! its daemon, which writes a lease's rules as the dispatcher hook would. eth0's cable is pulled,
//! so new connections leave via
//! wlan1; then the faults Wi-Fi has: wlan1's access point stops (hostapd killed: the station is
//! disassociated, its carrier goes), so new connections move to wlan0; the access point returns,
//! the station associates again, takes a new DHCP lease, and wlan1 carries new connections again
//! with its rules; then the access point deauthenticates the station (hostapd_cli), with the
//! same outcome. A new connection every 100 ms (a fresh socket each: every one a new routing
//! decision) counts what each fault costs; the figures are printed.

use std::time::Duration;

use super::bond::{ECHO_PORT, INTERNET};
use super::image;
use super::machine::Machine;
use super::network::Network;
use super::wifi;

/// The seed (examples/seed.conf) with its Wi-Fi uplinks by DHCP, as a station usually is.
pub const SEED_WITH_DHCP_WIFI: &str = "\
[Policy]
Backend=networkd
Mode=routes

[Probe]
Target=192.168.178.1
Target=198.51.100.10
Require=all

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

/// The guest's clock the prober stamps its lines with (CLOCK_BOOTTIME, as /proc/uptime).
const NOW: &str = "cut -d' ' -f1 /proc/uptime";

pub fn now(vm: &mut Machine) -> anyhow::Result<f64> {
    Ok(vm.ok(NOW)?.trim().parse()?)
}

/// `station`'s DHCP address, once it has one.
pub fn lease(vm: &mut Machine, station: &str) -> anyhow::Result<String> {
    let addr = vm.wait_for(
        &format!("{station}'s DHCP lease"),
        &format!("ip -4 -o addr show dev {station} | awk '/ dynamic /{{sub(\"/.*\", \"\", $4); print $4; f=1}} END{{exit !f}}'"),
        Duration::from_secs(90),
    )?;
    Ok(addr.trim().to_string())
}

/// The rules that make `addr` answer through `table`, as multihome's hook writes them.
pub fn rules_for(vm: &mut Machine, addr: &str, table: u32) -> anyhow::Result<()> {
    vm.wait_for(
        &format!("the rules of {addr} (table {table})"),
        &format!("ip -4 rule show | grep -q 'from {addr} lookup {table}' && ip -4 rule show | grep -q 'to {addr} lookup {table}' && ip -4 route show table {table} | grep -q default"),
        Duration::from_secs(60),
    )?;
    Ok(())
}

/// The prober: a new TCP connection to the lab's echo server every 100 ms (1 s to connect and
/// be answered), each logged to /run/mh-probe.log as "TIME ok SOURCE" or "TIME fail WHY".
/// One at a time: a connection that hangs delays the next (a fault that fails fast costs one
/// attempt per 100 ms).
pub fn start_prober(vm: &mut Machine) -> anyhow::Result<()> {
    run_prober(vm, false)
}

/// [`start_prober`] with every connection on a thread of its own, started every 100 ms whatever
/// the earlier ones do: a silent path makes each attempt wait its whole second, and one at a
/// time would then measure that second, not when new connections moved. Replaces a prober that
/// runs.
pub fn start_concurrent_prober(vm: &mut Machine) -> anyhow::Result<()> {
    vm.ok("systemctl stop mh-probe 2>/dev/null; systemctl reset-failed mh-probe 2>/dev/null; rm -f /run/mh-probe.log; true")?;
    run_prober(vm, true)
}

fn run_prober(vm: &mut Machine, concurrent: bool) -> anyhow::Result<()> {
    let prober = format!(
        "import socket, threading, time
log = open('/run/mh-probe.log', 'w', buffering=1)
lock = threading.Lock()
clock = lambda: time.clock_gettime(time.CLOCK_BOOTTIME)
def attempt(t):
    try:
        s = socket.create_connection(('{INTERNET}', {ECHO_PORT}), timeout=1)
        s.sendall(b'x\\n')
        answer = s.recv(16)
        src = s.getsockname()[0]
        s.close()
        line = '%.3f ok %s\\n' % (t, src) if answer else '%.3f fail closed\\n' % t
    except OSError as e:
        line = '%.3f fail %s\\n' % (t, type(e).__name__)
    with lock:
        log.write(line)
while True:
    t = clock()
    if {concurrent}:
        threading.Thread(target=attempt, args=(t,), daemon=True).start()
    else:
        attempt(t)
    time.sleep(max(0, t + 0.1 - clock()))
",
        concurrent = if concurrent { "True" } else { "False" }
    );
    vm.ok(&format!("cat >/run/mh-probe.py <<'PY'\n{prober}PY\nsystemd-run --unit=mh-probe python3 /run/mh-probe.py"))?;
    vm.wait_for("the prober's first connection", "grep -q ' ok ' /run/mh-probe.log", Duration::from_secs(60))?;
    Ok(())
}

/// One probe: when, and the source address it left from (None: it failed).
pub struct Probe {
    pub at: f64,
    pub source: Option<String>,
}

pub fn probes(vm: &mut Machine) -> anyhow::Result<Vec<Probe>> {
    let log = vm.ok("cat /run/mh-probe.log")?;
    // In time order: the concurrent prober logs each attempt when it ends.
    let mut all: Vec<Probe> = log
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let at = w.next()?.parse().ok()?;
            let ok = w.next()? == "ok";
            Some(Probe { at, source: if ok { w.next().map(str::to_string) } else { None } })
        })
        .collect();
    all.sort_by(|a, b| a.at.total_cmp(&b.at));
    Ok(all)
}

/// What a fault cost, from the prober's log between `from` and `to`: the new connections that
/// failed, the first one through `fallback` after `from`, and the first one through `home`
/// after `back` (the repair).
pub struct Cost {
    pub attempts: usize,
    pub failed: usize,
    pub to_fallback: Option<f64>,
    pub restored: Option<f64>,
}

pub fn cost(all: &[Probe], from: f64, back: f64, to: f64, home: &str, fallback: &str) -> Cost {
    let window: Vec<&Probe> = all.iter().filter(|p| p.at >= from && p.at <= to).collect();
    let fell_back = window.iter().find(|p| p.source.as_deref() == Some(fallback)).map(|p| p.at);
    // Home again: after the repair, and after new connections had left it (a probe through
    // wlan1 sent before the fault reached the kernel is not a return).
    let since = fell_back.map_or(back, |t| t.max(back));
    Cost {
        attempts: window.len(),
        failed: window.iter().filter(|p| p.source.is_none()).count(),
        to_fallback: fell_back.map(|t| t - from),
        restored: window.iter().find(|p| p.at > since && p.source.as_deref() == Some(home)).map(|p| p.at - back),
    }
}

/// Waits until new connections leave via wlan1 again from `addr` (the prober's log says so).
pub fn wlan1_carries(vm: &mut Machine, addr: &str, since: f64) -> anyhow::Result<()> {
    vm.wait_for(
        "new connections through wlan1 again",
        &format!("awk -v s={since} '$1 >= s && $2 == \"ok\" && $3 == \"{addr}\" {{f=1}} END{{exit !f}}' /run/mh-probe.log"),
        Duration::from_secs(120),
    )?;
    Ok(())
}

/// wlan1's access point stops for `down` (the station is disassociated; new connections go to
/// wlan0) and starts again; returns once wlan1 carries new connections again, with what that
/// cost, wlan1's new lease, and how long after the restart `reassociated` (the manager's word
/// that wlan1 is associated again) held. The prober must run with new connections via wlan1.
pub fn access_point_lost(vm: &mut Machine, reassociated: &str, wlan0: &str, down: Duration) -> anyhow::Result<(Cost, String, f64)> {
    let fault = now(vm)?;
    wifi::stop_access_point(vm, "wlan1")?;
    vm.wait_for("wlan1 disassociated", "iw dev wlan1 link | grep -q 'Not connected'", Duration::from_secs(30))?;
    vm.wait_for("new connections via wlan0", &format!("ip -4 route get {INTERNET} | grep -q 'dev wlan0 '"), Duration::from_secs(30))?;
    std::thread::sleep(down.saturating_sub(Duration::from_secs_f64(now(vm)? - fault)));
    // The access point returns: association, a new lease, wlan1 again, its rules.
    let back = now(vm)?;
    wifi::start_access_point(vm, "wlan1")?;
    vm.wait_for("wlan1 associated again", reassociated, Duration::from_secs(120))?;
    let associated = now(vm)? - back;
    let wlan1 = lease(vm, "wlan1")?;
    rules_for(vm, &wlan1, 102)?;
    wlan1_carries(vm, &wlan1, back)?;
    std::thread::sleep(Duration::from_secs(2));
    let end = now(vm)?;
    Ok((cost(&probes(vm)?, fault, back, end, &wlan1, wlan0), wlan1, associated))
}

/// wlan1's access point deauthenticates it, as seen by the wpa_supplicant of `supplicant` (its
/// unit); returns once `reassociated` (the manager's word that wlan1 is associated again) holds
/// and wlan1 carries new connections again, with what that cost and wlan1's lease. The prober
/// must run with new connections via wlan1.
pub fn deauthenticated(vm: &mut Machine, supplicant: &str, reassociated: &str, wlan0: &str) -> anyhow::Result<(Cost, String)> {
    let disconnects_now = wifi::disconnects(supplicant, "wlan1");
    let disconnects = vm.ok(&disconnects_now)?.trim().parse::<u32>()?;
    let deauth = now(vm)?;
    wifi::deauthenticate(vm, "wlan1", "wlan1")?;
    vm.wait_for("wlan1's deauthentication", &format!("test $({disconnects_now}) -gt {disconnects}"), Duration::from_secs(30))?;
    vm.wait_for("wlan1 associated again", reassociated, Duration::from_secs(90))?;
    let wlan1 = lease(vm, "wlan1")?;
    rules_for(vm, &wlan1, 102)?;
    wlan1_carries(vm, &wlan1, deauth)?;
    std::thread::sleep(Duration::from_secs(2));
    let end = now(vm)?;
    Ok((cost(&probes(vm)?, deauth, deauth, end, &wlan1, wlan0), wlan1))
}

/// The seed's host on networkd with real Wi-Fi (stations by wpa_supplicant@wlanN, leases by
/// DHCP through their access points), the policy applied and the daemon running; returns with
/// eth0's cable pulled, new connections via wlan1, the prober running, and wlan1's and wlan0's
/// leases.
pub fn networkd_host_without_eth0(net: &Network) -> anyhow::Result<(Machine, String, String)> {
    let mut vm = wifi::boot_installed(net, "seed-wifi.conf", SEED_WITH_DHCP_WIFI)?;
    wifi::start_access_points(&mut vm)?;
    for s in ["wlan1", "wlan0"] {
        wifi::start_station(&mut vm, s)?;
    }
    for s in ["wlan1", "wlan0"] {
        vm.wait_for(&format!("{s} associated"), &wifi::associated(s), Duration::from_secs(90))?;
    }
    vm.ok("mkdir -p /etc/multihome && cp /mnt/seed-wifi.conf /etc/multihome/multihome.conf && multihome check")?;
    let applied = vm.ok("multihome apply 2>&1")?;
    anyhow::ensure!(applied.contains("Applied"), "apply: {applied}");
    let wlan1 = lease(&mut vm, "wlan1")?;
    let wlan0 = lease(&mut vm, "wlan0")?;
    vm.ok("systemctl start multihome")?;
    rules_for(&mut vm, &wlan1, 102)?;
    rules_for(&mut vm, &wlan0, 103)?;
    vm.wait_for("eth0's rules", "ip -4 rule show | grep -q 'from 192.168.178.99 lookup 101'", Duration::from_secs(60))?;
    vm.wait_for("the daemon: eth0 first", "multihome status | grep -q 'New connections leave via eth0'", Duration::from_secs(60))?;
    // Each address answers through its own uplink, the Wi-Fi ones too.
    for addr in ["192.168.178.99", wlan1.as_str(), wlan0.as_str()] {
        vm.wait_for("the internet host answering", &format!("ping -n -c1 -W2 -I {addr} {INTERNET}"), Duration::from_secs(30))?;
    }
    // eth0's cable pulled: new connections leave via wlan1.
    vm.set_link("eth0", false)?;
    vm.wait_for("new connections via wlan1", &format!("ip -4 route get {INTERNET} | grep -q 'dev wlan1 '"), Duration::from_secs(30))?;
    start_prober(&mut vm)?;
    Ok((vm, wlan1, wlan0))
}

#[test]
fn routes_mode_follows_real_wifi_through_disassociation_and_deauthentication() -> anyhow::Result<()> {
    let _one = crate::one_machine_at_a_time();
    if !image::require() {
        return Ok(());
    }
    let (net, _servers) = wifi::network_with_servers()?;
    let (mut vm, wlan1, wlan0) = networkd_host_without_eth0(&net)?;
    let leases_before = vm.ok("journalctl -b -u systemd-networkd --no-pager | grep -c 'wlan1: DHCPv4 address'")?.trim().parse::<u32>()?;

    // wlan1's access point stops for 6 s: the station is disassociated; new connections go to
    // wlan0 until it is associated again, with a new lease and its rules.
    let (stopped, wlan1_again, _) = access_point_lost(&mut vm, &wifi::associated("wlan1"), &wlan0, Duration::from_secs(6))?;
    let leases_after = vm.ok("journalctl -b -u systemd-networkd --no-pager | grep -c 'wlan1: DHCPv4 address'")?.trim().parse::<u32>()?;
    assert!(leases_after > leases_before, "no new DHCP lease on wlan1 after the reassociation ({leases_before} before, {leases_after} after)");

    // The access point deauthenticates the station: it associates again at once.
    let (deauthenticated, wlan1_third) = deauthenticated(&mut vm, "wpa_supplicant@wlan1", &wifi::associated("wlan1"), &wlan0)?;
    vm.ok("systemctl stop mh-probe")?;

    let secs = |t: Option<f64>| t.map_or("never".to_string(), |t| format!("{t:.2} s"));
    println!(
        "wlan1's access point stopped for 6 s: {} of {} new connections failed; first through wlan0 {} after the stop; wlan1 ({} -> {}) carried again {} after hostapd's restart",
        stopped.failed,
        stopped.attempts,
        secs(stopped.to_fallback),
        wlan1,
        wlan1_again,
        secs(stopped.restored)
    );
    println!(
        "wlan1 deauthenticated: {} of {} new connections failed; first through wlan0 {}; wlan1 ({}) carried again {} after the deauthentication",
        deauthenticated.failed,
        deauthenticated.attempts,
        secs(deauthenticated.to_fallback),
        wlan1_third,
        secs(deauthenticated.restored)
    );
    assert!(stopped.to_fallback.is_some(), "no new connection left via wlan0 while wlan1's access point was down");
    assert!(stopped.restored.is_some() && deauthenticated.restored.is_some(), "wlan1 did not carry new connections again");
    // What the kernel's linkdown skip gives on a disassociation: the station's carrier goes with
    // the association, and no new connection waits for a dead path.
    assert!(stopped.failed <= 3, "{} new connections failed when wlan1's access point stopped", stopped.failed);
    assert!(deauthenticated.failed <= 3, "{} new connections failed when wlan1 was deauthenticated", deauthenticated.failed);
    let status = vm.ok("multihome status")?;
    assert!(status.contains("New connections leave via wlan1"), "{status}");
    vm.set_link("eth0", true)?;
    vm.wait_for("eth0 first again", &format!("ip -4 route get {INTERNET} | grep -q 'dev eth0 '"), Duration::from_secs(30))?;
    vm.journal()?;
    vm.passed();
    Ok(())
}
