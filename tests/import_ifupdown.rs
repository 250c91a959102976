//! `multihome import ifupdown`: the seed's own /etc/network/interfaces files (tests/import/,
//! copied verbatim from the seed) and variants, each imported, its policy run through the real
//! parser (what `check` does) and planned, and the plan compared with what the file meant; the
//! notes checked line by line; and the command itself, end to end.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ipnet::Ipv4Net;
use multihome::import::ifupdown::{self, FileSystem, Import};
use multihome::plan::{self, Addresses, Plan, Table};
use multihome::policy::{self, Policy};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import").join(name)
}

/// Imports a file as the command does, and checks the policy as `check` does.
fn import(path: &Path) -> (Import, Policy, Plan) {
    let (items, _) = ifupdown::read(path, &FileSystem).unwrap();
    let import = ifupdown::convert(&path.display().to_string(), &items).unwrap();
    let policy = policy::parse("imported.conf", &import.policy).unwrap_or_else(|e| panic!("{e}\n{}", import.policy));
    let plan = plan::plan(&policy);
    (import, policy, plan)
}

/// A directory of one test, removed again when it ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("import-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn import_text(name: &str, text: &str) -> (Import, Policy, Plan) {
    let dir = TempDir::new(name);
    import(&dir.write("interfaces", text))
}

fn notes_at(import: &Import) -> BTreeMap<usize, (bool, String)> {
    import.notes.iter().map(|n| (n.at.rsplit(':').next().unwrap().parse().unwrap(), (n.recognised, n.why.clone()))).collect()
}

/// The seed's answer: three uplinks on one subnet, a table each, metrics 100 (eth0), 101 (wlan1),
/// 102 (wlan0) on their default routes in main. The plan must have what the answer wrote by hand.
#[test]
fn the_seeds_answer_becomes_the_plan_it_wrote_by_hand() {
    let path = fixture("seed-answer.interfaces");
    let text = fs::read_to_string(&path).unwrap();
    let (import, _, plan) = import(&path);

    // What the answer wrote, read from its own lines: the interface of each stanza, its main
    // metric, its table's default route and its `from` rules.
    let mut iface = "";
    let mut main_metric: Vec<(u32, String)> = Vec::new();
    let mut table_of: BTreeMap<String, String> = BTreeMap::new(); // interface -> rtN
    let mut gateway_of: BTreeMap<String, Ipv4Addr> = BTreeMap::new();
    let mut from_rules: Vec<(Ipv4Addr, String)> = Vec::new(); // address, interface
    let mut to_rules: Vec<(Ipv4Addr, String)> = Vec::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["iface", name, ..] => iface = name,
            ["post-up", "ip", "route", "add", "default", "via", gw, "metric", m, "dev", dev] => {
                assert_eq!(*dev, iface);
                assert_eq!(gateway_of[iface], gw.parse::<Ipv4Addr>().unwrap(), "the same gateway in main as in the table");
                main_metric.push((m.parse().unwrap(), dev.to_string()));
            }
            ["post-up", "ip", "route", "add", "default", "via", gw, "dev", dev, "table", t] => {
                assert_eq!(*dev, iface);
                table_of.insert(dev.to_string(), t.to_string());
                gateway_of.insert(dev.to_string(), gw.parse().unwrap());
            }
            ["post-up", "ip", "rule", "add", "from", a, "table", t] => {
                assert_eq!(table_of[iface], *t);
                from_rules.push((a.trim_end_matches("/32").parse().unwrap(), iface.to_string()));
            }
            ["post-up", "ip", "rule", "add", "to", a, "table", t] => {
                assert_eq!(table_of[iface], *t);
                to_rules.push((a.trim_end_matches("/32").parse().unwrap(), iface.to_string()));
            }
            _ => {}
        }
    }
    main_metric.sort();
    let order: Vec<&str> = main_metric.iter().map(|(_, i)| i.as_str()).collect();
    assert_eq!(order, ["eth0", "wlan1", "wlan0"], "the seed's answer orders by metric");

    // The same order, metrics rising, a table of its own per uplink.
    let planned: Vec<&str> = plan.uplinks().iter().map(|u| u.interface.as_str()).collect();
    assert_eq!(planned, order);
    assert!(plan.uplinks().windows(2).all(|w| w[0].metric < w[1].metric));
    let mut tables: Vec<u32> = plan.uplinks().iter().map(|u| u.table).collect();
    tables.dedup();
    assert_eq!(tables.len(), 3, "one table per uplink, as rt1, rt2, rt3");
    for u in plan.uplinks() {
        let gw = gateway_of[&u.interface];
        assert_eq!(u.gateway, Some(gw));
        assert!(
            u.routes.iter().any(|r| r.table == Table::Id(u.table) && r.destination == "0.0.0.0/0".parse::<Ipv4Net>().unwrap() && r.gateway == Some(gw)),
            "{}: default via {gw} in its table, as `table {}` had it: {:?}",
            u.interface,
            table_of[&u.interface],
            u.routes
        );
        assert!(
            u.routes.iter().any(|r| r.table == Table::Main && r.destination == "0.0.0.0/0".parse::<Ipv4Net>().unwrap() && r.metric == Some(u.metric)),
            "{}: a default route in main at its metric",
            u.interface
        );
    }
    for (rules, kind) in [(&from_rules, "from"), (&to_rules, "to")] {
        assert_eq!(rules.len(), 3);
        for (addr, iface) in rules {
            let u = plan.uplinks().iter().find(|u| u.interface == *iface).unwrap();
            assert_eq!(u.addresses, Addresses::Static(vec![Ipv4Net::new(*addr, 24).unwrap()]));
            let host = Some(Ipv4Net::new(*addr, 32).unwrap());
            let found = u.rules.iter().any(|r| r.table == Table::Id(u.table) && if kind == "from" { r.from == host && r.to.is_none() } else { r.to == host });
            assert!(found, "{iface}: the `{kind} {addr}` rule to its table: {:?}", u.rules);
        }
    }

    // Every post-up and post-down line is recognised, with its own line number; every other line
    // is carried over (iface, address, netmask) or reported.
    let notes = notes_at(&import);
    for note in &import.notes {
        assert!(note.at.starts_with(&format!("{}:", path.display())), "{note}");
    }
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        let key = line.split_whitespace().next().unwrap_or("");
        match key {
            "post-up" | "post-down" => {
                let (recognised, why) = &notes[&n];
                assert!(recognised, "line {n} `{line}`: {why}");
                assert!(why.starts_with("multihome's plan makes this"), "line {n}: {why}");
            }
            "" | "address" | "netmask" => assert!(!notes.contains_key(&n), "line {n} `{line}` is carried over"),
            "iface" if !line.contains(" lo ") => assert!(!notes.contains_key(&n), "line {n} `{line}` is carried over"),
            _ => assert!(notes.get(&n).is_some_and(|(r, _)| !r), "line {n} `{line}` is reported as not carried over"),
        }
    }
    assert_eq!(notes[&4].1, "the loopback is no uplink; ifupdown (or the kernel) keeps it");
    assert!(notes[&19].1.contains("wpa_supplicant"), "{:?}", notes[&19]);
}

