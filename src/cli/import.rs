//! `import`: a policy from another tool's configuration, and `init`: one from the running network
//! manager; printed on stdout (or, `init --write`, written to a new policy file); what was not
//! carried over goes to stderr, one line each with where it is.
//!
//! Notes on stderr rather than as comments in the policy: stdout is then exactly the policy
//! (`multihome import ifupdown > multihome.conf` gives a file with nothing stale in it once the
//! old file is gone), and the notes stay visible on the terminal even when stdout is redirected.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{Mode, fchmod};

use multihome::import::{ifupdown, init as from_manager};
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

/// `multihome init [--write]`: the running manager's configuration as a policy, checked as `check`
/// would; printed, or written to `config` when no file is there yet.
pub fn init(config: &Path, write: bool) -> anyhow::Result<()> {
    // Said before anything is read: an existing policy is never replaced (the create below
    // refuses it again, should one appear meanwhile).
    if write && std::fs::symlink_metadata(config).is_ok() {
        bail!(
            "{} exists; `multihome init --write` only writes a policy where there is none, so nothing was written (print one with `multihome init` to compare)",
            config.display()
        );
    }
    let found = super::runtime()?.block_on(from_manager::read::read())?;
    let made = from_manager::write::policy(&found).map_err(anyhow::Error::msg)?;
    for note in &made.notes {
        eprintln!("multihome: note: {note}");
    }
    policy::parse("(init policy)", &made.policy).map_err(|e| {
        anyhow::Error::new(e)
            .context(format!("the policy made from {} does not pass `multihome check` (write it by hand from this):\n{}", found.manager, made.policy))
    })?;
    if !write {
        print!("{}", made.policy);
        return Ok(());
    }
    create_new(config, made.policy.as_bytes())?;
    println!(
        "Wrote {} ({} uplink(s) from {}); review it, then `multihome check` and `multihome plan`.",
        config.display(),
        found.candidates.len(),
        found.manager
    );
    Ok(())
}

/// Creates `path` (mode 0644) with `contents`: never over an existing file, never through a
/// symlink anywhere in the path (openat2 with O_EXCL and RESOLVE_NO_SYMLINKS); its directory is
/// made (0755) when missing, as `mkdir -p /etc/multihome` would.
fn create_new(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o755).create(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let how = OpenHow::new()
        .flags(OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .mode(Mode::from_bits_truncate(0o644))
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
    let fd = match openat2(nix::fcntl::AT_FDCWD, path, how) {
        Ok(fd) => fd,
        Err(Errno::EEXIST) => bail!("{} exists; `multihome init --write` only writes a policy where there is none, so nothing was written", path.display()),
        Err(Errno::ELOOP) => bail!("{}: a symlink in the path; `multihome init --write` follows none, so nothing was written", path.display()),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    // The mode as said, whatever the umask.
    fchmod(&fd, Mode::from_bits_truncate(0o644)).with_context(|| format!("cannot set the mode of {}", path.display()))?;
    let mut file = std::fs::File::from(fd);
    if let Err(e) = file.write_all(contents).and_then(|()| file.sync_all()) {
        // A half-written policy is worse than none.
        let _ = std::fs::remove_file(path);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::create_new;

    #[test]
    fn create_new_makes_the_directory_and_refuses_an_existing_file_and_a_symlinked_path() {
        let base = std::env::temp_dir().join(format!("multihome-create-new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let file = base.join("etc/multihome/multihome.conf");
        create_new(&file, b"[Policy]\n").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "[Policy]\n");
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o644);
        let e = create_new(&file, b"other").unwrap_err().to_string();
        assert!(e.contains("exists") && e.contains("nothing was written"), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "[Policy]\n");
        // A directory in the path that is a symlink is not followed.
        std::os::unix::fs::symlink(base.join("etc/multihome"), base.join("linked")).unwrap();
        let e = create_new(&base.join("linked/new.conf"), b"x").unwrap_err().to_string();
        assert!(e.contains("a symlink in the path"), "{e}");
        assert!(!base.join("etc/multihome/new.conf").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
