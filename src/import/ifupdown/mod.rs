//! `multihome import ifupdown`: the seed's own format, /etc/network/interfaces, as a policy.
//!
//! [`read`] follows `source`/`source-directory` in ifupdown's order through a [`Files`] (the
//! command line gives the real file system, tests a map), [`parse`] reads each file, and
//! [`convert`] turns the stanzas into policy text and a note for every line it did not carry
//! over. Nothing here writes, runs a command or touches the network.

pub mod convert;
pub mod parse;

use std::io;
use std::path::{Path, PathBuf};

pub use convert::{Import, Note, convert};
pub use parse::{Error, Item, Line};

/// Where the import reads from when no file is given: ifupdown's own.
pub const DEFAULT_PATH: &str = "/etc/network/interfaces";

/// Nested `source` deeper than this is taken for a loop ifupdown would not finish either.
const MAX_DEPTH: usize = 16;

/// The reading the import needs, and nothing else.
pub trait Files {
    fn read(&self, path: &Path) -> io::Result<String>;
    /// The names in a directory, each with whether it is a directory itself.
    fn list(&self, dir: &Path) -> io::Result<Vec<(String, bool)>>;
}

/// The real file system, for the command line.
pub struct FileSystem;

impl Files for FileSystem {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<(String, bool)>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            // Followed like ifupdown's open() would: a symlink to a directory is a directory.
            let is_dir = std::fs::metadata(entry.path()).map(|m| m.is_dir()).unwrap_or(false);
            names.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
        }
        Ok(names)
    }
}

/// Every item of `path` and of the files it sources, with each directive replaced by the items
/// of the files it names, in place (ifupdown reads them where the directive stands). Returns the
/// items and the files read, in the order read.
pub fn read(path: &Path, files: &dyn Files) -> Result<(Vec<Item>, Vec<PathBuf>), Error> {
    let mut items = Vec::new();
    let mut read = Vec::new();
    let mut stack = Vec::new();
    read_into(path, None, files, &mut stack, &mut items, &mut read)?;
    Ok((items, read))
}

fn read_into(
    path: &Path,
    from: Option<&Line>,
    files: &dyn Files,
    stack: &mut Vec<PathBuf>,
    items: &mut Vec<Item>,
    read: &mut Vec<PathBuf>,
) -> Result<(), Error> {
    let name = path.display().to_string();
    let error = |message: String| match from {
        Some(line) => Error::at(line, message),
        None => Error { file: name.clone(), line: 0, message },
    };
    if stack.iter().any(|p| p == path) {
        return Err(error(format!("{name} sources itself again (a loop)")));
    }
    if stack.len() > MAX_DEPTH {
        return Err(error(format!("{name}: source directives nested more than {MAX_DEPTH} deep")));
    }
    let text = files.read(path).map_err(|e| error(format!("cannot read {name}: {e}")))?;
    let parsed = parse::parse(&name, &text)?;
    read.push(path.to_path_buf());
    stack.push(path.to_path_buf());
    // interfaces(5): a path without a leading slash is relative to the directory containing the
    // file in which the keyword is placed.
    let here = path.parent().unwrap_or(Path::new("/"));
    for item in parsed {
        match item {
            Item::Source { pattern, line } => {
                for found in expand(&here.join(&pattern), false, files) {
                    read_into(&found, Some(&line), files, stack, items, read)?;
                }
            }
            Item::SourceDirectory { dir, line } => {
                // interfaces(5): "In the directory path, shell wildcards may be used as well."
                for dir_path in expand(&here.join(&dir), true, files) {
                    let mut names: Vec<String> = files
                        .list(&dir_path)
                        .map_err(|e| Error::at(&line, format!("source-directory {dir}: cannot list {}: {e}", dir_path.display())))?
                        .into_iter()
                        .filter(|(n, is_dir)| !is_dir && parse::source_directory_takes(n))
                        .map(|(n, _)| n)
                        .collect();
                    names.sort();
                    for n in names {
                        read_into(&dir_path.join(n), Some(&line), files, stack, items, read)?;
                    }
                }
            }
            other => items.push(other),
        }
    }
    stack.pop();
    Ok(())
}

