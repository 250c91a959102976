//! Issue 22, item 6: bus readers and a busy host cannot disturb the probing. The lab host holds
//! 30,000 established loopback TCP connections (60,000 sockets, which the daemon's MPTCP
//! connection count walks through inet_diag), and 12 unprivileged loops read the `Uplinks`
//! property (which anyone may) for 20 s, with `MaxLatency=50ms`. No uplink may change state: the
//! count is taken off the probing path, cached and rate-limited, and a probe's round trip is
//! measured from the kernel's receive timestamp, not from when the daemon got round to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use common::lab::require;
use common::policy::Policy;
use common::status::{self, State};
use multihome::lab::{Lab, LabOptions, Manager};

#[allow(dead_code)]
mod common;

const CONNECTIONS: usize = 30_000;
/// Listening ports, one per helper process: below the ephemeral range (32768-60999), where the
/// other helpers' connecting ends take theirs.
const PORTS: [u16; 4] = [29001, 29002, 29003, 29004];
const HOLD_ENV: &str = "MH_HOLD_CONNECTIONS";
const READERS: usize = 12;
const READ_FOR: Duration = Duration::from_secs(20);
const GET_UPLINKS: &str = "busctl --system get-property org.multihome1 /org/multihome1 org.multihome1.Daemon Uplinks";

/// Processes in the lab host's network namespace that hold loopback connections open; killed
/// (by pid) and reaped when dropped.
struct Holders(Vec<Child>);

impl Drop for Holders {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// 30,000 connections in `ns`: both ends of each are established sockets there. This process
/// may not raise its descriptor limit past the machine's hard limit (20,000 here, and no
/// CAP_SYS_RESOURCE), so helpers ([`hold_connections`], this test binary again) hold a share each.
fn open_connections(ns: &str) -> anyhow::Result<Holders> {
    let exe = std::env::current_exe()?;
    let mut holders = Holders(Vec::new());
    for (k, port) in PORTS.iter().enumerate() {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(&exe)
            .args(["--exact", "hold_connections", "--ignored", "--nocapture", "--test-threads=1"])
            .env(HOLD_ENV, format!("{port} {}", CONNECTIONS / PORTS.len()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start holder {k}"))?;
        let out = child.stdout.take().expect("piped");
        holders.0.push(child);
        let mut line = String::new();
        let mut reader = BufReader::new(out);
        // libtest writes "test hold_connections ... " before the line, on the same line.
        while !line.contains("held ") {
            line.clear();
            anyhow::ensure!(reader.read_line(&mut line)? > 0, "holder {k} ended before it held its connections");
        }
    }
    Ok(holders)
}

/// The helper of [`open_connections`]: with `MH_HOLD_CONNECTIONS="PORT N"`, listens on PORT on
/// 127.0.0.1 and holds both ends of N connections to it until its stdin closes or it is killed.
#[test]
#[ignore = "a helper that bus_readers_and_many_sockets_change_no_uplinks_state runs in the lab host"]
fn hold_connections() -> anyhow::Result<()> {
    let Ok(spec) = std::env::var(HOLD_ENV) else { return Ok(()) };
    let (port, n) = spec.split_once(' ').context("PORT N")?;
    let (port, n): (u16, usize) = (port.parse()?, n.parse()?);
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: reads into and then passes a valid rlimit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
    anyhow::ensure!(limit.rlim_cur as usize > 2 * n + 64, "{} descriptors are too few for {n} connections", limit.rlim_cur);
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
    let mut held = Vec::with_capacity(2 * n);
    for _ in 0..n {
        held.push(TcpStream::connect(listener.local_addr()?)?);
        held.push(listener.accept()?.0);
    }
    println!("held {}", held.len());
    std::io::stdout().flush()?;
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}

/// The daemon's log.
fn daemon_log(lab: &Lab) -> String {
    lab.log("spawned-0.log")
}

/// How long one `Uplinks` read takes, as a client sees it (the median of `n`, `gap` apart: more
/// than a second, and each read has the kernel read again).
fn read_cost(lab: &Lab, n: usize, gap: Duration) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            std::thread::sleep(gap);
            let t = Instant::now();
            let out = lab.run_in_host("sh", &["-c", GET_UPLINKS]).expect("busctl runs");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            t.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2]
}

#[test]
fn bus_readers_and_many_sockets_change_no_uplinks_state() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let policy = Policy::seed().probe("MaxLatency", "50ms");
    let mut lab = Lab::start(LabOptions { policy: Some(policy.into()), ..LabOptions::new(Manager::Networkd, common::binary()) })?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    lab.spawn_multihome(&["daemon"])?;
    lab.wait_for(Duration::from_secs(10), || status::all_up(&lab, &["eth0", "wlan1", "wlan0"]))
        .map_err(|e| anyhow::anyhow!("the uplinks did not come up: {e}\n{}", daemon_log(&lab)))?;
    let idle = read_cost(&lab, 5, Duration::ZERO);

