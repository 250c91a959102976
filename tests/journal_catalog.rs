//! The journal catalog the package installs (packaging/multihome.catalog, issue 26): one entry
//! per `MESSAGE_ID` of the daemon's events, each with a subject and the words `Defined-By:
//! multihome`, no id that the code does not log; and journalctl itself accepts the file
//! (`--update-catalog` into a root of the test's own, then `--list-catalog` lists every id).

use std::collections::BTreeMap;
use std::process::Command;

use common::files::TempDir;
use common::repo;
use common::tools::{have, unavailable};
use multihome::daemon::events::Kind;

#[allow(dead_code)]
mod common;

/// The entries by id: their header lines and text, as the catalog format has them (`-- ID` opens
/// an entry, `Key: value` lines up to the first empty line, then the text).
fn entries() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo("packaging/multihome.catalog")).unwrap();
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("-- ") {
            out.extend(current.take());
            current = Some((id.trim().to_string(), String::new()));
        } else if let Some((_, body)) = &mut current {
            body.push_str(line);
            body.push('\n');
        } else {
            assert!(line.is_empty() || line.starts_with('#'), "before the first entry only comments: {line:?}");
        }
    }
    out.extend(current);
    out
}

#[test]
fn every_message_id_has_one_catalog_entry_with_a_subject() {
    let entries = entries();
    let ids: Vec<&str> = Kind::ALL.iter().map(|k| k.message_id()).collect();
    let listed: Vec<&str> = entries.keys().map(String::as_str).collect();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(listed, expected, "the catalog's ids (left) are not the code's (right)");
    for (id, body) in &entries {
        let headers: Vec<&str> = body.lines().take_while(|l| !l.is_empty()).collect();
        assert!(headers.iter().any(|h| h.starts_with("Subject: ") && h.len() > 12), "{id}: no subject:\n{body}");
        assert!(headers.contains(&"Defined-By: multihome"), "{id}:\n{body}");
        let text = body.lines().skip(headers.len()).collect::<Vec<_>>().join("\n");
        assert!(text.trim().len() > 80, "{id}: say what it means and what to do:\n{body}");
    }
}

#[test]
fn journalctl_accepts_the_catalog() {
    if !have("journalctl") {
        unavailable("journalctl is not installed");
        return;
    }
    let tmp = TempDir::new("catalog");
    let dir = tmp.join("usr/lib/systemd/catalog");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(tmp.join("var/lib/systemd/catalog")).unwrap();
    std::fs::copy(repo("packaging/multihome.catalog"), dir.join("multihome.catalog")).unwrap();
    let root = format!("--root={}", tmp.path().display());
    let update = Command::new("journalctl").args([&root, "--update-catalog"]).output().unwrap();
    assert!(update.status.success() && update.stderr.is_empty(), "{}", String::from_utf8_lossy(&update.stderr));
    let list = Command::new("journalctl").args([&root, "--list-catalog"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for kind in Kind::ALL {
        assert!(list.lines().any(|l| l.starts_with(&format!("{} multihome: ", kind.message_id()))), "{kind:?} not listed:\n{list}");
    }
}
