//! Plan -> systemd-networkd files: per uplink a drop-in for the .network file networkd already
//! uses for it, or a .network file of multihome's own (see `placement`); a sysctl.d file and a
//! networkd.conf.d drop-in. Pure: returns the files, [`crate::backend::files`] writes them.

use std::fmt::Write;

use super::names::NETWORKD_CONF_FILE;
use super::placement::{Home, Layout, Placement};
use crate::backend::files::{GeneratedFile, marker};
use crate::backend::sysctl;
use crate::plan::{Addresses, Plan, Prefix, Route, Rule, Table, UplinkPlan};
use crate::policy::Dhcp;

/// The files for `plan`, each uplink's where `layout` puts it.
pub fn render(plan: &Plan, layout: &Layout) -> Vec<GeneratedFile> {
    let mut files: Vec<GeneratedFile> = plan
        .uplinks()
        .iter()
        .map(|u| {
            let placement = layout.placement(&u.interface).expect("the layout places every uplink of its plan");
            GeneratedFile::new(placement.path(), network_file(plan, u, placement), 0o644)
        })
        .collect();
    files.extend(super::netdev::render(plan, layout));
    files.extend(sysctl::file(plan));
    // Whatever the policy: the daemon can run with any (the unit starts it whenever a policy
    // exists), and networkd must then leave its routes and the hook's rules alone. Only the
    // plan of `multihome reset`, without uplinks, has no daemon to protect.
    if !plan.uplinks().is_empty() {
        files.push(GeneratedFile::new(NETWORKD_CONF_FILE, networkd_conf(plan), 0o644));
    }
    files
}

fn network_file(plan: &Plan, u: &UplinkPlan, placement: &Placement) -> String {
    let mut s = marker(&plan.source, '#');
    let _ = writeln!(s, "# Uplink {} of {}: table {}, main-table metric {}.", u.rank + 1, plan.uplinks().len(), u.table, u.metric);
    let policy_dhcp = dhcp_value(u);
    // networkd's own word for SLAAC and the advertised router; absent when the policy leaves
    // IPv6 to the network manager.
    let accept_ra = u.ipv6.as_ref().map(|v6| if v6.accept_ra { "yes" } else { "no" });
    match &placement.home {
        Home::Own { .. } => {
            let _ = writeln!(s, "\n[Match]\nName={}\n\n[Network]\nDHCP={policy_dhcp}", u.interface);
            if let Some(ra) = accept_ra {
                let _ = writeln!(s, "IPv6AcceptRA={ra}");
            }
        }
        Home::DropIn { network } => {
            // Only what the policy adds: the file's own settings (MTU, DNS, domains, IPv6...)
            // keep applying, and lists such as Address= and [Route] add up with the file's.
            let _ = writeln!(
                s,
                "# A drop-in for {network}, which networkd uses for {}: that file stays as it is,\n# and networkd adds what follows to it.",
                u.interface
            );
            if placement.amendment.dhcp.is_some() || accept_ra.is_some() {
                s.push_str("\n[Network]\n");
            }
            if let Some(dhcp) = placement.amendment.dhcp {
                let _ = writeln!(s, "DHCP={dhcp}");
            }
            if let Some(ra) = accept_ra {
                let _ = writeln!(s, "IPv6AcceptRA={ra}");
            }
        }
    }
    let addresses6 = u.ipv6.iter().flat_map(|v6| v6.addresses.iter().map(|n| n.to_string()));
    if let Addresses::Static(nets) = &u.addresses {
        for net in nets.iter().map(|n| n.to_string()).chain(addresses6) {
            let _ = writeln!(s, "\n[Address]\nAddress={net}");
            // Without a metric, the prefix routes of all uplinks on one subnet tie in main.
            let _ = writeln!(s, "RouteMetric={}", u.metric);
        }
    } else {
        for net in addresses6 {
            let _ = writeln!(s, "\n[Address]\nAddress={net}\nRouteMetric={}", u.metric);
        }
    }
    if let Addresses::Dhcp(_) = &u.addresses {
        // The lease's routes (its default route and the router's) go to main with this
        // uplink's metric; the hook adds the `from`/`to` rules once the address is known.
        let _ = writeln!(s, "\n[DHCPv4]\nRouteMetric={}", u.metric);
        if placement.amendment.dhcp_route_table_main {
            // The amended file sends the lease's routes to another table; main is where the
            // metric order is.
            s.push_str("RouteTable=254\n");
        }
        // The uplink's own table gets the lease's router as default route too.
        let _ = writeln!(s, "\n[Route]\nGateway=_dhcp4\nGatewayOnLink=yes\nTable={}", u.table);
    }
    if let Some(v6) = u.ipv6.as_ref().filter(|v6| v6.accept_ra) {
        // The advertised prefixes' routes and, unless the policy names the router, its default
        // route go to main at this uplink's metric, as the lease's do for IPv4.
        let _ = writeln!(s, "\n[IPv6AcceptRA]\nRouteMetric={}", u.metric);
        if v6.gateway.is_some() {
            s.push_str("UseGateway=no\n");
        } else {
            // The uplink's own table gets the advertised router as default route too.
            let _ = writeln!(s, "\n[Route]\nGateway=_ipv6ra\nTable={}", u.table);
        }
    }
    for r in &u.routes {
        route(&mut s, r);
    }
    for r in &u.rules {
        rule(&mut s, r);
    }
    if let Some(v6) = &u.ipv6 {
        for r in &v6.routes {
            route(&mut s, r);
        }
        for r in &v6.rules {
            rule(&mut s, r);
        }
    }
    s
}

/// `[Network] DHCP=` for the uplink's families.
fn dhcp_value(u: &UplinkPlan) -> &'static str {
    let v4 = match &u.addresses {
        Addresses::Static(_) => None,
        Addresses::Dhcp(d) => Some(*d),
    };
    let v6 = u.ipv6.as_ref().is_some_and(|v6| v6.dhcp);
    match (v4, v6) {
        (Some(_), true) => "yes",
        (Some(Dhcp::Yes), false) => "yes",
        (Some(Dhcp::Ipv4), false) => "ipv4",
        (None, true) => "ipv6",
        (None, false) => "no",
    }
}

fn route<N: Prefix>(s: &mut String, r: &Route<N>) {
    s.push_str("\n[Route]\n");
    if !r.is_default() {
        let _ = writeln!(s, "Destination={}", r.destination);
    }
    match r.gateway {
        Some(gw) => {
            let _ = writeln!(s, "Gateway={gw}");
        }
        // networkd's Scope= is IPv4's; an IPv6 route without a gateway is on-link anyway.
        None if N::FAMILY == "ipv4" => s.push_str("Scope=link\n"),
        None => {}
    }
    if r.gateway.is_some() && N::GATEWAY_ONLINK {
        // See plan::Route::gateway and plan::Prefix::GATEWAY_ONLINK.
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

fn rule<N: Prefix>(s: &mut String, r: &Rule<N>) {
    s.push_str("\n[RoutingPolicyRule]\n");
    if N::FAMILY != "ipv4" {
        // Implied by From=/To=, but said: networkd's default family is IPv4.
        let _ = writeln!(s, "Family={}", N::FAMILY);
    }
    if let Some(from) = r.from {
        let _ = writeln!(s, "From={from}");
    }
    if let Some(to) = r.to {
        let _ = writeln!(s, "To={to}");
    }
    let _ = writeln!(s, "Table={}\nPriority={}", r.table.number(), r.priority);
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
