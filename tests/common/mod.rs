//! What the test crates share (issue 24): the binary under test, the lock that runs a crate's
//! labs one at a time, temporary directories, tool checks, the policy builder, the typed
//! `status --json` and the lab helpers. Each test crate includes it with `mod common;` and uses
//! what it needs; tests/layout.rs fails when a helper is defined again in more than two crates.

pub mod files;
pub mod journal;
pub mod lab;
pub mod policy;
pub mod status;
pub mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

/// The binary under test: this build's, or MULTIHOME_TEST_BIN (e.g. a release build, for the
/// daemon's memory figure).
pub fn binary() -> PathBuf {
    std::env::var_os("MULTIHOME_TEST_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_multihome")), PathBuf::from)
}

/// `multihome ARGS` on this machine (not in a lab), waited for.
pub fn multihome(args: &[&str]) -> Output {
    Command::new(binary()).args(args).output().expect("the multihome binary runs")
}

/// A command's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A path in the repository.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The policy file of a golden case (tests/golden/CASE/policy.conf), as a `-c` argument.
pub fn golden_policy(case: &str) -> String {
    repo("tests/golden").join(case).join("policy.conf").display().to_string()
}

/// One test of this crate at a time, for as long as the guard lives: labs of one crate made or
/// failed in parallel delay each other's carrier events and blur the measurements. Each test crate
/// compiles its own copy of this module, so the lock is per crate.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A test that failed while holding it does not stop the others.
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
