//! The command line as clap reads it: options, subcommands and their arguments. The man page and
//! the shell completions are generated from these definitions (`generate-docs`, src/docs.rs).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use multihome::policy;

#[derive(Parser)]
#[command(name = "multihome", version, about = "Keep a host with several uplinks online: one policy, realised by systemd-networkd or NetworkManager")]
pub struct Cli {
    /// The policy file.
    #[arg(short = 'c', long = "config", global = true, default_value = policy::DEFAULT_PATH)]
    pub config: PathBuf,
    /// More log detail (the daemon and the hook): -v debug, -vv trace.
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less: -q warnings and errors only, -qq errors only.
    #[arg(short = 'q', long = "quiet", global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderBackend {
    Networkd,
    /// NetworkManager keyfiles, for machines where NetworkManager does not run yet.
    NmKeyfile,
}

/// `--backend` of apply, plan and try: the policy's `Backend=` unless given.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyBackend {
    /// The policy's Backend= (whose own auto is NetworkManager when it owns its name on the
    /// system bus, else systemd-networkd).
    Auto,
    Networkd,
    #[value(name = "networkmanager")]
    NetworkManager,
}

impl ApplyBackend {
    pub fn or(self, from_policy: policy::Backend) -> policy::Backend {
        match self {
            ApplyBackend::Auto => from_policy,
            ApplyBackend::Networkd => policy::Backend::Networkd,
            ApplyBackend::NetworkManager => policy::Backend::NetworkManager,
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Validate the policy and print the plan.
    Check {
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the files a backend would write, or write them under --out (used as a root; never
    /// this system's /, and never through a symlink inside it).
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
        /// Compare with the files under this root (an image) instead of this system's.
        #[arg(long)]
        root: Option<PathBuf>,
        /// Print the changes and the plan they lead to as JSON.
        #[arg(long)]
        json: bool,
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
    /// Take away everything multihome made on this host (files, profile changes, rules, routes,
    /// sysctls) and nothing else; the policy file stays. Stop the daemon first.
    Reset {
        /// Only show what would be taken away.
        #[arg(long)]
        dry_run: bool,
        /// An image's root instead of this running system: its files only.
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// The dispatcher hook: run by nm-dispatcher (INTERFACE ACTION) and networkd-dispatcher
    /// (IFACE, STATE in the environment) on every link event.
    Dispatch {
        /// What the dispatcher passed; the scripts put `--` before it.
        // Bytes, not text: the hook refuses what is not UTF-8 itself (exit code 1), where
        // clap would stop with a usage error (2).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
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
        /// The fault to inject on --uplink at 3 s (repaired at 9 s); silent unless given
        /// (--mode bond: link, the carrier of the primary, which the monitor of the bond sees).
        #[arg(long, value_enum)]
        fault: Option<LabFault>,
        #[arg(long, default_value = "eth0")]
        uplink: String,
        /// A scripted sequence instead, e.g. "eth0:silent@2s, wlan1:link@4s, wlan1:repair@6s, eth0:repair@8s"
        /// (faults: link, silent, silent6).
        #[arg(long, conflicts_with_all = ["fault", "uplink"])]
        script: Option<String>,
        /// Without the failover daemon: what the network manager alone does.
        #[arg(long)]
        no_daemon: bool,
        /// routes: a table per uplink (the default). bond: one active-backup bond over the
        /// uplinks, an open TCP connection through the carrier loss and return of the primary; on a
        /// kernel without bonding it explains what it would do and exits with 6.
        #[arg(long, value_enum, default_value = "routes")]
        mode: LabMode,
        /// Also draw the run's timeline as an SVG picture into FILE: a lane per uplink with the
        /// new IPv4 and IPv6 connections and the open streams it carried, outages shaded, faults
        /// and the daemon's verdicts marked (--mode routes).
        #[arg(long, value_name = "FILE")]
        plot: Option<std::path::PathBuf>,
    },
    /// Print a first policy made from the running network manager (NetworkManager's profiles
    /// over D-Bus, or systemd-networkd's .network files): an uplink per wired or Wi-Fi device
    /// with a default route, wired first, then in the manager's own order, each choice
    /// explained in a comment; what was left out is listed on stderr.
    Init {
        /// Write it to the policy file (-c, default /etc/multihome/multihome.conf) instead, only
        /// if that does not exist yet.
        #[arg(long)]
        write: bool,
    },
    /// Print a policy made from another tool's configuration; every line not carried over is
    /// listed on stderr with its file and line.
    Import {
        #[command(subcommand)]
        from: ImportFrom,
    },
    /// For packagers: write the man page and the shell completions under DIR (src/docs.rs).
    #[command(hide = true)]
    GenerateDocs { out: PathBuf },
}

/// The formats `import` reads.
#[derive(Subcommand)]
pub enum ImportFrom {
    /// ifupdown's interfaces(5), following its source and source-directory lines: uplinks with
    /// a gateway or DHCP in metric order (else file order), an active-backup bond as Mode=bond;
    /// the post-up ip route/ip rule lines the plan replaces are recognised and left out.
    Ifupdown {
        /// The file to read.
        #[arg(default_value = multihome::import::ifupdown::DEFAULT_PATH)]
        file: PathBuf,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LabBackend {
    Networkd,
    #[value(name = "networkmanager")]
    NetworkManager,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LabMode {
    Routes,
    Bond,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LabFault {
    Link,
    Silent,
    /// Only the uplink's IPv6 fails silently; its IPv4 goes on.
    Silent6,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ForceOrder {
    Down,
    Up,
    Release,
}

fn parse_timespan(text: &str) -> Result<std::time::Duration, String> {
    policy::timespan::parse(text).ok_or_else(|| format!("{text:?} is not a time span (like 120s or 2min)"))
}
