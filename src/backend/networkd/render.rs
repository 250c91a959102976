//! Plan -> systemd-networkd files (.network per uplink, a sysctl.d and a networkd.conf.d
//! drop-in). Pure: returns the files, [`crate::backend::files`] writes them.

use std::fmt::Write;

use crate::backend::files::{marker, GeneratedFile};
use crate::plan::{Addresses, Plan, Route, Rule, Table, UplinkPlan};
use crate::policy::Dhcp;

pub const NETWORK_DIR: &str = "etc/systemd/network";
pub const SYSCTL_FILE: &str = "etc/sysctl.d/60-multihome.conf";
pub const NETWORKD_CONF_DIR: &str = "etc/systemd/networkd.conf.d";
pub const NETWORKD_CONF_FILE: &str = "etc/systemd/networkd.conf.d/60-multihome.conf";

/// `10-`: networkd uses the first .network file (in lexical order over all its directories)
/// whose [Match] fits a link, so ours must sort before the usual 20-/50-/80- files.
pub fn network_file_name(interface: &str) -> String {
    format!("10-multihome-{interface}.network")
}

/// Everything multihome owns under a root for this backend, so stale files can be found.
pub fn owned_patterns() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![(NETWORK_DIR, "10-multihome-", ".network"), ("etc/sysctl.d", "60-multihome", ".conf"), ("etc/systemd/networkd.conf.d", "60-multihome", ".conf")]
}

pub fn render(plan: &Plan) -> Vec<GeneratedFile> {
    let mut files: Vec<GeneratedFile> = plan
        .uplinks
        .iter()
        .map(|u| GeneratedFile::new(format!("{NETWORK_DIR}/{}", network_file_name(&u.interface)), network_file(plan, u), 0o644))
        .collect();
    files.push(GeneratedFile::new(SYSCTL_FILE, sysctl_file(plan), 0o644));
    if plan.run_time_changes {
        files.push(GeneratedFile::new(NETWORKD_CONF_FILE, networkd_conf(plan), 0o644));
    }
    files
}

fn network_file(plan: &Plan, u: &UplinkPlan) -> String {
    let mut s = marker(&plan.source, '#');
    let _ = writeln!(s, "# Uplink {} of {}: table {}, main-table metric {}.", u.rank + 1, plan.uplinks.len(), u.table, u.metric);
    let _ = writeln!(s, "\n[Match]\nName={}", u.interface);
    s.push_str("\n[Network]\n");
    match &u.addresses {
        Addresses::Static(_) => s.push_str("DHCP=no\n"),
        Addresses::Dhcp(d) => {
            let _ = writeln!(s, "DHCP={}", if *d == Dhcp::Ipv4 { "ipv4" } else { "yes" });
        }
    }
    if let Addresses::Static(nets) = &u.addresses {
        for net in nets {
            let _ = writeln!(s, "\n[Address]\nAddress={net}");
            // Without a metric, the prefix routes of all uplinks on one subnet tie in main.
            let _ = writeln!(s, "RouteMetric={}", u.metric);
        }
    }
    if let Addresses::Dhcp(_) = &u.addresses {
        // The lease's routes (its default route and the router's) go to main with this
        // uplink's metric; the hook adds the `from`/`to` rules once the address is known.
        let _ = writeln!(s, "\n[DHCPv4]\nRouteMetric={}", u.metric);
        // The uplink's own table gets the lease's router as default route too.
        let _ = writeln!(s, "\n[Route]\nGateway=_dhcp4\nGatewayOnLink=yes\nTable={}", u.table);
    }
    for r in &u.routes {
        route(&mut s, r);
    }
    for r in &u.rules {
        rule(&mut s, r);
    }
    s
}

fn route(s: &mut String, r: &Route) {
    s.push_str("\n[Route]\n");
    if !r.is_default() {
        let _ = writeln!(s, "Destination={}", r.destination);
    }
    match r.gateway {
        Some(gw) => {
            let _ = writeln!(s, "Gateway={gw}");
        }
        None => s.push_str("Scope=link\n"),
    }
    if r.gateway.is_some() {
        // See plan::Route::gateway.
        s.push_str("GatewayOnLink=yes\n");
    }
    if let Some(src) = r.preferred_source {
        let _ = writeln!(s, "PreferredSource={src}");
    }
    if let Table::Id(t) = r.table {
        let _ = writeln!(s, "Table={t}");
    }
    if let Some(m) = r.metric {
        let _ = writeln!(s, "Metric={m}");
    }
}

fn rule(s: &mut String, r: &Rule) {
    s.push_str("\n[RoutingPolicyRule]\n");
    if let Some(from) = r.from {
        let _ = writeln!(s, "From={from}");
    }
    if let Some(to) = r.to {
        let _ = writeln!(s, "To={to}");
    }
    let _ = writeln!(s, "Table={}\nPriority={}", r.table.number(), r.priority);
}

fn sysctl_file(plan: &Plan) -> String {
    let mut s = marker(&plan.source, '#');
    for c in &plan.sysctls {
        let _ = write!(s, "\n# {}\n{} = {}\n", c.why, c.key, c.value);
    }
    s
}

fn networkd_conf(plan: &Plan) -> String {
    let mut s = marker(&plan.source, '#');
    s.push_str(
        "\n# multihome adds rules and routes at run time (the dispatcher hook for DHCP uplinks,\n\
         # the failover daemon); without this networkd deletes them on its next reconfiguration.\n\
         [Network]\nManageForeignRoutingPolicyRules=no\nManageForeignRoutes=no\n",
    );
    s
}
