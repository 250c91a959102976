//! `multihome lab` as a user runs it: the timeline of each flag, and Ctrl-C in the middle. The
//! lab's namespaces are named after the process that made them (`mh<pid>x<n>-...`), so what one
//! run leaves behind is found by its pid.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::lab::require;
use common::text;
use multihome::lab::Manager;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[allow(dead_code)]
mod common;

const BIN: &str = env!("CARGO_BIN_EXE_multihome");

/// The namespaces and processes a `multihome lab` with this pid left: none, after it ended.
fn leftovers(pid: u32) -> Vec<String> {
    let prefix = format!("mh{pid}x");
    let netns = Command::new("ip").args(["netns", "list"]).output().expect("ip runs");
    let mut left: Vec<String> = text(&netns.stdout).lines().filter(|l| l.starts_with(&prefix)).map(|l| format!("namespace {l}")).collect();
    // Every lab process runs under `ip netns exec mh<pid>x...`: its command line names it.
    let ps = Command::new("pgrep").args(["-a", "-f", &prefix]).output().expect("pgrep runs");
    left.extend(text(&ps.stdout).lines().filter(|l| !l.contains("pgrep")).map(|l| format!("process {l}")));
    left
}

fn lab_run(args: &[&str]) -> (u32, Output) {
    let child = Command::new(BIN).arg("lab").args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("multihome runs");
    let pid = child.id();
    (pid, child.wait_with_output().expect("multihome lab ends"))
}

/// Lines of the timeline that start with `kind` (FAULT, TRAFFIC, OUTAGE, DAEMON).
fn lines<'a>(out: &'a str, kind: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.split_whitespace().nth(1) == Some(kind)).collect()
}

