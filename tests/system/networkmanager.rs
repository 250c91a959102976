//! One Debian machine run by NetworkManager: the package installed, the seed applied over the
//! real system bus inside a checkpoint, the daemon beside it, a DHCP uplink whose rules the
//! package's dispatcher hook writes when the lease arrives, and a reboot.

use std::path::Path;
use std::time::Duration;

use super::image;
use super::machine::Machine;
use super::network::{self, Network};
use super::policy::{SEED_ROUTES, assert_seed_holds};

/// eth0 and wlan1 static, wlan0 by DHCP from the lab's dnsmasq (src/lab/policies.rs' DHCP_WLAN0
/// with wlan1 kept): the hook writes wlan0's rules (10200, 10201, table 103) for its lease.
const SEED_WITH_DHCP_WLAN0: &str = "\
[Uplink]
Interface=eth0
Priority=1
Address=192.168.178.99/24
Gateway=192.168.178.1

[Uplink]
Interface=wlan1
Priority=2
Address=192.168.178.98/24
Gateway=192.168.178.1

[Uplink]
Interface=wlan0
Priority=3
DHCP=ipv4
";

#[test]
fn networkmanager_machine_applies_hooks_and_reboots() -> anyhow::Result<()> {
    let _one = crate::one_machine_at_a_time();
    if !image::require() {
        return Ok(());
    }
    let image = image::machine()?;
    let nics = network::seed_nics();
    let mut net = Network::build(&nics)?;
    net.start_dhcp()?;
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/seed.conf");
    let dir = tempdir_with("dhcp.conf", SEED_WITH_DHCP_WLAN0)?;
    let deb = image::deb();
    let dhcp_policy = dir.0.join("dhcp.conf");
    let mut vm = Machine::boot(&image, &net, &nics, &[("multihome.deb", &deb), ("seed.conf", &seed), ("dhcp.conf", &dhcp_policy)])?;
    vm.ok("mount -o ro /dev/vdb /mnt")?;
    vm.ok("DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends /mnt/multihome.deb")?;
    vm.ok("test -x /usr/lib/NetworkManager/dispatcher.d/90-multihome")?;

    // The administrator moves the machine to NetworkManager (no automatic DHCP profiles: the
    // uplinks are the policy's).
    vm.ok("systemctl disable --now systemd-networkd.socket systemd-networkd.service networkd-dispatcher.service 2>&1")?;
    vm.ok("printf '[main]\\nno-auto-default=*\\n' >/etc/NetworkManager/conf.d/90-uplinks.conf && systemctl enable --now NetworkManager 2>&1")?;
    vm.wait_for("NetworkManager on the bus", "busctl status org.freedesktop.NetworkManager >/dev/null", Duration::from_secs(60))?;

    // Backend=auto finds NetworkManager on the system bus; apply inside its checkpoint.
    vm.ok("mkdir -p /etc/multihome && cp /mnt/seed.conf /etc/multihome/multihome.conf")?;
    let applied = vm.ok("multihome apply 2>&1")?;
    assert!(applied.contains("NetworkManager's checkpoint committed"), "{applied}");
    for u in ["eth0", "wlan1", "wlan0"] {
        assert!(applied.contains(&format!("created new profile \"multihome-{u}\" on {u}")), "{applied}");
    }
    vm.wait_for("the seed's routes", SEED_ROUTES, Duration::from_secs(60))?;
    assert_seed_holds(&mut vm)?;
    for addr in ["192.168.178.99", "192.168.178.98", "192.168.178.97"] {
        vm.wait_for("the internet host answering", &format!("ping -n -c1 -W2 -I {addr} 198.51.100.10"), Duration::from_secs(30))?;
    }
    let again = vm.ok("multihome apply 2>&1")?;
    assert!(again.contains("Nothing to do"), "second apply: {again}");

    // The daemon beside NetworkManager: it demotes a silently failed eth0.
    vm.ok("systemctl start multihome")?;
    vm.wait_for("eth0 up", "multihome status | grep -q 'New connections leave via eth0'", Duration::from_secs(60))?;
    net.set_upstream("eth0", false)?;
    vm.wait_for("eth0 demoted", "multihome status | grep -q 'New connections leave via wlan1'", Duration::from_secs(60))?;
    assert!(vm.ok("ip -4 route get 198.51.100.10")?.contains("dev wlan1 "));
    net.set_upstream("eth0", true)?;

    // wlan0 by DHCP: NetworkManager's dispatcher runs the package's hook with the lease, and
    // the hook writes wlan0's rules (protocol 77) for the leased address.
    vm.ok("cp /mnt/dhcp.conf /etc/multihome/multihome.conf && multihome apply 2>&1")?;
    let rules = vm.wait_for(
        "the hook's rules for wlan0's lease",
        "ip -4 rule show | grep -E '^10200:\\s+from 192\\.168\\.178\\.1[5-9][0-9] lookup 103 proto 77' && ip -4 rule show",
        Duration::from_secs(90),
    )?;
    assert!(rules.contains("10201:\tfrom all to 192.168.178.1"), "{rules}");
    vm.ok("journalctl -b --no-pager | grep -q 'nm-dispatcher'")?;

    // A reboot: the profiles, rules and routes come back from NetworkManager, the daemon too.
    let first_boot = vm.boot_id().to_string();
    vm.journal()?;
    vm.reboot()?;
    assert_ne!(vm.boot_id(), first_boot);
    vm.wait_for("the daemon after the reboot", "systemctl is-active multihome", Duration::from_secs(120))?;
    vm.wait_for(
        "wlan0's lease and the hook's rules after the reboot",
        "ip -4 rule show | grep -qE '^10200:\\s+from 192\\.168\\.178\\.1[5-9][0-9] lookup 103 proto 77'",
        Duration::from_secs(120),
    )?;
    let rules = vm.ok("ip -4 rule show")?;
    for rule in ["10000:\tfrom 192.168.178.99 lookup 101", "10100:\tfrom 192.168.178.98 lookup 102"] {
        assert!(rules.contains(rule), "{rule:?} after the reboot:\n{rules}");
    }
    vm.wait_for("eth0 up after the reboot", "multihome status | grep -q 'New connections leave via eth0'", Duration::from_secs(60))?;
    vm.wait_for("the internet host answering", "ping -n -c1 -W2 198.51.100.10", Duration::from_secs(30))?;
    vm.journal()?;
    vm.passed();
    Ok(())
}

/// A directory with one file, removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir_with(name: &str, text: &str) -> anyhow::Result<TempDir> {
    let dir = TempDir(std::env::temp_dir().join(format!("multihome-system-{}-{name}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    std::fs::write(dir.0.join(name), text)?;
    Ok(dir)
}
