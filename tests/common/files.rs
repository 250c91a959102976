//! Temporary directories and what a tree of files looks like, for tests that show a command
//! wrote (or did not write) something.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory of one test under cargo's target tmpdir, removed again when the test ends (also
/// when it fails). Named after the test crate, `name` and the process, so parallel tests and
/// crates never share one.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let krate = std::env::current_exe().ok().and_then(|e| e.file_stem().map(|s| s.to_string_lossy().into_owned())).unwrap_or_default();
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{krate}-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path under it.
    pub fn join(&self, path: impl AsRef<Path>) -> PathBuf {
        self.0.join(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One entry of a [`snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A file: contents, mode, inode and modification time (a rewrite with the same text still
    /// changes the last two).
    File {
        contents: String,
        mode: u32,
        inode: u64,
        mtime: (i64, i64),
    },
    Symlink(PathBuf),
    Dir,
}

/// Every entry under `dir` (not following symlinks), by path relative to it: any write,
/// removal, rewrite or new directory shows. Empty when `dir` does not exist.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(base).unwrap().to_path_buf();
            if meta.file_type().is_symlink() {
                out.insert(rel, Entry::Symlink(fs::read_link(&path).unwrap()));
            } else if meta.is_dir() {
                out.insert(rel, Entry::Dir);
                walk(&path, base, out);
            } else {
                let contents = String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned();
                let entry = Entry::File { contents, mode: meta.permissions().mode() & 0o7777, inode: meta.ino(), mtime: (meta.mtime(), meta.mtime_nsec()) };
                out.insert(rel, entry);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The files (not directories) of a snapshot.
pub fn file_paths(snapshot: &BTreeMap<PathBuf, Entry>) -> Vec<&PathBuf> {
    snapshot.iter().filter(|(_, e)| **e != Entry::Dir).map(|(p, _)| p).collect()
}

/// Every file under `dir` (following no symlinks), relative to it, sorted.
pub fn list(dir: &Path) -> Vec<String> {
    file_paths(&snapshot(dir)).into_iter().map(|p| p.display().to_string()).collect()
}
