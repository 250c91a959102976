//! The Wi-Fi benchmark (issue 25): the seed's host on real 802.11 stations (mac80211_hwsim radios
//! associated by WPA2-PSK with hostapd access points, DHCP through them) in the Debian machine of
//! tests/system, eth0's cable pulled so that new connections leave by wlan1, and then wlan1's
//! access point lost for 6 s, many times: what new connections (one every 100 ms, each a fresh
//! TCP connection) see until wlan0 carries them and until wlan1 carries them again, and what
//! two open connections through wlan1 see meanwhile (an echo every 20 ms, one plain TCP, one
//! MPTCP): the longest wait for an answer, or that the connection broke. Both managers, each
//! with multihome and alone (the same files or profiles without multihome's sysctls and daemon)
//! in the same machine, in the same run. Needs root, qemu and the machine's
//! prerequisites (tests/system/main.rs); writes docs/BENCHMARKS.md between its
//! `<!-- bench:wifi -->` markers unless `--no-write`.
//!
//!     cargo bench --bench wifi                 # 5 runs per row (about 15 minutes)
//!     cargo bench --bench wifi -- --runs 3 --no-write

// The system tests' modules, of which the bench uses a part: their tests are not compiled here.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

use anyhow::{Context, bail};
use multihome::lab::netns::ip;
use multihome::lab::stream::{self, STREAM_PORT};
use multihome::plot::bars::{Figure, Value};

#[path = "../tests/system/base64.rs"]
mod base64;
#[path = "../tests/system/bond.rs"]
mod bond;
#[path = "../tests/system/image.rs"]
mod image;
#[path = "../tests/system/machine.rs"]
mod machine;
#[path = "../tests/system/network.rs"]
mod network;
#[path = "../tests/system/policy.rs"]
mod policy;
#[path = "../tests/system/seeded.rs"]
mod seeded;
#[path = "../tests/system/wifi.rs"]
mod wifi;
#[path = "../tests/system/wifi_nm_routes.rs"]
mod wifi_nm_routes;
#[path = "../tests/system/wifi_routes.rs"]
mod wifi_routes;
#[path = "../tests/system/wifi_silent.rs"]
mod wifi_silent;

#[path = "common/report.rs"]
mod report;

use bond::{ECHO_PORT, INTERNET};
use machine::Machine;
// What the system tests' bodies call (`crate::one_machine_at_a_time`); the bench boots one machine at a time itself.
use machine::one_machine_at_a_time;
use network::Network;
use report::{Report, flag, median, worst};
use wifi::Echoes;
use wifi_routes::Cost;

const GROUP: &str = "wifi";
/// How long each access point loss lasts: hostapd killed, then started again.
const DOWN: Duration = Duration::from_secs(6);
/// The open connections' echo clients (tests/system/wifi.rs' `start_named_echo`).
const TCP: &str = "mh-echo-tcp";
const MPTCP: &str = "mh-echo-mptcp";

