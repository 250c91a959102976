//! The lab's network (src/lab/topology.rs: the access switches, the router 192.168.178.1 and the
//! internet host 198.51.100.10) with a virtual machine's NICs in it: each NIC is a tap made
//! inside the lab's host namespace and bridged there to the veth that leads to its uplink's
//! switch, so the machine's traffic goes only where the lab's host's would, and the lab's faults
//! (a switch's host port down, its trunk detached) reach it. Nothing is made in the root
//! namespace, which is compared before and after.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;

use multihome::lab::netns::ip;
use multihome::lab::{root_guard, topology};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A NIC of the machine: its name in the guest (a .link file of the image names it by its MAC)
/// and the lab uplink whose switch it is plugged into.
#[derive(Debug, Clone)]
pub struct Nic {
    pub guest_name: &'static str,
    pub switch: &'static str,
    /// The image's .link files name 52:54:00:00:00:0N: 1 eth0, 2 wlan1, 3 wlan0, 4 eth3, 5 eth4,
    /// 6 eth5.
    pub mac_index: u8,
}

impl Nic {
    pub fn mac(&self) -> String {
        format!("52:54:00:00:00:{:02x}", self.mac_index)
    }
    pub fn tap(&self) -> String {
        format!("tap-{}", self.guest_name)
    }
    /// qemu's name for the NIC's backend (QMP set_link takes it).
    pub fn netdev(&self) -> String {
        format!("n-{}", self.guest_name)
    }
}

/// The seed's three uplinks, each on its own switch, and three more NICs for a bond (eth3 on
/// eth0's switch, eth4 on wlan1's, eth5 on wlan0's), which the seed's policy leaves alone.
pub fn seed_and_bond_nics() -> Vec<Nic> {
    let mut nics = seed_nics();
    nics.push(Nic { guest_name: "eth3", switch: "eth0", mac_index: 4 });
    nics.push(Nic { guest_name: "eth4", switch: "wlan1", mac_index: 5 });
    nics.push(Nic { guest_name: "eth5", switch: "wlan0", mac_index: 6 });
    nics
}

/// The seed's three uplinks, each on its own switch.
pub fn seed_nics() -> Vec<Nic> {
    vec![
        Nic { guest_name: "eth0", switch: "eth0", mac_index: 1 },
        Nic { guest_name: "wlan1", switch: "wlan1", mac_index: 2 },
        Nic { guest_name: "wlan0", switch: "wlan0", mac_index: 3 },
    ]
}

pub struct Network {
    pub names: topology::Names,
    root_before: String,
    dhcp: Option<(Child, PathBuf)>,
}

impl Network {
    pub fn build(nics: &[Nic]) -> anyhow::Result<Network> {
        let root_before = root_guard::snapshot()?;
        topology::remove_orphans();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let net = Network { names: topology::Names { prefix: format!("mh{}x{n}", std::process::id()) }, root_before, dhcp: None };
        // From here on, Drop removes whatever part was made.
        topology::build(&net.names)?;
        let host = net.names.host();
        for uplink in topology::UPLINKS {
            let bridge = format!("vm-{uplink}");
            ip(&host, &["link", "add", &bridge, "type", "bridge"])?;
            ip(&host, &["link", "set", uplink, "master", &bridge])?;
            ip(&host, &["link", "set", uplink, "up"])?;
            ip(&host, &["link", "set", &bridge, "up"])?;
        }
        for nic in nics {
            ip(&host, &["tuntap", "add", &nic.tap(), "mode", "tap"])?;
            ip(&host, &["link", "set", &nic.tap(), "master", &format!("vm-{}", nic.switch)])?;
            ip(&host, &["link", "set", &nic.tap(), "up"])?;
        }
        Ok(net)
    }

    pub fn host(&self) -> String {
        self.names.host()
    }

    /// Silent upstream failure (or repair): the switch's uplink port leaves its bridge; the
    /// machine keeps carrier, and neither the gateway nor the internet answers through it.
    pub fn set_upstream(&self, uplink: &str, up: bool) -> anyhow::Result<()> {
        let sw = self.names.switch(uplink);
        if up {
            ip(&sw, &["link", "set", "dev", "trunk", "master", "br0"])?;
        } else {
            ip(&sw, &["link", "set", "dev", "trunk", "nomaster"])?;
        }
        Ok(())
    }
}

impl Network {
    /// A DHCP server on the router's LAN (dnsmasq, as the lab's: leases .150-.199 for 2
    /// minutes, the router 192.168.178.1), killed by its pid when the network is dropped.
    pub fn start_dhcp(&mut self) -> anyhow::Result<()> {
        let leases = std::env::temp_dir().join(format!("multihome-lab-{}-dhcp.leases", self.names.prefix));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.names.router(), "dnsmasq", "--no-daemon", "--user=root", "--group=root", "--port=0"]);
        cmd.args(["--interface=br0", "--bind-interfaces", "--dhcp-authoritative", "--dhcp-range=192.168.178.150,192.168.178.199,255.255.255.0,2m"]);
        cmd.arg("--dhcp-option=3,192.168.178.1").arg(format!("--dhcp-leasefile={}", leases.display()));
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        // As root (dropping to nobody would clear the parent-death signal): it dies with the test.
        unsafe {
            cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from));
        }
        self.dhcp = Some((cmd.spawn().context("cannot start dnsmasq")?, leases));
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if let Some((mut dnsmasq, leases)) = self.dhcp.take() {
            let _ = dnsmasq.kill();
            let _ = dnsmasq.wait();
            let _ = std::fs::remove_file(leases);
        }
        topology::destroy(&self.names);
        match root_guard::snapshot().map(|after| root_guard::difference(&self.root_before, &after)) {
            Ok(None) => {}
            Ok(Some(diff)) => {
                let msg = format!("THE SYSTEM TEST CHANGED THE ROOT NETWORK NAMESPACE:\n{diff}");
                if std::thread::panicking() { eprintln!("{msg}") } else { panic!("{msg}") }
            }
            Err(e) => eprintln!("cannot check the root namespace after the system test: {e:#}"),
        }
    }
}
