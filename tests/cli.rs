//! The command line's promises about files, checked on the real binary: an invalid policy exits
//! with 4 and writes nothing; `render --out DIR` is idempotent, never overwrites a file it did not
//! write, and removes only its own stale files; `init --write` never replaces a policy.
//!
//! Nothing here touches the running system: every command either fails validation or writes
//! under a directory of its own in Cargo's target temp dir (`apply` is left to the lab, because
//! it also sets live sysctls).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use multihome::backend::files::MARKER;
use multihome::backend::networkd;
use multihome::{plan, policy};

use common::files::{Entry, TempDir, file_paths, snapshot};
use common::policy::Policy;
use common::{golden_policy, multihome, text};

#[allow(dead_code)]
mod common;

const INVALID: &str = "[Uplink]\nInterface=eth0\nPriority=1\nAddress=192.168.178.99\nGateway=192.168.178.1\n";

#[test]
fn invalid_policy_exits_4_and_writes_nothing() {
    let tmp = TempDir::new("invalid");
    let policy = tmp.path().join("multihome.conf");
    fs::write(&policy, INVALID).unwrap();
    let policy = policy.display().to_string();
    let fresh_out = tmp.path().join("fresh-out");
    let existing_out = tmp.path().join("existing-out");
    fs::create_dir(&existing_out).unwrap();
    let before = snapshot(tmp.path());

    let runs: [Vec<&str>; 6] = [
        vec!["check"],
        vec!["check", "--json"],
        vec!["render"],
        vec!["render", "--backend", "networkd", "--out", fresh_out.to_str().unwrap()],
        vec!["render", "--out", existing_out.to_str().unwrap()],
        vec!["plan", "--backend", "networkd", "--root", existing_out.to_str().unwrap()],
    ];
    for args in runs {
        let mut full = vec!["-c", policy.as_str()];
        full.extend(&args);
        let out = multihome(&full);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "multihome {args:?}: want exit code 4 (invalid policy), stderr:\n{stderr}");
        assert!(out.stdout.is_empty(), "multihome {args:?} printed to stdout:\n{}", text(&out.stdout));
        assert!(
            stderr.contains(&format!("{policy}:4: Address=192.168.178.99: the prefix length is missing")),
            "multihome {args:?}: the diagnostic should name file, line, key and value:\n{stderr}"
        );
        assert!(!fresh_out.exists(), "multihome {args:?} created {}", fresh_out.display());
        assert_eq!(snapshot(tmp.path()), before, "multihome {args:?} changed files");
        assert_eq!(fs::read_dir(&existing_out).unwrap().count(), 0, "multihome {args:?} wrote into {}", existing_out.display());
    }
}

#[test]
fn render_out_writes_the_rendered_files_and_a_second_run_changes_nothing() {
    let tmp = TempDir::new("twice");
    let out_dir = tmp.path().join("out");
    let out_arg = out_dir.to_str().unwrap();
    let policy = golden_policy("seed");

    let first = multihome(&["-c", &policy, "render", "--out", out_arg]);
    assert!(first.status.success(), "first render failed:\n{}", text(&first.stderr));
    let written = snapshot(&out_dir);

    // Exactly what the renderer returns, with its modes.
    let plan = plan::plan(&policy::parse(&policy, &fs::read_to_string(&policy).unwrap()).unwrap());
    let rendered = networkd::render::render(&plan, &networkd::placement::alone(&plan));
    let want: BTreeMap<PathBuf, (String, u32)> = rendered.iter().map(|f| (f.path.clone(), (f.contents.clone(), f.mode))).collect();
    let got: BTreeMap<PathBuf, (String, u32)> = written
        .iter()
        .filter_map(|(p, e)| match e {
            Entry::File { contents, mode, .. } => Some((p.clone(), (contents.clone(), *mode))),
            _ => None,
        })
        .collect();
    assert_eq!(got, want);
    let stdout = text(&first.stdout);
    assert_eq!(stdout.lines().filter(|l| l.starts_with("wrote ")).count(), rendered.len(), "first run:\n{stdout}");

    let second = multihome(&["-c", &policy, "render", "--out", out_arg]);
    assert!(second.status.success(), "second render failed:\n{}", text(&second.stderr));
    let stdout = text(&second.stdout);
    assert_eq!(stdout.lines().count(), rendered.len(), "second run:\n{stdout}");
    assert!(stdout.lines().all(|l| l.starts_with("unchanged ")), "second run changed something:\n{stdout}");
    assert_eq!(snapshot(&out_dir), written, "the second run rewrote files");
}

