//! Placement, conflicts and rendering against administrators' files given as text: which file
//! each uplink amends, what is said about it, and what the drop-in holds.

use std::collections::BTreeMap;

use super::findings::Severity;
use super::live::LiveLink;
use super::matcher::{Fact, LinkFacts};
use super::placement::{Home, Layout, place};
use super::render;
use super::survey::{Found, NetworkFiles, SEARCH_DIRS};
use crate::backend::files;
use crate::plan::{self, Plan};
use crate::policy;

const SEED: &str = include_str!("../../../examples/seed.conf");
const DHCP: &str = "[Uplink]\nInterface=eth0\nPriority=1\nDHCP=ipv4\n\n[Uplink]\nInterface=wlan0\nPriority=2\nDHCP=yes\n";

fn plan_of(policy: &str) -> Plan {
    plan::plan(&policy::parse("policy.conf", policy).expect("a valid policy"))
}

/// Files as `/DIR/NAME` (or `/DIR/NAME.network.d/DROPIN`) with their text (`None`: masked).
fn files(list: &[(&str, Option<&str>)]) -> NetworkFiles {
    let found: Vec<Found> = list
        .iter()
        .map(|(path, text)| {
            let dir = SEARCH_DIRS.iter().position(|d| path[1..].starts_with(d)).expect("a search directory");
            let rest = &path[SEARCH_DIRS[dir].len() + 2..];
            let (dropin_of, name) = match rest.split_once(".d/") {
                Some((of, name)) => (Some(of.to_string()), name.to_string()),
                None => (None, rest.to_string()),
            };
            Found { dir, dropin_of, name, text: text.map(str::to_string) }
        })
        .collect();
    NetworkFiles::assemble(&found)
}

fn layout(policy: &str, list: &[(&str, Option<&str>)]) -> Layout {
    place(&plan_of(policy), &files(list), &BTreeMap::new())
}

fn home(l: &Layout, iface: &str) -> String {
    match &l.placement(iface).unwrap().home {
        Home::Own { .. } => "own".into(),
        Home::DropIn { network } => network.clone(),
    }
}

fn said(l: &Layout, severity: Severity) -> Vec<String> {
    l.findings.iter().filter(|f| f.severity == severity).map(|f| f.to_string()).collect()
}

#[test]
fn the_first_matching_file_by_name_across_directories_is_amended() {
    let l = layout(
        SEED,
        &[
            ("/usr/lib/systemd/network/20-wired.network", Some("[Match]\nName=wlan1\n")),
            // /etc wins over /usr/lib for the same name, and over a later-sorting file.
            ("/etc/systemd/network/20-wired.network", Some("[Match]\nName=eth0\n")),
            ("/etc/systemd/network/30-eth0.network", Some("[Match]\nName=eth0\n")),
            ("/run/systemd/network/10-netplan-wlan1.network", None),
            ("/usr/lib/systemd/network/50-wlan1.network", Some("[Match]\nName=wlan1\n")),
        ],
    );
    assert_eq!(home(&l, "eth0"), "/etc/systemd/network/20-wired.network");
    // The masked netplan file is skipped; the next file naming wlan1 takes it.
    assert_eq!(home(&l, "wlan1"), "/usr/lib/systemd/network/50-wlan1.network");
    assert_eq!(home(&l, "wlan0"), "own");
    assert_eq!(l.placement("eth0").unwrap().path(), "etc/systemd/network/20-wired.network.d/60-multihome.conf");
    assert_eq!(l.placement("wlan0").unwrap().path(), "etc/systemd/network/10-multihome-wlan0.network");
    assert!(l.findings.is_empty(), "{:?}", l.findings);
}

#[test]
fn multihomes_own_files_are_not_amended_and_its_drop_in_is_not_judged() {
    let ours = files::marker("policy.conf", '#');
    let own = format!("{ours}[Match]\nName=eth0\n[Network]\nGateway=192.168.178.1\n");
    let dropin = format!("{ours}[Network]\nGateway=192.168.178.1\n");
    let l = layout(
        SEED,
        &[
            ("/etc/systemd/network/10-multihome-eth0.network", Some(&own)),
            ("/etc/systemd/network/20-wired.network", Some("[Match]\nName=eth0\n")),
            ("/etc/systemd/network/20-wired.network.d/60-multihome.conf", Some(&dropin)),
        ],
    );
    assert_eq!(home(&l, "eth0"), "/etc/systemd/network/20-wired.network");
    assert!(l.findings.is_empty(), "{:?}", l.findings);
}

