//! The Debian package (docs/package.md; README, "Install"), as `cargo deb --locked` writes it to
//! `target/debian/multihome_<version>_<arch>.deb` (.ci/run builds it before the tests), inspected
//! with the real tools and without installing it or needing a running systemd:
//!
//! - every file at the one install layout (tests/layout.rs), with its mode, owned by root, and
//!   nothing else; the shipped files are the repository's (man pages gzipped);
//! - the binary is this version, built from this command line, and checks the example policy;
//! - the unit, both kinds of hooks and the man page run /usr/sbin/multihome;
//! - the control fields, one conffile (the event hooks' README, the only thing in /etc);
//! - the maintainer scripts, run against stand-ins for deb-systemd-helper, deb-systemd-invoke
//!   and systemctl: install enables the unit and starts nothing, an upgrade restarts only a
//!   running daemon, remove stops it, purge forgets the enablement and removes nothing else;
//! - lintian: no error and no warning;
//! - `systemd-analyze verify` of the unit, with the package's binary and man pages laid over
//!   /usr in a private mount namespace (read-only overlays; nothing of the machine changes).
//!
//! Without the .deb (or a tool) the test skips with the reason; with CI=true it fails instead.
//! A .deb older than the sources is stale: skipped outside CI, where it has to be rebuilt.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use common::files::TempDir;
use common::repo;
use common::tools::{have, unavailable};

#[allow(dead_code)]
mod common;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const BINARY: &str = "usr/sbin/multihome";
const UNIT: &str = "usr/lib/systemd/system/multihome.service";
/// The event hooks' directory comes with the package, holding its README (the one conffile).
const EVENTS_README: &str = "etc/multihome/events.d/README";

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}\n{}{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).unwrap()
}

/// Where cargo-deb wrote the package: `debian/` in the target directory this test was built in.
fn deb_path(arch: &str) -> PathBuf {
    let exe = Path::new(env!("CARGO_BIN_EXE_multihome"));
    let target = exe.parent().and_then(Path::parent).expect("the binary is in <target>/<profile>/");
    target.join("debian").join(format!("multihome_{VERSION}_{arch}.deb"))
}

/// The newest modification time of the files the package is made of.
fn newest_source() -> (SystemTime, PathBuf) {
    fn walk(path: &Path, newest: &mut (SystemTime, PathBuf)) {
        let meta = fs::metadata(path).unwrap();
        if meta.is_dir() {
            for entry in fs::read_dir(path).unwrap() {
                walk(&entry.unwrap().path(), newest);
            }
        } else if meta.modified().unwrap() > newest.0 {
            *newest = (meta.modified().unwrap(), path.to_path_buf());
        }
    }
    let mut newest = (SystemTime::UNIX_EPOCH, PathBuf::new());
    for p in [
        "Cargo.toml",
        "Cargo.lock",
        "README.md",
        "docs",
        "src",
        "man",
        "completions",
        "packaging",
        "dbus",
        "examples",
        "nm-dispatcher",
        "networkd-units",
        "polkit",
        "prometheus",
        "grafana",
    ] {
        walk(&repo(p), &mut newest);
    }
    newest
}

/// A file the package must hold.
struct Shipped {
    /// In the package, without the leading `/`.
    path: String,
    mode: u32,
    /// The repository's file it is (none for the binary), and whether it is shipped gzipped.
    source: Option<(String, bool)>,
}

