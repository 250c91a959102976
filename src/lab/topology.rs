//! The seed's network, in namespaces: a host with eth0, wlan1 and wlan0 on 192.168.178.0/24,
//! an access switch (a bridge) per uplink, a router with 192.168.178.1, and an "internet" host
//! 198.51.100.10 behind it. Every link is made inside a lab namespace with its peer directly in
//! the other one; nothing is made in the root namespace and then moved.

use std::net::Ipv4Addr;

use super::netns::{ip, run};

pub const UPLINKS: [&str; 3] = ["eth0", "wlan1", "wlan0"];
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 168, 178, 1);
pub const INTERNET: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
/// The seed's addresses (examples/seed.conf).
pub const SEED_ADDRESSES: [(&str, Ipv4Addr); 3] =
    [("eth0", Ipv4Addr::new(192, 168, 178, 99)), ("wlan1", Ipv4Addr::new(192, 168, 178, 98)), ("wlan0", Ipv4Addr::new(192, 168, 178, 97))];

/// Namespace names of one lab; unique per process and lab so labs can run in parallel.
#[derive(Debug, Clone)]
pub struct Names {
    pub prefix: String,
}

impl Names {
    pub fn host(&self) -> String {
        format!("{}-host", self.prefix)
    }
    pub fn router(&self) -> String {
        format!("{}-router", self.prefix)
    }
    pub fn internet(&self) -> String {
        format!("{}-inet", self.prefix)
    }
    pub fn switch(&self, uplink: &str) -> String {
        format!("{}-sw-{uplink}", self.prefix)
    }
    pub fn all(&self) -> Vec<String> {
        let mut v = vec![self.host(), self.router(), self.internet()];
        v.extend(UPLINKS.iter().map(|u| self.switch(u)));
        v
    }
}

/// Creates the namespaces and links. The host's links are left down: the network manager
/// under test (or the test itself) brings them up.
pub fn build(n: &Names) -> anyhow::Result<()> {
    for ns in n.all() {
        run("ip", &["netns", "add", &ns])?;
        ip(&ns, &["link", "set", "lo", "up"])?;
    }
    let (router, inet) = (n.router(), n.internet());
    ip(&router, &["link", "add", "br0", "type", "bridge"])?;
    for u in UPLINKS {
        let sw = n.switch(u);
        let port = format!("p-{u}");
        // host:<u> <-> switch:host, switch:trunk <-> router:p-<u>
        ip(&n.host(), &["link", "add", u, "type", "veth", "peer", "name", "host", "netns", &sw])?;
        ip(&sw, &["link", "add", "trunk", "type", "veth", "peer", "name", &port, "netns", &router])?;
        ip(&sw, &["link", "add", "br0", "type", "bridge"])?;
        for l in ["host", "trunk"] {
            ip(&sw, &["link", "set", "dev", l, "master", "br0"])?;
            ip(&sw, &["link", "set", "dev", l, "up"])?;
        }
        ip(&sw, &["link", "set", "br0", "up"])?;
        ip(&router, &["link", "set", &port, "master", "br0"])?;
        ip(&router, &["link", "set", &port, "up"])?;
    }
    ip(&router, &["addr", "add", "192.168.178.1/24", "dev", "br0"])?;
    ip(&router, &["link", "set", "br0", "up"])?;
    ip(&router, &["link", "add", "wan", "type", "veth", "peer", "name", "wan", "netns", &inet])?;
    ip(&router, &["addr", "add", "198.51.100.1/24", "dev", "wan"])?;
    ip(&router, &["link", "set", "wan", "up"])?;
    run("ip", &["netns", "exec", &router, "sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
    ip(&inet, &["addr", "add", "198.51.100.10/24", "dev", "wan"])?;
    ip(&inet, &["link", "set", "wan", "up"])?;
    ip(&inet, &["route", "add", "default", "via", "198.51.100.1"])?;
    Ok(())
}

/// Static seed addressing done by hand, for labs without a network manager.
pub fn address_host_by_hand(n: &Names) -> anyhow::Result<()> {
    for (u, a) in SEED_ADDRESSES {
        ip(&n.host(), &["addr", "add", &format!("{a}/24"), "dev", u])?;
        ip(&n.host(), &["link", "set", u, "up"])?;
    }
    Ok(())
}

/// Removes the namespaces and directories of labs whose process is gone (killed before the lab
/// was dropped: Ctrl-C on `cargo test`, SIGKILL). Only names of the lab's own form
/// (`mh<PID>x<N>-...`) whose PID no longer runs; a running lab's are never touched, and with
/// MULTIHOME_KEEP_LAB set the directories stay for reading.
pub fn remove_orphans() {
    let orphan = |name: &str| {
        let pid = name.strip_prefix("mh").and_then(|r| r.split_once('x')).map(|(pid, _)| pid);
        pid.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !std::path::Path::new(&format!("/proc/{p}")).exists())
    };
    let names = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default()
    };
    for ns in names(std::path::Path::new("/run/netns")).into_iter().filter(|n| orphan(n) && n.contains('-')) {
        let _ = run("ip", &["netns", "del", &ns]);
    }
    if std::env::var_os("MULTIHOME_KEEP_LAB").is_some() {
        return;
    }
    let tmp = std::env::temp_dir();
    for dir in names(&tmp).into_iter().filter(|n| n.strip_prefix("multihome-lab-").is_some_and(orphan)) {
        let _ = std::fs::remove_dir_all(tmp.join(dir));
    }
}

pub fn destroy(n: &Names) {
    for ns in n.all() {
        let _ = run("ip", &["netns", "del", &ns]);
    }
}