#[test]
fn a_file_for_more_links_than_the_uplink_is_not_amended() {
    // A vendor catch-all sorting after multihome's own file: overridden by it, as an
    // administrator's file would.
    let l = layout(SEED, &[("/usr/lib/systemd/network/89-ethernet.network", Some("[Match]\nName=*\n[Network]\nDHCP=yes\n"))]);
    assert_eq!(home(&l, "eth0"), "own");
    assert!(l.errors().is_empty());
    // The administrator's catch-all, or one that would come first: an error naming it.
    for path in ["/etc/systemd/network/20-all.network", "/usr/lib/systemd/network/05-all.network"] {
        let l = layout(SEED, &[(path, Some("[Match]\nName=eth* wlan*\n"))]);
        let errors = said(&l, Severity::Error);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with(&format!("{path}:1: [Match] Name=eth* wlan*: this file takes eth0 but also other links")), "{errors:?}");
    }
    // Two names, one of them another uplink's.
    let l = layout(SEED, &[("/etc/systemd/network/20-two.network", Some("[Match]\nName=eth0 wlan1\n"))]);
    assert_eq!(said(&l, Severity::Error).len(), 2);
}

#[test]
fn undecidable_matches_are_assumed_by_name_and_said() {
    let cloud = "[Match]\nName=eth0\nMACAddress=52:54:00:12:34:56\n";
    let adhoc = "[Match]\nType=wlan\nWLANInterfaceType=ad-hoc\n";
    let early = "[Match]\nType=wlan\n";
    let l = layout(
        SEED,
        &[
            ("/etc/systemd/network/10-cloud-init-eth0.network", Some(cloud)),
            ("/etc/systemd/network/05-wlan.network", Some(early)),
            ("/usr/lib/systemd/network/80-wifi-adhoc.network", Some(adhoc)),
        ],
    );
    assert_eq!(home(&l, "eth0"), "/etc/systemd/network/10-cloud-init-eth0.network");
    assert_eq!(home(&l, "wlan0"), "own");
    let warnings = said(&l, Severity::Warning);
    assert!(warnings.iter().any(|w| w.contains("10-cloud-init-eth0.network:1") && w.contains("assumed to be eth0's file")), "{warnings:?}");
    // 05-wlan.network would come before eth0's file and before 10-multihome-wlan0.network: a
    // warning for each uplink; the ad-hoc one would come after multihome's own: only a note.
    assert_eq!(warnings.iter().filter(|w| w.contains("05-wlan.network") && w.contains("assumed not")).count(), 3, "{warnings:?}");
    let notes = said(&l, Severity::Note);
    assert_eq!(notes.iter().filter(|n| n.contains("80-wifi-adhoc.network")).count(), 2, "{notes:?}");
}

#[test]
fn the_running_networkd_decides_what_names_cannot() {
    let plan = plan_of(SEED);
    let list = files(&[
        ("/etc/systemd/network/10-cloud-init-eth0.network", Some("[Match]\nName=eth0\nMACAddress=52:54:00:12:34:56\n")),
        ("/etc/systemd/network/05-wlan.network", Some("[Match]\nType=wlan\n")),
        ("/etc/systemd/network/50-wlan0.network", Some("[Match]\nName=wlan0\nProperty=ID_BUS=usb\n")),
    ]);
    let mut live = BTreeMap::new();
    // eth0 has another MAC: the cloud-init file is not its file.
    live.insert(
        "eth0".to_string(),
        LiveLink { facts: LinkFacts { mac: Fact::Value("525400000000".into()), ..LinkFacts::offline("eth0") }, ..Default::default() },
    );
    // wlan1 is a wlan: 05-wlan.network takes it.
    live.insert(
        "wlan1".to_string(),
        LiveLink { facts: LinkFacts { link_type: Fact::Value("wlan".into()), ..LinkFacts::offline("wlan1") }, ..Default::default() },
    );
    // wlan0: its type says "ether" here, and networkd reports the file it uses for the Property= one.
    live.insert(
        "wlan0".to_string(),
        LiveLink {
            facts: LinkFacts { link_type: Fact::Value("ether".into()), ..LinkFacts::offline("wlan0") },
            network_file: Some("/etc/systemd/network/50-wlan0.network".into()),
            network_file_dropins: Vec::new(),
            index: 4,
        },
    );
    let l = place(&plan, &list, &live);
    assert_eq!(home(&l, "eth0"), "own");
    assert_eq!(said(&l, Severity::Error).len(), 1, "05-wlan.network takes every wlan: {:?}", l.findings);
    assert_eq!(home(&l, "wlan0"), "/etc/systemd/network/50-wlan0.network");
    assert!(said(&l, Severity::Note).iter().any(|n| n.contains("networkd reports that it uses this file for wlan0")));
}

