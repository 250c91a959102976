//! A spoofer on eth0's access switch while eth0's upstream is dead (issue 23, item 5): a
//! namespace with a veth into the switch's bridge that owns the gateway's address 192.168.178.1
//! itself (another MAC), so it answers ARP for the gateway and echoes to it as the real router
//! would, and that floods unsolicited ARP replies naming itself the gateway, to the host's
//! address and MAC. What the daemon can tell: the internet target 198.51.100.10 lies behind the
//! gateway and stops answering, so eth0 is judged down within the normal detection time and
//! stays down while the spoofer answers everything it can; the unsolicited replies change
//! nothing. What it cannot tell (docs/daemon.md, "What counts as an answer"): a host on the link
//! that also answers for every target is indistinguishable from a working path.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::lab::{spawned_logs, transitions_to};
use common::status::{self, State};
use multihome::lab::netns::{in_netns, ip, run};
use multihome::lab::{GATEWAY, Lab, Manager, seed_address};
use socket2::{Domain, SockAddr, Socket, Type};

#[allow(dead_code)]
mod common;

/// The MAC of `dev` in namespace `ns`.
fn mac_of(ns: &str, dev: &str) -> anyhow::Result<[u8; 6]> {
    let out = ip(ns, &["-j", "link", "show", "dev", dev])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let text = v[0]["address"].as_str().ok_or_else(|| anyhow::anyhow!("no address of {dev} in {ns}"))?;
    let mut mac = [0u8; 6];
    for (m, part) in mac.iter_mut().zip(text.split(':')) {
        *m = u8::from_str_radix(part, 16)?;
    }
    Ok(mac)
}

/// The spoofer's namespace and its ARP flood; Drop stops the flood and deletes the namespace
/// (and with it the veth into the switch), also when the test fails.
struct Spoofer {
    ns: String,
    mac: [u8; 6],
    stop: Arc<AtomicBool>,
    flood: Option<std::thread::JoinHandle<()>>,
}

impl Spoofer {
    /// A host on `uplink`'s access switch with the gateway's address.
    fn on(lab: &Lab, uplink: &str) -> anyhow::Result<Spoofer> {
        let prefix = lab.host().strip_suffix("-host").expect("lab namespaces end in -host").to_string();
        let ns = format!("{prefix}-spoof");
        run("ip", &["netns", "add", &ns])?;
        let mut spoofer = Spoofer { ns: ns.clone(), mac: [0; 6], stop: Arc::new(AtomicBool::new(false)), flood: None };
        let sw = lab.switch(uplink);
        ip(&ns, &["link", "set", "lo", "up"])?;
        ip(&sw, &["link", "add", "spoof", "type", "veth", "peer", "name", "lan", "netns", &ns])?;
        ip(&sw, &["link", "set", "dev", "spoof", "master", "br0"])?;
        ip(&sw, &["link", "set", "dev", "spoof", "up"])?;
        ip(&ns, &["addr", "add", &format!("{GATEWAY}/24"), "dev", "lan"])?;
        ip(&ns, &["link", "set", "lan", "up"])?;
        spoofer.mac = mac_of(&ns, "lan")?;
        Ok(spoofer)
    }

    /// Sends, every 10 ms, an ARP reply "192.168.178.1 is at <spoofer>" to `us` at `us_mac`,
    /// asked by nobody.
    fn flood_arp(&mut self, us: Ipv4Addr, us_mac: [u8; 6]) -> anyhow::Result<()> {
        let ns = self.ns.clone();
        let socket = in_netns(&ns, || {
            let s = Socket::new(Domain::PACKET, Type::DGRAM, None)?;
            Ok(s)
        })?;
        let ifindex = in_netns(&ns, || multihome::daemon::probe::interface_index("lan"))?;
        let mut reply = multihome::daemon::probe::arp_request(self.mac, GATEWAY, us);
        reply[7] = 2;
        reply[18..24].copy_from_slice(&us_mac);
        let to = multihome::daemon::probe::link_address(ifindex, &us_mac);
        let stop = self.stop.clone();
        self.flood = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = socket.send_to(&reply, &to);
                std::thread::sleep(Duration::from_millis(10));
            }
        }));
        Ok(())
    }
}

