//! The `multihome` command: parse arguments, run one subcommand, map errors to exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use multihome::backend::{Backend, Target, files, networkd, nm, try_apply};
use multihome::daemon;
use multihome::plan::{self, Plan};
use multihome::policy;

#[derive(Parser)]
#[command(name = "multihome", version, about = "Keep a host with several uplinks online: one policy, realised by systemd-networkd or NetworkManager")]
struct Cli {
    /// The policy file.
    #[arg(short = 'c', long = "config", global = true, default_value = policy::DEFAULT_PATH)]
    config: PathBuf,
    /// More log detail (the daemon and the hook): -v debug, -vv trace.
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Less: -q warnings and errors only, -qq errors only.
    #[arg(short = 'q', long = "quiet", global = true, action = clap::ArgAction::Count)]
    quiet: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RenderBackend {
    Networkd,
    /// NetworkManager keyfiles, for machines where NetworkManager does not run yet.
    NmKeyfile,
}

/// `--backend` of apply, plan and try: the policy's `Backend=` unless given.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ApplyBackend {
    /// The policy's Backend= (whose own auto is NetworkManager when it owns its name on the
    /// system bus, else systemd-networkd).
    Auto,
    Networkd,
    #[value(name = "networkmanager")]
    NetworkManager,
}

