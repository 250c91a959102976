//! The kernel settings a host with several uplinks on one subnet needs. Each is decided here,
//! with the reason beside it.

use serde::Serialize;

/// One `net.*` sysctl, with the one-line reason that is also written into the rendered file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sysctl {
    pub key: String,
    pub value: String,
    pub why: &'static str,
}

impl Sysctl {
    /// The file under /proc/sys that holds it.
    pub fn proc_path(&self) -> String {
        format!("/proc/sys/{}", self.key)
    }
}

/// Keys are written in the slash form (`net/ipv4/conf/eth0.100/rp_filter`), which sysctl.d
/// accepts too: in the dotted form a VLAN's dot would split its interface name.
fn key(interface: &str, setting: &str) -> String {
    format!("net/ipv4/conf/{interface}/{setting}")
}

/// How the policy plans an uplink's IPv6 side, as far as its sysctls go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Router {
    /// A link-local router (static, or the advertised one, which is always link-local).
    LinkLocal,
    /// A static global router address.
    Global,
}

/// For each uplink, its name and, when the policy plans its IPv6 side, the kind of its router.
pub fn for_uplinks<'a>(interfaces: impl Iterator<Item = (&'a str, Option<Ipv6Router>)>) -> Vec<Sysctl> {
    let interfaces: Vec<(&str, Option<Ipv6Router>)> = interfaces.collect();
    let mut out = Vec::new();
    let mut set = |key: String, value: &str, why: &'static str| out.push(Sysctl { key, value: value.into(), why });
    // `default` covers uplinks that appear after boot (USB Wi-Fi); the per-interface keys cover
    // those that exist now: kernels before 5.x read this one per device only, not from `all`.
    set(
        key("default", "ignore_routes_with_linkdown"),
        "1",
        "skip a route whose link lost carrier at once, instead of sending into it until the manager deletes it",
    );
    if interfaces.iter().any(|(_, v6)| v6.is_some()) {
        set(key6("default", "ignore_routes_with_linkdown"), "1", "the same for IPv6 routes");
    }
    for (name, v6) in interfaces {
        set(key(name, "ignore_routes_with_linkdown"), "1", "skip this uplink's routes the moment it loses carrier (the next metric takes over)");
        set(key(name, "arp_ignore"), "1", "answer ARP only for this uplink's own address (no ARP flux between NICs on one subnet)");
        set(key(name, "arp_announce"), "2", "ask ARP with the address of the interface that sends, so peers learn the right MAC");
        set(key(name, "rp_filter"), "2", "loose reverse-path check: replies may arrive on an uplink that is not the best route back");
        if let Some(router) = v6 {
            // NDP needs no arp_ignore: Linux answers a neighbour solicitation only for addresses
            // of the interface it arrived on. IPv6 has no rp_filter: the `from` rules alone keep
            // replies on the uplink that owns the address.
            match router {
                Ipv6Router::LinkLocal => set(key6(name, "ignore_routes_with_linkdown"), "1", "skip this uplink's IPv6 routes the moment it loses carrier"),
                // Seen in the lab: with it, the kernel looks a global router up past the
                // uplink's own prefix route while that is still marked linkdown when carrier
                // returns, refuses the default route ("No route to host") and networkd fails
                // the link. A link-local router is never looked up.
                Ipv6Router::Global => set(
                    key6(name, "ignore_routes_with_linkdown"),
                    "0",
                    "a global IPv6 router is refused while carrier returns if linkdown routes are skipped; networkd removes this uplink's routes on carrier loss instead (a link-local Gateway= avoids this)",
                ),
            }
            // Seen in the lab (NetworkManager keeps a link's routes for seconds after carrier
            // loss, so traffic still went to wlan1's router and its neighbour entry failed): the
            // kernel then passes over that router's default route until a probe answers, and
            // probes at most every router_probe_interval (60 s), so new connections stayed on
            // the next uplink that long after carrier returned.
            set(
                key6(name, "router_probe_interval"),
                "1",
                "a router that stopped answering while its link was down is asked again within a second, so new connections return to this uplink when it works again",
            );
            set(
                key6(name, "accept_ra_defrtr"),
                "0",
                "the kernel never adds the advertised router itself (metric 1024, main only, outside the uplinks' order); the manager's RA client adds it with the uplink's metric and table",
            );
        }
    }
    out
}

fn key6(interface: &str, setting: &str) -> String {
    format!("net/ipv6/conf/{interface}/{setting}")
}