impl Drop for Spoofer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(f) = self.flood.take() {
            let _ = f.join();
        }
        let _ = run("ip", &["netns", "del", &self.ns]);
    }
}

/// Whether an ICMP echo from `source` on `dev` in `ns` to `to` is answered within 500 ms (the
/// lab has no `ping`).
fn echo_answered(ns: &str, dev: &'static str, source: Ipv4Addr, to: Ipv4Addr) -> bool {
    let socket = in_netns(ns, move || {
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(socket2::Protocol::ICMPV4))?;
        s.bind_device(Some(dev.as_bytes()))?;
        s.bind(&SockAddr::from(std::net::SocketAddrV4::new(source, 0)))?;
        s.set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok(s)
    });
    let Ok(socket) = socket else { return false };
    let ident = 0x5e0f;
    if socket.send_to(&multihome::daemon::probe::echo_request(ident, 1), &SockAddr::from(std::net::SocketAddrV4::new(to, 0))).is_err() {
        return false;
    }
    let until = Instant::now() + Duration::from_millis(500);
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1500];
    while Instant::now() < until {
        if let Ok(n) = socket.recv(&mut buf) {
            // SAFETY: recv initialised the first n bytes.
            let p: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
            if multihome::daemon::probe::parse_echo_reply(&p, ident).is_some_and(|(from, _)| from == to) {
                return true;
            }
        }
    }
    false
}

fn a_spoofed_gateway_does_not_keep_a_dead_uplink_up(manager: Manager) -> anyhow::Result<()> {
    let mut lab = common::lab::seed(manager)?;
    lab.spawn_multihome(&["daemon"])?;
    lab.wait_for(Duration::from_secs(10), || status::all_up(&lab, &["eth0", "wlan1", "wlan0"]))
        .map_err(|e| anyhow::anyhow!("the daemon did not judge every uplink up: {e}\n{}", spawned_logs(&lab)))?;

    let t0 = Instant::now();
    lab.set_upstream("eth0", false)?;
    let mut spoofer = Spoofer::on(&lab, "eth0")?;
    spoofer.flood_arp(seed_address("eth0"), mac_of(&lab.host(), "eth0")?)?;
    // The same bound as the silent failure without a spoofer (tests/lab_daemon.rs).
    lab.wait_for(Duration::from_secs(3), || {
        let c = lab.daemon_copies("-4");
        !c.is_empty() && !c.contains(&"eth0".to_string())
    })
    .map_err(|e| anyhow::anyhow!("eth0 was not demoted with a spoofer on its switch: {e}\n{}", spawned_logs(&lab)))?;
    eprintln!("{manager:?}: eth0 demoted {:?} after its upstream died, a spoofer answering for the gateway", t0.elapsed());

    // The spoofer does answer for the gateway on eth0's link: ARP and echo, from the host.
    lab.wait_for(Duration::from_secs(10), || echo_answered(&lab.host(), "eth0", seed_address("eth0"), GATEWAY))
        .map_err(|e| anyhow::anyhow!("the spoofer never answered the host's echo to the gateway: {e}"))?;
    let neigh = lab.ip_host(&["neigh", "show", &GATEWAY.to_string(), "dev", "eth0"])?;
    let spoof_mac = spoofer.mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    assert!(neigh.contains(&spoof_mac), "the host's kernel did not take the spoofer for the gateway: {neigh} (spoofer {spoof_mac})");

    // And yet eth0 stays down while the spoofer keeps answering: its probe of the internet
    // target, behind the gateway, is never answered.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(status::state(&lab, "eth0"), Some(State::Down), "{}", spawned_logs(&lab));
    let log = spawned_logs(&lab);
    assert_eq!(transitions_to(&log, "eth0", "up"), 1, "eth0 came up again with the spoofer answering:\n{log}");
    assert_eq!(lab.outbound_source(Duration::from_millis(300)), Some(seed_address("wlan1")));
    Ok(())
}

both_managers! {
    networkd_a_spoofed_gateway_does_not_keep_a_dead_uplink_up, networkmanager_a_spoofed_gateway_does_not_keep_a_dead_uplink_up
        => a_spoofed_gateway_does_not_keep_a_dead_uplink_up
}