/// The question: eth0 with its default route in main (no table, no metric) and wlan0 with rt2;
/// file order gives the order.
#[test]
fn the_seeds_question_gives_two_uplinks_in_file_order() {
    let path = fixture("seed-question.interfaces");
    let text = fs::read_to_string(&path).unwrap();
    let (import, _, plan) = import(&path);
    let order: Vec<(&str, Option<Ipv4Addr>)> = plan.uplinks().iter().map(|u| (u.interface.as_str(), u.gateway)).collect();
    let gw = Some(Ipv4Addr::new(192, 168, 178, 1));
    assert_eq!(order, [("eth0", gw), ("wlan0", gw)]);
    assert_eq!(plan.uplinks()[0].addresses, Addresses::Static(vec!["192.168.178.2/24".parse().unwrap()]));
    let notes = notes_at(&import);
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.starts_with("post-up") {
            assert!(notes[&n].0, "line {n} `{line}` is recognised: {:?}", notes[&n]);
        }
    }
    assert!(import.policy.contains("# iface eth0 at ") && import.policy.contains("no metric: file order"), "{}", import.policy);
}

/// The bonding answer: ifenslave's active-backup bond0 over eth0 and wlan0, with DHCP.
#[test]
fn the_seeds_bond_becomes_mode_bond() {
    let (import, policy, plan) = import(&fixture("seed-bond.interfaces"));
    assert!(matches!(policy.failover, policy::Failover::Bond(_)), "{:?}", policy.failover);
    let bond = plan.bond().unwrap();
    assert_eq!(bond.name, "bond0");
    assert_eq!(bond.slaves, ["eth0", "wlan0"]);
    assert_eq!(bond.primary, "eth0");
    assert_eq!(bond.addresses, Addresses::Dhcp(policy::Dhcp::Ipv4));
    assert_eq!(
        bond.monitor,
        policy::bond::Monitor::Mii { interval: Duration::from_millis(10), up_delay: Duration::from_millis(4000), down_delay: Duration::from_millis(10) }
    );
    assert_eq!(bond.fail_over_mac, policy::bond::FailOverMac::Active, "wlan0 is Wi-Fi");
    assert!(bond.notes.is_empty(), "the policy asks for what a Wi-Fi slave needs itself: {:?}", bond.notes);
    let notes = notes_at(&import);
    assert!(notes[&10].1.contains("pre-up"), "{:?}", notes[&10]);
    assert!(notes[&11].1.contains("wpa_supplicant"), "{:?}", notes[&11]);
    for carried in [3, 4, 5, 9, 12, 13, 17, 18, 19, 20, 21, 22, 23] {
        assert!(!notes.contains_key(&carried), "line {carried}: {:?}", notes.get(&carried));
    }
}

