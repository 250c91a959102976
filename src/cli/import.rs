//! `import`: a policy from another tool's configuration, printed on stdout; what was not carried
//! over goes to stderr, one line each with its file and line.
//!
//! Notes on stderr rather than as comments in the policy: stdout is then exactly the policy
//! (`multihome import ifupdown > multihome.conf` gives a file with nothing stale in it once the
//! old file is gone), and the notes stay visible on the terminal even when stdout is redirected.

use std::path::Path;

use multihome::import::ifupdown;
use multihome::policy;

pub fn ifupdown(file: &Path) -> anyhow::Result<()> {
    let (items, _) = ifupdown::read(file, &ifupdown::FileSystem)?;
    let import = ifupdown::convert(&file.display().to_string(), &items)?;
    for note in &import.notes {
        eprintln!("{note}");
    }
    // The same validation as `check`: a policy that would not pass is not printed as if it did
    // (a gateway outside the interface's prefix in the old file, for one).
    let policy = policy::parse("(imported policy)", &import.policy).map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "the policy imported from {} does not pass `multihome check` (fix the old file, or write the policy by hand):\n{}",
            file.display(),
            import.policy
        ))
    })?;
    // What `check` would warn about too (a Wi-Fi slave's MAC policy).
    for note in policy.bond().into_iter().flat_map(|b| &b.notes) {
        eprintln!("multihome: warning: {note}");
    }
    print!("{}", import.policy);
    Ok(())
}
