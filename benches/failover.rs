//! The failover benchmark: runs the seed scenario in the namespace lab many times and prints
//! what applications see when the preferred uplink fails, beside the same network manager fed
//! the same routes by hand without multihome's sysctls. Needs root; see docs/BENCHMARKS.md.
//!
//!     cargo bench --bench failover [-- --runs N] [-- --only NAME]

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{bail, Context};
use multihome::lab::probe::{outage, Outage, Prober};
use multihome::lab::{self, Lab, LabOptions, Manager, INTERNET, SEED_ADDRESSES};

const SEED: &str = include_str!("../examples/seed.conf");
/// Probe spacing: an application opening a new connection every 10 ms.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);
/// How long a run watches after the fault.
const WATCH: Duration = Duration::from_millis(1500);
/// Time without link events before each fault (see `carrier_loss_once`).
const QUIET: Duration = Duration::from_millis(1300);

struct Scenario {
    name: &'static str,
    what: &'static str,
    setup: fn() -> anyhow::Result<Lab>,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = flag(&args, "--runs").map_or(Ok(20), |v| v.parse()).context("--runs takes a number")?;
    let only = flag(&args, "--only");
    if let Err(why) = lab::prerequisites(Manager::Networkd) {
        bail!("the benchmark needs the lab: {why}");
    }
    let scenarios = [
        Scenario { name: "networkd+multihome", what: "systemd-networkd with multihome's files and sysctls", setup: networkd_multihome },
        Scenario { name: "networkd-alone", what: "systemd-networkd, the same routes and rules by hand, no multihome sysctls", setup: networkd_alone },
    ];
    println!("carrier loss on eth0 (the preferred uplink); {runs} runs each; probes: a new UDP socket every {PROBE_INTERVAL:?}");
    println!("{:<22} {:>14} {:>14} {:>12} {:>12}", "scenario", "restore median", "restore worst", "lost median", "lost worst");
    for s in scenarios.iter().filter(|s| only.as_deref().is_none_or(|o| o == s.name)) {
        let lab = (s.setup)().with_context(|| format!("setting up {}", s.name))?;
        let mut outcomes = Vec::new();
        for _ in 0..runs {
            outcomes.push(carrier_loss_once(&lab)?);
        }
        report(s.name, &outcomes);
        eprintln!("  ({})", s.what);
    }
    Ok(())
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn options(manager: Manager, policy: Option<String>) -> LabOptions {
    LabOptions { manager, policy, multihome: Some(env!("CARGO_BIN_EXE_multihome").into()), ..Default::default() }
}

fn networkd_multihome() -> anyhow::Result<Lab> {
    let lab = Lab::start(options(Manager::Networkd, Some(SEED.to_string())))?;
    settle_on_eth0(&lab)?;
    Ok(lab)
}

/// The same .network files (they are what a careful admin writes by hand from the seed's
/// answer), without the sysctl.d drop-in and its live sysctls.
fn networkd_alone() -> anyhow::Result<Lab> {
    let lab = Lab::start(options(Manager::Networkd, None))?;
    lab.write_policy(SEED)?;
    let out = lab.run_in_host(env!("CARGO_BIN_EXE_multihome"), &["render", "--out", "/"])?;
    if !out.status.success() {
        bail!("render: {}", String::from_utf8_lossy(&out.stderr));
    }
    std::fs::remove_file(lab.dir().join("etc/sysctl.d/60-multihome.conf"))?;
    let out = lab.run_in_host("busctl", &["--system", "call", "org.freedesktop.network1", "/org/freedesktop/network1", "org.freedesktop.network1.Manager", "Reload"])?;
    if !out.status.success() {
        bail!("networkd reload: {}", String::from_utf8_lossy(&out.stderr));
    }
    settle_on_eth0(&lab)?;
    Ok(lab)
}

fn eth0() -> Ipv4Addr {
    SEED_ADDRESSES[0].1
}

fn settle_on_eth0(lab: &Lab) -> anyhow::Result<()> {
    lab.wait_for(Duration::from_secs(20), || lab.outbound_source(Duration::from_millis(200)) == Some(eth0()))
        .context("outbound traffic did not settle on eth0")
}

fn carrier_loss_once(lab: &Lab) -> anyhow::Result<Outage> {
    let prober = Prober::start(&lab.host(), INTERNET, PROBE_INTERVAL)?;
    // The kernel handles a carrier change of an ordinary NIC (linkwatch) at most once a second,
    // machine-wide: a fault within a second of the previous link event (our own failback) would
    // measure that limit, not the failover. A real host's links are quiet before a fault.
    std::thread::sleep(QUIET);
    let fault = prober.now();
    lab.set_carrier("eth0", false)?;
    std::thread::sleep(WATCH);
    let records = prober.stop()?;
    lab.set_carrier("eth0", true)?;
    settle_on_eth0(lab)?;
    if std::env::var_os("MULTIHOME_BENCH_TRACE").is_some() {
        for r in records.iter().filter(|r| r.sent + Duration::from_millis(50) >= fault) {
            eprintln!("  {:>8.1} ms {:?}", (r.sent.as_secs_f64() - fault.as_secs_f64()) * 1e3, r.source);
        }
    }
    Ok(outage(&records, fault))
}

fn report(name: &str, outcomes: &[Outage]) {
    let mut restore: Vec<Duration> = outcomes.iter().map(|o| o.restore).collect();
    let mut lost: Vec<usize> = outcomes.iter().map(|o| o.lost).collect();
    restore.sort();
    lost.sort();
    let ms = |d: Duration| if d == Duration::MAX { "never".to_string() } else { format!("{:.1} ms", d.as_secs_f64() * 1e3) };
    println!(
        "{:<22} {:>14} {:>14} {:>12} {:>12}",
        name,
        ms(restore[restore.len() / 2]),
        ms(*restore.last().expect("runs > 0")),
        lost[lost.len() / 2],
        lost.last().expect("runs > 0")
    );
}