#[test]
fn dhcp_is_settled_by_the_drop_in_and_said() {
    let dropin_of = |l: &Layout, iface: &str| l.placement(iface).unwrap().amendment.dhcp;
    // A static uplink: the file's DHCPv4 is turned off, its DHCPv6 kept, with a warning.
    let l = layout(SEED, &[("/etc/systemd/network/20-wired.network", Some("[Match]\nName=eth0\n[Network]\nDHCP=yes\n"))]);
    assert_eq!(dropin_of(&l, "eth0"), Some("ipv6"));
    assert_eq!(
        said(&l, Severity::Warning),
        [
            "/etc/systemd/network/20-wired.network:4: [Network] DHCP=yes: the policy gives eth0 static addresses, so the drop-in sets DHCP=ipv6 (no DHCPv4 lease beside them); set DHCP=ipv6 there to say so, or give eth0 DHCP=ipv4 in the policy"
        ]
    );
    // Nothing to say when the file already agrees.
    let l = layout(SEED, &[("/etc/systemd/network/20-wired.network", Some("[Match]\nName=eth0\n[Network]\nDHCP=ipv6\n"))]);
    assert_eq!((dropin_of(&l, "eth0"), l.findings.len()), (None, 0));
    // A DHCP uplink: what the policy asks is added to what the file has.
    let l = layout(DHCP, &[("/etc/systemd/network/20-w.network", Some("[Match]\nName=wlan0\n[Network]\nDHCP=ipv6\n"))]);
    assert_eq!(dropin_of(&l, "wlan0"), Some("yes"));
    let l = layout(DHCP, &[("/etc/systemd/network/20-e.network", Some("[Match]\nName=eth0\n[Network]\nDHCP=yes\n"))]);
    assert_eq!(dropin_of(&l, "eth0"), None);
    // A drop-in sorting after multihome's undoes it: an error; one sorting before is fine.
    let l = layout(
        SEED,
        &[
            ("/etc/systemd/network/20-wired.network", Some("[Match]\nName=eth0\n")),
            ("/run/systemd/network/20-wired.network.d/10-dhcp.conf", Some("[Network]\nDHCP=ipv6\n")),
            ("/etc/systemd/network/20-wired.network.d/override.conf", Some("[Network]\n\nDHCP=ipv4\n")),
        ],
    );
    assert_eq!(
        said(&l, Severity::Error),
        [
            "/etc/systemd/network/20-wired.network.d/override.conf:3: [Network] DHCP=ipv4: this drop-in sorts after 60-multihome.conf, so networkd would keep it over the policy's DHCP=ipv6 for eth0; remove DHCP= from it, or rename it to sort before 60-multihome.conf"
        ]
    );
}

#[test]
fn routes_tables_and_metrics_that_compete_with_the_policy() {
    let wired = "[Match]\nName=eth0\n\n[Network]\nGateway=fe80::1\nGateway=192.168.178.1\n\n[Route]\nGateway=192.168.178.1\nMetric=50\n\n[Route]\nGateway=192.168.178.1\nMetric=1024\n\n[Route]\nDestination=10.0.0.0/8\nGateway=192.168.178.1\n\n[Route]\nGateway=192.168.178.1\nTable=103\n\n[RoutingPolicyRule]\nTable=101\n\n[Link]\nUnmanaged=yes\n";
    let l = layout(SEED, &[("/etc/systemd/network/20-wired.network", Some(wired))]);
    let errors = said(&l, Severity::Error);
    let at: Vec<&str> = errors.iter().map(|e| e.split(": ").next().unwrap()).collect();
    // Unmanaged, the IPv4 Gateway= (not the IPv6 one), the metric-50 default, table 103
    // (wlan0's), the rule into eth0's table.
    assert_eq!(
        at,
        [
            "/etc/systemd/network/20-wired.network:28",
            "/etc/systemd/network/20-wired.network:6",
            "/etc/systemd/network/20-wired.network:9",
            "/etc/systemd/network/20-wired.network:22",
            "/etc/systemd/network/20-wired.network:25",
        ],
        "{errors:#?}"
    );
    assert!(errors[3].contains("[Route] Table=103: that is wlan0's table"), "{}", errors[3]);
    assert!(errors[4].contains("[RoutingPolicyRule] Table=101: that is eth0's table"), "{}", errors[4]);
    // The metric-1024 default stays behind the policy's: a warning.
    assert_eq!(said(&l, Severity::Warning).len(), 1);
    assert!(
        said(&l, Severity::Warning)[0]
            .starts_with("/etc/systemd/network/20-wired.network:13: [Route] Gateway=192.168.178.1: a default route through eth0 in main with metric 1024")
    );
}