/// The files the package must hold, and nothing else.
fn layout() -> Vec<Shipped> {
    let mut files = vec![
        Shipped { path: BINARY.to_string(), mode: 0o755, source: None },
        Shipped { path: UNIT.to_string(), mode: 0o644, source: Some(("networkd-units/multihome.service".into(), false)) },
        Shipped {
            path: "usr/lib/NetworkManager/dispatcher.d/90-multihome".to_string(),
            mode: 0o755,
            source: Some(("nm-dispatcher/90-multihome".into(), false)),
        },
        Shipped { path: "usr/share/dbus-1/system.d/org.multihome1.conf".to_string(), mode: 0o644, source: Some(("dbus/org.multihome1.conf".into(), false)) },
        Shipped {
            path: "usr/share/dbus-1/interfaces/org.multihome1.Daemon.xml".to_string(),
            mode: 0o644,
            source: Some(("dbus/org.multihome1.Daemon.xml".into(), false)),
        },
        Shipped {
            path: "usr/share/polkit-1/actions/org.multihome1.policy".to_string(),
            mode: 0o644,
            source: Some(("polkit/org.multihome1.policy".into(), false)),
        },
        Shipped {
            path: "usr/share/multihome/prometheus/multihome-rules.yml".to_string(),
            mode: 0o644,
            source: Some(("prometheus/multihome-rules.yml".into(), false)),
        },
        Shipped {
            path: "usr/share/multihome/grafana/multihome-dashboard.json".to_string(),
            mode: 0o644,
            source: Some(("grafana/multihome-dashboard.json".into(), false)),
        },
        Shipped { path: EVENTS_README.to_string(), mode: 0o644, source: Some(("packaging/events.d/README".into(), false)) },
        Shipped { path: "usr/lib/systemd/catalog/multihome.catalog".to_string(), mode: 0o644, source: Some(("packaging/multihome.catalog".into(), false)) },
        Shipped { path: "usr/share/doc/multihome/examples/seed.conf".to_string(), mode: 0o644, source: Some(("examples/seed.conf".into(), false)) },
        Shipped { path: "usr/share/doc/multihome/README.md".to_string(), mode: 0o644, source: Some(("README.md".into(), false)) },
        Shipped { path: "usr/share/doc/multihome/copyright".to_string(), mode: 0o644, source: Some(("packaging/copyright".into(), false)) },
        Shipped { path: "usr/share/doc/multihome/changelog.gz".to_string(), mode: 0o644, source: Some(("packaging/changelog".into(), true)) },
        Shipped { path: "usr/share/man/man8/multihome.8.gz".to_string(), mode: 0o644, source: Some(("man/multihome.8".into(), true)) },
        Shipped { path: "usr/share/man/man5/multihome.conf.5.gz".to_string(), mode: 0o644, source: Some(("man/multihome.conf.5".into(), true)) },
        Shipped {
            path: "usr/share/bash-completion/completions/multihome".to_string(),
            mode: 0o644,
            source: Some(("completions/multihome.bash".into(), false)),
        },
        Shipped { path: "usr/share/zsh/vendor-completions/_multihome".to_string(), mode: 0o644, source: Some(("completions/_multihome".into(), false)) },
        Shipped {
            path: "usr/share/fish/vendor_completions.d/multihome.fish".to_string(),
            mode: 0o644,
            source: Some(("completions/multihome.fish".into(), false)),
        },
    ];
    // One networkd-dispatcher hook per state directory of the repository.
    let mut states: Vec<String> =
        fs::read_dir(repo("networkd-units/networkd-dispatcher")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    states.sort();
    assert!(states.len() >= 4, "{states:?}");
    // The pages of docs/ beside the README, so that its links lead somewhere on the installed host.
    let mut pages: Vec<String> =
        fs::read_dir(repo("docs")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|name| name.ends_with(".md")).collect();
    pages.sort();
    assert!(pages.iter().any(|p| p == "policy.md"), "{pages:?}");
    for page in pages {
        files.push(Shipped { path: format!("usr/share/doc/multihome/docs/{page}"), mode: 0o644, source: Some((format!("docs/{page}"), false)) });
    }
    for state in states {
        let source = format!("networkd-units/networkd-dispatcher/{state}/90-multihome");
        files.push(Shipped { path: format!("usr/lib/networkd-dispatcher/{state}/90-multihome"), mode: 0o755, source: Some((source, false)) });
    }
    files
}

#[test]
fn the_readme_installs_this_versions_package() {
    let readme = fs::read_to_string(repo("README.md")).unwrap();
    let name = format!("target/debian/multihome_{VERSION}_");
    let install = readme.split_once("## Install").expect("README has \"## Install\"").1.split("\n## ").next().unwrap();
    assert!(install.contains(&name), "README's \"Install\" does not name {name}<arch>.deb");
    assert!(install.contains("cargo deb --locked"), "README's \"Install\" does not give the command that builds the package");
}

/// `-rwxr-xr-x` as 0o755 (no special bits expected anywhere in the package).
fn mode_of(perms: &str) -> u32 {
    perms[1..].chars().fold(0, |m, c| (m << 1) | u32::from(c != '-'))
}

#[test]
fn the_deb_holds_the_layout_and_its_scripts_enable_but_never_start_the_daemon() {
    if !have("dpkg-deb") {
        unavailable("dpkg-deb is not installed");
        return;
    }
    let arch = stdout(Command::new("dpkg").arg("--print-architecture")).trim().to_string();
    let deb = deb_path(&arch);
    let Ok(built) = fs::metadata(&deb).and_then(|m| m.modified()) else {
        unavailable(&format!("{} does not exist; build it with `cargo deb --locked` (README, \"Install\")", deb.display()));
        return;
    };
    let (newest, source) = newest_source();
    if newest > built && !unavailable(&format!("{} is older than {}; rebuild it with `cargo deb --locked`", deb.display(), source.display())) {
        return;
    }

    // What the package holds, as dpkg lists it: mode, owner, path.
    let listing = stdout(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for line in listing.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (perms, owner, path) = (fields[0], fields[1], fields[5].trim_start_matches("./").trim_end_matches('/'));
        assert_eq!(owner, "0/0", "{line}: every file of the package belongs to root");
        // In /etc only the event hooks' directory and its README (the policy is the administrator's).
        assert!(!path.starts_with("etc") || "etc/multihome/events.d/README".starts_with(path), "{line}: the package puts nothing else in /etc");
        match perms.chars().next() {
            Some('d') => assert_eq!(mode_of(perms), 0o755, "{line}"),
            Some('-') => {
                files.insert(path.to_string(), format!("{:o}", mode_of(perms)));
            }
            _ => panic!("{line}: only directories and regular files are expected"),
        }
    }
    let layout = layout();
    let expected: BTreeMap<String, String> = layout.iter().map(|f| (f.path.clone(), format!("{:o}", f.mode))).collect();
    assert_eq!(files, expected, "the package's files and modes (left) are not the layout (right)");

    let tmp = TempDir::new("deb");
    let tree = tmp.join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree));
    for Shipped { path, source, .. } in &layout {
        let Some((source, gz)) = source else { continue };
        let shipped = if *gz { run(Command::new("gzip").arg("-dc").arg(tree.join(path))).stdout } else { fs::read(tree.join(path)).unwrap() };
        assert!(shipped == fs::read(repo(source)).unwrap(), "{path} is not {source} of the repository");
    }

    // The binary: this version, from this command line, and it works.
    let binary = tree.join(BINARY);
    assert_eq!(stdout(Command::new(&binary).arg("--version")), format!("multihome {VERSION}\n"));
    let plan = stdout(Command::new(&binary).args(["-c", "examples/seed.conf", "check"]).current_dir(repo("")));
    assert_eq!(plan, stdout(Command::new(env!("CARGO_BIN_EXE_multihome")).args(["-c", "examples/seed.conf", "check"]).current_dir(repo(""))));
    let docs = tmp.join("docs");
    run(Command::new(&binary).arg("generate-docs").arg(&docs));
    for path in std::iter::once(multihome::docs::MAN_PAGE).chain(multihome::docs::COMPLETIONS.iter().map(|(_, p)| *p)) {
        assert!(
            fs::read(docs.join(path)).unwrap() == fs::read(repo(path)).unwrap(),
            "the packaged binary's {path} is not the repository's: built from another command line"
        );
    }

    // Everything that runs multihome runs the one binary the package installs.
    let unit = fs::read_to_string(tree.join(UNIT)).unwrap();
    assert!(unit.lines().any(|l| l == "ExecStart=/usr/sbin/multihome daemon"), "{unit}");
    assert!(unit.lines().any(|l| l == "ExecStopPost=/usr/sbin/multihome daemon --cleanup"), "{unit}");
    assert!(unit.lines().any(|l| l == "ConditionPathExists=/etc/multihome/multihome.conf"), "the daemon must not start without a policy:\n{unit}");
    for path in layout.iter().map(|f| &f.path).filter(|p| p.contains("dispatcher")) {
        let hook = fs::read_to_string(tree.join(path)).unwrap();
        let exec: Vec<&str> = hook.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(matches!(exec[..], ["exec /usr/sbin/multihome dispatch -- \"$@\""] | ["exec /usr/sbin/multihome dispatch"]), "{path}:\n{hook}");
    }
    assert!(fs::read_to_string(repo(multihome::docs::MAN_PAGE)).unwrap().contains("/usr/sbin/multihome"));

    // The control fields.
    let info = tmp.join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&info));
    let control = fs::read_to_string(info.join("control")).unwrap();
    let field =
        |name: &str| control.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).unwrap_or_else(|| panic!("no {name}: in\n{control}")).to_string();
    assert_eq!(field("Package"), "multihome");
    assert_eq!(field("Version"), VERSION);
    assert_eq!(field("Architecture"), arch);
    assert_eq!(field("Section"), "net");
    assert_eq!(field("Priority"), "optional");
    let depends = field("Depends");
    for needed in ["iproute2", "dbus", "libc6"] {
        assert!(depends.split(", ").any(|d| d.split_whitespace().next() == Some(needed)), "Depends: {depends} lacks {needed}");
    }
    assert_eq!(field("Recommends"), "network-manager | systemd");
    assert_eq!(field("Suggests"), "networkd-dispatcher");
    let mut control_files: Vec<String> = fs::read_dir(&info).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    control_files.sort();
    assert_eq!(control_files, ["conffiles", "control", "postinst", "postrm", "prerm"], "no preinst, no config");
    let conffiles = fs::read_to_string(info.join("conffiles")).unwrap();
    assert_eq!(conffiles.lines().collect::<Vec<_>>(), ["/etc/multihome/events.d/README"], "the one conffile: the event hooks' README");

    maintainer_scripts(&info, tmp.path());
    lintian(&deb);
    systemd_analyze_verify(&tree);
}

