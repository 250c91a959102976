//! The survey: which .network files and drop-ins networkd would read under a root, read into a
//! plain value ([`NetworkFiles`]) so that deciding where the policy goes stays a pure function
//! (`placement`). This module is the only one here that reads the administrator's files.
//!
//! networkd's rules (systemd 252, conf_files_list): .network files from its directories, one per
//! file name, the earlier directory winning (/etc over /run over /usr/local/lib over /usr/lib
//! over /lib), sorted by file name; a file that is empty or a symlink to /dev/null masks that
//! name. Drop-ins for `NAME.network` are the `*.conf` files in `NAME.network.d/` of any of those
//! directories, merged the same way and read after the file in name order.
//!
//! The files are hostile input. Every path is opened with openat2(RESOLVE_IN_ROOT), so a symlink
//! (an absolute `/lib -> /usr/lib` in an image included) resolves inside the root and never out
//! of it; only regular files are read, at most [`MAX_FILE_SIZE`] bytes; a file that is not UTF-8
//! is an error that names it.

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2, readlinkat};
use nix::sys::stat::{SFlag, fstat};

use crate::backend::{Root, files};
use crate::policy::unit_file::{Section, parse_as_networkd};

/// networkd's search path for .network files, relative to the root, most important first.
pub const SEARCH_DIRS: [&str; 5] =
    ["etc/systemd/network", "run/systemd/network", "usr/local/lib/systemd/network", "usr/lib/systemd/network", "lib/systemd/network"];

/// Larger files are refused: a .network file is a few hundred bytes.
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// What networkd would read under a root: the .network files in its order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkFiles {
    pub files: Vec<NetworkFile>,
}

/// One .network file as networkd sees it, with its drop-ins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkFile {
    /// As the host names it: `/etc/systemd/network/20-wired.network`.
    pub path: String,
    pub name: String,
    /// Carries multihome's marker (a 10-multihome-*.network of an earlier apply).
    pub ours: bool,
    /// Empty or a symlink to /dev/null: networkd skips the name.
    pub masked: bool,
    pub sections: Vec<Section>,
    /// In the order networkd reads them, masked ones left out.
    pub dropins: Vec<DropIn>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropIn {
    pub path: String,
    pub name: String,
    pub ours: bool,
    pub sections: Vec<Section>,
}

/// One file found under a search directory, before networkd's merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Index into [`SEARCH_DIRS`]: lower wins for the same name.
    pub dir: usize,
    /// `None` for a main .network file; the .network file's name for one of its drop-ins.
    pub dropin_of: Option<String>,
    pub name: String,
    /// `None`: masked (empty, or a symlink to /dev/null).
    pub text: Option<String>,
}

impl NetworkFiles {
    /// networkd's merge of what was found: one file per name, the earliest directory winning,
    /// sorted by name, each with its drop-ins. Pure, so tests can give files as text.
    pub fn assemble(found: &[Found]) -> NetworkFiles {
        let winner = |dropin_of: Option<&str>, name: &str| found.iter().filter(|f| f.dropin_of.as_deref() == dropin_of && f.name == name).min_by_key(|f| f.dir);
        let path = |f: &Found| match &f.dropin_of {
            None => format!("/{}/{}", SEARCH_DIRS[f.dir], f.name),
            Some(of) => format!("/{}/{of}.d/{}", SEARCH_DIRS[f.dir], f.name),
        };
        let mut names: Vec<&str> = found.iter().filter(|f| f.dropin_of.is_none()).map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let files = names
            .into_iter()
            .filter_map(|name| winner(None, name))
            .map(|main| {
                let mut dropin_names: Vec<&str> =
                    found.iter().filter(|f| f.dropin_of.as_deref() == Some(main.name.as_str())).map(|f| f.name.as_str()).collect();
                dropin_names.sort_unstable();
                dropin_names.dedup();
                let dropins = dropin_names
                    .into_iter()
                    .filter_map(|n| winner(Some(&main.name), n))
                    .filter_map(|d| {
                        let text = d.text.as_deref()?;
                        Some(DropIn { path: path(d), name: d.name.clone(), ours: files::is_ours(text), sections: parse_as_networkd(text) })
                    })
                    .collect();
                let text = main.text.as_deref().unwrap_or("");
                NetworkFile {
                    path: path(main),
                    name: main.name.clone(),
                    ours: files::is_ours(text),
                    masked: main.text.is_none(),
                    sections: parse_as_networkd(text),
                    dropins,
                }
            })
            .collect();
        NetworkFiles { files }
    }