#[test]
fn render_out_never_overwrites_a_file_without_the_marker() {
    let tmp = TempDir::new("foreign");
    let out_dir = tmp.path().join("out");
    let target = out_dir.join(networkd::names::NETWORK_DIR).join(networkd::names::network_file_name("wlan1"));
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    // By hand, under multihome's name, for another link (one for wlan1 would be amended instead).
    fs::write(&target, "# Written by hand.\n[Match]\nName=wlan9\n").unwrap();
    let before = snapshot(&out_dir);

    let run = multihome(&["-c", &golden_policy("seed"), "render", "--out", out_dir.to_str().unwrap()]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "want a refusal, stderr:\n{stderr}");
    assert!(
        stderr.contains(&target.display().to_string()) && stderr.contains("not written by multihome"),
        "the refusal should name the file and why:\n{stderr}"
    );
    // Refused before anything was written: not even the other uplinks' files.
    assert_eq!(snapshot(&out_dir), before);
}

#[test]
fn render_out_removes_its_own_stale_files_and_keeps_foreign_ones() {
    let tmp = TempDir::new("stale");
    let out_dir = tmp.path().join("out");
    let out_arg = out_dir.to_str().unwrap();
    let network_dir = out_dir.join(networkd::names::NETWORK_DIR);

    // The seed (three uplinks, with [Probe]) first ...
    let first = multihome(&["-c", &golden_policy("seed"), "render", "--out", out_arg]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    // ... beside an administrator's own files, one of them named like ours but without the marker.
    let foreign_lookalike = network_dir.join(networkd::names::network_file_name("lan9"));
    let foreign_plain = network_dir.join("20-wired.network");
    fs::write(&foreign_lookalike, "[Match]\nName=lan9\n").unwrap();
    fs::write(&foreign_plain, format!("# Not {MARKER}: the marker must open the file.\n[Match]\nName=eth9\n")).unwrap();
    let before = snapshot(&out_dir);

    // Then a policy with two uplinks and no [Probe].
    let policy_path = tmp.path().join("two.conf");
    fs::write(
        &policy_path,
        "[Uplink]\nInterface=eth0\nPriority=1\nAddress=192.168.178.99/24\nGateway=192.168.178.1\n\n\
         [Uplink]\nInterface=wlan1\nPriority=2\nAddress=192.168.178.98/24\nGateway=192.168.178.1\n",
    )
    .unwrap();
    let second = multihome(&["-c", policy_path.to_str().unwrap(), "render", "--out", out_arg]);
    let stdout = text(&second.stdout);
    assert!(second.status.success(), "{}", text(&second.stderr));
    let after = snapshot(&out_dir);

    let wlan0 = Path::new(networkd::names::NETWORK_DIR).join(networkd::names::network_file_name("wlan0"));
    // The networkd.conf.d drop-in stays: the daemon runs with any policy.
    let dropin = PathBuf::from(networkd::names::NETWORKD_CONF_FILE);
    assert!(after.contains_key(&dropin), "the networkd.conf.d drop-in went with [Probe]");
    let stale = &wlan0;
    assert!(before.contains_key(stale), "the seed should have rendered {}", stale.display());
    assert!(!after.contains_key(stale), "{} is stale and should be gone", stale.display());
    assert!(stdout.contains(&format!("removed {}", out_dir.join(stale).display())), "not reported as removed: {}\n{stdout}", stale.display());
    for foreign in [&foreign_lookalike, &foreign_plain] {
        let rel = foreign.strip_prefix(&out_dir).unwrap();
        assert_eq!(after.get(rel), before.get(rel), "{} is not multihome's and must stay as it was", rel.display());
    }
    assert_eq!(after.len(), before.len() - 1, "files before: {:?}\nafter: {:?}", before.keys(), after.keys());
}

/// A policy path that is not a small regular file is refused at once with a message: /dev/zero
/// does not exhaust memory, a FIFO does not hang `check` (or the daemon's reload).
#[test]
fn a_policy_that_is_endless_a_fifo_or_huge_is_refused_quickly() {
    let dir = TempDir::new("hostile-policy");
    let fifo = dir.path().join("fifo.conf");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let huge = dir.path().join("huge.conf");
    fs::write(&huge, "# padding\n".repeat(200_000)).unwrap();
    for (path, says) in [(Path::new("/dev/zero"), "not a regular file"), (fifo.as_path(), "not a regular file"), (huge.as_path(), "larger than 1024 KiB")] {
        let started = std::time::Instant::now();
        let out = multihome(&["-c", path.to_str().unwrap(), "check"]);
        assert_eq!(out.status.code(), Some(1), "{}: {}", path.display(), text(&out.stderr));
        assert!(text(&out.stderr).contains(says), "{}: {}", path.display(), text(&out.stderr));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{} took {:?}", path.display(), started.elapsed());
    }
}

/// `check --json` reads like the domain: a version, tables as the kernel's numbers, time spans in
/// milliseconds.
#[test]
fn check_json_has_a_version_table_numbers_and_milliseconds() {
    let out = multihome(&["-c", concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seed.conf"), "check", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let routes = &v["uplinks"][0]["routes"];
    assert_eq!(routes[0]["table"], 101, "{routes}");
    assert_eq!(routes[2]["table"], 254, "main: {routes}");
    assert_eq!(v["uplinks"][0]["rules"][0]["table"], 101);
    assert_eq!(v["probe"]["interval_ms"], 200);
    assert_eq!(v["probe"]["max_hold_time_ms"], 60000);
}

/// `plan --json` for an empty image root: every file created, each with its diff, the plan it
/// leads to beside; after `apply --root` the same command finds nothing to change.
#[test]
fn plan_json_lists_each_change_with_its_action_and_then_none() {
    let tmp = TempDir::new("plan-json");
    let root = tmp.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let root_arg = root.to_str().unwrap();
    let policy = golden_policy("seed");
    let plan_json = || {
        let out = multihome(&["-c", &policy, "plan", "--backend", "networkd", "--root", root_arg, "--json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let v = plan_json();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["backend"], "systemd-networkd");
    assert_eq!(v["plan"]["uplinks"][0]["rules"][0]["table"], 101);
    let changes = v["changes"].as_array().unwrap();
    assert!(changes.len() >= 4, "{v:#}");
    for c in changes {
        assert_eq!(c["action"], "create", "{c:#}");
        let subject = c["subject"].as_str().unwrap();
        assert!(subject.starts_with(root_arg), "{subject}");
        assert!(c["diff"].as_str().unwrap().contains("+++ "), "{c:#}");
    }
    assert!(changes.iter().any(|c| c["subject"].as_str().unwrap().ends_with("/etc/systemd/network/10-multihome-eth0.network")), "{v:#}");
    let applied = multihome(&["-c", &policy, "apply", "--backend", "networkd", "--root", root_arg]);
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    assert_eq!(plan_json()["changes"], serde_json::json!([]));
}

/// `reset --root` on an image: lists, then removes, exactly the files an apply wrote (and the
/// keyfiles `render --backend nm-keyfile` wrote), and keeps a file of the administrator's.
#[test]
fn reset_root_removes_only_what_multihome_wrote() {
    let tmp = TempDir::new("reset-root");
    let root = tmp.path().join("root");
    let root_arg = root.to_str().unwrap();
    let policy = golden_policy("seed");
    let admin = root.join("etc/systemd/network/90-admin.network");
    fs::create_dir_all(admin.parent().unwrap()).unwrap();
    fs::write(&admin, "[Match]\nName=en*\n").unwrap();
    let with_admin = snapshot(&root);
    assert!(multihome(&["-c", &policy, "apply", "--backend", "networkd", "--root", root_arg]).status.success());
    assert!(multihome(&["-c", &policy, "render", "--backend", "nm-keyfile", "--out", root_arg]).status.success());
    let written = snapshot(&root);
    assert!(written.len() > with_admin.len() + 4, "{written:#?}");

    let dry = multihome(&["reset", "--dry-run", "--root", root_arg]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let listed = text(&dry.stdout);
    for path in file_paths(&written).into_iter().filter(|p| !with_admin.contains_key(*p)) {
        assert!(listed.contains(&format!("--- {}", root.join(path).display())), "{} not listed:\n{listed}", path.display());
    }
    assert!(!listed.contains("90-admin"), "{listed}");
    assert_eq!(snapshot(&root), written, "--dry-run changed something");

    let done = multihome(&["reset", "--root", root_arg]);
    assert!(done.status.success(), "{}", text(&done.stderr));
    let left = snapshot(&root);
    assert_eq!(file_paths(&left), file_paths(&with_admin), "{}", text(&done.stdout));
    let again = multihome(&["reset", "--dry-run", "--root", root_arg]);
    assert_eq!(text(&again.stdout).trim(), "Nothing of multihome's is on this host.");
}

#[test]
fn render_out_amends_a_file_that_takes_an_uplink_and_follows_it() {
    let tmp = TempDir::new("amend");
    let out_dir = tmp.path().join("out");
    let out_arg = out_dir.to_str().unwrap();
    let policy = golden_policy("seed");
    let network_dir = out_dir.join(networkd::names::NETWORK_DIR);
    fs::create_dir_all(&network_dir).unwrap();
    let wired = network_dir.join("20-wired.network");
    fs::write(&wired, "[Match]\nName=eth0\n\n[Link]\nMTUBytes=1400\n").unwrap();
    let dropin = network_dir.join("20-wired.network.d/60-multihome.conf");
    let own = network_dir.join(networkd::names::network_file_name("eth0"));
    let seen_wired = |s: &BTreeMap<PathBuf, Entry>| s.get(wired.strip_prefix(&out_dir).unwrap()).cloned();
    let before = seen_wired(&snapshot(&out_dir));

    let first = multihome(&["-c", &policy, "render", "--out", out_arg]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(dropin.exists() && !own.exists(), "{}", text(&first.stdout));
    assert_eq!(seen_wired(&snapshot(&out_dir)), before, "the administrator's file must stay untouched");
    let written = snapshot(&out_dir);
    let again = multihome(&["-c", &policy, "render", "--out", out_arg]);
    assert!(text(&again.stdout).lines().all(|l| l.starts_with("unchanged ")), "{}", text(&again.stdout));
    assert_eq!(snapshot(&out_dir), written);

    // The file goes away: the drop-in (and its directory) follow, eth0 gets its own file.
    fs::remove_file(&wired).unwrap();
    let moved = multihome(&["-c", &policy, "render", "--out", out_arg]);
    assert!(moved.status.success(), "{}", text(&moved.stderr));
    let stdout = text(&moved.stdout);
    assert!(stdout.contains(&format!("removed {}", dropin.display())) && stdout.contains(&format!("wrote {}", own.display())), "{stdout}");
    assert!(!dropin.parent().unwrap().exists(), "the emptied drop-in directory should be gone");
}

/// Each exit code means one thing: a usage error is clap's 2, never the invalid policy's 4.
#[test]
fn a_usage_error_is_not_an_invalid_policy() {
    let out = multihome(&["apply", "--no-such-option"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = multihome(&["-c", "/nonexistent/multihome.conf", "check"]);
    assert_eq!(out.status.code(), Some(1), "a missing file is an error, not an invalid policy: {}", text(&out.stderr));
}

/// Every directory and file under `root` with its mode, by path relative to it.
fn modes(root: &Path) -> BTreeMap<PathBuf, (bool, u32)> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<PathBuf, (bool, u32)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            out.insert(path.strip_prefix(base).unwrap().to_path_buf(), (meta.is_dir(), meta.permissions().mode() & 0o7777));
            if meta.is_dir() {
                walk(&path, base, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// `multihome ARGS` under `umask`, set by the shell that then becomes multihome.
fn multihome_under_umask(umask: u32, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask:03o} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_multihome"))
        .args(args)
        .output()
        .expect("sh runs")
}

/// Issue 22, item 5: the modes of what multihome writes do not depend on the umask. Under the
/// hardened umasks 077 and 027, `apply --root` into an empty image and into one with the
/// administrator's .network file (a drop-in directory), and `render --backend nm-keyfile`, make
/// every directory 0755, networkd's files and the sysctl.d file 0644 and the keyfiles 0600:
/// networkd reads its files as systemd-network, and would ignore a directory it cannot enter.
#[test]
fn modes_do_not_depend_on_the_umask() {
    let policy = golden_policy("seed");
    for umask in [0o077, 0o027] {
        let tmp = TempDir::new(&format!("umask-{umask:o}"));
        let image = tmp.path().join("image");
        let image_arg = image.to_str().unwrap();
        let applied = multihome_under_umask(umask, &["-c", &policy, "apply", "--backend", "networkd", "--root", image_arg]);
        assert!(applied.status.success(), "{}", text(&applied.stderr));
        let keyfiles = multihome_under_umask(umask, &["-c", &policy, "render", "--backend", "nm-keyfile", "--out", image_arg]);
        assert!(keyfiles.status.success(), "{}", text(&keyfiles.stderr));
        let seen = modes(&image);
        for (path, (dir, mode)) in &seen {
            let want = match (dir, path.starts_with("etc/NetworkManager")) {
                (true, _) => 0o755,
                (false, true) => 0o600,
                (false, false) => 0o644,
            };
            assert_eq!(*mode, want, "umask {umask:03o}: {} is {mode:04o}, not {want:04o}\n{seen:#?}", path.display());
        }
        for expected in ["etc/systemd/networkd.conf.d/60-multihome.conf", "etc/sysctl.d/60-multihome.conf", "etc/systemd/network/10-multihome-eth0.network"] {
            assert!(seen.contains_key(Path::new(expected)), "umask {umask:03o}: no {expected}\n{seen:#?}");
        }
        assert!(seen.keys().any(|p| p.starts_with("etc/NetworkManager/system-connections") && !seen[p].0), "no keyfile\n{seen:#?}");

        // The administrator's eth0 file: multihome makes the drop-in directory beside it.
        let amended = tmp.path().join("amended");
        let network_dir = amended.join(networkd::names::NETWORK_DIR);
        fs::create_dir_all(&network_dir).unwrap();
        fs::write(network_dir.join("20-wired.network"), "[Match]\nName=eth0\n").unwrap();
        let out = multihome_under_umask(umask, &["-c", &policy, "apply", "--backend", "networkd", "--root", amended.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let dropin_dir = network_dir.join("20-wired.network.d");
        assert_eq!(fs::metadata(&dropin_dir).unwrap().permissions().mode() & 0o7777, 0o755, "umask {umask:03o}: the drop-in directory");
        assert_eq!(fs::metadata(dropin_dir.join("60-multihome.conf")).unwrap().permissions().mode() & 0o7777, 0o644, "umask {umask:03o}: the drop-in");
    }
}

/// `check` prints each uplink's probe ceiling, and FailAfter no longer scales it without bound
/// (issue 23): FailAfter=1000 with one target and ARP every second is 21 echoes and one ARP
/// question per round at most — it was 4,996 echoes.
#[test]
fn check_prints_the_probe_packet_ceiling_per_uplink() {
    let dir = TempDir::new("ceiling");
    let policy = Policy::seed().without_line("Target=192.168.178.1").probe("Interval", "1s").probe("FailAfter", "1000");
    let file = dir.path().join("policy.conf");
    fs::write(&file, policy.text()).unwrap();
    let out = multihome(&["-c", file.to_str().unwrap(), "check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.trim_start().starts_with("probes:")).collect();
    assert_eq!(lines, ["  probes: at most 22 packets/s out, as many answers in"; 3], "{stdout}");
}

/// `init --write` never replaces a policy (issue 27): an existing file, or a symlink in its place
/// (also a dangling one), is refused before the manager is read, the exit code is 1, and nothing
/// is written anywhere.
#[test]
fn init_write_refuses_an_existing_policy_or_a_symlink_and_writes_nothing() {
    let tmp = TempDir::new("init-write");
    let existing = tmp.join("multihome.conf");
    fs::write(&existing, "# the administrator's policy\n").unwrap();
    let dangling = tmp.join("link.conf");
    std::os::unix::fs::symlink(tmp.join("elsewhere.conf"), &dangling).unwrap();
    let before = snapshot(tmp.path());
    for path in [&existing, &dangling] {
        let out = multihome(&["-c", &path.display().to_string(), "init", "--write"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains(&format!("{} exists", path.display())) && err.contains("nothing was written"), "{err}");
    }
    assert_eq!(snapshot(tmp.path()), before);
    assert!(!tmp.join("elsewhere.conf").exists());
}
