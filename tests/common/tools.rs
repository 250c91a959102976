//! Whether the machine has what a test needs. Outside CI a missing tool skips the test with a
//! message; in CI (CI=true) it fails, so that no test passes there without having run.

use std::process::Command;

/// Whether this runs in CI (CI=true, as .ci/run sets it).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether `tool` is on the PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

/// A prerequisite is missing: fails in CI, and outside it says why the test skips and returns
/// false (so `if !unavailable(..)` reads "unless skipped").
pub fn unavailable(why: &str) -> bool {
    assert!(!in_ci(), "{why} (CI=true: .ci/run installs the tools and builds what the tests need)");
    eprintln!("SKIPPED (not in CI): {why}");
    false
}

/// `have(tool)`, and when not, a skip outside CI and a failure in it, naming `what` goes unchecked.
pub fn require_tool(tool: &str, what: &str) -> bool {
    have(tool) || unavailable(&format!("{tool} is not installed, so {what} is not checked"))
}