#[derive(Clone, Copy, PartialEq)]
enum Manager {
    Networkd,
    NetworkManager,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = flag(&args, "--runs").map_or(Ok(5), |v| v.parse()).context("--runs takes a number")?;
    if !image::require() {
        bail!("the test machine's prerequisites are missing (tests/system/main.rs)");
    }
    println!("multihome Wi-Fi benchmark: {runs} access point losses of {DOWN:?} per row; a new TCP connection every 100 ms");
    let mut report = Report::default();
    report.line(
        GROUP,
        format!(
            "| {:<36} | {:>14} | {:>13} | {:>20} | {:>19} | {:>20} |",
            "setup", "failed median", "failed worst", "to wlan0 median", "to wlan0 worst", "wlan1 again median"
        ),
    );
    report.line(GROUP, format!("|{:-<38}|{:-<16}|{:-<15}|{:-<22}|{:-<21}|{:-<22}|", "", "", "", "", "", ""));
    let mut figure = Figure {
        title: "wlan1's access point lost for 6 s, eth0 unplugged: until new connections leave by wlan0, and by wlan1 after the return".into(),
        unit: "ms".into(),
        measures: vec!["to wlan0 median".into(), "to wlan0 worst".into(), "wlan1 again median".into()],
        rows: Vec::new(),
    };
    let mut open_figure = Figure {
        title: "wlan1's access point lost for 6 s: the longest an open connection through wlan1 waited for an echo".into(),
        unit: "ms".into(),
        measures: vec!["TCP median".into(), "MPTCP median".into()],
        rows: Vec::new(),
    };
    let mut open_rows = Vec::new();
    let mut versions = String::new();
    for manager in [Manager::Networkd, Manager::NetworkManager] {
        let name = match manager {
            Manager::Networkd => "systemd-networkd",
            Manager::NetworkManager => "NetworkManager",
        };
        let (net, _servers) = wifi::network_with_servers()?;
        // The server's path manager accepts a joining subflow from each of the machine's uplinks.
        ip(&net.names.internet(), &["mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8"])?;
        let _mptcp_server = stream::mptcp_echo(&net.names.internet(), INTERNET)?;
        let (mut vm, wlan0, reassociated) = match manager {
            Manager::Networkd => {
                let (vm, _, wlan0) = wifi_routes::networkd_host_without_eth0(&net)?;
                (vm, wlan0, wifi::associated("wlan1"))
            }
            Manager::NetworkManager => {
                let mut vm = wifi_nm_routes::networkmanager_host(&net)?;
                let (_, wlan0) = wifi_nm_routes::apply_the_seed_without_eth0(&mut vm)?;
                (vm, wlan0, wifi_nm_routes::reassociated("wlan1"))
            }
        };
        if versions.is_empty() {
            versions =
                vm.ok("printf 'Linux %s, %s, NetworkManager %s' \"$(uname -r)\" \"$(systemctl --version | head -1)\" \"$(NetworkManager --version)\"")?;
        }
        for multihome in [true, false] {
            if !multihome {
                alone(&mut vm)?;
            }
            start_echoes(&mut vm, multihome)?;
            let mut costs = Vec::new();
            let (mut tcp, mut mptcp) = (Vec::new(), Vec::new());
            for run in 0..runs {
                let before = (Echoes::read_named(&mut vm, TCP)?.answered(), Echoes::read_named(&mut vm, MPTCP)?.answered());
                let (cost, _, _) = wifi_routes::access_point_lost(&mut vm, &reassociated, &wlan0, DOWN)?;
                tcp.push(longest_wait(&mut vm, TCP, before.0)?);
                mptcp.push(longest_wait(&mut vm, MPTCP, before.1)?);
                println!(
                    "{name} {} run {}: {}; open TCP {}, open MPTCP {}",
                    if multihome { "+ multihome" } else { "alone" },
                    run + 1,
                    describe(&cost),
                    waited(tcp[run]),
                    waited(mptcp[run])
                );
                costs.push(cost);
            }
            vm.ok(&format!("systemctl stop {TCP} {MPTCP}; true"))?;
            let setup = if multihome { format!("{name} + multihome") } else { format!("{name} alone (same files)") };
            report.line(GROUP, row(&setup, &costs));
            open_rows.push(open_row(&setup, &tcp, &mptcp));
            open_figure.rows.push((setup.clone(), vec![value(median(tcp.clone())), value(median(mptcp.clone()))]));
            let to_wlan0: Vec<u64> = costs.iter().map(|c| millis(c.to_fallback)).collect();
            let again: Vec<u64> = costs.iter().map(|c| millis(c.restored)).collect();
            figure.rows.push((setup, vec![value(median(to_wlan0.clone())), value(worst(&to_wlan0)), value(median(again))]));
        }
        vm.passed();
    }
    report.line(GROUP, "");
    report.line(GROUP, "Meanwhile, two connections opened through wlan1 before the runs, an echo every 20 ms each: the longest wait for an answer in each run (broken: the connection ended).");
    report.line(GROUP, "");
    report.line(
        GROUP,
        format!(
            "| {:<36} | {:>15} | {:>14} | {:>10} | {:>17} | {:>16} | {:>12} |",
            "setup", "TCP wait median", "TCP wait worst", "TCP broken", "MPTCP wait median", "MPTCP wait worst", "MPTCP broken"
        ),
    );
    report.line(GROUP, format!("|{:-<38}|{:-<17}|{:-<16}|{:-<12}|{:-<19}|{:-<18}|{:-<14}|", "", "", "", "", "", "", ""));
    for r in open_rows {
        report.line(GROUP, r);
    }
    report.figure(GROUP, GROUP.to_string(), figure);
    report.figure(GROUP, format!("{GROUP}-open"), open_figure);
    if !args.iter().any(|a| a == "--no-write") {
        let doc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/BENCHMARKS.md");
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let machine = format!("the test machine under qemu on {cores} cores ({})", versions.trim());
        report.write_into(&doc, &format!("cargo bench --bench wifi -- --runs {runs}"), &machine)?;
        println!("\nwrote {}", doc.display());
    }
    Ok(())
}

/// The same files or profiles without multihome's part at run time: its daemon stopped (which
/// takes its routes away) and the sysctls it sets back at the kernel's defaults, as a careful
/// administrator would have them without multihome. The dispatcher hooks still give each
/// lease its rules, as the seed's answer's `post-up` lines would.
fn alone(vm: &mut Machine) -> anyhow::Result<()> {
    vm.ok("systemctl stop multihome")?;
    vm.ok("rm -f /etc/sysctl.d/60-multihome.conf; for key in ignore_routes_with_linkdown arp_ignore arp_announce rp_filter; do \
         for dev in all default eth0 wlan1 wlan0; do sysctl -qw net.ipv4.conf.$dev.$key=0; done; done")?;
    Ok(())
}