#[test]
fn dhcp_of_both_families_and_netmask_lengths() {
    let (_, policy, plan) = import_text(
        "dhcp",
        "auto eth0\niface eth0 inet dhcp\n    metric 200\niface eth0 inet6 dhcp\n\niface wlan0 inet static\n    address 10.0.0.5\n    netmask 255.255.255.128\n    gateway 10.0.0.1\n    metric 100\n",
    );
    let order: Vec<&str> = plan.uplinks().iter().map(|u| u.interface.as_str()).collect();
    assert_eq!(order, ["wlan0", "eth0"], "metric 100 before 200");
    assert_eq!(plan.uplinks()[0].addresses, Addresses::Static(vec!["10.0.0.5/25".parse().unwrap()]));
    assert_eq!(plan.uplinks()[1].addresses, Addresses::Dhcp(policy::Dhcp::Yes));
    let eth0 = policy.uplinks().iter().find(|u| u.interface == "eth0").unwrap();
    assert!(eth0.ipv6.as_ref().is_some_and(|v6| v6.dhcp && v6.accept_ra), "{:?}", eth0.ipv6);
}

#[test]
fn inet6_static_and_auto() {
    let (import, policy, plan) = import_text(
        "inet6",
        "iface eth0 inet static\n  address 192.0.2.10/24\n  gateway 192.0.2.1\niface eth0 inet6 static\n  address 2001:db8:1::10\n  netmask 64\n  gateway fe80::1\n\niface wlan0 inet6 auto\n",
    );
    assert_eq!(plan.uplinks().len(), 2, "{}", import.policy);
    let eth0 = policy.uplinks()[0].ipv6.as_ref().unwrap();
    assert_eq!(eth0.addresses, ["2001:db8:1::10/64".parse().unwrap()]);
    assert_eq!(eth0.gateway, Some("fe80::1".parse().unwrap()));
    assert!(!eth0.accept_ra, "inet6 static: accept_ra 0 in ifupdown");
    let wlan0 = &policy.uplinks()[1];
    assert_eq!(wlan0.interface, "wlan0");
    assert_eq!(wlan0.addressing, policy::Addressing::Static(vec![]), "IPv6 only");
    assert!(wlan0.ipv6.as_ref().unwrap().accept_ra, "inet6 auto: SLAAC and the advertised router");
}

#[test]
fn wifi_secrets_are_reported_and_never_copied() {
    let psk = "correct-horse-battery-staple";
    let (import, _, plan) =
        import_text("wifi", &format!("iface wlan0 inet dhcp\n    wpa-ssid home\n    wpa-psk {psk}\n    wireless-key s:secretwep\n\niface eth0 inet dhcp\n"));
    assert_eq!(plan.uplinks().len(), 2);
    let all = format!("{}\n{}", import.policy, import.notes.iter().map(|n| n.to_string()).collect::<Vec<_>>().join("\n"));
    assert!(!all.contains(psk) && !all.contains("secretwep"), "{all}");
    let notes = notes_at(&import);
    for n in [2, 3, 4] {
        assert!(!notes[&n].0 && notes[&n].1.contains("wpa_supplicant"), "line {n}: {:?}", notes[&n]);
    }
    assert!(import.notes.iter().any(|n| n.line == "wpa-psk (value not shown)"));
    assert!(import.notes.iter().any(|n| n.line == "wpa-ssid home"), "an SSID is no secret");
}

#[test]
fn source_directives_are_followed_relative_to_the_file() {
    let dir = TempDir::new("source");
    let main = dir.write("etc/network/interfaces", "auto lo\niface lo inet loopback\n\nsource interfaces.d/*.cfg\n");
    dir.write("etc/network/interfaces.d/b.cfg", "iface wlan0 inet dhcp\n    post-up /usr/local/bin/notify wlan0\n");
    dir.write("etc/network/interfaces.d/a.cfg", "iface eth0 inet dhcp\n");
    dir.write("etc/network/interfaces.d/c.cfg.bak", "iface eth9 inet dhcp\n");
    let (import, _, plan) = import(&main);
    let order: Vec<&str> = plan.uplinks().iter().map(|u| u.interface.as_str()).collect();
    assert_eq!(order, ["eth0", "wlan0"], "a.cfg before b.cfg; the .bak is not matched");
    let b = dir.0.join("etc/network/interfaces.d/b.cfg");
    let note = import.notes.iter().find(|n| n.at == format!("{}:2", b.display())).expect("the unrelated post-up line is reported in its own file");
    assert!(!note.recognised && note.why.contains("runs no commands"), "{note}");
    assert!(import.policy.contains("Also read (source directives): "), "{}", import.policy);
}