    let t = Instant::now();
    let held = open_connections(&lab.host())?;
    let sockets = lab.run_in_host("ss", &["-Htn", "state", "established"])?.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
    eprintln!("{sockets} established TCP sockets in the lab host after {:?}", t.elapsed());
    assert!(sockets >= 2 * CONNECTIONS, "only {sockets} established sockets");
    let loaded = read_cost(&lab, 5, Duration::ZERO);
    let cold = read_cost(&lab, 3, Duration::from_millis(1200));
    eprintln!("one Uplinks read (median, busctl's run included): {idle:?} idle, {loaded:?} with {sockets} sockets, {cold:?} when the kernel is read again");

    let before = daemon_log(&lab).len();
    // Each reader is nobody, in its own loop that ends by itself, and counts its reads.
    let script = format!(
        "n=0; end=$(($(date +%s) + {})); while [ $(date +%s) -lt $end ]; do setpriv --reuid=nobody --regid=nogroup --clear-groups {GET_UPLINKS} >/dev/null && n=$((n + 1)); done; echo reads=$n",
        READ_FOR.as_secs()
    );
    for _ in 0..READERS {
        lab.spawn_in_host("sh", &["-c", &script])?;
    }
    let end = Instant::now() + READ_FOR + Duration::from_secs(2);
    let mut seen = Vec::new();
    while Instant::now() < end {
        // Every uplink's state, or the reason there was no status.
        seen.push(
            status::read(&lab).map(|s| s.uplinks.iter().map(|u| (u.interface.clone(), u.state.clone())).collect::<Vec<_>>()).map_err(|e| format!("{e:#}")),
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let reads: usize = (1..=READERS)
        .map(|k| lab.log(&format!("spawned-{k}.log")).lines().find_map(|l| l.strip_prefix("reads=").and_then(|n| n.trim().parse::<usize>().ok())).unwrap_or(0))
        .sum();
    eprintln!("{READERS} unprivileged readers made {reads} Uplinks reads in {READ_FOR:?}");
    let log = daemon_log(&lab);
    let during = &log[before.min(log.len())..];
    let changes: Vec<&str> = during.lines().filter(|l| l.contains(" -> ")).collect();
    assert!(changes.is_empty(), "uplinks changed state under {READERS} readers and {} sockets:\n{}\n---\n{log}", sockets, changes.join("\n"));
    let not_up: Vec<String> = seen
        .iter()
        .flat_map(|s| match s {
            Ok(states) if states.len() == 3 => states.iter().filter(|(_, s)| *s != State::Up).map(|u| format!("{u:?}")).collect(),
            Ok(states) => vec![format!("{states:?}")],
            Err(e) => vec![e.clone()],
        })
        .collect();
    assert!(not_up.is_empty(), "status showed {not_up:?}");
    assert!(reads >= READERS * 10, "the readers made only {reads} reads: the test proves nothing\n{}", lab.log("spawned-1.log"));
    drop(held);
    Ok(())
}
