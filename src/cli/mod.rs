//! One function per subcommand, grouped by what they touch: [`show`] (nothing running),
//! [`configure`] (the network manager), [`service`] (the daemon and the hook), [`lab`], [`import`]
//! (a policy from another tool's configuration, or from the running manager: `init`).

pub mod args;
mod configure;
mod import;
mod lab;
mod service;
mod show;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use args::{Cli, Command};
use multihome::plan::{self, Plan};
use multihome::policy;

/// Exit codes, each meaning one thing so that scripts can branch on them: 0 done, 1 an error,
/// 2 a usage error (clap's), and these.
pub mod exit {
    /// `try` reverted because nobody confirmed in time.
    pub const TRY_REVERTED: u8 = 3;
    /// The policy is invalid; nothing was touched.
    pub const INVALID_POLICY: u8 = 4;
    /// No daemon answers (status, force, reload).
    pub const NO_DAEMON: u8 = 5;
    /// `lab --mode bond` on a kernel that cannot make a bond: it explained what it would do.
    pub const LAB_CANNOT_BOND: u8 = 6;
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config.as_path();
    match cli.command {
        Command::Check { json } => show::check(config, json)?,
        Command::Render { backend, out } => show::render(config, backend, out.as_deref())?,
        Command::Plan { backend, root, json } => configure::plan(config, backend, root.as_deref(), json)?,
        Command::Apply { backend, root, no_reload } => configure::apply(config, backend, root.as_deref(), no_reload)?,
        Command::Reset { dry_run, root } => configure::reset(root.as_deref(), dry_run)?,
        Command::Try { backend, timeout } => return configure::try_and_confirm(config, backend, timeout),
        Command::Dispatch { args } => service::dispatch(config, &args)?,
        Command::Daemon { cleanup } => service::daemon(config, cleanup)?,
        Command::Status { json } => return service::status(json),
        Command::Force { order, interface } => service::force(order, &interface)?,
        Command::Reload => service::reload()?,
        Command::Lab { backend, fault, uplink, script, no_daemon, mode, plot } => return lab::lab(backend, fault, uplink, script, no_daemon, mode, plot),
        Command::Init { write } => import::init(config, write)?,
        Command::Import { from: args::ImportFrom::Ifupdown { file } } => import::ifupdown(&file)?,
        Command::GenerateDocs { out } => drop(multihome::docs::generate(<Cli as clap::CommandFactory>::command(), &out)?),
    }
    Ok(ExitCode::SUCCESS)
}

fn load(config: &Path) -> anyhow::Result<Plan> {
    let policy = policy::load(config)?;
    Ok(plan::plan(&policy))
}

/// Where the plan replaced a wish of the policy by a safe setting (a Wi-Fi slave's MAC policy).
fn warn_about(plan: &Plan) {
    for note in plan.bond().into_iter().flat_map(|b| &b.notes) {
        eprintln!("multihome: warning: {note}");
    }
}

/// The root a command works under, opened before anything else is done: this system's `/`, or
/// the image named by `option` (`--root`, `--out`), which must not be `/`. `create`: an output
/// directory that does not exist yet is made.
fn open_root(image: Option<&Path>, option: &str, command: &str, create: bool) -> anyhow::Result<multihome::backend::Root> {
    use multihome::backend::Root;
    match image {
        None => Root::system(),
        Some(path) => Root::image(path, option, command, create),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")
}
