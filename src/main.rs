//! The `multihome` command: parse arguments, run one subcommand, map errors to exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use multihome::backend::{files, networkd};
use multihome::plan::{self, Plan};
use multihome::policy;

#[derive(Parser)]
#[command(name = "multihome", version, about = "Keep a host with several uplinks online: one policy, realised by systemd-networkd or NetworkManager")]
struct Cli {
    /// The policy file.
    #[arg(short = 'c', long = "config", global = true, default_value = policy::DEFAULT_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RenderBackend {
    Networkd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ApplyBackend {
    Auto,
    Networkd,
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
}

fn main() -> ExitCode {
    // `multihome render | head` should end quietly, like any Unix filter.
    // SAFETY: resetting a signal disposition before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("multihome: {e:#}");
            // 2: the policy itself is wrong (nothing was touched); 1: anything else.
            if e.downcast_ref::<policy::Diagnostics>().is_some() { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
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
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print!("{plan}");
            }
        }
        Command::Render { backend: RenderBackend::Networkd, out } => {
            let plan = load(&cli.config)?;
            let rendered = networkd::render::render(&plan);
            match out {
                Some(dir) => {
                    let changes = files::write_out(&dir, &rendered, &networkd::render::owned_patterns())?;
                    for c in &changes {
                        let what = if c.is_noop() { "unchanged" } else if c.new.is_none() { "removed" } else { "wrote" };
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
            let plan = load(&cli.config)?;
            let _ = resolve(backend, Some(&root))?;
            let changes = networkd::compare(&plan, &root)?;
            let diff = files::unified_diff(&root, &changes);
            if diff.is_empty() {
                println!("No changes: the files under {} already match the policy.", root.display());
            } else {
                print!("{diff}");
            }
        }
        Command::Apply { backend, root, no_reload } => {
            let plan = load(&cli.config)?;
            let _ = resolve(backend, root.as_deref())?;
            let target = match (&root, no_reload) {
                (Some(_), _) => networkd::Target::Image,
                (None, true) => networkd::Target::LiveNoReload,
                (None, false) => networkd::Target::Live,
            };
            let reload = target == networkd::Target::Live;
            let root = root.unwrap_or_else(|| PathBuf::from("/"));
            let rt = runtime()?;
            let applied = rt.block_on(networkd::apply(&plan, &root, target))?;
            if applied.changed_anything() {
                println!("Applied: {} file(s) and {} sysctl(s) changed{}.", applied.undo_files.len(), applied.undo_sysctls.len(), if reload { ", systemd-networkd reloaded" } else { "" });
            } else {
                println!("Nothing to do: the system already matches the policy.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn resolve(backend: ApplyBackend, _root: Option<&Path>) -> anyhow::Result<ApplyBackend> {
    Ok(match backend {
        ApplyBackend::Auto => ApplyBackend::Networkd,
        b => b,
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")
}
