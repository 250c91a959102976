//! Real 802.11 in the test machine (issue 25): Debian's standard kernel has `mac80211_hwsim`,
//! whose software radios associate, authenticate (WPA2-PSK) and lose carrier on a
//! disassociation like a real NIC. Four radios: wlan1 and wlan0 stay in the machine as the
//! host's stations; the other two become the access points ap-wlan1 (SSID mh-wlan1) and ap-wlan0
//! (SSID mh-wlan0), moved into a network namespace of their own ("aps", the air and everything
//! behind it), where hostapd runs each of them in a bridge with a wired virtio NIC plugged into
//! that uplink's switch of the lab (eth4 into wlan1's, eth5 into wlan0's). So a station's frames
//! reach the lab's router, its dnsmasq and its internet host as the wired eth0's do, and the lab's
//! faults on a switch reach the Wi-Fi uplink behind it. eth0 stays the wired virtio NIC.

use std::time::Duration;

use super::bond::{Servers, start_servers};
use super::machine::Machine;
use super::network::{Network, Nic};
use super::{image, seeded};

/// The machine's NICs in a Wi-Fi test: wired eth0, and the access points' wired uplinks (the
/// image's .link files name 52:54:00:00:00:05 eth4 and :06 eth5; no virtio NIC is named wlan1
/// or wlan0, so the radios take those names).
pub fn nics() -> Vec<Nic> {
    vec![
        Nic { guest_name: "eth0", switch: "eth0", mac_index: 1 },
        Nic { guest_name: "eth4", switch: "wlan1", mac_index: 5 },
        Nic { guest_name: "eth5", switch: "wlan0", mac_index: 6 },
    ]
}

/// The lab the routes-mode Wi-Fi machines boot into: the network of [`nics`] with its DHCP
/// server (the access points bridge the stations to it), and the internet host's echo and sink
/// servers.
pub fn network_with_servers() -> anyhow::Result<(Network, Servers)> {
    let mut net = Network::build(&nics())?;
    net.start_dhcp()?;
    let servers = start_servers(&net.names.internet())?;
    Ok((net, servers))
}

/// The namespace of the access points, inside the machine.
pub const APS: &str = "aps";

/// The radios, the access points' namespace and bridges, and hostapd on each access point.
/// hwsim names its radios wlan0..wlanN (kernel names: the image boots with net.ifnames=0);
/// radios 2 and 3 go to the access points' namespace with `iw phy set netns`, and their
/// interfaces are renamed there. Each hostapd runs detached with its pid file, config and log
/// in /run/mh-wifi, and its control socket in /run/mh-wifi/hostapd (hostapd_cli -p).
/// RADIOS is replaced by how many radios the test needs (4, or 5 with [`ROAM_AP`]).
const SETUP: &str = r#"set -e
mkdir -p /run/mh-wifi
modprobe mac80211_hwsim radios=RADIOS
for i in $(seq 0 $((RADIOS - 1))); do
  test "$(cat /sys/class/net/wlan$i/address)" = "02:00:00:00:0$i:00" || { echo "wlan$i is not hwsim's radio $i"; ip -br link; exit 1; }
done
ip netns add aps
ap() { # radio, access point, its SSID, channel, wired uplink
  phy=$(basename "$(readlink -f /sys/class/net/$1/phy80211)")
  iw phy "$phy" set netns name aps
  ip -n aps link set "$1" name "$2"
  ip -n aps link add "br-$3" type bridge
  ip link set "$5" netns aps
  ip -n aps link set "$5" master "br-$3"
  ip -n aps link set "$5" up
  ip -n aps link set "br-$3" up
  cat >/run/mh-wifi/$2.conf <<CONF
interface=$2
bridge=br-$3
driver=nl80211
ctrl_interface=/run/mh-wifi/hostapd
ssid=mh-$3
hw_mode=g
channel=$4
wpa=2
wpa_key_mgmt=WPA-PSK
rsn_pairwise=CCMP
wpa_passphrase=secret-of-mh-$3
CONF
}
ap wlan2 ap-wlan1 wlan1 1 eth4
ap wlan3 ap-wlan0 wlan0 6 eth5
for a in ap-wlan1 ap-wlan0; do
  ip netns exec aps hostapd -B -P /run/mh-wifi/$a.pid -f /run/mh-wifi/$a.log /run/mh-wifi/$a.conf
done
for s in wlan1 wlan0; do
  printf 'ctrl_interface=/run/wpa_supplicant\nnetwork={\n\tssid="mh-%s"\n\tpsk="secret-of-mh-%s"\n\tkey_mgmt=WPA-PSK\n}\n' $s $s >/etc/wpa_supplicant/wpa_supplicant-$s.conf
