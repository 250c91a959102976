//! The daemon beside the rest of a real host (issue 8): a container bridge, a static route, a
//! split-tunnel and a full-tunnel VPN, wg-quick's and Tailscale's rules, an administrator's rule
//! below multihome's, and a route added while the daemon runs
//! all resolve, and carry real traffic, exactly as without the daemon — before a fault, during a
//! silent failure of eth0 and after failback — while the uplinks fail over as the policy says.
//!
//! Stand-ins, as this kernel has no wireguard, tun device files or dummy links: `tun0` is a veth
//! whose peer sits in the lab's internet namespace (the "VPN server", 10.99.0.1); the "container"
//! is a veth port of the host's bridge `docker0` whose other end is also there (172.17.0.5). Each
//! stand-in address answers with the source address it saw, so a test knows the path a packet
//! took, not only what `ip route get` says.

use std::net::Ipv4Addr;
use std::time::Duration;

use common::lab::{QUICK, spawned_logs};
use common::status;
use multihome::lab::echo::{self, udp_probe};
use multihome::lab::netns::ip;
use multihome::lab::{INTERNET, Lab, Manager, seed_address};

#[allow(dead_code)]
mod common;

const TUNNEL_HOST: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
const SPLIT_TARGET: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
const CONTAINER: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 5);
const BRIDGE: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);
const STATIC_TARGET: Ipv4Addr = Ipv4Addr::new(10, 8, 0, 1);
const LATE_TARGET: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
/// A tailnet address, reached as Tailscale routes it: its rule 5270 into its table 52.
const TAILNET_TARGET: Ipv4Addr = Ipv4Addr::new(100, 100, 1, 1);
/// Behind an administrator's own rule below multihome's (9000 into table 200, via wlan1).
const ADMIN_TARGET: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 1);
/// wg-quick's fwmark for its own (encrypted) packets, and its table.
const WG_MARK: &str = "0xca6c";
const WG_TABLE: &str = "51820";