/// Starts the open connections through wlan1 (new connections leave by it): a plain TCP echo
/// and an MPTCP one, and waits until both answer; with multihome, until the MPTCP connection
/// also has its subflow through wlan0 (the daemon's endpoints). Replaces earlier ones.
fn start_echoes(vm: &mut Machine, multihome: bool) -> anyhow::Result<()> {
    wifi::start_named_echo(vm, TCP, &INTERNET.to_string(), ECHO_PORT, false)?;
    wifi::start_named_echo(vm, MPTCP, &INTERNET.to_string(), STREAM_PORT, true)?;
    for name in [TCP, MPTCP] {
        vm.wait_for(&format!("{name} answering"), &format!("test $(grep -c '^[0-9]' /run/{name}.log) -ge 50"), Duration::from_secs(60))?;
    }
    if multihome {
        vm.wait_for(
            "the MPTCP connection's subflows through wlan1 and wlan0",
            &wifi_silent::status_holds("u[\"wlan1\"][\"mptcp_connections\"] >= 1 and u[\"wlan0\"][\"mptcp_connections\"] >= 1"),
            Duration::from_secs(30),
        )?;
    }
    Ok(())
}

/// The longest wait for an answer of the echo client `name` since its first `before` answers,
/// in milliseconds, once it answers again; `u64::MAX` when the connection broke (or did not
/// answer within TCP's 60 s timeout), and the client is started again for the next run.
fn longest_wait(vm: &mut Machine, name: &str, before: usize) -> anyhow::Result<u64> {
    let now = Echoes::read_named(vm, name)?.answered();
    let answered = vm.wait_for(
        &format!("{name} answering after the run"),
        &format!("test $(grep -c '^[0-9]' /run/{name}.log) -gt {now} || grep -q '^broken' /run/{name}.log"),
        Duration::from_secs(70),
    );
    let echoes = Echoes::read_named(vm, name)?;
    if answered.is_ok() && !echoes.broken {
        return Ok(millis(Some(echoes.max_gap_after(before))));
    }
    println!("{name}: broken ({})", if echoes.broken { echoes.why.as_str() } else { "no answer within 70 s" });
    wifi::start_named_echo(vm, name, &INTERNET.to_string(), if name == TCP { ECHO_PORT } else { STREAM_PORT }, name == MPTCP)?;
    vm.wait_for(&format!("{name} answering again"), &format!("test $(grep -c '^[0-9]' /run/{name}.log) -ge 50"), Duration::from_secs(60))?;
    Ok(u64::MAX)
}

fn waited(ms: u64) -> String {
    if ms == u64::MAX { "broken".into() } else { format!("waited {ms} ms at most") }
}

fn open_row(setup: &str, tcp: &[u64], mptcp: &[u64]) -> String {
    let shown = |ms: u64| if ms == u64::MAX { "broken".to_string() } else { format!("{ms} ms") };
    let broken = |v: &[u64]| v.iter().filter(|m| **m == u64::MAX).count();
    format!(
        "| {setup:<36} | {:>15} | {:>14} | {:>10} | {:>17} | {:>16} | {:>12} |",
        shown(median(tcp.to_vec())),
        shown(worst(tcp)),
        format!("{} of {}", broken(tcp), tcp.len()),
        shown(median(mptcp.to_vec())),
        shown(worst(mptcp)),
        format!("{} of {}", broken(mptcp), mptcp.len())
    )
}

/// Milliseconds, or `u64::MAX` for what never happened.
fn millis(t: Option<f64>) -> u64 {
    t.map_or(u64::MAX, |s| (s * 1e3).round() as u64)
}

fn value(ms: u64) -> Value {
    if ms == u64::MAX { Value::Never } else { Value::Measured(ms as f64) }
}

fn shown(ms: u64) -> String {
    if ms == u64::MAX { "never".into() } else { format!("{ms} ms") }
}

fn describe(c: &Cost) -> String {
    format!("{} of {} new connections failed; to wlan0 {}; wlan1 again {}", c.failed, c.attempts, shown(millis(c.to_fallback)), shown(millis(c.restored)))
}

fn row(setup: &str, costs: &[Cost]) -> String {
    let failed: Vec<usize> = costs.iter().map(|c| c.failed).collect();
    let to_wlan0: Vec<u64> = costs.iter().map(|c| millis(c.to_fallback)).collect();
    let again: Vec<u64> = costs.iter().map(|c| millis(c.restored)).collect();
    format!(
        "| {setup:<36} | {:>14} | {:>13} | {:>20} | {:>19} | {:>20} |",
        median(failed.clone()),
        worst(&failed),
        shown(median(to_wlan0.clone())),
        shown(worst(&to_wlan0)),
        shown(median(again))
    )
}
