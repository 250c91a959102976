//! The directory a command works under, opened once and held for the whole run: this running
//! system's `/`, or an image's root (`--root`, `--out`). Every file under it is opened relative to
//! the held descriptor, so nothing can swap a path between a check and its use.
//!
//! Under an image root, writes and removals follow no symlink at any depth (`openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`): a symlinked `etc/systemd/network` could otherwise
//! send them out of the image. Reading the image's own networkd configuration resolves symlinks
//! as the image itself would, but never out of it (`RESOLVE_IN_ROOT`: a merged-/usr image's
//! `lib -> usr/lib` is normal). On the running system the administrator's links are honoured.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{Mode, fchmod, fstat, mkdirat, stat};

/// The mode of every directory multihome creates: networkd reads its files as the user
/// systemd-network, so a drop-in directory or networkd.conf.d it cannot enter is ignored,
/// silently (the policy's rules and `ManageForeignRoutingPolicyRules=no` with it).
pub const DIR_MODE: u32 = 0o755;

/// Makes `path` (an output directory) and its missing parents with [`DIR_MODE`] whatever the
/// umask; parents that exist keep their mode.
fn make_dirs(path: &Path) -> anyhow::Result<()> {
    // The nearest directory that exists, held as a root of its own (the user's path, links and
    // all, as they named it), and the rest made below it the one way multihome makes directories.
    let base = path.ancestors().skip(1).find(|d| d.as_os_str().is_empty() || d.is_dir()).unwrap_or(Path::new(""));
    let at = if base.as_os_str().is_empty() { Path::new(".") } else { base };
    let fd =
        nix::fcntl::open(at, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).with_context(|| format!("cannot open {}", at.display()))?;
    let rel = path.strip_prefix(base).with_context(|| format!("{} is not under {}", path.display(), base.display()))?;
    Root { path: at.to_path_buf(), fd, image: false }.make_dir(rel).map(drop)
}

/// A root, held open.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    fd: OwnedFd,
    image: bool,
}

