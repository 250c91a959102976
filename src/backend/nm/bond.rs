//! Bond mode as NetworkManager keyfiles: a `bond` profile with the bond's options and addressing,
//! and a profile per slave that only enslaves its interface (`master=`, `slave-type=bond`). Pure,
//! like [`super::keyfile`], with names, derived UUIDs and mode it shares.

use std::fmt::Write;

use super::keyfile_names::{KEYFILE_MODE, path};
use super::settings::{profile_id, profile_uuid};
use crate::backend::files::{GeneratedFile, marker};
use crate::plan::bond::BondPlan;
use crate::plan::{Addresses, Plan};
use crate::policy::bond::{Monitor, is_wifi};

/// The bond's profiles, none outside bond mode.
pub fn keyfiles(plan: &Plan) -> Vec<GeneratedFile> {
    let Some(bond) = plan.bond() else { return Vec::new() };
    let mut files = vec![GeneratedFile::new(path(&bond.name), bond_profile(plan, bond), KEYFILE_MODE)];
    for (rank, slave) in bond.slaves.iter().enumerate() {
        files.push(GeneratedFile::new(path(slave), slave_profile(plan, bond, rank, slave), KEYFILE_MODE));
    }
    files
}

/// NetworkManager's `bond.options`, in the kernel's option names and units (milliseconds).
pub fn options(b: &BondPlan) -> Vec<(&'static str, String)> {
    let mut o = vec![("mode", "active-backup".to_string()), ("primary", b.primary.clone()), ("primary_reselect", b.primary_reselect.word().to_string())];
    match &b.monitor {
        Monitor::Mii { interval, up_delay, down_delay } => {
            o.push(("miimon", interval.as_millis().to_string()));
            o.push(("updelay", up_delay.as_millis().to_string()));
            o.push(("downdelay", down_delay.as_millis().to_string()));
        }
        Monitor::Arp { interval, targets, validate, all_targets } => {
            o.push(("arp_interval", interval.as_millis().to_string()));
            o.push(("arp_ip_target", targets.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(",")));
            o.push(("arp_validate", validate.word().to_string()));
            o.push(("arp_all_targets", all_targets.word().to_string()));
        }
    }
    o.push(("fail_over_mac", b.fail_over_mac.word().to_string()));
    o
}

fn bond_profile(plan: &Plan, b: &BondPlan) -> String {
    let mut s = marker(&plan.source, '#');
    let _ = writeln!(s, "# The active-backup bond over {}: one address and MAC, the kernel switches slaves.", b.slaves.join(", "));
    for n in &b.notes {
        let _ = writeln!(s, "# {}", n.split_once(": ").map_or(n.as_str(), |(_, why)| why));
    }
    let _ = writeln!(
        s,
        "\n[connection]\nid={}\nuuid={}\ntype=bond\ninterface-name={}\n# The slaves come up with the bond.\nautoconnect-slaves=1",
        profile_id(&b.name),
        profile_uuid(&b.name),
        b.name
    );
    s.push_str("\n[bond]\n");
    for (key, value) in options(b) {
        let _ = writeln!(s, "{key}={value}");
    }
    s.push_str("\n[ipv4]\n");
    match &b.addresses {
        Addresses::Static(nets) => {
            for (i, net) in nets.iter().enumerate() {
                let _ = write!(s, "address{}={net}", i + 1);
                // NetworkManager's keyfile form: the gateway rides on the first address.
                match b.gateway {
                    Some(gw) if i == 0 => {
                        let _ = writeln!(s, ",{gw}");
                    }
                    _ => s.push('\n'),
                }
            }
            s.push_str("method=manual\n");
        }
        Addresses::Dhcp(_) => s.push_str("method=auto\n"),
    }
    s.push_str("\n[ipv6]\nmethod=auto\n");
    s
}

fn slave_profile(plan: &Plan, b: &BondPlan, rank: usize, slave: &str) -> String {
    let mut s = marker(&plan.source, '#');
    let _ = writeln!(s, "# Slave {} of {} of {}.", rank + 1, b.slaves.len(), b.name);
    let wifi = is_wifi(slave);
    if wifi {
        let _ = writeln!(
            s,
            "# A Wi-Fi profile needs ssid= under [wifi] (and [wifi-security] for a protected network),\n\
             # which the policy does not hold: NetworkManager loads this file only once they are added.\n\
             # Or make the existing Wi-Fi profile the slave instead, keeping its SSID and secrets:\n\
             # nmcli connection modify PROFILE connection.master {} connection.slave-type bond",
            b.name
        );
    }
    let kind = if wifi { "wifi" } else { "ethernet" };
    let _ = writeln!(
        s,
        "\n[connection]\nid={}\nuuid={}\ntype={kind}\ninterface-name={slave}\nmaster={}\nslave-type=bond",
        profile_id(slave),
        profile_uuid(slave),
        b.name
    );
    s.push_str(if wifi { "\n[wifi]\nmode=infrastructure\n" } else { "\n[ethernet]\n" });
    s
}
