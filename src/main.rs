//! The `multihome` command: parse the arguments, run one subcommand (src/cli/), map errors to
//! exit codes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::args::Cli;
use cli::exit;
use multihome::{daemon, policy};

fn main() -> ExitCode {
    // `multihome render | head` should end quietly, like any Unix filter.
    // SAFETY: resetting a signal disposition before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    multihome::log::init(multihome::log::level(cli.verbose, cli.quiet));
    match cli::run(cli) {
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