    /// The .network file networkd knows by this path (as the host names it).
    pub fn by_path(&self, path: &str) -> Option<&NetworkFile> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// Reads what networkd would read under `root`, through the root's held descriptor: symlinks
/// resolve as in the image itself, never out of it.
pub fn read(root: &Root) -> anyhow::Result<NetworkFiles> {
    let (root_fd, root) = (root.fd(), root.path());
    let mut found = Vec::new();
    for (index, dir) in SEARCH_DIRS.iter().enumerate() {
        for name in list(root_fd, root, dir, ".network")? {
            let rel = format!("{dir}/{name}");
            if let Some(text) = read_file(root_fd, root, &rel)? {
                found.push(Found { dir: index, dropin_of: None, name, text });
            }
        }
    }
    let mains: Vec<String> = found.iter().map(|f| f.name.clone()).collect();
    for main in mains {
        for (index, dir) in SEARCH_DIRS.iter().enumerate() {
            let dropin_dir = format!("{dir}/{main}.d");
            for name in list(root_fd, root, &dropin_dir, ".conf")? {
                let rel = format!("{dropin_dir}/{name}");
                if let Some(text) = read_file(root_fd, root, &rel)? {
                    found.push(Found { dir: index, dropin_of: Some(main.clone()), name, text });
                }
            }
        }
    }
    Ok(NetworkFiles::assemble(&found))
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

fn open_in_root(root_fd: BorrowedFd<'_>, rel: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    openat2(root_fd, rel, how(flags))
}

/// The names in `rel` (a directory under the root) that networkd would consider: not hidden,
/// not a backup, ending in `suffix`. A missing directory is an empty one.
fn list(root_fd: BorrowedFd<'_>, root: &Path, rel: &str, suffix: &str) -> anyhow::Result<Vec<String>> {
    let dir = match open_in_root(root_fd, rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(Vec::new()),
        Err(Errno::ENOSYS) => bail!("this kernel lacks openat2 (Linux 5.6), which multihome needs to read networkd's files safely"),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot open {}", root.join(rel).display()));
        }
    };
    // The directory as opened (inside the root), listed through its descriptor.
    let entries = fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())).with_context(|| format!("cannot list {}", root.join(rel).display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", root.join(rel).display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            // A name that is not UTF-8 cannot be a file an administrator means; it could only
            // be named lossily in a message, so it is refused outright.
            if name.as_bytes().ends_with(suffix.as_bytes()) {
                bail!("{} holds a file whose name is not UTF-8 ({}); rename or remove it", root.join(rel).display(), name.to_string_lossy());
            }
            continue;
        };
        if name.starts_with('.') || name.ends_with('~') || !name.ends_with(suffix) || name.len() == suffix.len() {
            continue;
        }
        names.push(name.to_string());
    }
    names.sort();
    Ok(names)
}

