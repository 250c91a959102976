//! Golden files for the policy parser, the planner and every renderer, run by one loop over
//! `tests/golden/<case>/`.
//!
//! Each case holds a `policy.conf` and what multihome makes of it: either `error.txt` (the exact
//! diagnostics of an invalid policy), or `plan.txt` (the plan as `multihome check` prints it),
//! `plan.json` (as `check --json` prints it) and, per renderer, a directory with the rendered
//! files by their path under the root plus `<renderer>.files` with each file's mode. Any file in a
//! case that nothing produces any more is a failure too, so a renamed or dropped output is seen.
//!
//! A case may also hold `root/`, an image's files (an administrator's .network files, netplan's
//! under root/run): input, like the policy. The networkd renderer places the uplinks among them
//! as `render --out` and `apply --root` do, and `networkd.placement.txt` holds what `multihome
//! plan` says about that (which file each uplink amends, the warnings and errors with
//! file:line); with an error, nothing is rendered. Only renderers that read the root run for
//! such a case.
//!
//! `MULTIHOME_BLESS=1 cargo test --test golden` rewrites the expected files (and removes stale
//! ones); review the result with `git diff tests/golden` before committing it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use multihome::backend::files::{self, GeneratedFile};
use multihome::backend::networkd::{self, placement, survey};
use multihome::plan::{self, Plan};
use multihome::policy;

/// What a renderer makes of a plan (and of the image root, if it reads one).
struct Rendered {
    /// The files it would install, relative to the root.
    files: Vec<GeneratedFile>,
    /// What `multihome plan` says before the diff, for renderers that place things.
    report: Option<String>,
}

/// A renderer: the plan and the case's image root (which may not exist) in.
type Render = fn(&Plan, &Path) -> Rendered;

/// Every renderer with golden output, by the name of its directory in a case, and whether it
/// reads the image root. Adding a backend is one line here and a bless run.
const RENDERERS: &[(&str, Render, bool)] = &[("networkd", render_networkd, true), ("nm-keyfile", render_nm_keyfile, false)];

fn render_networkd(plan: &Plan, root: &Path) -> Rendered {
    let files = if root.exists() {
        let held = multihome::backend::Root::image(root, "--root", "render", false).unwrap_or_else(|e| panic!("{e:#}"));
        survey::read(&held).unwrap_or_else(|e| panic!("cannot survey {}: {e:#}", root.display()))
    } else {
        survey::NetworkFiles::default()
    };
    let layout = placement::place(plan, &files, &Default::default());
    let files = if layout.errors().is_empty() { networkd::render::render(plan, &layout) } else { Vec::new() };
    Rendered { files, report: Some(layout.to_string()) }
}

fn render_nm_keyfile(plan: &Plan, _root: &Path) -> Rendered {
    Rendered { files: multihome::backend::nm::keyfile::render(plan), report: None }
}

/// The input files of a case; everything else in the case directory is expected output.
const POLICY: &str = "policy.conf";
const IMAGE_ROOT: &str = "root";

const BLESS_VAR: &str = "MULTIHOME_BLESS";

#[test]
fn golden_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var(BLESS_VAR).as_deref() == Ok("1");
    let mut cases: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases under {}", root.display());

    let mut failures = Vec::new();
    let mut blessed = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let policy_path = case.join(POLICY);
        let text = match fs::read_to_string(&policy_path) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("case {name}: cannot read {}: {e}", policy_path.display()));
                continue;
            }
        };
        let expected = match expected_outputs(&text, &case.join(IMAGE_ROOT)) {
            Ok(outputs) => outputs,
            Err(problem) => {
                failures.push(format!("case {name}: {problem}"));
                continue;
            }
        };
        let on_disk = files_under(case);
        if bless {
            blessed.extend(bless_case(case, &name, &expected, &on_disk));
        } else {
            failures.extend(compare_case(&name, &expected, &on_disk));
        }
    }
    for b in &blessed {
        eprintln!("blessed: {b}");
    }
    if !failures.is_empty() {
        panic!(
            "{} golden problem(s) in {} case(s):\n\n{}\n\nIf the new output is right, run `{BLESS_VAR}=1 cargo test --test golden` and review `git diff tests/golden`.",
            failures.len(),
            cases.len(),
            failures.join("\n\n")
        );
    }
}

