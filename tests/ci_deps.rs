//! The README's two commands (issue 21): `bash .ci/deps` installs what the main job (`multihome
//! lab`) runs and nothing of the tests' tools; `bash .ci/deps --tests` installs those on top.
//! .ci/deps runs here against a machine on which nothing is installed: `dpkg`, `dpkg-query`,
//! `apt-get` and `apt-cache` earlier in PATH answer "not installed" and record what .ci/deps asks
//! apt-get to install, and install nothing. (The real install is what `.ci/run` does first.)

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// The packages `.ci/deps ARGS` asks apt-get to install on a machine that has none of them.
fn asked_to_install(args: &[&str]) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("multihome-ci-deps-{}-{}", std::process::id(), args.len()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let log = dir.join("apt-get.log");
    let tools = [
        // Nothing is installed, but qemu-system-x86 (so the suite of qemu-utils is not looked up:
        // that needs the real archive).
        ("dpkg", "#!/bin/sh\n[ \"$1\" = -s ] && [ \"$2\" = qemu-system-x86 ] && exit 0\nexit 1\n".to_string()),
        ("dpkg-query", "#!/bin/sh\nexit 1\n".to_string()),
        ("apt-cache", "#!/bin/sh\nexit 0\n".to_string()),
        ("apt-get", format!("#!/bin/sh\n[ \"$1\" = install ] && shift && echo \"$@\" >>'{}'\nexit 0\n", log.display())),
    ];
    for (name, script) in tools {
        let path = dir.join(name);
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let deps = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/deps");
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash").arg(&deps).args(args).env("PATH", path).output().unwrap();
    assert!(out.status.success(), ".ci/deps {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    let asked = fs::read_to_string(&log).unwrap_or_default();
    let _ = fs::remove_dir_all(&dir);
    asked.split_whitespace().filter(|w| !w.starts_with('-')).map(str::to_owned).collect()
}

const LAB: [&str; 5] = ["network-manager", "networkd-dispatcher", "dnsmasq-base", "iproute2", "systemd"];
const TESTS_ONLY: [&str; 7] = ["qemu-utils", "debootstrap", "lintian", "dpkg-dev", "busybox-static", "polkitd", "prometheus"];

#[test]
fn the_main_job_installs_the_lab_and_no_test_tool() {
    let asked = asked_to_install(&[]);
    for p in LAB {
        assert!(asked.iter().any(|a| a == p), "`bash .ci/deps` does not install {p}: {asked:?}");
    }
    for p in TESTS_ONLY {
        assert!(!asked.iter().any(|a| a.starts_with(p)), "`bash .ci/deps` installs the tests' {p}: {asked:?}");
    }
}

#[test]
fn the_tests_install_their_tools_on_top() {
    let asked = asked_to_install(&["--tests"]);
    for p in LAB.iter().chain(&TESTS_ONLY) {
        assert!(asked.iter().any(|a| a == p), "`bash .ci/deps --tests` does not install {p}: {asked:?}");
    }
}

#[test]
fn an_unknown_flag_is_refused() {
    let deps = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/deps");
    let out = Command::new("bash").arg(&deps).arg("--test").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The README's first two commands are these two, as a reader on a fresh machine copies them:
/// `.ci/deps` for the main job, then `.ci/deps --tests` for the tests (issue 24 moved the rest
/// of the README to docs/; these stay its front door).
#[test]
fn the_readme_opens_with_the_two_commands() {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let block = readme.split_once("```sh\n").expect("README has a ```sh block").1.split_once("```").unwrap().0;
    let commands: Vec<&str> = block.lines().map(|l| l.split_once('#').map_or(l, |(c, _)| c).trim()).collect();
    assert_eq!(commands, ["bash .ci/deps && cargo run --release -- lab", "bash .ci/deps --tests && cargo test --locked"]);
}
