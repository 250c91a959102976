//! Entering a lab namespace from this process: a thread joins the namespace, makes what must
//! live there (a socket), and hands it back. Sockets keep the namespace they were made in, so
//! the rest of the process never leaves the root namespace.

use std::fs::File;
use std::process::{Command, Output};

use anyhow::{Context, bail};
use nix::sched::{CloneFlags, setns};

/// Runs `f` on a fresh thread inside network namespace `ns` (a name under /run/netns).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> std::io::Result<T> + Send + 'static) -> anyhow::Result<T> {
    let path = format!("/run/netns/{ns}");
    let handle = std::thread::spawn(move || -> anyhow::Result<T> {
        let file = File::open(&path).with_context(|| format!("no namespace {path}"))?;
        setns(&file, CloneFlags::CLONE_NEWNET).with_context(|| format!("cannot enter {path}"))?;
        Ok(f()?)
    });
    handle.join().map_err(|_| anyhow::anyhow!("thread in namespace {ns} panicked"))?
}

/// Runs a command to completion and fails with its stderr when it fails.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<Output> {
    let out = Command::new(program).args(args).output().with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!("`{program} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out)
}

/// `ip -n NS ...`: every link the lab makes is made inside a namespace, never in the root one.
pub fn ip(ns: &str, args: &[&str]) -> anyhow::Result<Output> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    run("ip", &all)
}
