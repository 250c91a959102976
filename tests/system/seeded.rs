//! The preamble the networkd machine's tests share: the machine booted with the seed and the
//! packages on its payload disk (/mnt), a package installed from there, examples/seed.conf applied against the running networkd (which apply restarts for its
//! networkd.conf.d drop-in), and the seed's routes settled, realised and carrying traffic.

use std::path::Path;
use std::time::Duration;

use super::image;
use super::machine::Machine;
use super::network::{Network, Nic};
use super::policy::{SEED_ROUTES, assert_seed_holds};

/// networkd has configured the seed's three links.
pub const CONFIGURED: &str = "for l in eth0 wlan1 wlan0; do networkctl status $l --no-pager | grep -q 'State: routable (configured)' || exit 1; done";

/// How many of the seed's MPTCP endpoints (ids 240-242) the kernel has.
pub const ENDPOINTS: &str = "ip mptcp endpoint show | grep -c ' id 24[012] '";

/// Boots the cached machine with `nics` in `net` and, on its payload disk mounted on /mnt,
/// `files` and seed.conf (examples/seed.conf).
pub fn boot(net: &Network, nics: &[Nic], files: &[(&str, &Path)]) -> anyhow::Result<Machine> {
    let image = image::machine()?;
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/seed.conf");
    let mut payload = files.to_vec();
    payload.push(("seed.conf", &seed));
    let mut vm = Machine::boot(&image, net, nics, &payload)?;
    vm.ok("mount -o ro /dev/vdb /mnt")?;
    Ok(vm)
}

/// Installs a .deb of the payload disk (mounted on /mnt) as the README says: no recommends.
pub fn install(vm: &mut Machine, deb: &str) -> anyhow::Result<()> {
    vm.ok(&format!("DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends /mnt/{deb}"))?;
    Ok(())
}

/// Makes /mnt/seed.conf the policy and applies it with the running networkd; returns once the
/// seed holds and each uplink reaches the lab's internet host.
pub fn apply_seed(vm: &mut Machine) -> anyhow::Result<()> {
    vm.ok("mkdir -p /etc/multihome && cp /mnt/seed.conf /etc/multihome/multihome.conf && multihome check")?;
    let networkd_before = vm.ok("systemctl show -p InvocationID --value systemd-networkd")?;
    let applied = vm.ok("multihome apply 2>&1")?;
    assert!(applied.contains("Applied"), "{applied}");
    let networkd_after = vm.ok("systemctl show -p InvocationID --value systemd-networkd")?;
    assert_ne!(networkd_before, networkd_after, "apply wrote networkd.conf.d but networkd was not restarted");
    vm.ok("test -f /etc/systemd/networkd.conf.d/60-multihome.conf && test -f /etc/sysctl.d/60-multihome.conf")?;
    // apply restarted networkd (its networkd.conf.d): the new networkd takes the links over
    // again, routes included, a moment after apply returns. Settled: every link configured and
    // the seed's routes in place, twice, 2 s apart.
    let settled = format!("{CONFIGURED} && {SEED_ROUTES} && sleep 2 && {CONFIGURED} && {SEED_ROUTES}");
    vm.wait_for("the seed's routes", &settled, Duration::from_secs(90))?;
    assert_seed_holds(vm)?;
    // Real traffic through the lab: out of each uplink to the internet host.
    for addr in ["192.168.178.99", "192.168.178.98", "192.168.178.97"] {
        vm.wait_for("the internet host answering", &format!("ping -n -c1 -W2 -I {addr} 198.51.100.10"), Duration::from_secs(30))?;
    }
    assert!(vm.ok("ip -4 route get 198.51.100.10")?.contains("dev eth0 "));
    Ok(())
}
