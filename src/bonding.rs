//! Whether the running kernel can make a bond. Bond mode applied live on a kernel without the
//! bonding driver would enslave every uplink to a bond that never appears and leave the host
//! offline, so the live apply asks first (this is also what the lab machine's kernel lacks).

use std::fs;
use std::path::Path;

/// Present in every network namespace once the bonding driver is loaded.
const BONDING_MASTERS: &str = "/sys/class/net/bonding_masters";

/// `Ok` when the driver is loaded, built in, or a module the kernel can load on demand (networkd
/// and NetworkManager create the bond by netlink, which loads it).
pub fn available() -> anyhow::Result<()> {
    if Path::new(BONDING_MASTERS).exists() {
        return Ok(());
    }
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let listed =
        |file: &str| fs::read_to_string(Path::new("/lib/modules").join(&release).join(file)).is_ok_and(|t| t.lines().any(|l| l.contains("/bonding.ko")));
    if listed("modules.builtin") || listed("modules.dep") {
        return Ok(());
    }
    anyhow::bail!(
        "this kernel ({release}) has no bonding driver (not loaded: no {BONDING_MASTERS}; not in /lib/modules/{release}/modules.builtin or modules.dep), \
         so Mode=bond would leave every uplink enslaved to a bond that never appears; nothing was changed. \
         `multihome render` shows the files for a machine whose kernel has bonding"
    )
}