/// The files a `source` pattern names, sorted per component as a shell glob sorts; a pattern
/// without wildcards names its one file (whose absence is then an error when it is read), a glob
/// that matches nothing names none (as wordexp leaves ifupdown with nothing to read).
/// `dirs`: the pattern names directories (`source-directory`), so a glob matches only those.
fn expand(pattern: &Path, dirs: bool, files: &dyn Files) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    let components: Vec<_> = pattern.components().collect();
    for (i, component) in components.iter().enumerate() {
        let last = i + 1 == components.len();
        let text = component.as_os_str().to_string_lossy();
        if !parse::has_wildcard(&text) {
            found.iter_mut().for_each(|p| p.push(component));
            continue;
        }
        let mut next = Vec::new();
        for dir in &found {
            let Ok(mut names) = files.list(dir) else { continue };
            names.sort();
            for (name, is_dir) in names {
                if parse::glob_match(&text, &name) && (is_dir || (last && !dirs)) {
                    next.push(dir.join(name));
                }
            }
        }
        found = next;
    }
    found
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Files in memory: a path's text, and directories derived from the paths.
    struct Map(BTreeMap<PathBuf, String>);

    impl Files for Map {
        fn read(&self, path: &Path) -> io::Result<String> {
            self.0.get(path).cloned().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))
        }

        fn list(&self, dir: &Path) -> io::Result<Vec<(String, bool)>> {
            let mut names: Vec<(String, bool)> = Vec::new();
            for p in self.0.keys() {
                if let Ok(rest) = p.strip_prefix(dir) {
                    let mut parts = rest.components();
                    if let Some(first) = parts.next() {
                        let entry = (first.as_os_str().to_string_lossy().into_owned(), parts.next().is_some());
                        if !names.contains(&entry) {
                            names.push(entry);
                        }
                    }
                }
            }
            Ok(names)
        }
    }

    fn map(files: &[(&str, &str)]) -> Map {
        Map(files.iter().map(|(p, t)| (PathBuf::from(p), t.to_string())).collect())
    }

    fn names(items: &[Item]) -> Vec<String> {
        items.iter().filter_map(|i| if let Item::Iface(f) = i { Some(format!("{}@{}", f.name, f.line.at())) } else { None }).collect()
    }

    #[test]
    fn source_is_read_in_place_relative_to_the_file_and_sorted() {
        let files = map(&[
            ("/etc/network/interfaces", "iface lo inet loopback\nsource interfaces.d/*\niface eth0 inet dhcp\n"),
            ("/etc/network/interfaces.d/wlan1", "iface wlan1 inet dhcp\n"),
            ("/etc/network/interfaces.d/wlan0", "iface wlan0 inet dhcp\n"),
            ("/etc/network/interfaces.d/.hidden", "iface hidden inet dhcp\n"),
            ("/etc/network/other/eth9", "iface eth9 inet dhcp\n"),
        ]);
        let (items, read) = read(Path::new("/etc/network/interfaces"), &files).unwrap();
        assert_eq!(
            names(&items),
            [
                "lo@/etc/network/interfaces:1",
                "wlan0@/etc/network/interfaces.d/wlan0:1",
                "wlan1@/etc/network/interfaces.d/wlan1:1",
                "eth0@/etc/network/interfaces:3"
            ]
        );
        assert_eq!(read.len(), 3);
    }

    #[test]
    fn source_directory_reads_only_run_parts_names() {
        let files = map(&[
            ("/n/interfaces", "source-directory d\n"),
            ("/n/d/eth0", "iface eth0 inet dhcp\n"),
            ("/n/d/eth0.dpkg-old", "iface old inet dhcp\n"),
            ("/n/d/sub/x", "iface x inet dhcp\n"),
        ]);
        let (items, _) = read(Path::new("/n/interfaces"), &files).unwrap();
        assert_eq!(names(&items), ["eth0@/n/d/eth0:1"]);
    }

    #[test]
    fn source_directory_paths_may_hold_wildcards() {
        let files = map(&[("/n/interfaces", "source-directory /n/d*\n"), ("/n/d1/eth0", "iface eth0 inet dhcp\n"), ("/n/d2/wlan0", "iface wlan0 inet dhcp\n")]);
        let (items, _) = read(Path::new("/n/interfaces"), &files).unwrap();
        assert_eq!(names(&items), ["eth0@/n/d1/eth0:1", "wlan0@/n/d2/wlan0:1"]);
    }

    #[test]
    fn a_missing_source_or_a_loop_is_an_error_naming_the_directive() {
        let files = map(&[("/n/interfaces", "auto lo\nsource missing\n")]);
        let e = read(Path::new("/n/interfaces"), &files).unwrap_err();
        assert_eq!(e.to_string(), "/n/interfaces:2: cannot read /n/missing: No such file or directory");
        let files = map(&[("/n/interfaces", "source interfaces\n")]);
        let e = read(Path::new("/n/interfaces"), &files).unwrap_err();
        assert_eq!(e.to_string(), "/n/interfaces:1: /n/interfaces sources itself again (a loop)");
        let e = read(Path::new("/nothing"), &files).unwrap_err();
        assert_eq!(e.to_string(), "/nothing: cannot read /nothing: No such file or directory");
    }

    #[test]
    fn a_glob_that_matches_nothing_reads_nothing() {
        let files = map(&[("/n/interfaces", "source /n/interfaces.d/*\niface eth0 inet dhcp\n")]);
        let (items, _) = read(Path::new("/n/interfaces"), &files).unwrap();
        assert_eq!(names(&items), ["eth0@/n/interfaces:2"]);
    }
}
