//! Mode=bond on a Debian machine whose kernel has the bonding driver (the lab's has not): the
//! package's `multihome apply` makes the active-backup bond over three NICs on the lab's LAN,
//! first with the running networkd, then with NetworkManager over the system bus, and each time
//! an established TCP connection and a bulk transfer (what an `scp` does) to the lab's internet
//! host survive the primary's carrier loss (qemu's `set_link`, the cable pulled), the backup the
//! bond takes is the policy's second (Priority=2) even when the kernel's own list puts it last,
//! and the primary becomes active again when it returns. The package's daemon shows the bond's
//! active slave, each slave's MII state and priority as they change (`multihome status`), and
//! `multihome lab --mode bond` runs the seed's bond in namespaces inside the machine, whose
//! kernel can bond.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use multihome::lab::netns::in_netns;

use super::image;
use super::machine::Machine;
use super::network::{self, Network};

/// The bond over eth3 (on eth0's switch), eth4 (on wlan1's) and eth5 (on wlan0's), all on the
/// lab's LAN, in this order of preference.
const BOND: &str = "\
[Policy]
Backend=networkd
Mode=bond

[Bond]
Name=bond0
Address=192.168.178.60/24
Gateway=192.168.178.1
MIIMonitorSec=100ms
UpDelaySec=1s
DownDelaySec=0

[Uplink]
Interface=eth3
Priority=1

[Uplink]
Interface=eth4
Priority=2

[Uplink]
Interface=eth5
Priority=3
";

pub(super) const INTERNET: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
pub(super) const ECHO_PORT: u16 = 7777;
const SINK_PORT: u16 = 7778;
/// The bulk transfer: 200 chunks of 20 kB, 50 ms apart, so it is still open when the cable goes.
const TRANSFER_BYTES: u64 = 4_000_000;

/// Servers in the lab's internet namespace: a line echo that counts the lines it answered and
/// the connections it took, and a sink that records how many bytes each finished transfer
/// brought. They stop with the test.
pub(super) struct Servers {
    stop: Arc<AtomicBool>,
    pub(super) echoed: Arc<AtomicU64>,
    pub(super) echo_connections: Arc<AtomicU64>,
    /// Bytes of the last transfer that ended (the client closed it), or 0.
    transferred: Arc<AtomicU64>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(listener: TcpListener, stop: Arc<AtomicBool>, handle: impl Fn(std::net::TcpStream) + Send + Sync + 'static) {
    let handle = Arc::new(handle);
    listener.set_nonblocking(true).expect("a nonblocking listener");
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((conn, _)) => {
                    let _ = conn.set_nonblocking(false);
                    let handle = handle.clone();
                    std::thread::spawn(move || handle(conn));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
}

pub(super) fn start_servers(ns: &str) -> anyhow::Result<Servers> {
    let echo = in_netns(ns, || TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, ECHO_PORT)))?;
    let sink = in_netns(ns, || TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, SINK_PORT)))?;
    let s = Servers { stop: Arc::new(AtomicBool::new(false)), echoed: Arc::default(), echo_connections: Arc::default(), transferred: Arc::default() };
    let (echoed, connections) = (s.echoed.clone(), s.echo_connections.clone());
    serve(echo, s.stop.clone(), move |conn| {
        connections.fetch_add(1, Ordering::Relaxed);
        let mut out = conn.try_clone().expect("a second handle");
        for line in BufReader::new(conn).lines() {
            let Ok(line) = line else { break };
            if writeln!(out, "{line}").is_err() {
                break;
            }
            echoed.fetch_add(1, Ordering::Relaxed);
        }
    });
    let transferred = s.transferred.clone();
    serve(sink, s.stop.clone(), move |mut conn| {
        let mut total = 0u64;
        let mut buf = [0u8; 65536];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                transferred.store(total, Ordering::Relaxed);
                break;
            }
            total += n as u64;
        }
    });
    Ok(s)
}