#[test]
fn continuation_lines_are_one_line_reported_at_their_first() {
    let (import, _, plan) = import_text(
        "continuation",
        "iface eth0 inet static\n    address 192.0.2.10/24\n    gateway \\\n        192.0.2.1\n    post-up ip rule add \\\n        from 192.0.2.10/32 table 7\n    up logger \\\n        hello\n",
    );
    assert_eq!(plan.uplinks()[0].gateway, Some(Ipv4Addr::new(192, 0, 2, 1)));
    let notes = notes_at(&import);
    assert!(notes[&5].0, "{:?}", notes[&5]);
    assert!(!notes[&7].0, "{:?}", notes[&7]);
    assert!(import.notes.iter().any(|n| n.line == "up logger hello"));
    assert_eq!(notes.len(), 2);
}

fn multihome(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_multihome")).args(args).output().expect("the multihome binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn malformed_files_are_errors_with_file_and_line() {
    let dir = TempDir::new("malformed");
    for (body, line, what) in [
        ("auto eth0\n  address 192.0.2.10/24\n", 2, "outside any iface stanza"),
        ("iface eth0 inet static\n  address 192.0.2.10/24\n  gateway 192.0.2.1\niface wlan0 inet\n", 4, "iface NAME FAMILY METHOD"),
        ("iface eth0 inet static\n  address 192.0.2.300/24\n", 2, "not an IPv4 address"),
        ("source nowhere/file\n", 1, "cannot read"),
    ] {
        let file = dir.write("interfaces", body);
        let out = multihome(&["import", "ifupdown", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{body}");
        let err = text(&out.stderr);
        assert!(err.contains(&format!("{}:{line}: ", file.display())) && err.contains(what), "{body}: {err}");
        assert!(out.stdout.is_empty(), "no policy on stdout for a file that cannot be read");
    }
    let out = multihome(&["import", "ifupdown", dir.0.join("missing").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read"), "{}", text(&out.stderr));
}

/// A file ifupdown would take but whose policy would not pass `check` (a gateway outside the
/// interface's prefix): the reasons and exit code 4, as `check` gives, and no policy on stdout.
#[test]
fn a_policy_that_would_not_pass_check_exits_with_4() {
    let dir = TempDir::new("invalid");
    let file = dir.write("interfaces", "iface eth0 inet static\n  address 10.0.0.5/24\n  gateway 192.168.1.1\n");
    let out = multihome(&["import", "ifupdown", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Gateway=192.168.1.1 is outside every prefix of eth0"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

/// The command, end to end: the policy on stdout (and only it), the notes on stderr.
#[test]
fn the_command_prints_the_policy_and_reports_on_stderr() {
    let path = fixture("seed-answer.interfaces");
    let out = multihome(&["import", "ifupdown", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let policy = policy::parse("stdout", &text(&out.stdout)).unwrap();
    let order: Vec<&str> = policy.ranked().iter().map(|u| u.interface.as_str()).collect();
    assert_eq!(order, ["eth0", "wlan1", "wlan0"]);
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:14: `post-up ip route add default via 192.168.178.1 metric 100 dev eth0`: recognised: multihome's plan makes this",
            path.display()
        )),
        "{err}"
    );
    assert!(text(&out.stdout).starts_with(&format!("# Imported from {} ", path.display())));
    // And `check` takes it as it is.
    let dir = TempDir::new("check");
    let conf = dir.write("multihome.conf", &text(&out.stdout));
    let check = multihome(&["-c", conf.to_str().unwrap(), "check"]);
    assert!(check.status.success(), "{}", text(&check.stderr));
}

#[test]
fn without_a_file_it_reads_etc_network_interfaces_as_help_says() {
    let help = text(&multihome(&["import", "ifupdown", "--help"]).stdout);
    assert!(help.contains("[default: /etc/network/interfaces]"), "{help}");
    assert_eq!(ifupdown::DEFAULT_PATH, "/etc/network/interfaces");
    // Whatever this machine has there (a file, none, one without uplinks), the command names it.
    let out = multihome(&["import", "ifupdown"]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("/etc/network/interfaces"), "{said}");
}
