//! Event hooks and journal message ids (issue 26) with the real daemon in the lab (systemd-networkd,
//! the seed policy): a script in /etc/multihome/events.d receives every transition and change of
//! the active uplink of a silent failure of eth0 and its repair, in order, with only the event's
//! facts in its environment; a file without an execute bit and a dotfile are skipped. With the
//! journal as its stderr the daemon sends each event as an entry of the native protocol, with
//! its MESSAGE_ID and fields, to a socket the test binds where journald's would be. A hook that
//! hangs is killed at its timeout, the events behind it still run, and the failover does not
//! wait for it: measured with and without it.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::journal::{Entry, Receiver, parse};
use common::lab::{require, spawned_logs};
use common::status;
use multihome::daemon::events::Kind;
use multihome::lab::probe::{Prober, outage};
use multihome::lab::{INTERNET, Lab, Manager};

#[allow(dead_code)]
mod common;

/// As tests/lab_daemon.rs: a bound that catches a failover that waits for something.
const RESTORE_WITHIN: Duration = Duration::from_millis(1500);
const PROBE_EVERY: Duration = Duration::from_millis(10);

/// The lab host's /etc/multihome/events.d (the lab binds its own directory there).
fn events_dir(lab: &Lab) -> std::path::PathBuf {
    let dir = lab.dir().join("etc/multihome/events.d");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn script(dir: &Path, name: &str, body: &str, mode: u32) {
    std::fs::write(dir.join(name), format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The environments the recording hook wrote: `env` output, one block per run.
fn recorded(file: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.split("\n--\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| b.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect())
        .collect()
}

/// An event as the test expects it: MULTIHOME_EVENT, KIND, UPLINK, OLD (state or active), NEW
/// state ("" for active events), ACTIVE.
fn summary(env: &BTreeMap<String, String>) -> [String; 6] {
    let get = |k: &str| env.get(k).cloned().unwrap_or_default();
    let old = if get("MULTIHOME_EVENT") == "active" { get("MULTIHOME_OLD_ACTIVE") } else { get("MULTIHOME_OLD_STATE") };
    [get("MULTIHOME_EVENT"), get("MULTIHOME_KIND"), get("MULTIHOME_UPLINK"), old, get("MULTIHOME_NEW_STATE"), get("MULTIHOME_ACTIVE")]
}

fn row(r: [&str; 6]) -> [String; 6] {
    r.map(str::to_string)
}

/// Starts the daemon under the journal and waits until it judged every uplink.
fn start_daemon(lab: &mut Lab, journal: bool) -> anyhow::Result<()> {
    if journal {
        lab.spawn_multihome_under_journal(&["daemon"])?;
    } else {
        lab.spawn_multihome(&["daemon"])?;
    }
    lab.wait_for(Duration::from_secs(10), || status::all_up(lab, &["eth0", "wlan1", "wlan0"]))
        .map_err(|e| anyhow::anyhow!("the daemon did not judge every uplink up: {e}\n{}", spawned_logs(lab)))
}

/// A silent failure of eth0 until the daemon demoted it, then its repair until eth0 carries again.
fn fail_and_repair_eth0(lab: &Lab) -> anyhow::Result<()> {
    lab.set_upstream("eth0", false)?;
    lab.wait_for(Duration::from_secs(3), || lab.daemon_copies("-4").contains(&"wlan1".to_string()))
        .map_err(|e| anyhow::anyhow!("eth0 was not demoted: {e}\n{}", spawned_logs(lab)))?;
    lab.set_upstream("eth0", true)?;
    lab.wait_for(Duration::from_secs(10), || lab.daemon_copies("-4").is_empty())
        .map_err(|e| anyhow::anyhow!("eth0 did not come back: {e}\n{}", spawned_logs(lab)))
}

fn field<'a>(e: &'a Entry, name: &str) -> &'a str {
    e.get(name).map_or("", String::as_str)
}

#[test]
fn a_hook_receives_every_event_in_order_and_the_journal_gets_each_with_its_message_id() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let _serial = common::serial();
    let mut lab = common::lab::seed(Manager::Networkd)?;
    let dir = events_dir(&lab);
    let out = lab.dir().join("events.env");
    let skipped = lab.dir().join("skipped-ran");
    // `env` itself: whatever the shell would add stays out of the record.
    script(&dir, "10-record", &format!("/usr/bin/env >>'{}'\necho -- >>'{}'\necho \"recorded $MULTIHOME_KIND\"\n", out.display(), out.display()), 0o755);
    script(&dir, "20-not-executable", &format!("touch '{}'\n", skipped.display()), 0o644);
    script(&dir, ".30-dotfile", &format!("touch '{}'\n", skipped.display()), 0o755);
    let journal = Receiver::bind(&lab.host_path("/run/systemd/journal/socket"))?;
    start_daemon(&mut lab, true)?;
    // The start's events: each uplink unknown -> up, and eth0 active.
    lab.wait_for(Duration::from_secs(5), || recorded(&out).len() >= 4)
        .map_err(|e| anyhow::anyhow!("not every event of the start was recorded: {e}: {:?}", recorded(&out)))?;
    std::thread::sleep(Duration::from_millis(300));
    let at_start = recorded(&out);
    let ups = at_start.iter().filter(|e| e.get("MULTIHOME_KIND").map(String::as_str) == Some("up")).count();
    assert_eq!(ups, 3, "{at_start:?}");
    let active: Vec<[String; 6]> = at_start.iter().map(summary).filter(|s| s[0] == "active").collect();
    assert_eq!(active, [row(["active", "active", "eth0", "", "", "eth0"])], "{at_start:?}");

    fail_and_repair_eth0(&lab)?;
    let expected = vec![
        // Its active: after the converge that logged it, which may be the one of the down.
        row(["state", "state", "eth0", "up", "degraded", "*"]),
        row(["state", "down", "eth0", "degraded", "down", "wlan1"]),
        row(["active", "active", "wlan1", "eth0", "", "wlan1"]),
        row(["state", "state", "eth0", "down", "recovering", "wlan1"]),
        row(["state", "up", "eth0", "recovering", "up", "eth0"]),
        row(["active", "active", "eth0", "wlan1", "", "eth0"]),
    ];
    lab.wait_for(Duration::from_secs(5), || recorded(&out).len() >= at_start.len() + expected.len())
        .map_err(|e| anyhow::anyhow!("the hook did not record every event: {e}: {:?}", recorded(&out)))?;
    std::thread::sleep(Duration::from_millis(500));
    let all = recorded(&out);
    let mut after: Vec<[String; 6]> = all[at_start.len()..].iter().map(summary).collect();
    after[0][5] = "*".into();
    assert_eq!(after, expected, "the events of a silent failure of eth0 and its repair, in order");
    for env in &all {
        assert_eq!(env.get("MULTIHOME_FAMILY").map(String::as_str), Some("ipv4"), "{env:?}");
        assert!(!env.get("MULTIHOME_REASON").is_none_or(String::is_empty), "{env:?}");
        let others: Vec<&String> = env.keys().filter(|k| !k.starts_with("MULTIHOME_") && !matches!(k.as_str(), "PATH" | "PWD")).collect();
        assert!(others.is_empty(), "the daemon's environment reached the hook: {others:?}");
        assert_eq!(env.get("PATH").map(String::as_str), Some("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    }
    assert!(!skipped.exists(), "a file without an execute bit, or a dotfile, ran");

    // The journal: every event with its id and fields, the hook's output prefixed.
    let entries = journal.entries();
    let with_id = |kind: Kind| entries.iter().filter(move |e| field(e, "MESSAGE_ID") == kind.message_id()).collect::<Vec<_>>();
    let down = with_id(Kind::Down);
    assert_eq!(down.len(), 1, "{entries:#?}");
    let d = down[0];
    assert_eq!(
        [
            field(d, "UPLINK"),
            field(d, "FAMILY"),
            field(d, "STATE"),
            field(d, "OLD_STATE"),
            field(d, "ACTIVE"),
            field(d, "SYSLOG_IDENTIFIER"),
            field(d, "PRIORITY")
        ],
        ["eth0", "ipv4", "down", "degraded", "wlan1", "multihome", "5"],
        "{d:#?}"
    );
    assert!(field(d, "MESSAGE").starts_with("eth0: degraded -> down ("), "{d:#?}");
    assert!(!field(d, "REASON").is_empty(), "{d:#?}");
    let ups: Vec<&str> = with_id(Kind::Up).iter().map(|e| field(e, "UPLINK")).collect();
    assert_eq!(ups.iter().filter(|u| **u == "eth0").count(), 2, "eth0 up at the start and after the repair: {ups:?}");
    let active: Vec<(&str, &str)> = with_id(Kind::ActiveChanged).iter().map(|e| (field(e, "OLD_ACTIVE"), field(e, "ACTIVE"))).collect();
    assert_eq!(active, [("", "eth0"), ("eth0", "wlan1"), ("wlan1", "eth0")], "{entries:#?}");
    assert_eq!(with_id(Kind::State).len(), 2, "degraded and recovering: {entries:#?}");
    let hook_lines = entries.iter().filter(|e| field(e, "MESSAGE") == "10-record: recorded down" && field(e, "HOOK") == "10-record").count();
    assert_eq!(hook_lines, 1, "the hook's output in the journal, prefixed with its name: {entries:#?}");
    // Under the journal nothing of that goes to stderr.
    let log = spawned_logs(&lab);
    assert!(!log.contains("-> down"), "{log}");
    Ok(())
}

/// How long new connections were lost at a silent failure of eth0, from the fault.
fn measure_failover(lab: &Lab) -> anyhow::Result<Duration> {
    let prober = Prober::start(&lab.host(), INTERNET, PROBE_EVERY)?;
    std::thread::sleep(Duration::from_millis(500));
    let fault = prober.now();
    lab.set_upstream("eth0", false)?;
    lab.wait_for(Duration::from_secs(3), || lab.daemon_copies("-4").contains(&"wlan1".to_string()))
        .map_err(|e| anyhow::anyhow!("eth0 was not demoted: {e}\n{}", spawned_logs(lab)))?;
    std::thread::sleep(Duration::from_millis(1000));
    let o = outage(&prober.stop()?, fault);
    Ok(o.restore)
}

#[test]
fn a_hanging_hook_is_killed_at_its_timeout_and_the_failover_does_not_wait_for_it() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let _serial = common::serial();
    let mut lab = common::lab::seed(Manager::Networkd)?;
    let dir = events_dir(&lab);
    start_daemon(&mut lab, false)?;
    let without = measure_failover(&lab)?;
    lab.set_upstream("eth0", true)?;
    lab.wait_for(Duration::from_secs(10), || lab.daemon_copies("-4").is_empty())?;
    // The failback's events logged (the copies go first): the hook must not see them.
    lab.wait_for(Duration::from_secs(3), || spawned_logs(&lab).contains("recovering -> up"))?;
    std::thread::sleep(Duration::from_millis(300));

    // Hangs at its first event (eth0 up -> degraded, the first sign of the fault), then records.
    let flag = lab.dir().join("slow-started");
    let body = format!("if [ ! -e '{f}' ]; then touch '{f}'; echo hanging; sleep 60; fi\necho \"ran $MULTIHOME_KIND\"\n", f = flag.display());
    script(&dir, "10-slow", &body, 0o755);
    let with = measure_failover(&lab)?;
    eprintln!("new connections restored after {without:?} without a hook, {with:?} with a hanging one");
    assert!(flag.exists(), "the hook did not run at the fault");
    assert!(with <= RESTORE_WITHIN, "with a hanging hook new connections came back only after {with:?} ({without:?} without)");
    assert!(without <= RESTORE_WITHIN, "{without:?}");

    let killed = Instant::now();
    lab.wait_for(Duration::from_secs(15), || spawned_logs(&lab).contains("event hook 10-slow: killed after 10s"))
        .map_err(|e| anyhow::anyhow!("the hanging hook was not killed: {e}\n{}", spawned_logs(&lab)))?;
    eprintln!("killed {:?} after the failover was measured", killed.elapsed());
    // The events behind it were kept and ran, in order.
    lab.wait_for(Duration::from_secs(3), || spawned_logs(&lab).contains("10-slow: ran active"))
        .map_err(|e| anyhow::anyhow!("the events queued behind the hanging hook did not run: {e}\n{}", spawned_logs(&lab)))?;
    let log = spawned_logs(&lab);
    let lines: Vec<&str> = log.lines().filter(|l| l.starts_with("10-slow: ")).collect();
    assert_eq!(lines, ["10-slow: hanging", "10-slow: ran down", "10-slow: ran active"], "{log}");
    Ok(())
}

#[test]
fn the_receiver_reads_both_field_forms_of_the_native_protocol() {
    let mut datagram = b"MESSAGE=eth0: up -> down\nMESSAGE_ID=f04aa98c65c14fbea47e07142382d903\nREASON\n".to_vec();
    let value = b"line one\nline=two";
    datagram.extend_from_slice(&(value.len() as u64).to_le_bytes());
    datagram.extend_from_slice(value);
    datagram.extend_from_slice(b"\nUPLINK=eth0\n");
    let e = parse(&datagram).unwrap();
    assert_eq!(field(&e, "REASON"), "line one\nline=two");
    assert_eq!(field(&e, "UPLINK"), "eth0");
    assert_eq!(field(&e, "MESSAGE_ID"), Kind::Down.message_id());
    assert!(parse(b"REASON\n\x05\0\0\0\0\0\0\0abc").is_err(), "a value shorter than its length");
    assert!(parse(b"lower=case\n").is_err(), "field names are upper case");
}