impl Root {
    /// This running system's `/`.
    pub fn system() -> anyhow::Result<Root> {
        let fd = nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).context("cannot open /")?;
        Ok(Root { path: PathBuf::from("/"), fd, image: false })
    }

    /// An image's root, given as `option` (`--root`, `--out`) of `command`. `create`: make the
    /// directory when it does not exist yet (an output directory). Refused when it is this
    /// system's `/` however it is spelled (`/etc/..`, a symlink to `/`): an image option must
    /// never turn into a change of the running system.
    pub fn image(path: &Path, option: &str, command: &str, create: bool) -> anyhow::Result<Root> {
        let open = || nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty());
        let fd = match open() {
            Err(Errno::ENOENT) if create => {
                make_dirs(path)?;
                open()
            }
            other => other,
        }
        .with_context(|| format!("cannot open {option} {}", path.display()))?;
        // Asked of the descriptor itself, not of the path: what is held is what was checked.
        let held = fstat(fd.as_fd()).with_context(|| format!("cannot stat {}", path.display()))?;
        let system = stat("/").context("cannot stat /")?;
        if (held.st_dev, held.st_ino) == (system.st_dev, system.st_ino) {
            bail!(
                "{option} {} is this system's root (/): {option} is for an image; for the running system use `multihome {command}` without {option}",
                path.display()
            );
        }
        Ok(Root { path: path.to_path_buf(), fd, image: true })
    }

    /// As the user named it, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` under the root, for messages.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    pub fn is_system(&self) -> bool {
        !self.image
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens `rel` (relative to the root) for a write or a removal: under an image, through no
    /// symlink and never out of the root. An empty `rel` is the root itself.
    pub fn open(&self, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
        let resolve = if self.image { ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS } else { ResolveFlag::empty() };
        let how = OpenHow::new().flags(flags | OFlag::O_CLOEXEC).mode(Mode::from_bits_truncate(0)).resolve(resolve);
        openat2(self.fd.as_fd(), rel, how)
    }

    /// Opens the directory `rel`, for listing and for `*at` calls on its entries; `Ok(None)` when
    /// it does not exist. A symlink on the way under an image root is an error naming it.
    pub fn dir(&self, rel: &Path) -> anyhow::Result<Option<OwnedFd>> {
        match self.open(rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
            Err(e) => Err(self.refusal(rel, e)),
        }
    }

    /// Opens the directory `rel`, making it and the directories above it as needed (mode 0755),
    /// each step through no symlink under an image root.
    pub fn make_dir(&self, rel: &Path) -> anyhow::Result<OwnedFd> {
        let mut at = PathBuf::new();
        let mut fd = self.open(&at, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(|e| self.refusal(&at, e))?;
        for part in rel.components() {
            let name = part.as_os_str();
            let made = match mkdirat(fd.as_fd(), name, Mode::from_bits_truncate(DIR_MODE)) {
                Ok(()) => true,
                Err(Errno::EEXIST) => false,
                Err(e) => return Err(e).with_context(|| format!("cannot create {}", self.join(at.join(name)).display())),
            };
            at.push(name);
            fd = self.open(&at, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(|e| self.refusal(&at, e))?;
            // The umask masks mkdir's mode (umask 077 makes drwx------), so a directory made here
            // gets its mode again; one that existed keeps its own: it is the administrator's.
            if made {
                fchmod(&fd, Mode::from_bits_truncate(DIR_MODE)).with_context(|| format!("cannot set the mode of {}", self.join(&at).display()))?;
            }
        }
        Ok(fd)
    }

    /// The error for `rel` that could not be opened: a symlink on the way (under an image root)
    /// is named as such.
    pub fn refusal(&self, rel: &Path, e: Errno) -> anyhow::Error {
        if let Some(link) = self.first_symlink(rel) {
            return anyhow::anyhow!(
                "{} is a symlink; under --root/--out multihome writes and removes only through real directories, so nothing outside the root is touched",
                self.join(link).display()
            );
        }
        anyhow::Error::new(e).context(format!("cannot open {}", self.join(rel).display()))
    }

    /// Under an image root, the first component of `rel` that is a symlink (for messages; the
    /// refusal itself is the kernel's, in [`Root::open`]).
    fn first_symlink(&self, rel: &Path) -> Option<PathBuf> {
        if !self.image {
            return None;
        }
        let mut at = PathBuf::new();
        for part in rel.components() {
            at.push(part);
            let st = nix::sys::stat::fstatat(self.fd.as_fd(), &at, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
            if nix::sys::stat::SFlag::from_bits_truncate(st.st_mode) & nix::sys::stat::SFlag::S_IFMT == nix::sys::stat::SFlag::S_IFLNK {
                return Some(at);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mh-root-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_system_root_is_refused_as_an_image_however_it_is_spelled() {
        let dir = scratch("slash");
        std::os::unix::fs::symlink("/", dir.join("to-root")).unwrap();
        for spelled in [Path::new("/"), Path::new("/etc/.."), &dir.join("to-root")] {
            let e = Root::image(spelled, "--root", "apply", false).unwrap_err().to_string();
            assert!(e.contains("is this system's root") && e.contains("`multihome apply` without --root"), "{spelled:?}: {e}");
        }
        assert!(Root::image(&dir, "--root", "apply", false).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_symlink_at_any_depth_is_refused_and_named() {
        let dir = scratch("depth");
        let outside = scratch("depth-outside");
        std::fs::create_dir_all(dir.join("etc/systemd")).unwrap();
        std::fs::create_dir_all(outside.join("network")).unwrap();
        std::os::unix::fs::symlink(outside.join("network"), dir.join("etc/systemd/network")).unwrap();
        let root = Root::image(&dir, "--root", "reset", false).unwrap();
        let e = root.dir(Path::new("etc/systemd/network")).unwrap_err().to_string();
        assert!(e.contains("etc/systemd/network is a symlink"), "{e}");
        let e = root.make_dir(Path::new("etc/systemd/network/x.network.d")).unwrap_err().to_string();
        assert!(e.contains("etc/systemd/network is a symlink"), "{e}");
        assert!(std::fs::read_dir(outside.join("network")).unwrap().next().is_none(), "nothing was made outside the root");
        // A missing directory is no error.
        assert!(root.dir(Path::new("etc/sysctl.d")).unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&outside);
    }
}
