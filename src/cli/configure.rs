//! `plan`, `apply` and `try`: the policy realised by a backend ([`Backend`]), then the DHCP
//! uplinks' hook work that no lease event will do for a lease that came before the policy.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use multihome::backend::{Backend, Root, Target, try_apply};
use multihome::plan::{self, Plan};
use multihome::policy;

use super::args::ApplyBackend;
use super::{exit, open_root, runtime};

pub fn plan(config: &Path, backend: ApplyBackend, image: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let policy = policy::load(config)?;
    let plan = plan::plan(&policy);
    let root = &open_root(image, "--root", "plan", false)?;
    let rt = runtime()?;
    let backend = rt.block_on(Backend::choose(backend.or(policy.backend), root));
    let mut diff = rt.block_on(backend.diff(&plan, root))?;
    // On this system, beside the files or profiles: the MPTCP endpoints, as apply would leave
    // them. A kernel that cannot be read (no MPTCP, no privilege) only loses this part.
    if root.is_system() {
        match rt.block_on(multihome::dispatch::preview_mptcp(&plan, mptcp_flags(&rt))) {
            Ok((steps, raise, names)) => diff.changes.extend(multihome::backend::diff::Change::of_mptcp(&steps, raise, &names)),
            Err(e) => eprintln!("multihome: warning: cannot read the MPTCP endpoints ({e:#}); their changes are not shown"),
        }
    }
    if json {
        #[derive(serde::Serialize)]
        struct PlanJson<'a> {
            #[serde(flatten)]
            diff: &'a multihome::backend::Diff,
            /// The desired state the changes lead to, as `check --json` shows it.
            plan: &'a plan::Plan,
        }
        println!("{}", multihome::json::to_string(&PlanJson { diff: &diff, plan: &plan })?);
    } else {
        print!("{diff}");
    }
    Ok(())
}

pub fn apply(config: &Path, backend: ApplyBackend, image: Option<&Path>, no_reload: bool) -> anyhow::Result<()> {
    let policy = policy::load(config)?;
    let plan = plan::plan(&policy);
    super::warn_about(&plan);
    // `--root /` (or a symlink to it) is refused here, before anything under it is read or
    // written: an image option never turns into a live apply.
    let root = &open_root(image, "--root", "apply", true)?;
    let rt = runtime()?;
    let target = match (root.is_system(), no_reload) {
        (false, _) => Target::Image,
        (true, true) => Target::LiveNoReload,
        (true, false) => Target::Live,
    };
    let backend = rt.block_on(Backend::choose(backend.or(policy.backend), root));
    let applied = rt.block_on(backend.apply_and_commit(&plan, root, target))?;
    for w in applied.warnings() {
        eprintln!("multihome: warning: {w}");
    }
    let report = applied.report(target);
    for line in &report {
        println!("{line}");
    }
    // On this system (not an image), the lease of a DHCP uplink may have come before the
    // policy: its dispatcher event is past, so the hook's work is done now.
    let refreshed = root.is_system() && refresh_dhcp_uplinks(&rt, &plan, backend);
    let mptcp = root.is_system() && sync_mptcp(&rt, &plan);
    if report.is_empty() && !refreshed && !mptcp {
        println!("Nothing to do: the system already matches the policy.");
    }
    Ok(())
}

pub fn try_and_confirm(config: &Path, backend: ApplyBackend, timeout: Duration) -> anyhow::Result<ExitCode> {
    let policy = policy::load(config)?;
    let plan = plan::plan(&policy);
    let rt = runtime()?;
    let root = &Root::system()?;
    let backend = rt.block_on(Backend::choose(backend.or(policy.backend), root));
    let kept = rt.block_on(try_apply::run(backend, &plan, root, timeout))?;
    // As after apply, but only once kept: a revert could not take the hook's work back.
    if kept {
        refresh_dhcp_uplinks(&rt, &plan, backend);
        sync_mptcp(&rt, &plan);
    }
    // Reverted because nobody confirmed: scripts can tell it from an error.
    Ok(if kept { ExitCode::SUCCESS } else { ExitCode::from(exit::TRY_REVERTED) })
}

/// The dispatcher hook for every DHCP uplink, once, after an apply (or a kept try), and the
/// sweep of what it added under an earlier policy; prints what it changed and says whether it
/// changed anything. A failure is only a warning: the policy is applied, and the hook does the
/// same at the uplink's next lease event.
fn refresh_dhcp_uplinks(rt: &tokio::runtime::Runtime, plan: &Plan, backend: Backend) -> bool {
    use multihome::dispatch::ipv6::AdvertisedRouter;
    // networkd puts the advertised router into the uplinks' tables itself; NetworkManager does not.
    let router = if backend == Backend::NetworkManager { AdvertisedRouter::Hook } else { AdvertisedRouter::Manager };
    match rt.block_on(multihome::dispatch::refresh(plan, router)) {
        Ok(refreshed) => {
            let changed: Vec<_> = refreshed.uplinks.iter().filter(|(_, o)| o.changed_anything()).collect();
            for (interface, outcome) in &changed {
                println!("{interface}: {outcome}");
            }
            if !refreshed.swept.is_empty() {
                println!("{}", refreshed.swept);
            }
            !changed.is_empty() || !refreshed.swept.is_empty()
        }
        Err(e) => {
            eprintln!("multihome: warning: the DHCP uplinks' rules were not brought up to date ({e:#}); the dispatcher hook does it at their next lease event");
            false
        }
    }
}

pub fn reset(image: Option<&Path>, dry_run: bool) -> anyhow::Result<()> {
    use multihome::backend::reset;
    let root = &open_root(image, "--root", "reset", false)?;
    let rt = runtime()?;
    if dry_run {
        print!("{}", rt.block_on(reset::survey(root))?);
        return Ok(());
    }
    let done = rt.block_on(reset::run(root))?;
    print!("{done}");
    if !done.is_empty() {
        println!("Reset: nothing of multihome's is left under {}; the policy file stays.", root.path().display());
    }
    Ok(())
}

/// How an apply treats the backup flags of multihome's endpoints that are otherwise right:
/// the plan's, unless the daemon runs: then they are its own (it steers them by health, and
/// keeps an uplink without carrier without endpoint until the uplink works again), and an apply
/// must not undo that; the daemon sets the plan's flags itself when it reloads the policy.
fn mptcp_flags(rt: &tokio::runtime::Runtime) -> multihome::netlink::mptcp::Flags {
    use multihome::netlink::mptcp::Flags;
    if rt.block_on(multihome::bus::runs_on_system_bus(multihome::daemon::bus::BUS_NAME)) { Flags::Kept } else { Flags::Planned }
}

/// The uplinks' MPTCP endpoints and the subflow limit, after an apply (or a kept try), with
/// either backend: networkd (252) has no MPTCP settings, and NetworkManager's per-profile
/// `connection.mptcp-flags` cannot be steered by the daemon without touching endpoints it made.
/// Prints what it changed and says whether it changed anything; a failure is a warning, as the
/// policy itself is applied.
fn sync_mptcp(rt: &tokio::runtime::Runtime, plan: &Plan) -> bool {
    match rt.block_on(multihome::dispatch::sync_mptcp(plan, mptcp_flags(rt))) {
        Ok(synced) => {
            let changed = synced.changed_anything();
            if changed || !synced.blocked.is_empty() || synced.unavailable {
                println!("{synced}");
            }
            changed
        }
        Err(e) => {
            eprintln!("multihome: warning: the MPTCP endpoints were not brought up to date ({e:#})");
            false
        }
    }
}
