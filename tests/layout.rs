//! One install layout (README, "Dispatcher hooks"): every file of the project that names where
//! multihome is installed names the same place, so a host set up from the README runs the hooks,
//! the unit and the lab with the one binary that is there.

use std::fs;
use std::path::{Path, PathBuf};

const BINARY: &str = "/usr/sbin/multihome";

/// The project's text files that ship or document an installed path.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            files(&path, out);
        } else if fs::read_to_string(&path).is_ok() {
            out.push(path);
        }
    }
}

#[test]
fn every_file_names_the_binary_in_usr_sbin() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = Vec::new();
    files(root, &mut all);
    let mut wrong = Vec::new();
    let mut right = 0;
    for path in &all {
        if path.ends_with("tests/layout.rs") {
            continue;
        }
        let text = fs::read_to_string(path).unwrap();
        for (n, line) in text.lines().enumerate() {
            for candidate in ["/usr/bin/multihome", "/usr/local/bin/multihome", "/usr/local/sbin/multihome", "/bin/multihome "] {
                if line.contains(candidate) {
                    wrong.push(format!("{}:{}: {}", path.strip_prefix(root).unwrap().display(), n + 1, line.trim()));
                }
            }
            right += line.matches(BINARY).count();
        }
    }
    assert!(wrong.is_empty(), "files that name another place than {BINARY}:\n{}", wrong.join("\n"));
    // The unit, both hooks and the README name it: a check that found none would prove nothing.
    assert!(right >= 4, "only {right} mention(s) of {BINARY}");
}

#[test]
fn the_unit_runs_and_cleans_up_with_the_installed_binary() {
    let unit = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("networkd-units/multihome.service")).unwrap();
    let exec: Vec<&str> = unit.lines().filter(|l| l.starts_with("Exec") && !l.starts_with("ExecReload")).collect();
    assert_eq!(exec, [&format!("ExecStart={BINARY} daemon") as &str, &format!("ExecStopPost={BINARY} daemon --cleanup")]);
}