/// Waits until `cond` holds, checking every 200 ms.
fn wait(what: &str, within: Duration, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + within;
    while !cond() {
        if std::time::Instant::now() >= deadline {
            anyhow::bail!("{what}: not within {} s", within.as_secs());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// The kernel's view of the bond, from /proc/net/bonding.
const ACTIVE_SLAVE: &str = "sed -n 's/^Currently Active Slave: //p' /proc/net/bonding/bond0";

#[test]
fn a_bond_keeps_established_connections_through_the_primarys_carrier_loss() -> anyhow::Result<()> {
    let _one = crate::one_machine_at_a_time();
    if !image::require() {
        return Ok(());
    }
    let image = image::machine()?;
    let nics = network::seed_and_bond_nics();
    let net = Network::build(&nics)?;
    let servers = start_servers(&net.names.internet())?;
    let dir = std::env::temp_dir().join(format!("multihome-system-bond-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let policy = dir.join("bond.conf");
    std::fs::write(&policy, BOND)?;
    let deb = image::deb();
    let booted = Machine::boot(&image, &net, &nics, &[("multihome.deb", &deb), ("bond.conf", &policy)]);
    let _ = std::fs::remove_dir_all(&dir);
    let mut vm = booted?;
    vm.ok("mount -o ro /dev/vdb /mnt")?;
    vm.ok("DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends /mnt/multihome.deb")?;

    // apply with the running networkd: the .netdev makes bond0, the slaves' files enslave
    // eth3 (the primary) and eth4.
    // With the daemon's metrics on loopback, to read its bond families from the real bond.
    vm.ok("mkdir -p /etc/multihome && cp /mnt/bond.conf /etc/multihome/multihome.conf && printf '\\n[Metrics]\\nListen=127.0.0.1:9469\\n' >>/etc/multihome/multihome.conf && multihome check")?;
    let applied = vm.ok("multihome apply 2>&1")?;
    assert!(applied.contains("Applied"), "{applied}");
    vm.wait_for("bond0 with eth3 active", &format!("{ACTIVE_SLAVE} | grep -qx eth3"), Duration::from_secs(60))?;
    let bonding = vm.ok("cat /proc/net/bonding/bond0")?;
    for line in [
        "Bonding Mode: fault-tolerance (active-backup)",
        "Primary Slave: eth3",
        "MII Polling Interval (ms): 100",
        "Up Delay (ms): 1000",
        "Slave Interface: eth4",
        "Slave Interface: eth5",
    ] {
        assert!(bonding.contains(line), "{line:?} not in /proc/net/bonding/bond0:\n{bonding}");
    }
    vm.wait_for("the internet host through the bond", &format!("ping -n -c1 -W2 -I 192.168.178.60 {INTERNET}"), Duration::from_secs(60))?;
    let again = vm.ok("multihome apply 2>&1")?;
    assert!(again.contains("Nothing to do"), "second apply: {again}");
    // The daemon of the package, in bond mode: the kernel's bond as it is.
    vm.ok("systemctl restart multihome")?;
    daemon_shows(&mut vm, "eth3", &[("eth3", "up", true), ("eth4", "up", false), ("eth5", "up", false)])?;
    let text = vm.ok("multihome status")?;
    assert!(text.contains("The bond's active slave is eth3 (*)"), "{text}");
    metrics_show(&mut vm, "eth3", &[("eth3", "up"), ("eth4", "up"), ("eth5", "up")])?;

    // eth4 enslaved again, as an administrator's or a manager's reactivation does: the kernel's
    // list of slaves then ends with it, and its priority is back at 0.
    vm.ok("ip link set eth4 nomaster && ip link set eth4 down && ip link set eth4 master bond0 && ip link set eth4 up")?;
    connections_survive_the_primarys_carrier_loss(&mut vm, &servers)?;

    // The same bond through NetworkManager over the system bus: the administrator moves the
    // machine over (networkd's bond and files go), and apply makes the bond's profile and the
    // slaves' inside a checkpoint.
    vm.ok("rm -f /etc/systemd/network/10-multihome-* && systemctl disable --now systemd-networkd.socket systemd-networkd.service networkd-dispatcher.service 2>&1 && ip link del bond0")?;
    vm.ok("printf '[main]\\nno-auto-default=*\\n' >/etc/NetworkManager/conf.d/90-uplinks.conf && systemctl enable --now NetworkManager 2>&1")?;
    // Its name on the bus comes before its Settings object (seen on a loaded machine), and an
    // introspection of a path it does not serve yet still succeeds: ask the object itself.
    vm.wait_for(
        "NetworkManager's settings on the bus",
        "nm-online -s -q -t 5; busctl call org.freedesktop.NetworkManager /org/freedesktop/NetworkManager/Settings \
         org.freedesktop.NetworkManager.Settings ListConnections >/dev/null",
        Duration::from_secs(90),
    )?;
    vm.ok("sed -i 's/^Backend=networkd$/Backend=networkmanager/' /etc/multihome/multihome.conf")?;
    let applied = vm.ok("multihome apply 2>&1")?;
    assert!(applied.contains("NetworkManager's checkpoint committed"), "{applied}");
    for p in [
        "new profile \"multihome-bond0\" of bond bond0",
        "new profile \"multihome-eth3\" on eth3",
        "new profile \"multihome-eth4\" on eth4",
        "new profile \"multihome-eth5\" on eth5",
    ] {
        assert!(applied.contains(&format!("created {p}")), "{applied}");
    }
    vm.wait_for("bond0 with eth3 active", &format!("{ACTIVE_SLAVE} | grep -qx eth3"), Duration::from_secs(60))?;
    let options = vm.ok("nmcli -g bond.options connection show multihome-bond0")?;
    for o in ["mode=active-backup", "miimon=100", "updelay=1000", "primary=eth3"] {
        assert!(options.split([',', '\n']).any(|x| x == o), "{o} not in {options}");
    }
    vm.wait_for("the internet host through the bond", &format!("ping -n -c1 -W2 -I 192.168.178.60 {INTERNET}"), Duration::from_secs(60))?;
    let again = vm.ok("multihome apply 2>&1")?;
    assert!(again.contains("Nothing to do"), "second apply: {again}");
    // NetworkManager 1.42 has no bond-port.prio; it enslaves eth4 again when its profile is
    // activated again.
    vm.ok("nmcli connection up multihome-eth4 2>&1")?;
    connections_survive_the_primarys_carrier_loss(&mut vm, &servers)?;

    // `multihome lab --mode bond` on a kernel that can bond: the seed's host in namespaces in
    // the machine, networkd making the bond from multihome's files, an open TCP connection
    // through eth0's carrier loss (a Wi-Fi slave becomes active, the kernel's choice: wlan0 in
    // the first run) and its return (eth0 again).
    let lab = vm.sh("multihome lab --mode bond --backend networkd 2>&1")?;
    assert_eq!(lab.code, 0, "multihome lab --mode bond:\n{}", lab.output);
    let bond_lines: Vec<&str> = lab.output.lines().filter(|l| l.split_whitespace().nth(1) == Some("BOND")).collect();
    assert!(bond_lines.first().is_some_and(|l| l.ends_with("bond0 active slave eth0")), "{}", lab.output);
    assert!(bond_lines.iter().any(|l| l.ends_with("bond0 active slave wlan1") || l.ends_with("bond0 active slave wlan0")), "{}", lab.output);
    assert!(bond_lines.last().is_some_and(|l| l.ends_with("bond0 active slave eth0")), "{}", lab.output);
    assert!(lab.output.contains(" 0 bytes lost") && !lab.output.contains("it ended:"), "{}", lab.output);
    assert!(lab.output.contains("Done: namespaces and processes removed"), "{}", lab.output);
    println!("multihome lab --mode bond in the machine:\n{}", lab.output);
    vm.journal()?;
    vm.passed();
    Ok(())
}

/// `multihome lab --mode bond --fault silent` inside the machine, whose kernel can bond: the
/// seed's bond with the daemon probing through it (ProbeFailover=yes); eth0's switch loses its
/// upstream while eth0 keeps its carrier, which the bond's MII monitor cannot see. The daemon's
/// probes fail, it makes wlan1 (the next slave in the policy's order) active over rtnetlink, the
/// open TCP connection goes on without losing a byte, and after the repair the daemon's trial
/// of eth0 keeps it.
#[test]
fn the_daemon_moves_the_bond_off_a_primary_that_failed_silently() -> anyhow::Result<()> {
    let _one = crate::one_machine_at_a_time();
    if !image::require() {
        return Ok(());
    }
    let image = image::machine()?;
    let nics = network::seed_and_bond_nics();
    let net = Network::build(&nics)?;
    let deb = image::deb();
    let mut vm = Machine::boot(&image, &net, &nics, &[("multihome.deb", &deb)])?;
    vm.ok("mount -o ro /dev/vdb /mnt")?;
    vm.ok("DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends /mnt/multihome.deb")?;
    let lab = vm.sh("multihome lab --mode bond --fault silent --backend networkd 2>&1")?;
    println!("multihome lab --mode bond --fault silent in the machine:\n{}", lab.output);
    assert_eq!(lab.code, 0, "multihome lab --mode bond --fault silent:\n{}", lab.output);
    let kind = |l: &str, k: &str| l.split_whitespace().nth(1) == Some(k);
    let bond_lines: Vec<&str> = lab.output.lines().filter(|l| kind(l, "BOND")).collect();
    assert!(bond_lines.first().is_some_and(|l| l.ends_with("bond0 active slave eth0")), "{}", lab.output);
    assert!(bond_lines.iter().any(|l| l.ends_with("bond0 active slave wlan1")), "the daemon did not make wlan1 active:\n{}", lab.output);
    assert!(bond_lines.last().is_some_and(|l| l.ends_with("bond0 active slave eth0")), "{}", lab.output);
    let fault = lab.output.lines().position(|l| kind(l, "FAULT") && l.contains("fails silently")).expect("the fault");
    let daemon: Vec<&str> = lab.output.lines().skip(fault).filter(|l| kind(l, "DAEMON")).collect();
    assert!(daemon.iter().any(|l| l.contains("fail while eth0's MII is up: a silent failure")), "{}", lab.output);
    assert!(daemon.iter().any(|l| l.contains("made wlan1 the active slave instead of eth0")), "{}", lab.output);
    // Before the repair (6 s after the fault, the hold 2 s): a trial of eth0, which fails and
    // goes back to wlan1; after it, a trial that keeps eth0.
    let repair = lab.output.lines().position(|l| kind(l, "FAULT") && l.contains("is repaired upstream")).expect("the repair");
    let before: Vec<&str> = lab.output.lines().take(repair).skip(fault).filter(|l| kind(l, "DAEMON")).collect();
    assert!(before.iter().any(|l| l.contains("made eth0 the active slave instead of wlan1: trying eth0 again after a 2.0 s hold")), "{}", lab.output);
    assert!(before.iter().any(|l| l.contains("made wlan1 the active slave instead of eth0: probes through eth0 still fail")), "{}", lab.output);
    let after: Vec<&str> = lab.output.lines().skip(repair).filter(|l| kind(l, "DAEMON")).collect();
    assert!(after.iter().any(|l| l.contains("made eth0 the active slave instead of wlan1: trying eth0 again")), "{}", lab.output);
    assert!(after.iter().any(|l| l.contains("eth0: path recovering -> path up")), "{}", lab.output);
    // `multihome status` after the move: eth0's path down (its MII up), wlan1 active and answering.
    let status: Vec<&str> = lab.output.lines().filter(|l| kind(l, "STATUS")).collect();
    let row = |iface: &str| status.iter().find(|l| l.split_whitespace().nth(2).is_some_and(|w| w.trim_start_matches('*') == iface)).copied().unwrap_or("");
    assert!(row("eth0").contains("path-down") && row("eth0").contains("probes through bond0 via eth0 failed while its MII was up"), "{}", lab.output);
    assert!(row("wlan1").contains("probes through it answer"), "{}", lab.output);
    assert!(status.iter().any(|l| l.contains("The bond's active slave is wlan1 (*)")), "{}", lab.output);
    assert!(lab.output.contains(" 0 bytes lost") && !lab.output.contains("it ended:"), "{}", lab.output);
    assert!(lab.output.contains("Done: namespaces and processes removed"), "{}", lab.output);
    vm.journal()?;
    vm.passed();
    Ok(())
}

/// Waits until the daemon (`multihome status --json`) shows `active` as the bond's active slave
/// and each slave with its MII state and role; the error shows what it showed last.
fn daemon_shows(vm: &mut Machine, active: &str, slaves: &[(&str, &str, bool)]) -> anyhow::Result<()> {
    let want: Vec<(String, String, bool)> = slaves.iter().map(|(i, m, a)| (i.to_string(), m.to_string(), *a)).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let last = vm.sh("multihome status --json")?.output;
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&last) {
            let seen: Vec<(String, String, bool)> = v["uplinks"]
                .as_array()
                .map(|a| {
                    a.iter().map(|u| (u["interface"].as_str().unwrap_or("").into(), u["mii"].as_str().unwrap_or("").into(), u["bond_active"] == true)).collect()
                })
                .unwrap_or_default();
            if v["active"] == active && seen == want {
                return Ok(());
            }
        }
        if std::time::Instant::now() >= deadline {
            anyhow::bail!("the daemon does not show {active} active and {want:?} within 60 s; it shows:\n{last}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The kernel's view of each slave's priority (`ip -d -j link`: IFLA_BOND_SLAVE_PRIO), or `None`.
fn kernel_prio(vm: &mut Machine, slave: &str) -> anyhow::Result<Option<i64>> {
    let v: serde_json::Value = serde_json::from_str(&vm.ok(&format!("ip -d -j link show {slave}"))?)?;
    Ok(v[0]["linkinfo"]["info_slave_data"]["prio"].as_i64())
}

/// An established connection (a line every 50 ms, each answer awaited) and a bulk transfer, both
/// opened before the primary's cable is pulled, still going after the failover to eth4 (the
/// policy's Priority=2, enslaved last: the kernel's own order would take eth5) and after eth3's
/// return; the client gives up if an answer takes 10 s.
/// The daemon's bond families (`[Metrics] Listen=127.0.0.1:9469`, served from inside the unit's
/// sandbox, read with bash alone) say `active` is the active slave and each slave's MII state is
/// the one given, within 10 s (the daemon reads the bond on its own schedule).
fn metrics_show(vm: &mut Machine, active: &str, mii: &[(&str, &str)]) -> anyhow::Result<()> {
    let wanted: Vec<String> = mii
        .iter()
        .flat_map(|(slave, state)| {
            [
                format!("multihome_bond_active_slave{{uplink=\"{slave}\"}} {}", u8::from(*slave == active)),
                format!("multihome_bond_slave_mii{{uplink=\"{slave}\",state=\"{state}\"}} 1"),
            ]
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = vm.ok("exec 3<>/dev/tcp/127.0.0.1/9469 && printf 'GET /metrics HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && cat <&3")?;
        let missing: Vec<&String> = wanted.iter().filter(|w| !text.lines().any(|l| l == w.as_str())).collect();
        if missing.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("the daemon's metrics lack {missing:?}:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn connections_survive_the_primarys_carrier_loss(vm: &mut Machine, servers: &Servers) -> anyhow::Result<()> {
    // The test is only worth something where the kernel's list would choose wrong.
    let order = vm.ok("sed -n 's/^Slave Interface: //p' /proc/net/bonding/bond0")?;
    assert_eq!(order.split_whitespace().last(), Some("eth4"), "eth4 should be the last slave in the kernel's list:\n{order}");
    // The daemon sets the priorities after the enslavement; a daemon that does not leaves the
    // failover below to the kernel's list.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while kernel_prio(vm, "eth4")? != Some(2) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    // eth4 back up after its UpDelaySec= (a slave still going back is no candidate).
    daemon_shows(vm, "eth3", &[("eth3", "up", true), ("eth4", "up", false), ("eth5", "up", false)])?;

    let connections = servers.echo_connections.load(Ordering::Relaxed);
    let start = servers.echoed.load(Ordering::Relaxed);
    servers.transferred.store(0, Ordering::Relaxed);
    vm.ok("rm -f /run/mh-echo.lost /run/mh-sink.done")?;
    vm.ok(&format!(
        "systemd-run --unit=mh-echo bash -c 'exec 3<>/dev/tcp/{INTERNET}/{ECHO_PORT}; i=0; while :; do echo line $i >&3; \
         IFS= read -r -t 10 reply <&3 || {{ echo lost $i >/run/mh-echo.lost; exit 1; }}; i=$((i+1)); sleep 0.05; done'"
    ))?;
    vm.ok(&format!(
        "systemd-run --unit=mh-sink bash -c 'exec 3>/dev/tcp/{INTERNET}/{SINK_PORT}; \
         for i in $(seq 200); do head -c 20000 /dev/zero; sleep 0.05; done >&3; exec 3>&-; touch /run/mh-sink.done'"
    ))?;
    wait("the echo answering", Duration::from_secs(90), || servers.echoed.load(Ordering::Relaxed) >= start + 20)?;

    // The cable of the primary: the bond's MII monitor moves everything to the next slave in
    // the policy's order, eth4.
    vm.set_link("eth3", false)?;
    let moved = vm.wait_for("a failover after eth3's carrier loss", &format!("{ACTIVE_SLAVE} | grep -x 'eth[45]'"), Duration::from_secs(60))?;
    assert_eq!(moved.trim(), "eth4", "the bond took {} instead of eth4 (Priority=2):\n{}", moved.trim(), vm.ok("cat /proc/net/bonding/bond0")?);
    daemon_shows(vm, "eth4", &[("eth3", "down", false), ("eth4", "up", true), ("eth5", "up", false)])?;
    metrics_show(vm, "eth4", &[("eth3", "down"), ("eth4", "up"), ("eth5", "up")])?;
    let prios = (kernel_prio(vm, "eth3")?, kernel_prio(vm, "eth4")?, kernel_prio(vm, "eth5")?);
    assert_eq!(prios, (Some(3), Some(2), Some(1)), "the slaves' priorities in the kernel (eth3, eth4, eth5)");
    let text = vm.ok("multihome status")?;
    assert!(text.lines().any(|l| l.starts_with(" eth5 ") && l.contains("a backup slave of bond0, prio 1")), "{text}");
    let at_failover = servers.echoed.load(Ordering::Relaxed);
    wait("the echo answering through eth4", Duration::from_secs(90), || servers.echoed.load(Ordering::Relaxed) >= at_failover + 40)?;
    vm.wait_for("the transfer finished", "test -e /run/mh-sink.done", Duration::from_secs(120))?;
    wait("the sink counting the transfer", Duration::from_secs(10), || servers.transferred.load(Ordering::Relaxed) > 0)?;
    assert_eq!(servers.transferred.load(Ordering::Relaxed), TRANSFER_BYTES, "the bulk transfer lost bytes");

    // The cable back: after UpDelaySec= the primary is active again, the connection still up.
    vm.set_link("eth3", true)?;
    vm.wait_for("eth3 active again", &format!("{ACTIVE_SLAVE} | grep -qx eth3"), Duration::from_secs(60))?;
    daemon_shows(vm, "eth3", &[("eth3", "up", true), ("eth4", "up", false), ("eth5", "up", false)])?;
    let at_return = servers.echoed.load(Ordering::Relaxed);
    wait("the echo answering through eth3 again", Duration::from_secs(90), || servers.echoed.load(Ordering::Relaxed) >= at_return + 40)?;
    assert_eq!(vm.sh("test -e /run/mh-echo.lost")?.code, 1, "the client lost an answer: {}", vm.ok("cat /run/mh-echo.lost; true")?);
    assert_eq!(vm.ok("systemctl is-active mh-echo")?.trim(), "active", "the established connection's client ended");
    assert_eq!(servers.echo_connections.load(Ordering::Relaxed), connections + 1, "the client had to connect again");
    vm.ok("systemctl stop mh-echo; systemctl reset-failed mh-echo mh-sink 2>/dev/null; true")?;
    Ok(())
}