#[test]
fn dhcp_route_metric_and_table_are_the_policys() {
    let netplan = "[Match]\nName=wlan0\n[Network]\nDHCP=yes\n[DHCP]\nRouteMetric=600\n[DHCPv4]\nRouteTable=200\n";
    let later = "[DHCPv4]\nRouteMetric=700\n";
    let l = layout(
        DHCP,
        &[("/run/systemd/network/10-netplan-wlan0.network", Some(netplan)), ("/etc/systemd/network/10-netplan-wlan0.network.d/70-metric.conf", Some(later))],
    );
    let p = l.placement("wlan0").unwrap();
    assert!(p.amendment.dhcp_route_table_main);
    let errors = said(&l, Severity::Error);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("/etc/systemd/network/10-netplan-wlan0.network.d/70-metric.conf:2: [DHCPv4] RouteMetric=700"));
    let warnings = said(&l, Severity::Warning);
    assert!(warnings[0].contains("10-netplan-wlan0.network:6: [DHCP] RouteMetric=600: the drop-in replaces it with 101"), "{warnings:?}");
    assert!(warnings[0].ends_with("remove it in the netplan YAML (/etc/netplan) this file is generated from"), "{warnings:?}");
    assert!(warnings[1].contains(":8: [DHCPv4] RouteTable=200"), "{warnings:?}");
}

#[test]
fn addresses_of_the_file() {
    let wired =
        "[Match]\nName=eth0\n[Network]\nAddress=192.168.178.99/24\nAddress=192.168.178.50/24\nAddress=2001:db8::5/64\n[Address]\nAddress=192.168.178.99/16\n";
    let l = layout(SEED, &[("/etc/systemd/network/20-wired.network", Some(wired))]);
    assert_eq!(said(&l, Severity::Note).len(), 1);
    let warnings = said(&l, Severity::Warning);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains(":5: [Network] Address=192.168.178.50/24: not in the policy"));
    assert!(warnings[1].contains(":8: [Address] Address=192.168.178.99/16: the policy has 192.168.178.99/24"));
}

#[test]
fn the_drop_in_holds_only_what_the_policy_adds() {
    let plan = plan_of(SEED);
    let l = layout(SEED, &[("/etc/systemd/network/20-wired.network", Some("[Match]\nName=eth0\n[Network]\nDHCP=yes\n"))]);
    let rendered = render::render(&plan, &l);
    let dropin = rendered.iter().find(|f| f.path.ends_with("20-wired.network.d/60-multihome.conf")).expect("eth0's drop-in");
    assert!(files::is_ours(&dropin.contents));
    assert!(!dropin.contents.contains("[Match]"), "{}", dropin.contents);
    assert!(dropin.contents.contains("\n[Network]\nDHCP=ipv6\n"), "{}", dropin.contents);
    assert!(dropin.contents.contains("\n[Address]\nAddress=192.168.178.99/24\nRouteMetric=100\n"), "{}", dropin.contents);
    // Without another file, the uplinks' own files are what they always were.
    let own = render::render(&plan, &super::placement::alone(&plan));
    let eth0 = own.iter().find(|f| f.path.ends_with("10-multihome-eth0.network")).expect("eth0's own file");
    assert!(eth0.contents.contains("\n[Match]\nName=eth0\n\n[Network]\nDHCP=no\n"), "{}", eth0.contents);
}