done
"#;

/// The second access point of wlan1's SSID, for roaming: hwsim's fifth radio, in the access
/// points' namespace, in the same bridge as ap-wlan1 (so behind it the same switch, router and
/// DHCP server: a lease stays valid across a roam), on another channel. Its BSSID is the radio's
/// address.
pub const ROAM_AP: &str = "ap2-wlan1";
/// [`ROAM_AP`]'s BSSID (hwsim's radio 4); ap-wlan1's is radio 2's.
pub const ROAM_BSSID: &str = "02:00:00:00:04:00";
pub const FIRST_BSSID: &str = "02:00:00:00:02:00";

/// [`ROAM_AP`]'s radio and configuration (ap-wlan1's with another interface and channel); its
/// hostapd starts with [`start_ap`].
const SECOND_AP: &str = r#"set -e
phy=$(basename "$(readlink -f /sys/class/net/wlan4/phy80211)")
iw phy "$phy" set netns name aps
ip -n aps link set wlan4 name ap2-wlan1
sed 's/^interface=ap-wlan1$/interface=ap2-wlan1/; s/^channel=1$/channel=11/' /run/mh-wifi/ap-wlan1.conf >/run/mh-wifi/ap2-wlan1.conf
"#;

/// The Wi-Fi machine booted on `net` with the package installed as the README says and
/// `policy` on /mnt as `name`; no radio made yet.
pub fn boot_installed(net: &Network, name: &str, policy: &str) -> anyhow::Result<Machine> {
    let image = image::machine()?;
    let dir = std::env::temp_dir().join(format!("multihome-system-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(name);
    std::fs::write(&file, policy)?;
    let booted = Machine::boot(&image, net, &nics(), &[("multihome.deb", &image::deb()), (name, &file)]);
    let _ = std::fs::remove_dir_all(&dir);
    let mut vm = booted?;
    vm.ok("mount -o ro /dev/vdb /mnt")?;
    seeded::install(&mut vm, "multihome.deb")?;
    Ok(vm)
}

/// The machine moves from networkd to NetworkManager, which makes no profile of its own
/// (`no-auto-default`): the stations are associated by the administrator's profiles only.
/// Returns once its settings answer on the bus.
pub fn use_networkmanager(vm: &mut Machine) -> anyhow::Result<()> {
    vm.ok("systemctl disable --now systemd-networkd.socket systemd-networkd.service networkd-dispatcher.service 2>&1")?;
    vm.ok("printf '[main]\\nno-auto-default=*\\n' >/etc/NetworkManager/conf.d/90-uplinks.conf && systemctl enable --now NetworkManager 2>&1")?;
    // Its name on the bus comes before its Settings object: ask the object itself.
    vm.wait_for(
        "NetworkManager's settings on the bus",
        "nm-online -s -q -t 5; busctl call org.freedesktop.NetworkManager /org/freedesktop/NetworkManager/Settings \
         org.freedesktop.NetworkManager.Settings ListConnections >/dev/null",
        Duration::from_secs(90),
    )?;
    Ok(())
}

/// Makes the radios and starts both access points; the stations are configured
/// (/etc/wpa_supplicant/wpa_supplicant-wlanN.conf: their SSID and passphrase) but not started.
pub fn start_access_points(vm: &mut Machine) -> anyhow::Result<()> {
    vm.ok(&SETUP.replace("RADIOS", "4"))?;
    for ap in ["ap-wlan1", "ap-wlan0"] {
        vm.wait_for(&format!("{ap} enabled"), &enabled(ap), Duration::from_secs(30))?;
    }
    Ok(())
}

/// [`start_access_points`] with a fifth radio made ready as [`ROAM_AP`], not started: the other
/// tests' stations must find one access point per SSID.
pub fn start_access_points_for_roaming(vm: &mut Machine) -> anyhow::Result<()> {
    vm.ok(&SETUP.replace("RADIOS", "5"))?;
    vm.ok(SECOND_AP)?;
    for ap in ["ap-wlan1", "ap-wlan0"] {
        vm.wait_for(&format!("{ap} enabled"), &enabled(ap), Duration::from_secs(30))?;
    }
    Ok(())
}

/// A shell test that holds once hostapd runs access point `ap` (its state, over its control socket).
fn enabled(ap: &str) -> String {
    format!("hostapd_cli -p /run/mh-wifi/hostapd -i {ap} status | grep -qx state=ENABLED")
}

/// wpa_supplicant@STATION, as Debian runs a station without NetworkManager.
pub fn start_station(vm: &mut Machine, station: &str) -> anyhow::Result<()> {
    vm.ok(&format!("systemctl start wpa_supplicant@{station}"))?;
    Ok(())
}

/// A shell test that holds while `station` is associated and authenticated to its SSID.
pub fn associated(station: &str) -> String {
    format!("wpa_cli -i {station} status | grep -qx wpa_state=COMPLETED && wpa_cli -i {station} status | grep -qx ssid=mh-{station}")
}

/// A shell line printing how many times the wpa_supplicant of `unit` has seen `station`
/// disconnected (deauthenticated, disassociated, or its access point gone).
pub fn disconnects(unit: &str, station: &str) -> String {
    format!("journalctl -b -u {unit} --no-pager | grep -c '{station}: CTRL-EVENT-DISCONNECTED' || true")
}

/// A shell test that holds while the kernel has `station` associated with its SSID (`iw`: under
/// either manager, whoever drives wpa_supplicant).
pub fn linked(station: &str) -> String {
    format!("iw dev {station} link | grep -q 'SSID: mh-{station}'")
}

/// The access point of `uplink`'s SSID stops (its hostapd killed): its stations are
/// disassociated, as when an access point loses power.
pub fn stop_access_point(vm: &mut Machine, uplink: &str) -> anyhow::Result<()> {
    stop_ap(vm, &format!("ap-{uplink}"))
}

/// The access point of `uplink`'s SSID starts again.
pub fn start_access_point(vm: &mut Machine, uplink: &str) -> anyhow::Result<()> {
    start_ap(vm, &format!("ap-{uplink}"))
}

/// Access point `ap` (its interface's name in [`APS`]) stops: hostapd killed.
pub fn stop_ap(vm: &mut Machine, ap: &str) -> anyhow::Result<()> {
    vm.ok(&format!("kill $(cat /run/mh-wifi/{ap}.pid) && while kill -0 $(cat /run/mh-wifi/{ap}.pid) 2>/dev/null; do sleep 0.1; done"))?;
    Ok(())
}

/// Access point `ap` starts (again): hostapd with its configuration from the setup.
pub fn start_ap(vm: &mut Machine, ap: &str) -> anyhow::Result<()> {
    vm.ok(&format!(": >/run/mh-wifi/{ap}.log && ip netns exec {APS} hostapd -B -P /run/mh-wifi/{ap}.pid -f /run/mh-wifi/{ap}.log /run/mh-wifi/{ap}.conf"))?;
    vm.wait_for(&format!("{ap} enabled"), &enabled(ap), Duration::from_secs(30))?;
    Ok(())
}

/// The wired port of `uplink`'s access point: its bridge's way to the lab's switch (SETUP).
fn wired_port(uplink: &str) -> &'static str {
    if uplink == "wlan1" { "eth4" } else { "eth5" }
}

/// A silent upstream behind `uplink`'s access point (or its repair): the wired port leaves (or
/// rejoins) the access point's bridge, as [`Network::set_upstream`] does to a switch. The access
/// point and its stations carry on (associated, carrier up): only what goes beyond the air is
/// lost. Returns the machine's clock (CLOCK_BOOTTIME, the prober's) just before the change,
/// read in the same command so that no round trip of the agent lies between.
pub fn set_upstream(vm: &mut Machine, uplink: &str, up: bool) -> anyhow::Result<f64> {
    let port = wired_port(uplink);
    let change = if up { format!("master br-{uplink}") } else { "nomaster".to_string() };
    let at = vm.ok(&format!("cut -d' ' -f1 /proc/uptime && ip -n {APS} link set {port} {change}"))?;
    Ok(at.trim().parse()?)
}

/// The access point of `uplink`'s SSID deauthenticates `station` (hostapd_cli deauthenticate).
pub fn deauthenticate(vm: &mut Machine, uplink: &str, station: &str) -> anyhow::Result<()> {
    let mac = vm.ok(&format!("cat /sys/class/net/{station}/address"))?;
    vm.ok(&format!("hostapd_cli -p /run/mh-wifi/hostapd -i ap-{uplink} deauthenticate {}", mac.trim()))?;
    Ok(())
}

/// An echo client in the machine (python3, which networkd-dispatcher brings): one TCP connection
/// to the lab's echo server, a line every 20 ms, each answer awaited (60 s at most); it logs
/// each answer's gap since the previous one to /run/mh-echo.log ("N SECONDS"), and "broken N
/// WHY" when the connection ended or timed out. Started as the transient unit mh-echo.
pub fn start_echo(vm: &mut Machine, server: &str, port: u16) -> anyhow::Result<()> {
    start_named_echo(vm, ECHO, server, port, false)
}

/// [`start_echo`] over one MPTCP connection (IPPROTO_MPTCP, 262: python3 has no name for it);
/// the server must accept MPTCP (multihome::lab::stream::mptcp_echo).
pub fn start_mptcp_echo(vm: &mut Machine, server: &str, port: u16) -> anyhow::Result<()> {
    start_named_echo(vm, ECHO, server, port, true)
}

/// The echo client's unit, and its log's name in /run, unless named otherwise.
pub const ECHO: &str = "mh-echo";

/// [`start_echo`] (or over MPTCP) as the unit `name`, logging to /run/`name`.log, so that
/// several can run side by side; [`Echoes::read_named`] reads it.
pub fn start_named_echo(vm: &mut Machine, name: &str, server: &str, port: u16, mptcp: bool) -> anyhow::Result<()> {
    let connect = if mptcp {
        format!("s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)\ns.settimeout(60)\ns.connect(('{server}', {port}))")
    } else {
        format!("s = socket.create_connection(('{server}', {port}), timeout=60)")
    };
    run_echo(vm, name, &connect)
}

/// The echo client `name` with `connect`, python that leaves the connected socket in `s`.
fn run_echo(vm: &mut Machine, name: &str, connect: &str) -> anyhow::Result<()> {
    let client = format!(
        "import socket, sys, time
{connect}
f = s.makefile('rw')
log = open('/run/{name}.log', 'w', buffering=1)
i, last = 0, time.monotonic()
while True:
    try:
        f.write('line %d\\n' % i); f.flush()
        answer = f.readline()
    except OSError as e:
        answer, why = '', repr(e)
    else:
        why = 'closed by the server'
    if not answer:
        log.write('broken %d %s\\n' % (i, why)); sys.exit(1)
    now = time.monotonic()
    log.write('%d %.4f\\n' % (i, now - last))
    i, last = i + 1, now
    time.sleep(0.02)
"
    );
    // (A client that still runs, silent, is stopped: its unit's name is taken again.)
    vm.ok(&format!("systemctl stop {name} 2>/dev/null; rm -f /run/{name}.log /run/{name}.py; systemctl reset-failed {name} 2>/dev/null; true"))?;
    vm.ok(&format!("cat >/run/{name}.py <<'PY'\n{client}PY\nsystemd-run --unit={name} python3 /run/{name}.py"))?;
    Ok(())
}

/// What the echo client logged so far: the answers (each one's gap since the previous, in
/// seconds) and whether the connection broke.
pub struct Echoes {
    pub gaps: Vec<f64>,
    pub broken: bool,
    /// Why it broke, as the client saw it.
    pub why: String,
}

impl Echoes {
    pub fn read(vm: &mut Machine) -> anyhow::Result<Echoes> {
        Echoes::read_named(vm, ECHO)
    }

    /// What the echo client `name` ([`start_named_echo`]) logged so far.
    pub fn read_named(vm: &mut Machine, name: &str) -> anyhow::Result<Echoes> {
        let log = vm.ok(&format!("cat /run/{name}.log 2>/dev/null; true"))?;
        let mut e = Echoes { gaps: Vec::new(), broken: false, why: String::new() };
        for line in log.lines() {
            if let Some(rest) = line.strip_prefix("broken ") {
                e.broken = true;
                e.why = rest.split_once(' ').map_or("", |(_, why)| why).to_string();
            } else if let Some(gap) = line.split_whitespace().nth(1).and_then(|g| g.parse().ok()) {
                e.gaps.push(gap);
            }
        }
        Ok(e)
    }

    pub fn answered(&self) -> usize {
        self.gaps.len()
    }

    /// The longest wait for an answer among those after the first `from`.
    pub fn max_gap_after(&self, from: usize) -> f64 {
        self.gaps.iter().skip(from).copied().fold(0.0, f64::max)
    }

    /// Echoes that were not sent on time because an answer was late: the 20 ms ticks missed in
    /// every gap after the first `from` answers (the client sends the next line only after an
    /// answer, so a gap of 1 s is about 40 echoes that a client sending blindly would have lost).
    pub fn ticks_missed_after(&self, from: usize) -> u64 {
        // A gap is the 20 ms sleep plus the round trip (a few ms under emulation): what exceeds
        // 100 ms is a stall.
        self.gaps.iter().skip(from).filter(|g| **g > 0.1).map(|g| (g / 0.02).floor() as u64 - 1).sum()
    }
}