/// `ip -n NS ARGS`, which must succeed.
fn ip_ok(ns: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = ip(ns, args)?;
    anyhow::ensure!(out.status.success(), "ip -n {ns} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// The neighbours of a real host, beside the seed's uplinks. Every link is made inside the lab's
/// namespaces, its peer directly in the other one.
fn add_neighbours(lab: &Lab, manager: Manager) -> anyhow::Result<Vec<echo::Server>> {
    let (host, internet, router) = (lab.host(), lab.internet(), lab.router());
    // The host's own devices, made before any is addressed.
    ip_ok(&host, &["link", "add", "tun0", "type", "veth", "peer", "name", "vpn0", "netns", &internet])?;
    ip_ok(&host, &["link", "add", "docker0", "type", "bridge"])?;
    ip_ok(&host, &["link", "add", "vethc", "type", "veth", "peer", "name", "ctr0", "netns", &internet])?;
    if manager == Manager::NetworkManager {
        // As on a real desktop: NetworkManager leaves a VPN's tunnel (it made it, or the VPN
        // client did) and Docker's devices (Docker ships `unmanaged-devices` for them) alone.
        // A new veth or bridge is otherwise NetworkManager's to configure, and seen in the lab:
        // it took tun0's address away now and then.
        for dev in ["tun0", "docker0", "vethc"] {
            lab.wait_for(Duration::from_secs(10), || lab.run_in_host("nmcli", &["device", "set", dev, "managed", "no"]).is_ok_and(|o| o.status.success()))
                .map_err(|e| anyhow::anyhow!("NetworkManager did not let go of {dev}: {e}"))?;
        }
    }
    // A VPN's tunnel device, its server at the other end.
    ip_ok(&host, &["addr", "add", "10.99.0.2/30", "dev", "tun0"])?;
    ip_ok(&host, &["link", "set", "tun0", "up"])?;
    ip_ok(&internet, &["addr", "add", "10.99.0.1/30", "dev", "vpn0"])?;
    ip_ok(&internet, &["addr", "add", &format!("{SPLIT_TARGET}/32"), "dev", "lo"])?;
    ip_ok(&internet, &["link", "set", "vpn0", "up"])?;
    // Split tunnel: one network through the tunnel.
    ip_ok(&host, &["route", "add", "10.200.0.0/16", "dev", "tun0"])?;
    // A container bridge as Docker makes it, with one container.
    ip_ok(&host, &["addr", "add", &format!("{BRIDGE}/16"), "dev", "docker0"])?;
    ip_ok(&host, &["link", "set", "vethc", "master", "docker0", "up"])?;
    ip_ok(&host, &["link", "set", "docker0", "up"])?;
    ip_ok(&internet, &["addr", "add", &format!("{CONTAINER}/16"), "dev", "ctr0"])?;
    ip_ok(&internet, &["link", "set", "ctr0", "up"])?;
    // A static route through the LAN: a second router (192.168.178.50, on the router's bridge)
    // in front of 10.8.0.0/24, reached through wlan0 as the administrator wrote.
    ip_ok(&router, &["addr", "add", "192.168.178.50/24", "dev", "br0"])?;
    ip_ok(&router, &["addr", "add", &format!("{STATIC_TARGET}/32"), "dev", "lo"])?;
    ip_ok(&router, &["addr", "add", &format!("{LATE_TARGET}/32"), "dev", "lo"])?;
    ip_ok(&host, &["route", "add", "10.8.0.0/24", "via", "192.168.178.50", "dev", "wlan0"])?;
    // Tailscale's way: its own table behind its own rule, long before multihome's.
    ip_ok(&internet, &["addr", "add", &format!("{TAILNET_TARGET}/32"), "dev", "lo"])?;
    ip_ok(&host, &["route", "add", "100.64.0.0/10", "dev", "tun0", "table", "52"])?;
    ip_ok(&host, &["rule", "add", "pref", "5270", "lookup", "52"])?;
    // An administrator's rule below 10000: a network through wlan1 whatever main says.
    ip_ok(&router, &["addr", "add", &format!("{ADMIN_TARGET}/32"), "dev", "lo"])?;
    ip_ok(&host, &["route", "add", "10.7.0.0/24", "via", "192.168.178.50", "dev", "wlan1", "table", "200"])?;
    ip_ok(&host, &["rule", "add", "pref", "9000", "to", "10.7.0.0/24", "lookup", "200"])?;
    Ok(vec![
        echo::udp_source_echo(&internet, SPLIT_TARGET)?,
        echo::udp_source_echo(&internet, CONTAINER)?,
        echo::udp_source_echo(&router, STATIC_TARGET)?,
        echo::udp_source_echo(&router, LATE_TARGET)?,
        echo::udp_source_echo(&internet, TAILNET_TARGET)?,
        echo::udp_source_echo(&router, ADMIN_TARGET)?,
    ])
}

/// `ip route get` in the host without what changes from call to call (the route cache's
/// "cache" and "uid").
fn route_get(lab: &Lab, args: &[&str]) -> String {
    let mut all = vec!["-4", "route", "get"];
    all.extend_from_slice(args);
    let out = lab.ip_host(&all).unwrap_or_default();
    let words: Vec<&str> = out.split_whitespace().collect();
    let mut kept = Vec::new();
    let mut i = 0;
    while i < words.len() {
        match words[i] {
            "uid" => i += 2,
            "cache" => i += 1,
            w => {
                kept.push(w);
                i += 1;
            }
        }
    }
    kept.join(" ")
}

/// Where each neighbour's destination resolves, and the source its echo saw.
fn neighbours_view(lab: &Lab) -> Vec<(String, Option<Ipv4Addr>)> {
    let host = lab.host();
    [CONTAINER, STATIC_TARGET, SPLIT_TARGET, TAILNET_TARGET, ADMIN_TARGET]
        .iter()
        .map(|d| (route_get(lab, &[&d.to_string()]), udp_probe(&host, *d, QUICK).ok().flatten()))
        .collect()
}

fn expect_neighbours(lab: &Lab, view: &[(String, Option<Ipv4Addr>)]) {
    assert_eq!(view[0].1, Some(BRIDGE), "the container answered from {:?}: {}", view[0].1, view[0].0);
    assert_eq!(view[1].1, Some(seed_address("wlan0")), "the static route's target saw {:?}: {}", view[1].1, view[1].0);
    assert_eq!(view[2].1, Some(TUNNEL_HOST), "the split tunnel's target saw {:?}: {}", view[2].1, view[2].0);
    assert_eq!(view[3].1, Some(TUNNEL_HOST), "the tailnet's target saw {:?}: {}", view[3].1, view[3].0);
    assert_eq!(view[4].1, Some(seed_address("wlan1")), "the administrator's rule's target saw {:?}: {}", view[4].1, view[4].0);
    assert!(
        view[0].0.contains("dev docker0") && view[1].0.contains("via 192.168.178.50 dev wlan0") && view[2].0.contains("dev tun0"),
        "{view:?}\n{}",
        lab.ip_host(&["route"]).unwrap_or_default()
    );
}

fn neighbours_resolve_as_without_the_daemon(manager: Manager) -> anyhow::Result<()> {
    let mut lab = common::lab::seed(manager)?;
    let _servers = add_neighbours(&lab, manager)?;

    // Without the daemon: the reference.
    let without = neighbours_view(&lab);
    expect_neighbours(&lab, &without);
    let internet_without = route_get(&lab, &[&INTERNET.to_string()]);
    assert!(internet_without.contains("dev eth0"), "{internet_without}");

    lab.spawn_multihome(&["daemon"])?;
    lab.wait_for(Duration::from_secs(10), || status::all_up(&lab, &["eth0", "wlan1", "wlan0"]))
        .map_err(|e| anyhow::anyhow!("the daemon did not judge the uplinks up: {e}\n{}", spawned_logs(&lab)))?;
    assert_eq!(neighbours_view(&lab), without, "healthy uplinks: the daemon changed how a neighbour resolves");
    assert_eq!(route_get(&lab, &[&INTERNET.to_string()]), internet_without);

    // A silent failure of eth0: only what left through eth0 moves, to wlan1.
    lab.set_upstream("eth0", false)?;
    lab.wait_for(Duration::from_secs(3), || lab.outbound_source(QUICK) == Some(seed_address("wlan1")))
        .map_err(|e| anyhow::anyhow!("no failover to wlan1: {e}\n{}", spawned_logs(&lab)))?;
    assert_eq!(neighbours_view(&lab), without, "eth0 demoted: the daemon changed how a neighbour resolves");
    // A route added while the daemon runs (and eth0 is demoted) is used as without it.
    ip_ok(&lab.host(), &["route", "add", "10.9.0.0/24", "via", "192.168.178.50", "dev", "wlan1"])?;
    assert_eq!(udp_probe(&lab.host(), LATE_TARGET, QUICK)?, Some(seed_address("wlan1")), "{}", route_get(&lab, &[&LATE_TARGET.to_string()]));

    // A full-tunnel VPN connects (its default route at metric 50, as NetworkManager's VPNs):
    // new connections go into the tunnel, not around it; it disconnects, and they go to wlan1.
    ip_ok(&lab.host(), &["route", "add", "default", "dev", "tun0", "metric", "50"])?;
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(lab.outbound_source(QUICK), Some(TUNNEL_HOST), "traffic for the tunnel left in clear: {}", route_get(&lab, &[&INTERNET.to_string()]));
    assert!(route_get(&lab, &[&INTERNET.to_string()]).contains("dev tun0"));
    ip_ok(&lab.host(), &["route", "del", "default", "dev", "tun0", "metric", "50"])?;
    assert_eq!(lab.outbound_source(QUICK), Some(seed_address("wlan1")));
    // ...and reconnects: in front again.
    ip_ok(&lab.host(), &["route", "add", "default", "dev", "tun0", "metric", "50"])?;
    assert_eq!(lab.outbound_source(QUICK), Some(TUNNEL_HOST));
    ip_ok(&lab.host(), &["route", "del", "default", "dev", "tun0", "metric", "50"])?;

    // wg-quick's full tunnel (Table=auto): everything unmarked into its table, its own marked
    // packets through main without main's default routes, then main. Unmarked traffic stays in
    // the tunnel; the tunnel's own packets avoid the demoted eth0.
    ip_ok(&lab.host(), &["route", "add", "default", "dev", "tun0", "table", WG_TABLE])?;
    ip_ok(&lab.host(), &["rule", "add", "not", "fwmark", WG_MARK, "table", WG_TABLE, "pref", "32764"])?;
    ip_ok(&lab.host(), &["rule", "add", "table", "main", "suppress_prefixlength", "0", "pref", "32765"])?;
    assert_eq!(lab.outbound_source(QUICK), Some(TUNNEL_HOST), "wg-quick's tunnel was bypassed");
    let marked = route_get(&lab, &[&INTERNET.to_string(), "mark", WG_MARK]);
    assert!(marked.contains("dev wlan1"), "the tunnel's own packets took {marked}");
    // As without the daemon, wg-quick's full tunnel takes even the bridge's and the static
    // route's destinations (its rule comes first): the daemon does not get in between.
    // Tailscale's and the administrator's rules come first, as without the daemon.
    let view = neighbours_view(&lab);
    for (route, _) in &view[..3] {
        assert!(route.contains("dev tun0 table 51820"), "{route}");
    }
    assert!(view[3].0.contains("dev tun0 table 52") && view[4].0.contains("dev wlan1 table 200"), "{view:?}");

    // Repair: back on eth0, for the tunnel's packets too; the neighbours as without the daemon.
    lab.set_upstream("eth0", true)?;
    lab.wait_for(Duration::from_secs(10), || route_get(&lab, &[&INTERNET.to_string(), "mark", WG_MARK]).contains("dev eth0"))
        .map_err(|e| anyhow::anyhow!("eth0 did not come back: {e}\n{}", spawned_logs(&lab)))?;
    assert_eq!(lab.outbound_source(QUICK), Some(TUNNEL_HOST));
    ip_ok(&lab.host(), &["rule", "del", "pref", "32764"])?;
    ip_ok(&lab.host(), &["rule", "del", "pref", "32765"])?;
    lab.outbound_settles_on("eth0", Duration::from_secs(3))?;
    assert_eq!(neighbours_view(&lab), without, "after failback: a neighbour resolves differently");
    assert_eq!(route_get(&lab, &[&INTERNET.to_string()]), internet_without);
    let ours = lab.ip_host(&["-4", "route", "show", "table", "all", "proto", "77"])?;
    assert!(ours.is_empty(), "nothing demoted, yet the daemon has routes:\n{ours}");
    Ok(())
}

both_managers! {
    networkd_neighbours_resolve_as_without_the_daemon, networkmanager_neighbours_resolve_as_without_the_daemon
        => neighbours_resolve_as_without_the_daemon
}