/// One file's text: `Ok(None)` when networkd would skip it (a directory, a dangling symlink),
/// `Ok(Some(None))` when it is masked.
fn read_file(root_fd: BorrowedFd<'_>, root: &Path, rel: &str) -> anyhow::Result<Option<Option<String>>> {
    let shown = || root.join(rel).display().to_string();
    let (parent, name) = rel.rsplit_once('/').expect("a path under a search directory");
    if let Ok(parent_fd) = open_in_root(root_fd, parent, OFlag::O_PATH | OFlag::O_DIRECTORY)
        && let Ok(target) = readlinkat(parent_fd.as_fd(), name)
        && target == OsStr::new("/dev/null")
    {
        return Ok(Some(None));
    }
    let path_fd = match open_in_root(root_fd, rel, OFlag::O_PATH) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", shown())),
    };
    let st = fstat(path_fd.as_fd()).with_context(|| format!("cannot stat {}", shown()))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind == SFlag::S_IFDIR {
        return Ok(None);
    }
    if kind == SFlag::S_IFCHR && st.st_rdev == nix::sys::stat::makedev(1, 3) {
        return Ok(Some(None));
    }
    if kind != SFlag::S_IFREG {
        bail!("{} is not a regular file; multihome reads only regular files among networkd's", shown());
    }
    if st.st_size as u64 > MAX_FILE_SIZE {
        bail!("{} is {} bytes, more than the {MAX_FILE_SIZE} multihome reads of a networkd file", shown(), st.st_size);
    }
    if st.st_size == 0 {
        return Ok(Some(None));
    }
    // Opened again to read: O_PATH cannot read, and the O_PATH open did not touch a device. The
    // same inode, or the file changed in between.
    let fd = open_in_root(root_fd, rel, OFlag::O_RDONLY | OFlag::O_NOCTTY | OFlag::O_NONBLOCK).with_context(|| format!("cannot open {}", shown()))?;
    let again = fstat(fd.as_fd()).with_context(|| format!("cannot stat {}", shown()))?;
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
        bail!("{} changed while multihome read it; run it again", shown());
    }
    let mut bytes = Vec::new();
    fs::File::from(fd).take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes).with_context(|| format!("cannot read {}", shown()))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        bail!("{} is more than the {MAX_FILE_SIZE} bytes multihome reads of a networkd file", shown());
    }
    if bytes.is_empty() {
        return Ok(Some(None));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Some(Some(text))),
        Err(e) => bail!(
            "{} is not UTF-8 text (invalid byte at offset {}); multihome must read it to amend it, not guess: fix its encoding",
            shown(),
            e.utf8_error().valid_up_to()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(dir: usize, dropin_of: Option<&str>, name: &str, text: Option<&str>) -> Found {
        Found { dir, dropin_of: dropin_of.map(str::to_string), name: name.into(), text: text.map(str::to_string) }
    }

    #[test]
    fn one_file_per_name_the_earlier_directory_winning_sorted_by_name() {
        let all = [
            found(3, None, "20-wired.network", Some("[Match]\nName=eth0\n")),
            found(0, None, "20-wired.network", Some("[Match]\nName=eth1\n")),
            found(1, None, "10-netplan-wlan1.network", Some("[Match]\nName=wlan1\n")),
            found(0, None, "80-wifi-adhoc.network", None),
            found(3, None, "80-wifi-adhoc.network", Some("[Match]\nType=wlan\n")),
            found(3, Some("20-wired.network"), "50-mtu.conf", Some("[Link]\nMTUBytes=1400\n")),
            found(1, Some("20-wired.network"), "10-a.conf", Some("[Network]\nDNS=1.1.1.1\n")),
            found(0, Some("20-wired.network"), "50-mtu.conf", None),
        ];
        let files = NetworkFiles::assemble(&all);
        let names: Vec<_> = files.files.iter().map(|f| (f.path.as_str(), f.masked)).collect();
        assert_eq!(
            names,
            [
                ("/run/systemd/network/10-netplan-wlan1.network", false),
                ("/etc/systemd/network/20-wired.network", false),
                ("/etc/systemd/network/80-wifi-adhoc.network", true),
            ]
        );
        let wired = &files.files[1];
        assert_eq!(wired.sections[0].entries[0].value, "eth1");
        // The /etc drop-in masks the /usr/lib one of the same name.
        let dropins: Vec<_> = wired.dropins.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(dropins, ["/run/systemd/network/20-wired.network.d/10-a.conf"]);
    }

    #[test]
    fn reads_inside_the_root_only() {
        let root = std::env::temp_dir().join(format!("multihome-survey-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let etc = root.join("etc/systemd/network");
        fs::create_dir_all(&etc).unwrap();
        fs::create_dir_all(root.join("usr/lib/systemd/network")).unwrap();
        fs::write(root.join("usr/lib/systemd/network/90-vendor.network"), "[Match]\nName=*\n").unwrap();
        // An absolute symlink resolves inside the root, as it would on the image's own system.
        std::os::unix::fs::symlink("/usr/lib", root.join("lib")).unwrap();
        std::os::unix::fs::symlink("/usr/lib/systemd/network/90-vendor.network", etc.join("30-link.network")).unwrap();
        std::os::unix::fs::symlink("/dev/null", etc.join("40-masked.network")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", etc.join("50-dangling.network")).unwrap();
        fs::write(etc.join(".hidden.network"), "[Match]\nName=x\n").unwrap();
        fs::write(etc.join("20-wired.network"), "[Match]\nName=eth0\n").unwrap();
        fs::create_dir_all(etc.join("20-wired.network.d")).unwrap();
        fs::write(etc.join("20-wired.network.d/60-multihome.conf"), files::marker("p", '#')).unwrap();
        let files = read(&Root::image(&root, "--root", "plan", false).unwrap()).unwrap();
        let seen: Vec<_> = files.files.iter().map(|f| (f.path.as_str(), f.masked, f.dropins.len())).collect();
        assert_eq!(
            seen,
            [
                ("/etc/systemd/network/20-wired.network", false, 1),
                ("/etc/systemd/network/30-link.network", false, 0),
                ("/etc/systemd/network/40-masked.network", true, 0),
                ("/usr/lib/systemd/network/90-vendor.network", false, 0),
            ]
        );
        assert!(files.files[0].dropins[0].ours);
        assert_eq!(files.files[1].sections[0].entries[0].value, "*");

        // Not UTF-8: an error naming the file.
        fs::write(etc.join("25-latin1.network"), b"[Match]\nName=caf\xe9\n").unwrap();
        let err = format!("{:#}", read(&Root::image(&root, "--root", "plan", false).unwrap()).unwrap_err());
        assert!(err.contains("25-latin1.network") && err.contains("not UTF-8"), "{err}");
        fs::remove_file(etc.join("25-latin1.network")).unwrap();

        // Not a regular file: refused.
        nix::unistd::mkfifo(&etc.join("26-fifo.network"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = format!("{:#}", read(&Root::image(&root, "--root", "plan", false).unwrap()).unwrap_err());
        assert!(err.contains("26-fifo.network") && err.contains("not a regular file"), "{err}");
        fs::remove_file(etc.join("26-fifo.network")).unwrap();

        // Too big: refused.
        fs::write(etc.join("27-big.network"), vec![b'#'; MAX_FILE_SIZE as usize + 1]).unwrap();
        let err = format!("{:#}", read(&Root::image(&root, "--root", "plan", false).unwrap()).unwrap_err());
        assert!(err.contains("27-big.network") && err.contains("bytes"), "{err}");
        let _ = fs::remove_dir_all(&root);
    }
}
