//! `multihome lab --mode bond`: the seed's host with one active-backup bond over eth0, wlan1 and
//! wlan0 instead of a table per uplink. Where the kernel can bond, the lab runs it: the real
//! network manager makes the bond from multihome's files (or profiles), one TCP connection to
//! the internet host stays open, the primary loses its carrier and gets it back, and the
//! timeline shows the bond's active slave and the connection's answers. Where it cannot (this
//! kernel has no bonding driver), [`explain`] says what the lab would do and why it cannot.

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::netns::run as run_cmd;
use super::stream::Stream;
use super::{INTERNET, Lab, LabOptions, Manager, policies};
use crate::plan::Plan;
use crate::plan::bond::BondPlan;
use crate::policy::bond::{FailOverMac, Monitor};
use crate::policy::timespan;

/// The lab's bond (policies::SEED_BOND; with `silent`, policies::seed_bond_probe) as a plan,
/// for the explanation and the run.
pub fn plan(manager: Manager, silent: bool) -> anyhow::Result<Plan> {
    let text = policy_text(manager, silent);
    let policy = crate::policy::parse("the lab's bond policy", &text).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(crate::plan::plan(&policy))
}

fn policy_text(manager: Manager, silent: bool) -> String {
    let backend = if manager == Manager::NetworkManager { "networkmanager" } else { "networkd" };
    let text = if silent { policies::seed_bond_probe() } else { policies::SEED_BOND.to_string() };
    text.replace("Backend=networkd", &format!("Backend={backend}"))
}

