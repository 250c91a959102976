//! Bond mode for networkd: a `.netdev` that makes the bond (Kind=bond, its `[Bond]` options), a
//! `.network` for the bond with the address, and one per slave that only enslaves it (`Bond=`,
//! `PrimarySlave=yes` on the primary), or, for a slave that an administrator's .network file
//! takes, a drop-in for that file with just these, as the routes mode amends uplinks' files
//! (`placement`). Pure; the keys are systemd 252's (systemd.netdev(5), systemd.network(5)), and
//! the lab proves networkd parses them without a complaint.

use std::fmt::Write;

use super::names::{NETWORK_DIR, network_file_name};
use super::placement::{Home, Layout, Placement};
use crate::backend::files::{GeneratedFile, marker};
use crate::plan::bond::BondPlan;
use crate::plan::{Addresses, Plan};
use crate::policy::Dhcp;
use crate::policy::bond::Monitor;
use crate::policy::timespan;

/// `10-`, as the uplinks' own files: before the usual 20-/50-/80- files that might take a slave.
pub fn netdev_file_name(name: &str) -> String {
    format!("10-multihome-{name}.netdev")
}

/// The bond's files, none outside bond mode; each slave's where `layout` puts it (a drop-in for
/// an administrator's file that takes the link, or a file of multihome's own).
pub fn render(plan: &Plan, layout: &Layout) -> Vec<GeneratedFile> {
    let Some(bond) = plan.bond() else { return Vec::new() };
    let mut files = vec![
        GeneratedFile::new(format!("{NETWORK_DIR}/{}", netdev_file_name(&bond.name)), netdev(plan, bond), 0o644),
        GeneratedFile::new(format!("{NETWORK_DIR}/{}", network_file_name(&bond.name)), bond_network(plan, bond), 0o644),
    ];
    for (rank, slave) in bond.slaves.iter().enumerate() {
        let placement = layout.placement(slave).expect("the layout places every slave of its plan's bond");
        files.push(GeneratedFile::new(placement.path(), slave_network(plan, bond, rank, placement), 0o644));
    }
    files
}

fn netdev(plan: &Plan, b: &BondPlan) -> String {
    let mut s = marker(&plan.source, '#');
    let _ = writeln!(s, "# The active-backup bond over {}: one address and MAC, the kernel switches slaves.", b.slaves.join(", "));
    let _ = writeln!(s, "\n[NetDev]\nName={}\nKind=bond\n\n[Bond]\nMode=active-backup", b.name);
    let _ = writeln!(s, "PrimaryReselectPolicy={}", b.primary_reselect.word());
    match &b.monitor {
        Monitor::Mii { interval, up_delay, down_delay } => {
            let _ = writeln!(
                s,
                "MIIMonitorSec={}\nUpDelaySec={}\nDownDelaySec={}",
                timespan::format(*interval),
                timespan::format(*up_delay),
                timespan::format(*down_delay)
            );
        }
        Monitor::Arp { interval, targets, validate, all_targets } => {
            let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
            let _ = writeln!(
                s,
                "ARPIntervalSec={}\nARPIPTargets={}\nARPValidate={}\nARPAllTargets={}",
                timespan::format(*interval),
                targets.join(" "),
                validate.word(),
                all_targets.word()
            );
        }
    }
    for n in &b.notes {
        let _ = writeln!(s, "# {}", n.split_once(": ").map_or(n.as_str(), |(_, why)| why));
    }
    let _ = writeln!(s, "FailOverMACPolicy={}", b.fail_over_mac.word());
    s
}

fn bond_network(plan: &Plan, b: &BondPlan) -> String {
    let mut s = marker(&plan.source, '#');
    let _ = writeln!(s, "# The bond's addressing; its slaves carry none.\n\n[Match]\nName={}\n\n[Network]", b.name);
    match &b.addresses {
        Addresses::Static(nets) => {
            s.push_str("DHCP=no\n");
            for net in nets {
                let _ = writeln!(s, "Address={net}");
            }
            if let Some(gw) = b.gateway {
                let _ = writeln!(s, "Gateway={gw}");
            }
        }
        Addresses::Dhcp(d) => {
            let _ = writeln!(s, "DHCP={}", if *d == Dhcp::Ipv4 { "ipv4" } else { "yes" });
        }
    }
    // A bond without any slave up is "no-carrier"; waiting for it at boot would wait for ever on
    // a host whose uplinks are all Wi-Fi that associates later.
    s.push_str("ConfigureWithoutCarrier=yes\n");
    s
}

fn slave_network(plan: &Plan, b: &BondPlan, rank: usize, placement: &Placement) -> String {
    let slave = placement.interface.as_str();
    let mut s = marker(&plan.source, '#');
    let _ = writeln!(s, "# Slave {} of {} of {}.", rank + 1, b.slaves.len(), b.name);
    if crate::policy::bond::is_wifi(slave) {
        s.push_str("# networkd does not associate Wi-Fi: wpa_supplicant does, as without the bond.\n");
    }
    match &placement.home {
        Home::Own { .. } => {
            let _ = writeln!(s, "\n[Match]\nName={slave}\n\n[Network]\nBond={}", b.name);
        }
        Home::DropIn { network } => {
            let _ = writeln!(
                s,
                "# A drop-in for {network}, which networkd uses for {slave}: that file stays as it is,\n# and networkd adds what follows to it.\n\n[Network]\nBond={}",
                b.name
            );
            if let Some(dhcp) = placement.amendment.dhcp {
                let _ = writeln!(s, "DHCP={dhcp}");
            }
        }
    }
    if b.primary == slave {
        s.push_str("PrimarySlave=yes\n");
    }
    s
}
