//! The daemon and the dispatcher hook, and the commands that talk to the daemon over D-Bus.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use multihome::daemon;

use super::args::ForceOrder;
use super::{exit, runtime};

pub fn dispatch(config: &Path, args: &[OsString]) -> anyhow::Result<()> {
    // Untrusted bytes, judged by the event parser as bytes (never lossily, never by a shell).
    let env = std::env::vars_os().collect();
    multihome::dispatch::run(args, &env, config)
}

pub fn daemon(config: &Path, cleanup: bool) -> anyhow::Result<()> {
    // One thread: the probes, the netlink events and the bus share it (small and idle).
    let rt = runtime()?;
    if !cleanup {
        explain_bond_mode(config);
    }
    if cleanup { rt.block_on(daemon::cleanup(config)) } else { rt.block_on(daemon::run(config)) }
}

/// In bond mode the daemon probes no uplink: the kernel's bond fails over by itself. It still
/// runs, removes what a daemon of an earlier Mode=routes left, shows the bond's slaves in
/// `status` and on the bus (daemon/bond.rs), with `[Probe]` probes through the bond, and takes a
/// reload back to Mode=routes. An invalid policy is left for the daemon to report.
fn explain_bond_mode(config: &Path) {
    if let Ok(policy) = multihome::policy::load(config)
        && let Some(bond) = &policy.bond()
    {
        let probes = match (&policy.probe, bond.probe_failover) {
            (None, _) => "the daemon probes nothing",
            (Some(_), false) => "the daemon probes through it and reports a silent failure of the active slave's path (ProbeFailover=no)",
            (Some(_), true) => {
                "the daemon probes through it and makes the next slave active on a silent failure of the active slave's path (ProbeFailover=yes)"
            }
        };
        eprintln!(
            "multihome: Mode=bond: the kernel's bond {} fails over between {} by itself; {probes}, and shows the active slave and each slave's MII state",
            bond.name,
            bond.slaves.iter().map(|s| s.interface.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
}

pub fn status(json: bool) -> anyhow::Result<ExitCode> {
    match runtime()?.block_on(daemon::status::fetch()) {
        Ok(s) if json => println!("{}", multihome::json::to_string(&s)?),
        Ok(s) => print!("{}", daemon::status::render(&s)),
        Err(e) if e.downcast_ref::<daemon::status::NotRunning>().is_some() => {
            eprintln!("multihome: {e}");
            return Ok(ExitCode::from(exit::NO_DAEMON));
        }
        Err(e) => return Err(e),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn force(order: ForceOrder, interface: &str) -> anyhow::Result<()> {
    let call = match order {
        ForceOrder::Down => daemon::status::Call::ForceDown(interface),
        ForceOrder::Up => daemon::status::Call::ForceUp(interface),
        ForceOrder::Release => daemon::status::Call::Release(interface),
    };
    runtime()?.block_on(daemon::status::call(call))
}

pub fn reload() -> anyhow::Result<()> {
    runtime()?.block_on(daemon::status::call(daemon::status::Call::Reload))
}