#[test]
fn the_lab_shows_the_fault_the_move_and_the_return_and_leaves_nothing() {
    if !require(Manager::Networkd) {
        return;
    }
    // Without the daemon, a carrier loss: networkd alone moves the traffic to wlan1 and back.
    let (pid, out) = lab_run(&["--backend", "networkd", "--no-daemon", "--fault", "link"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(lines(&stdout, "FAULT").len(), 2, "{stdout}");
    assert!(lines(&stdout, "FAULT")[0].ends_with("eth0 loses carrier"), "{stdout}");
    let traffic = lines(&stdout, "TRAFFIC");
    assert!(traffic.len() >= 3 && traffic[0].contains("via eth0") && traffic[1].contains("via wlan1"), "{stdout}");
    assert!(traffic.last().unwrap().contains("via eth0"), "the traffic did not come back to eth0:\n{stdout}");
    assert!(lines(&stdout, "DAEMON").is_empty(), "--no-daemon ran the daemon:\n{stdout}");
    assert!(stdout.contains("Done: namespaces and processes removed"), "{stdout}");
    assert_eq!(leftovers(pid), Vec::<String>::new());

    // With the daemon, a silent failure of wlan1's upstream while eth0 carries: the traffic stays
    // off wlan1, and the daemon reports wlan1 down.
    let (pid, out) = lab_run(&["--backend", "networkd", "--fault", "silent", "--uplink", "wlan1"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(lines(&stdout, "FAULT")[0].contains("wlan1 fails silently"), "{stdout}");
    // New connections never go to the failed wlan1 and end on eth0 (a loaded machine may make
    // eth0's probes late for a moment; that is the daemon's business, judged elsewhere).
    let traffic = lines(&stdout, "TRAFFIC");
    assert!(traffic.iter().all(|l| !l.contains("via wlan1")) && traffic.last().is_some_and(|l| l.contains("via eth0")), "{stdout}");
    assert!(lines(&stdout, "DAEMON").iter().any(|l| l.contains("wlan1") && l.contains("down")), "{stdout}");
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

#[test]
fn ctrl_c_ends_the_lab_through_its_cleanup() {
    if !require(Manager::Networkd) {
        return;
    }
    let mut child = Command::new(BIN)
        .args(["lab", "--backend", "networkd"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("multihome runs");
    let pid = child.id();
    // Read the output as it comes, until the timeline has begun.
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.push_str(&String::from_utf8_lossy(&buf[..n]));
            let _ = tx.send(all.clone());
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    while !seen.contains("Timeline:") {
        assert!(Instant::now() < deadline, "the lab did not start within 60 s:\n{seen}");
        if let Ok(s) = rx.recv_timeout(Duration::from_millis(200)) {
            seen = s;
        }
    }
    assert!(!leftovers(pid).is_empty(), "the lab is running, its namespaces must be there");
    // What a terminal's Ctrl-C sends to the foreground process.
    kill(Pid::from_raw(pid as i32), Signal::SIGINT).unwrap();
    let interrupted = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(interrupted.elapsed() < Duration::from_secs(20), "the lab did not end within 20 s of Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = reader.join().unwrap();
    assert!(status.success(), "{status:?}\n{out}");
    assert!(out.contains("Cleaning up the lab"), "{out}");
    assert!(out.contains("Done: namespaces and processes removed"), "{out}");
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

/// `multihome lab --mode bond`. On a kernel that cannot make a bond (this machine's), it
/// explains for each manager what it would do: the plan, every file or profile the manager would
/// get, the primary and what a failover does, and the reason it cannot run, found by trying a
/// bond in a namespace; exit code 6, nothing left behind. Where the kernel can bond it runs the
/// bond (tests/system/bond.rs shows that run in a Debian machine).
#[test]
fn the_bond_lab_explains_itself_where_the_kernel_cannot_bond() {
    if !require(Manager::Networkd) {
        return;
    }
    let can_bond = multihome::lab::bond::kernel_can_bond();
    for (backend, files) in [
        ("networkd", &["10-multihome-bond0.netdev", "10-multihome-bond0.network", "10-multihome-eth0.network", "10-multihome-wlan0.network"][..]),
        ("networkmanager", &["multihome-bond0.nmconnection", "multihome-eth0.nmconnection", "multihome-wlan1.nmconnection"][..]),
    ] {
        let (pid, out) = lab_run(&["--mode", "bond", "--backend", backend]);
        let stdout = text(&out.stdout);
        assert_eq!(leftovers(pid), Vec::<String>::new());
        if let Err(why) = &can_bond {
            assert_eq!(out.status.code(), Some(6), "{stdout}{}", text(&out.stderr));
            assert!(stdout.contains("bond0 (active-backup bond): 192.168.178.99/24 via 192.168.178.1"), "no plan:\n{stdout}");
            assert!(stdout.contains("slaves eth0 wlan1 wlan0 (primary eth0"), "{stdout}");
            for f in files {
                assert!(stdout.lines().any(|l| l.starts_with("--- /etc/") && l.ends_with(f)), "{backend}: {f} not shown:\n{stdout}");
            }
            assert!(stdout.contains("Primary slave: eth0. When eth0 loses its carrier"), "{stdout}");
            assert!(stdout.contains("makes another slave that is up (wlan1 or wlan0: the first in the kernel's list"), "{stdout}");
            let reason = stdout.lines().last().unwrap_or("");
            assert!(reason.starts_with("Not run here: this kernel") && reason.contains("type bond"), "{reason}");
            assert!(why.contains("Unknown device type") == reason.contains("Unknown device type"), "{why} / {reason}");
        } else {
            assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
            assert!(lines(&stdout, "BOND").iter().any(|l| l.ends_with("active slave wlan1") || l.ends_with("active slave wlan0")), "{stdout}");
            assert!(lines(&stdout, "BOND").last().is_some_and(|l| l.ends_with("active slave eth0")), "{stdout}");
        }
    }
}

/// Issue 15 in the timeline: an open plain TCP and an open MPTCP connection through a silent
/// failure and a carrier loss of eth0, with the daemon. The plain one stalls for each fault
/// (tied to eth0's address); the MPTCP one moves to wlan1 and back to eth0 after each repair,
/// and loses no byte. The bounds only tell a stall of the whole 4 s fault from a moved
/// connection (the stalls are measured by the bench, group mptcp).
#[test]
fn the_lab_shows_an_mptcp_connection_surviving_where_plain_tcp_stalls() {
    if !require(Manager::Networkd) {
        return;
    }
    let (pid, out) = lab_run(&["--backend", "networkd", "--script", "eth0:silent@2s, eth0:repair@6s, eth0:link@10s, eth0:repair@14s"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let streams = lines(&stdout, "STREAM");
    let stall_ms = |l: &str| l.rsplit("a stall of ").next().and_then(|r| r.trim_end_matches(" ms").parse::<u64>().ok()).unwrap_or(0);
    let stalls = |name: &str| -> Vec<u64> { streams.iter().filter(|l| l.contains(&format!("{name}: echoes again"))).map(|l| stall_ms(l)).collect() };
    // Plain TCP: a stall for each fault, each at least most of the 4 s fault (it may still be
    // stalled at the end: its retransmission backoff decides when it tries again).
    assert_eq!(streams.iter().filter(|l| l.contains("plain TCP: no echo since")).count(), 2, "{stdout}");
    assert!(stalls("plain TCP").iter().all(|ms| *ms >= 3000), "{stdout}");
    // MPTCP: never a stall of a second, and its data via wlan1 during the faults, via eth0 at the end.
    assert!(stalls("MPTCP").iter().all(|ms| *ms < 1000), "{stdout}");
    let via: Vec<&&str> = streams.iter().filter(|l| l.contains("MPTCP: its data leaves via")).collect();
    assert!(via.iter().filter(|l| l.ends_with("via wlan1")).count() >= 2, "MPTCP did not move to wlan1 for both faults:\n{stdout}");
    assert!(via.first().is_some_and(|l| l.ends_with("via eth0")) && via.last().is_some_and(|l| l.ends_with("via eth0")), "{stdout}");
    let summary = streams.iter().find(|l| l.contains("MPTCP: ") && l.contains("bytes lost")).expect("an MPTCP summary");
    assert!(summary.contains(" 0 bytes lost, still open"), "{stdout}");
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

/// `multihome lab --mode bond --fault silent`: the lab's bond with [Probe] and ProbeFailover=yes.
/// Here (no bonding driver) it explains the daemon's part: the plan shows the probes through the
/// bond, and the story what a silent failure behind eth0 does; exit code 6, nothing left
/// behind. Where the kernel can bond, tests/system/bond.rs runs it. IPv6's fault is refused.
#[test]
fn the_bond_lab_explains_a_silent_failure_where_the_kernel_cannot_bond() {
    if !require(Manager::Networkd) {
        return;
    }
    let (_, refused) = lab_run(&["--mode", "bond", "--fault", "silent6"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("--fault silent"), "{}", text(&refused.stderr));
    let Err(_) = multihome::lab::bond::kernel_can_bond() else {
        return; // runs it: tests/system/bond.rs
    };
    let (pid, out) = lab_run(&["--mode", "bond", "--fault", "silent", "--backend", "networkd"]);
    let stdout = text(&out.stdout);
    assert_eq!(leftovers(pid), Vec::<String>::new());
    assert_eq!(out.status.code(), Some(6), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("probes through bond0 to 192.168.178.1 198.51.100.10; when they fail while the active slave's MII is up, the daemon makes the next slave up active (ProbeFailover=yes)"), "{stdout}");
    assert!(
        stdout.contains("When eth0 fails silently") && stdout.contains("makes wlan1 (the next slave up in the policy's order) the active slave"),
        "{stdout}"
    );
    assert!(stdout.lines().last().unwrap_or("").starts_with("Not run here: this kernel"), "{stdout}");
}

/// `--plot` (issue 26): the picture is of the run the timeline printed — a lane per uplink, a
/// shaded rectangle per outage the timeline reported, a mark per state change the daemon
/// logged, eth0's broken time hatched — and valid SVG.
#[test]
fn the_plot_draws_the_run_the_timeline_printed() {
    if !require(Manager::Networkd) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("multihome-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("run.svg");
    let (pid, out) = lab_run(&["--backend", "networkd", "--plot", file.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(&format!("Plotted the timeline into {}.", file.display())), "{stdout}");
    let svg = std::fs::read_to_string(&file).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("not XML: {e}\n{svg}"));
    let count = |class: &str| doc.descendants().filter(|n| n.attribute("class") == Some(class)).count();
    assert_eq!(count("lane"), 3);
    let outages = lines(&stdout, "OUTAGE").len() + lines(&stdout, "OUTAGE6").len();
    assert!(outages >= 1, "a silent failure of eth0 without an outage?\n{stdout}");
    assert_eq!(count("outage"), outages, "{stdout}");
    // The daemon's state changes: `eth0: up -> degraded (...)`, `eth0 IPv6: ...`.
    let verdicts = lines(&stdout, "DAEMON")
        .iter()
        .filter_map(|l| l.split_once("DAEMON  ")?.1.split_once(": "))
        .filter(|(who, rest)| !who.trim_end_matches(" IPv6").contains(' ') && rest.contains(" -> "))
        .count();
    assert!(verdicts >= 6, "{stdout}");
    assert_eq!(count("verdict"), verdicts, "{stdout}");
    assert_eq!(count("broken"), 1, "eth0's fault and repair");
    assert!(count("carried") >= 6, "{svg}");
    assert!(svg.contains("multihome lab: eth0:silent@3s, eth0:repair@9s, systemd-networkd with the daemon"));
    assert_eq!(leftovers(pid), Vec::<String>::new());
    std::fs::remove_dir_all(&dir).unwrap();
}