impl ApplyBackend {
    fn or(self, from_policy: policy::Backend) -> policy::Backend {
        match self {
            ApplyBackend::Auto => from_policy,
            ApplyBackend::Networkd => policy::Backend::Networkd,
            ApplyBackend::NetworkManager => policy::Backend::NetworkManager,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Validate the policy and print the plan.
    Check {
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the files a backend would write, or write them under --out (used as a root).
    Render {
        #[arg(long, value_enum, default_value = "networkd")]
        backend: RenderBackend,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show what `apply` would change.
    Plan {
        #[arg(long, value_enum, default_value = "auto")]
        backend: ApplyBackend,
        /// Compare with the files under this root instead of /.
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    /// Write the configuration and have the network manager take it.
    Apply {
        #[arg(long, value_enum, default_value = "auto")]
        backend: ApplyBackend,
        /// Install under this root (an image): files only, no sysctls, no reload.
        #[arg(long)]
        root: Option<PathBuf>,
        /// Write files and set sysctls, but do not ask networkd to reload (before it starts).
        #[arg(long, conflicts_with = "root")]
        no_reload: bool,
    },
    /// Apply, then revert by itself unless confirmed (Enter, y, or SIGUSR1) within the timeout.
    Try {
        #[arg(long, value_enum, default_value = "auto")]
        backend: ApplyBackend,
        /// How long to wait for the confirmation (a time span: 120s, 2min).
        #[arg(long, default_value = "120s", value_parser = parse_timespan)]
        timeout: std::time::Duration,
    },
    /// The dispatcher hook: run by nm-dispatcher (INTERFACE ACTION) and networkd-dispatcher
    /// (IFACE, STATE in the environment) on every link event.
    Dispatch {
        /// What the dispatcher passed; the scripts put `--` before it.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the failover daemon (as multihome.service does): probe the uplinks, keep new
    /// connections on the best healthy one.
    Daemon {
        /// Do not run: remove the routes a daemon left (the unit's ExecStopPost, so that one
        /// that was killed or crashed leaves no routing behind), then exit.
        #[arg(long)]
        cleanup: bool,
    },
    /// Show the daemon's view of the uplinks (exit code 5 when no daemon runs).
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Maintenance through the daemon: force an uplink down or up, or release it.
    Force {
        #[arg(value_enum)]
        order: ForceOrder,
        interface: String,
    },
    /// Have the daemon reread the policy file.
    Reload,
    /// Show the main job in a lab: the seed's host in network namespaces, the policy applied by
    /// the real network manager, the daemon running, a fault injected, and the timeline of what
    /// new connections see. Needs root; touches nothing of this machine's own network.
    Lab {
        /// Default: networkd where it is installed, else NetworkManager.
        #[arg(long, value_enum)]
        backend: Option<LabBackend>,
        /// The fault to inject on --uplink at 3 s (repaired at 9 s).
        #[arg(long, value_enum, default_value = "silent")]
        fault: LabFault,
        #[arg(long, default_value = "eth0")]
        uplink: String,
        /// A scripted sequence instead, e.g. "eth0:silent@2s, wlan1:link@4s, wlan1:repair@6s, eth0:repair@8s".
        #[arg(long, conflicts_with_all = ["fault", "uplink"])]
        script: Option<String>,
        /// Without the failover daemon: what the network manager alone does.
        #[arg(long)]
        no_daemon: bool,
    },
    /// For packagers: write the man page and the shell completions under DIR (src/docs.rs).
    #[command(hide = true)]
    GenerateDocs { out: PathBuf },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LabBackend {
    Networkd,
    #[value(name = "networkmanager")]
    NetworkManager,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LabFault {
    Link,
    Silent,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ForceOrder {
    Down,
    Up,
    Release,
}

fn parse_timespan(text: &str) -> Result<std::time::Duration, String> {
    policy::timespan::parse(text).ok_or_else(|| format!("{text:?} is not a time span (like 120s or 2min)"))
}

fn main() -> ExitCode {
    // `multihome render | head` should end quietly, like any Unix filter.
    // SAFETY: resetting a signal disposition before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    multihome::log::init(multihome::log::level(cli.verbose, cli.quiet));
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("multihome: {e:#}");
            if e.downcast_ref::<policy::Diagnostics>().is_some() {
                ExitCode::from(exit::INVALID_POLICY)
            } else if e.downcast_ref::<daemon::status::NotRunning>().is_some() {
                ExitCode::from(exit::NO_DAEMON)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Exit codes, each meaning one thing so that scripts can branch on them: 0 done, 1 an error,
/// 2 a usage error (clap's), and these.
mod exit {
    /// `try` reverted because nobody confirmed in time.
    pub const TRY_REVERTED: u8 = 3;
    /// The policy is invalid; nothing was touched.
    pub const INVALID_POLICY: u8 = 4;
    /// No daemon answers (status, force, reload).
    pub const NO_DAEMON: u8 = 5;
}

fn load(config: &Path) -> anyhow::Result<Plan> {
    let policy = policy::load(config)?;
    Ok(plan::plan(&policy))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { json } => {
            let plan = load(&cli.config)?;
            if json {
                println!("{}", multihome::json::to_string(&plan)?);
            } else {
                print!("{plan}");
            }
        }
        Command::Render { backend, out } => {
            let plan = load(&cli.config)?;
            let (rendered, owned) = match backend {
                RenderBackend::Networkd => {
                    // The files already under the output root (or this system's, for printing)
                    // decide which uplinks get a drop-in; nothing running is asked.
                    let root = out.as_deref().unwrap_or(Path::new("/"));
                    let (layout, rendered) = runtime()?.block_on(networkd::layout(&plan, root, false))?;
                    for w in networkd::warnings(&layout) {
                        eprintln!("multihome: warning: {w}");
                    }
                    (rendered, networkd::render::owned_patterns())
                }
                RenderBackend::NmKeyfile => (nm::keyfile::render(&plan), nm::keyfile::owned_patterns()),
            };
            match out {
                Some(dir) => {
                    let changes = files::write_out(&dir, &rendered, &owned)?;
                    for c in &changes {
                        let what = if c.is_noop() {
                            "unchanged"
                        } else if c.new.is_none() {
                            "removed"
                        } else {
                            "wrote"
                        };
                        println!("{what} {}", dir.join(&c.path).display());
                    }
                }
                None => {
                    for f in &rendered {
                        println!("==> /{} <==\n{}", f.path.display(), f.contents);
                    }
                }
            }
        }
        Command::Plan { backend, root } => {
            let policy = policy::load(&cli.config)?;
            let plan = plan::plan(&policy);
            let rt = runtime()?;
            let backend = rt.block_on(Backend::choose(backend.or(policy.backend), &root));
            let diff = rt.block_on(backend.diff(&plan, &root))?;
            print!("{}", diff.placement);
            if diff.changes.is_empty() {
                println!("No changes: {} under {} already matches the policy.", backend.name(), root.display());
            } else {
                print!("{}", diff.changes);
            }
        }
        Command::Apply { backend, root, no_reload } => {
            let policy = policy::load(&cli.config)?;
            let plan = plan::plan(&policy);
            let rt = runtime()?;
            // `--root /` (or `/etc/..`) is this system, not an image: it gets the live apply.
            let root = root.filter(|r| !files::is_system_root(r));
            let target = match (&root, no_reload) {
                (Some(_), _) => Target::Image,
                (None, true) => Target::LiveNoReload,
                (None, false) => Target::Live,
            };
            let root_path = root.as_deref().unwrap_or(Path::new("/"));
            let backend = rt.block_on(Backend::choose(backend.or(policy.backend), root_path));
            let applied = rt.block_on(backend.apply_and_commit(&plan, root_path, target))?;
            for w in applied.warnings() {
                eprintln!("multihome: warning: {w}");
            }
            let report = applied.report(target);
            for line in &report {
                println!("{line}");
            }
            // On this system (not an image), the lease of a DHCP uplink may have come before the
            // policy: its dispatcher event is past, so the hook's work is done now.
            let refreshed = root.is_none() && refresh_dhcp_uplinks(&rt, &plan);
            if report.is_empty() && !refreshed {
                println!("Nothing to do: the system already matches the policy.");
            }
        }
        Command::Try { backend, timeout } => {
            let policy = policy::load(&cli.config)?;
            let plan = plan::plan(&policy);
            let rt = runtime()?;
            let backend = rt.block_on(Backend::choose(backend.or(policy.backend), Path::new("/")));
            let kept = rt.block_on(try_apply::run(backend, &plan, Path::new("/"), timeout))?;
            // As after apply, but only once kept: a revert could not take the hook's work back.
            if kept {
                refresh_dhcp_uplinks(&rt, &plan);
            }
            // Reverted because nobody confirmed: scripts can tell it from an error.
            return Ok(if kept { ExitCode::SUCCESS } else { ExitCode::from(exit::TRY_REVERTED) });
        }
        Command::Dispatch { args } => {
            // Untrusted text: read lossily and judged by the event parser, never by a shell.
            let env = std::env::vars_os().map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned())).collect();
            multihome::dispatch::run(&args, &env, &cli.config)?;
        }
        Command::Daemon { cleanup: true } => runtime()?.block_on(daemon::cleanup())?,
        Command::Daemon { cleanup: false } => {
            // One thread: the probes, the netlink events and the bus share it (small and idle).
            runtime()?.block_on(daemon::run(&cli.config))?;
        }
        Command::Status { json } => match runtime()?.block_on(daemon::status::fetch()) {
            Ok(s) if json => println!("{}", multihome::json::to_string(&s)?),
            Ok(s) => print!("{}", daemon::status::render(&s)),
            Err(e) if e.downcast_ref::<daemon::status::NotRunning>().is_some() => {
                eprintln!("multihome: {e}");
                return Ok(ExitCode::from(exit::NO_DAEMON));
            }
            Err(e) => return Err(e),
        },
        Command::Force { order, interface } => {
            let call = match order {
                ForceOrder::Down => daemon::status::Call::ForceDown(&interface),
                ForceOrder::Up => daemon::status::Call::ForceUp(&interface),
                ForceOrder::Release => daemon::status::Call::Release(&interface),
            };
            runtime()?.block_on(daemon::status::call(call))?;
        }
        Command::Reload => runtime()?.block_on(daemon::status::call(daemon::status::Call::Reload))?,
        Command::Lab { backend, fault, uplink, script, no_daemon } => {
            use multihome::lab::{self, scenario};
            let can_run = |manager| lab::prerequisites(&lab::LabOptions { manager, ..Default::default() }).is_ok();
            let manager = match backend {
                Some(LabBackend::Networkd) => lab::Manager::Networkd,
                Some(LabBackend::NetworkManager) => lab::Manager::NetworkManager,
                None if !can_run(lab::Manager::Networkd) && can_run(lab::Manager::NetworkManager) => lab::Manager::NetworkManager,
                None => lab::Manager::Networkd,
            };
            lab::prerequisites(&lab::LabOptions { manager, ..Default::default() }).map_err(anyhow::Error::msg)?;
            let steps = match script {
                Some(text) => scenario::parse_script(&text)?,
                None => {
                    anyhow::ensure!(lab::UPLINKS.contains(&uplink.as_str()), "--uplink: the lab's uplinks are {}", lab::UPLINKS.join(", "));
                    let kind = if fault == LabFault::Link { scenario::FaultKind::Link } else { scenario::FaultKind::Silent };
                    scenario::default_script(&uplink, kind)
                }
            };
            scenario::run(scenario::Options { manager, steps, tail: std::time::Duration::from_secs(3), daemon: !no_daemon })?;
        }
        Command::GenerateDocs { out } => drop(multihome::docs::generate(<Cli as clap::CommandFactory>::command(), &out)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// The dispatcher hook for every DHCP uplink, once, after an apply (or a kept try), and the
/// sweep of what it added under an earlier policy; prints what it changed and says whether it
/// changed anything. A failure is only a warning: the policy is applied, and the hook does the
/// same at the uplink's next lease event.
fn refresh_dhcp_uplinks(rt: &tokio::runtime::Runtime, plan: &Plan) -> bool {
    match rt.block_on(multihome::dispatch::refresh(plan)) {
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

/// The warnings of a networkd layout, on stderr (`plan` prints the whole layout).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")
}