/// What a case directory should hold besides its inputs, by path relative to it.
fn expected_outputs(text: &str, image_root: &Path) -> Result<BTreeMap<PathBuf, String>, String> {
    let mut out = BTreeMap::new();
    let policy = match policy::parse(POLICY, text) {
        Ok(p) => p,
        Err(diagnostics) => {
            out.insert(PathBuf::from("error.txt"), format!("{diagnostics}\n"));
            return Ok(out);
        }
    };
    let plan = plan::plan(&policy);
    out.insert(PathBuf::from("plan.txt"), plan.to_string());
    let json = serde_json::to_string_pretty(&plan).map_err(|e| format!("the plan does not serialize: {e}"))?;
    out.insert(PathBuf::from("plan.json"), format!("{json}\n"));
    for (renderer, render, reads_root) in RENDERERS {
        if image_root.exists() && !reads_root {
            continue;
        }
        let rendered = render(&plan, image_root);
        if let Some(report) = rendered.report {
            out.insert(PathBuf::from(format!("{renderer}.placement.txt")), report);
        }
        let mut manifest = String::new();
        for f in &rendered.files {
            // Properties every renderer owes the writer, checked here once for all of them.
            if f.path.is_absolute() || f.path.components().any(|c| !matches!(c, Component::Normal(_))) {
                return Err(format!("{renderer} renders {}, which is not a plain relative path", f.path.display()));
            }
            if !files::is_ours(&f.contents) {
                return Err(format!("{renderer} renders {} without multihome's marker, so apply could never update it", f.path.display()));
            }
            let key = Path::new(renderer).join(&f.path);
            if out.insert(key, f.contents.clone()).is_some() {
                return Err(format!("{renderer} renders {} twice", f.path.display()));
            }
            manifest.push_str(&format!("{:04o} {}\n", f.mode, f.path.display()));
        }
        if !rendered.files.is_empty() {
            out.insert(PathBuf::from(format!("{renderer}.files")), manifest);
        }
    }
    Ok(out)
}

/// Every file under `case` except the inputs, by relative path, with its text (or why not).
fn files_under(case: &Path) -> BTreeMap<PathBuf, Result<String, String>> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<PathBuf, Result<String, String>>) {
        let mut entries: Vec<_> = fs::read_dir(dir).expect("readable case directory").map(|e| e.unwrap().path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                let rel = path.strip_prefix(base).unwrap().to_path_buf();
                out.insert(rel, fs::read_to_string(&path).map_err(|e| e.to_string()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(case, case, &mut out);
    out.remove(Path::new(POLICY));
    out.retain(|rel, _| !rel.starts_with(IMAGE_ROOT));
    out
}

fn compare_case(name: &str, expected: &BTreeMap<PathBuf, String>, on_disk: &BTreeMap<PathBuf, Result<String, String>>) -> Vec<String> {
    let mut problems = Vec::new();
    for (rel, want) in expected {
        match on_disk.get(rel) {
            None => problems.push(format!("case {name}: {} is missing; it would be:\n{}", rel.display(), indent(want))),
            Some(Err(e)) => problems.push(format!("case {name}: cannot read {}: {e}", rel.display())),
            Some(Ok(have)) if have != want => problems.push(format!(
                "case {name}: {} differs from what multihome produces now:\n{}",
                rel.display(),
                similar::TextDiff::from_lines(have.as_str(), want.as_str())
                    .unified_diff()
                    .context_radius(3)
                    .header(&format!("expected {}", rel.display()), "actual")
            )),
            Some(Ok(_)) => {}
        }
    }
    for rel in on_disk.keys().filter(|rel| !expected.contains_key(*rel)) {
        problems.push(format!("case {name}: {} is expected, but nothing produces it any more", rel.display()));
    }
    problems
}

/// Makes the case directory hold exactly `expected`; returns what changed.
fn bless_case(case: &Path, name: &str, expected: &BTreeMap<PathBuf, String>, on_disk: &BTreeMap<PathBuf, Result<String, String>>) -> Vec<String> {
    let mut changed = Vec::new();
    for (rel, want) in expected {
        if on_disk.get(rel).and_then(|r| r.as_ref().ok()) != Some(want) {
            let path = case.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, want).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            changed.push(format!("{name}/{}", rel.display()));
        }
    }
    for rel in on_disk.keys().filter(|rel| !expected.contains_key(*rel)) {
        fs::remove_file(case.join(rel)).unwrap();
        changed.push(format!("{name}/{} (removed)", rel.display()));
        // Drop directories the removal left empty, up to the case directory.
        let mut dir = case.join(rel);
        while dir.pop() && dir != case {
            if fs::remove_dir(&dir).is_err() {
                break;
            }
        }
    }
    changed
}

/// The start of a file's text, indented, for a message about a missing file.
fn indent(text: &str) -> String {
    const SHOWN: usize = 15;
    let mut out: String = text.lines().take(SHOWN).map(|l| format!("    {l}\n")).collect();
    if text.lines().count() > SHOWN {
        out.push_str("    ...\n");
    }
    out
}

/// The `seed` case is the shipped example, so the example's output is what the goldens show.
#[test]
fn seed_case_is_the_shipped_example() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = fs::read_to_string(dir.join("examples/seed.conf")).unwrap();
    let case = fs::read_to_string(dir.join("tests/golden/seed").join(POLICY)).unwrap();
    assert!(example == case, "tests/golden/seed/policy.conf is not examples/seed.conf any more: copy it over and bless");
}