/// Runs the maintainer scripts as dpkg would, with deb-systemd-helper, deb-systemd-invoke and
/// systemctl replaced by stand-ins that log their arguments, on a host with or without systemd
/// (a directory of the test in place of /run/systemd/system); returns the calls.
fn maintainer_scripts(info: &Path, tmp: &Path) {
    let stubs = tmp.join("stubs");
    fs::create_dir_all(&stubs).unwrap();
    let log = tmp.join("calls");
    for tool in ["deb-systemd-helper", "deb-systemd-invoke", "systemctl"] {
        let path = stubs.join(tool);
        fs::write(&path, format!("#!/bin/sh\necho \"{tool} $*\" >> {}\nexit 0\n", log.display())).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let systemd_dir = tmp.join("run-systemd-system");
    let run_script = |script: &str, args: &[&str], systemd: bool| -> Vec<String> {
        let text = fs::read_to_string(info.join(script)).unwrap();
        run(Command::new("sh").arg("-n").arg(info.join(script)));
        assert!(!text.split_whitespace().any(|w| w == "rm" || w == "mv"), "{script} removes or moves files itself:\n{text}");
        let text = text
            .replace("/run/systemd/system", &systemd_dir.display().to_string())
            .replace("/usr/bin/deb-systemd-helper", &stubs.join("deb-systemd-helper").display().to_string());
        let copy = tmp.join(format!("{script}.sh"));
        fs::write(&copy, text).unwrap();
        if systemd {
            fs::create_dir_all(&systemd_dir).unwrap();
        } else {
            let _ = fs::remove_dir(&systemd_dir);
        }
        let _ = fs::remove_file(&log);
        let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", stubs.display());
        run(Command::new("sh").arg(&copy).args(args).env("PATH", path));
        fs::read_to_string(&log).unwrap_or_default().lines().map(str::to_string).collect()
    };
    let invoked = |calls: &[String]| -> Vec<String> { calls.iter().filter(|c| c.starts_with("deb-systemd-invoke")).cloned().collect() };

    for systemd in [true, false] {
        // A first install: enabled, nothing started.
        let calls = run_script("postinst", &["configure"], systemd);
        assert!(calls.contains(&"deb-systemd-helper enable multihome.service".to_string()), "install does not enable the unit: {calls:?}");
        assert!(invoked(&calls).is_empty() && !calls.iter().any(|c| c.starts_with("systemctl") && c.contains("start")), "install starts something: {calls:?}");
        // An upgrade: the old daemon runs on until the new files are in, then only a running
        // daemon is restarted (try-restart), none is started.
        assert!(invoked(&run_script("prerm", &["upgrade", VERSION], systemd)).is_empty());
        let calls = invoked(&run_script("postinst", &["configure", "0.0.1"], systemd));
        assert_eq!(calls, if systemd { vec!["deb-systemd-invoke try-restart multihome.service".to_string()] } else { vec![] }, "upgrade");
        // Remove: the daemon stops (its ExecStopPost removes its routes), the unit is masked by
        // deb-systemd-helper until a reinstall or purge.
        let calls = invoked(&run_script("prerm", &["remove"], systemd));
        assert_eq!(calls, if systemd { vec!["deb-systemd-invoke stop multihome.service".to_string()] } else { vec![] }, "remove");
        let calls = run_script("postrm", &["remove"], systemd);
        assert!(calls.contains(&"deb-systemd-helper mask multihome.service".to_string()), "{calls:?}");
        // Purge: the enablement state goes; nothing else is touched.
        let calls = run_script("postrm", &["purge"], systemd);
        assert!(calls.contains(&"deb-systemd-helper purge multihome.service".to_string()), "{calls:?}");
        assert!(calls.iter().all(|c| c.starts_with("deb-systemd-helper") || c == "systemctl --system daemon-reload"), "purge: {calls:?}");
    }
}

fn lintian(deb: &Path) {
    if !have("lintian") {
        unavailable("lintian is not installed (apt-get install lintian)");
        return;
    }
    let out = Command::new("lintian").args(["--fail-on", "error,warning", "--display-info"]).arg(deb).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("lintian:\n{report}");
    assert!(out.status.success(), "lintian reports errors or warnings:\n{report}{}", String::from_utf8_lossy(&out.stderr));
}

/// `systemd-analyze verify` resolves ExecStart= and Documentation=man:... on this machine: so the
/// package's binary and man pages are laid over /usr/sbin and the man directories by read-only
/// overlays, in a mount namespace of their own that ends with the command.
fn systemd_analyze_verify(tree: &Path) {
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n");
    if !is_root || !have("unshare") || !have("systemd-analyze") {
        unavailable("systemd-analyze verify needs root, unshare and systemd-analyze");
        return;
    }
    let mut script = String::from("set -e; mount --make-rprivate /; ");
    let mut man = "yes";
    for dir in ["usr/sbin", "usr/share/man/man8", "usr/share/man/man5"] {
        if Path::new("/").join(dir).is_dir() {
            script += &format!("mount -t overlay overlay -o lowerdir={}:/{dir} /{dir}; ", tree.join(dir).display());
        } else {
            // Without man pages on this machine there is nothing to lay them over.
            man = "no";
        }
    }
    script += &format!("exec systemd-analyze verify --man={man} {}", tree.join(UNIT).display());
    let out = Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify {UNIT}: {}\n{said}", out.status);
}