/// Whether this kernel can make a bond, found by making one: `ip link add ... type bond` in a
/// namespace of the lab's own (removed at once), which also loads the module where it exists.
/// `Err`: the one-line reason, with the kernel's answer.
pub fn kernel_can_bond() -> Result<(), String> {
    // The lab's naming (mh<PID>x...), so a leftover of a killed run is an orphan the next lab removes.
    let ns = format!("mh{}xbond-check", std::process::id());
    run_cmd("ip", &["netns", "add", &ns]).map_err(|e| format!("cannot make a namespace to try a bond in: {e:#}"))?;
    let tried = Command::new("ip").args(["-n", &ns, "link", "add", "mhbond0", "type", "bond", "mode", "active-backup"]).output();
    let _ = run_cmd("ip", &["netns", "del", &ns]);
    match tried {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => {
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
            Err(format!(
                "this kernel ({}) cannot make a bond: `ip link add mhbond0 type bond` in a lab namespace answered {:?}",
                release.trim(),
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
        Err(e) => Err(format!("cannot run ip: {e}")),
    }
}

/// What the lab would do with a bond, for a kernel that cannot make one: the plan, the files or
/// profiles the manager would get, which slave is primary and what happens on failover.
pub fn explain(manager: Manager, plan: &Plan, silent: bool) -> String {
    let bond = plan.bond().expect("the lab's bond policy is Mode=bond");
    let mut s = String::new();
    let _ = writeln!(s, "multihome lab --mode bond: the seed's host (eth0, wlan1, wlan0 on 192.168.178.0/24) with one active-backup bond.");
    let _ = writeln!(s, "\nThe plan (of the policy SEED_BOND in src/lab/policies.rs):{bond}");
    let (what, files) = match manager {
        Manager::NetworkManager => {
            ("NetworkManager would get these profiles (as keyfiles; over D-Bus the same settings)", crate::backend::nm::keyfile::render(plan))
        }
        _ => {
            let layout = crate::backend::networkd::placement::alone(plan);
            ("systemd-networkd would get these files", crate::backend::networkd::render::render(plan, &layout))
        }
    };
    let _ = writeln!(s, "{what}:");
    for f in files {
        let _ = writeln!(s, "\n--- /{}", f.path.display());
        s.push_str(&f.contents);
    }
    let _ = writeln!(s, "\n{}", if silent { silent_story(bond) } else { failover_story(bond) });
    s
}

/// What a silent failure behind the primary does with the daemon probing through the bond
/// (ProbeFailover=yes), in the plan's figures.
pub fn silent_story(b: &BondPlan) -> String {
    let next = b.slaves.iter().find(|s| **s != b.primary).map_or("the next slave", String::as_str);
    let targets: Vec<String> = b.probe_targets.iter().map(|t| t.to_string()).collect();
    format!(
        "Primary slave: {primary}. When {primary} fails silently (its link stays up, nothing answers behind its switch), the bond's \
         MII monitor sees nothing; the daemon's probes through {name} (to {targets}) fail, and the daemon makes {next} (the next slave \
         up in the policy's order) the active slave (ProbeFailover=yes), so an open TCP connection goes on through it. After the \
         hold it tries {primary} again, goes back to {next} at the first failed round (each failed try doubles the hold), and keeps \
         {primary} once its probes answer. The lab would show this with one TCP connection to the internet host {INTERNET} open \
         throughout, the bond's active slave as the kernel reports it, and the daemon's log.",
        primary = b.primary,
        name = b.name,
        targets = targets.join(" and "),
    )
}

/// What the kernel's bond does when the primary fails and returns, in the plan's figures.
pub fn failover_story(b: &BondPlan) -> String {
    let backups: Vec<&str> = b.slaves.iter().filter(|s| **s != b.primary).map(String::as_str).collect();
    // Active-backup has no order among the backups: the kernel takes the first slave that is up
    // in its own list (the order they were enslaved in), whatever the policy's priorities say.
    let next = match backups.as_slice() {
        [one] => one.to_string(),
        more => format!("another slave that is up ({}: the first in the kernel's list of slaves, not by the policy's order)", more.join(" or ")),
    };
    let detect = match &b.monitor {
        Monitor::Mii { interval, down_delay, .. } => {
            format!("the bond's MII monitor (every {}) sees the carrier go, waits DownDelaySec={}", timespan::format(*interval), timespan::format(*down_delay))
        }
        Monitor::Arp { interval, .. } => format!("the bond's ARP monitor (every {}) misses its answers", timespan::format(*interval)),
    };
    let back = match &b.monitor {
        Monitor::Mii { up_delay, .. } => format!("after UpDelaySec={}", timespan::format(*up_delay)),
        Monitor::Arp { .. } => "once its ARP answers come back".to_string(),
    };
    let mac = match b.fail_over_mac {
        FailOverMac::None => "its address and MAC (fail_over_mac=none: every slave carries the bond's MAC)".to_string(),
        FailOverMac::Active => {
            format!("its address and takes {next}'s MAC, announced by gratuitous ARP (fail_over_mac=active: no slave's MAC changes, which a Wi-Fi slave needs)")
        }
        FailOverMac::Follow => format!("its address and MAC, which {next} takes over (fail_over_mac=follow)"),
    };
    format!(
        "Primary slave: {primary}. When {primary} loses its carrier, {detect} and makes {next} active; {name} keeps \
         {mac}, so an open TCP connection (an scp, an SSH session) goes on through it after a pause of about the \
         detection time. When {primary} gets its carrier back, the bond makes it active again \
         {back} (PrimaryReselectPolicy={reselect}). The lab would show this with one TCP connection to the internet host \
         {INTERNET} open throughout, and the bond's active slave as the kernel reports it.",
        primary = b.primary,
        name = b.name,
        reselect = b.primary_reselect.word(),
    )
}

pub struct Options {
    pub manager: Manager,
    /// The primary fails silently (its switch's upstream) instead of losing its carrier, and
    /// the daemon runs, probing through the bond.
    pub silent: bool,
    /// When the primary loses its carrier, and when it gets it back.
    pub fail_at: Duration,
    pub repair_at: Duration,
    /// How long to watch after the repair.
    pub tail: Duration,
}

/// The bond's active slave, from the kernel's /proc/net/bonding (in the lab host's namespace).
fn active_slave(lab: &Lab, name: &str) -> Option<String> {
    let out = lab.run_in_host("cat", &[&format!("/proc/net/bonding/{name}")]).ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| l.strip_prefix("Currently Active Slave: ")).map(|s| s.trim().to_string())
}

/// Runs the bond in the lab and prints its timeline. Fails when the connection broke.
pub fn run(opts: Options) -> anyhow::Result<()> {
    let plan = plan(opts.manager, opts.silent)?;
    let bond = plan.bond().cloned().expect("Mode=bond");
    let networkd = opts.manager == Manager::Networkd;
    println!("Building the seed's network in namespaces (host with eth0, wlan1, wlan0; a switch per uplink; router; internet)...");
    let text = policy_text(opts.manager, opts.silent);
    let mut lab = Lab::start(LabOptions { manager: opts.manager, policy: networkd.then(|| text.clone()), ..Default::default() })?;
    if !networkd {
        lab.write_policy(&text)?;
        print!("{}", lab.multihome_ok(&["apply"])?);
    }
    println!("{}", if opts.silent { silent_story(&bond) } else { failover_story(&bond) });
    lab.wait_for(Duration::from_secs(60), || active_slave(&lab, &bond.name).as_deref() == Some(bond.primary.as_str()))
        .map_err(|e| anyhow::anyhow!("{} did not come up with {} active: {e}\n{}", bond.name, bond.primary, lab.manager_log()))?;
    let daemon_log = if opts.silent {
        lab.write_policy(&text)?;
        let log = lab.spawn_multihome(&["daemon"])?.log.clone();
        // Its first verdict on the path through the primary.
        lab.wait_for_log(&log, "-> path up", Duration::from_secs(30))?;
        Some(log)
    } else {
        None
    };
    lab.start_stream_echo()?;
    // The bond's address may still be settling (duplicate address detection, the gateway's ARP).
    let mut stream = None;
    lab.wait_for(Duration::from_secs(30), || {
        stream = Stream::start(&lab.host(), INTERNET, false, Duration::from_millis(20)).ok();
        stream.is_some()
    })
    .context("no TCP connection to the internet host through the bond")?;
    let stream = stream.expect("set above");
    println!("\nOne TCP connection from the host to {INTERNET}, a 100-byte message every 20 ms, each answer awaited. Timeline:");
    let t = |d: Duration| format!("{:>7.3}s", d.as_secs_f64());
    println!("{}  BOND    {} active slave {}", t(stream.now()), bond.name, bond.primary);
    let end = opts.repair_at + opts.tail;
    let mut faults = vec![(opts.fail_at, false), (opts.repair_at, true)].into_iter().peekable();
    let mut active = Some(bond.primary.clone());
    let mut daemon_pos = 0u64;
    let (mut status_at, mut status_shown) = (None, false);
    let started = Instant::now();
    // On a slow machine (software emulation) the return may take longer than UpDelaySec=: the
    // timeline goes on a while for it.
    // With the daemon, the primary is back only once a trial after the repair has kept it: a
    // trial that started before a late repair fails and doubles the hold.
    let back = |active: &Option<String>| active.as_deref() == Some(bond.primary.as_str());
    let (mut repaired, mut kept) = (false, !opts.silent);
    let kept_line = format!("{}: path recovering -> path up", bond.primary);
    while started.elapsed() < end || (!(back(&active) && kept) && started.elapsed() < end + Duration::from_secs(20)) {
        if let Some((_, up)) = faults.next_if(|(at, _)| *at <= started.elapsed()) {
            let what = match (opts.silent, up) {
                (true, false) => "fails silently (link up, nothing answers behind it)",
                (true, true) => "is repaired upstream",
                (false, false) => "loses carrier",
                (false, true) => "gets its carrier back",
            };
            if opts.silent {
                lab.set_upstream(&bond.primary, up)?;
            } else {
                lab.set_carrier(&bond.primary, up)?;
            }
            println!("{}  FAULT   {} {what}", t(stream.now()), bond.primary);
            repaired |= up;
        }
        if let Some(log) = &daemon_log {
            let mut lines = Vec::new();
            daemon_pos = super::scenario::read_new_lines(log, daemon_pos, stream.now(), &mut lines);
            for (at, line) in lines {
                let line = line.to_string();
                kept |= repaired && line.contains(&kept_line);
                println!("{}  {line}", t(at));
            }
        }
        let now = active_slave(&lab, &bond.name).filter(|s| s != "None");
        if now != active {
            println!("{}  BOND    {} active slave {}", t(stream.now()), bond.name, now.as_deref().unwrap_or("none"));
            if daemon_log.is_some() && !status_shown && now.as_deref().is_some_and(|s| s != bond.primary) {
                status_at = Some(Instant::now() + Duration::from_millis(300));
            }
            active = now;
        }
        // Once, shortly after the daemon moved the bond: what `multihome status` says then.
        if status_at.is_some_and(|at| at <= Instant::now()) {
            status_at = None;
            status_shown = true;
            let out = lab.multihome(&["status"])?;
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                println!("{}  STATUS  {line}", t(stream.now()));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let end = started.elapsed().max(end);
    let record = stream.stop();
    let fail = opts.fail_at.saturating_sub(Duration::from_millis(100));
    println!(
        "\nThe connection: {} answers, {} bytes lost, longest wait for an answer {:.0} ms (around the failover), {:.0} ms (around the return){}.",
        record.echoes.len(),
        record.bytes_lost(),
        record.worst_stall(fail, opts.repair_at).as_secs_f64() * 1e3,
        record.worst_stall(opts.repair_at, end).as_secs_f64() * 1e3,
        record.error.as_ref().map_or(String::new(), |e| format!("; it ended: {e}"))
    );
    let survived = record.error.is_none() && record.bytes_lost() == 0 && record.echoes_between(opts.repair_at + Duration::from_secs(1), end) > 0;
    println!("Cleaning up the lab...");
    drop(lab);
    println!("Done: namespaces and processes removed, the machine's network untouched.");
    if !survived {
        bail!("the TCP connection did not survive the failover");
    }
    if active.as_deref() != Some(bond.primary.as_str()) {
        bail!("{} is not the active slave again after its return", bond.primary);
    }
    Ok(())
}
