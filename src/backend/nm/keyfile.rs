//! Plan -> NetworkManager keyfiles (`multihome render --backend nm-keyfile`), for images and
//! machines where NetworkManager is not running yet. Pure: returns the files, mode 0600 as
//! NetworkManager requires of keyfiles, and [`crate::backend::files`] writes them.
//!
//! The profiles are the ones `apply --backend networkmanager` would create (same name, same
//! derived UUID, same `ipv4` values from [`Wanted`]), so applying later finds and keeps them.

use std::fmt::Write;

use crate::backend::files::{GeneratedFile, marker};
use crate::backend::sysctl;
use crate::plan::{Addresses, Plan, Prefix, Route, Rule, UplinkPlan};

pub use super::keyfile_names::{CONNECTIONS_DIR, KEYFILE_MODE, owned_patterns, path};
use super::settings::{Wanted, profile_id, profile_uuid, record, record_for};

/// Wi-Fi interfaces by the kernel's and udev's naming (wlan0, wlp2s0, wlx...): their profile
/// needs an SSID, which no policy holds.
fn is_wifi(interface: &str) -> bool {
    interface.starts_with("wl")
}

pub fn render(plan: &Plan) -> Vec<GeneratedFile> {
    let mut files: Vec<GeneratedFile> = plan.uplinks().iter().map(|u| GeneratedFile::new(path(&u.interface), keyfile(plan, u), KEYFILE_MODE)).collect();
    files.extend(super::bond::keyfiles(plan));
    files.extend(sysctl::file(plan));
    files
}

fn keyfile(plan: &Plan, u: &UplinkPlan) -> String {
    let want = Wanted::in_plan(plan, u);
    let mut s = marker(&plan.source, '#');
    let _ = writeln!(s, "# Uplink {} of {}: table {}, main-table metric {}.", u.rank + 1, plan.uplinks().len(), u.table, u.metric);
    if is_wifi(&u.interface) {
        s.push_str(
            "# A Wi-Fi profile needs ssid= under [wifi] (and [wifi-security] for a protected network),\n\
             # which the policy does not hold: NetworkManager loads this file only once they are added.\n\
             # On a running system, create the Wi-Fi profile with nmcli and use\n\
             # `multihome apply --backend networkmanager`, which merges the policy into it.\n",
        );
    }
    if let Addresses::Dhcp(_) = u.addresses {
        s.push_str("# The `from`/`to` rules of the lease's address are added by `multihome dispatch`.\n");
    }
    if u.ipv6.as_ref().is_some_and(|v6| v6.accept_ra || v6.dhcp) {
        s.push_str("# The rules of its SLAAC and DHCPv6 addresses, and the advertised router in table ");
        let _ = writeln!(s, "{}, are added by `multihome dispatch`.", u.table);
    }
    let kind = if is_wifi(&u.interface) { "wifi" } else { "ethernet" };
    let _ = writeln!(s, "\n[connection]\nid={}\nuuid={}\ntype={kind}\ninterface-name={}", profile_id(&u.interface), profile_uuid(&u.interface), u.interface);
    if want.mptcp_disabled {
        // multihome makes the MPTCP endpoints (see settings::Wanted::mptcp_disabled).
        let _ = writeln!(s, "mptcp-flags={}", super::settings::MPTCP_FLAGS_DISABLED);
    }
    if kind == "wifi" {
        s.push_str("\n[wifi]\nmode=infrastructure\n");
    } else {
        s.push_str("\n[ethernet]\n");
    }
    s.push_str("\n[ipv4]\n");
    for (i, net) in want.addresses.iter().enumerate() {
        let _ = write!(s, "address{}={net}", i + 1);
        // NetworkManager's keyfile form: the gateway rides on the first address.
        match want.gateway {
            Some(gw) if i == 0 => {
                let _ = writeln!(s, ",{gw}");
            }
            _ => s.push('\n'),
        }
    }
    let _ = writeln!(s, "method={}\nroute-metric={}", want.method, want.route_metric);
    for (i, r) in want.routes.iter().enumerate() {
        route(&mut s, i + 1, r);
    }
    for (i, r) in want.rules.iter().enumerate() {
        rule(&mut s, i + 1, r);
    }
    match &want.ipv6 {
        None => s.push_str("\n[ipv6]\nmethod=auto\n"),
        Some(w6) => {
            s.push_str("\n[ipv6]\n");
            for (i, net) in w6.addresses.iter().enumerate() {
                let _ = write!(s, "address{}={net}", i + 1);
                match w6.gateway {
                    Some(gw) if i == 0 => {
                        let _ = writeln!(s, ",{gw}");
                    }
                    _ => s.push('\n'),
                }
            }
            let _ = writeln!(s, "method={}", w6.method);
            if let Some(t) = w6.required_timeout {
                let _ = writeln!(s, "required-timeout={t}");
            }
            let _ = writeln!(s, "route-metric={}", want.route_metric);
            for (i, r) in w6.routes.iter().enumerate() {
                route(&mut s, i + 1, r);
            }
            for (i, r) in w6.rules.iter().enumerate() {
                rule(&mut s, i + 1, r);
            }
        }
    }
    // What apply records in the profile it merges into, so that apply finds nothing to change
    // and a later policy removes exactly these routes and rules.
    let written = record_for(&want);
    let _ = write!(s, "\n[user]\n{}={}\n{}={}\n", record::ROUTES_KEY, written.routes_value(), record::RULES_KEY, written.rules_value());
    if written.ipv6 {
        let _ = writeln!(s, "{}=yes", record::IPV6_KEY);
    }
    s
}

fn route<N: Prefix>(s: &mut String, n: usize, r: &Route<N>) {
    let _ = write!(s, "route{n}={}", r.destination);
    match (r.gateway, r.metric) {
        (Some(gw), Some(m)) => {
            let _ = write!(s, ",{gw},{m}");
        }
        (Some(gw), None) => {
            let _ = write!(s, ",{gw}");
        }
        (None, Some(m)) => {
            let unspecified = if N::FAMILY == "ipv4" { "0.0.0.0" } else { "::" };
            let _ = write!(s, ",{unspecified},{m}");
        }
        (None, None) => {}
    }
    s.push('\n');
    let mut options = Vec::new();
    // Every gateway is on the uplink's link (plan::Route); the same attribute apply sets.
    if r.gateway.is_some() && N::GATEWAY_ONLINK {
        options.push("onlink=true".to_string());
    }
    if let Some(src) = r.preferred_source {
        options.push(format!("src={src}"));
    }
    options.push(format!("table={}", r.table.number()));
    let _ = writeln!(s, "route{n}_options={}", options.join(","));
}

fn rule<N: Prefix>(s: &mut String, n: usize, r: &Rule<N>) {
    let _ = write!(s, "routing-rule{n}=priority {}", r.priority);
    if let Some(from) = r.from {
        let _ = write!(s, " from {from}");
    }
    if let Some(to) = r.to {
        let _ = write!(s, " to {to}");
    }
    let _ = writeln!(s, " table {}", r.table.number());
}
