//! Event hooks (issue 26): the executables in /etc/multihome/events.d run on every event of
//! [`super::events`], one at a time in lexical order, with the event's facts as their whole
//! environment (plus a fixed PATH) and their output in the daemon's log, each line prefixed
//! with the script's name. They run in a task of their own behind a queue: the failover never
//! waits on a hook. A hook that outlives [`TIMEOUT`] is killed with its process group.
//!
//! Which files run: regular files with an execute bit, found again at every event (a script
//! added while the daemon runs is used at once). Skipped: names starting with a dot, dpkg's
//! leftovers (`*.dpkg-old`, `*.dpkg-dist`, `*.dpkg-new`, `*.dpkg-tmp`), editor backups (`*~`),
//! directories and files without an execute bit (the package's README). A symlink is followed:
//! the directory is the administrator's, and so is where its links point. The daemon creates
//! nothing there. No shell is involved: the file is executed directly (a script needs its `#!`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::mpsc;

use super::events::Change;

/// Where the package's administrators put hooks (the .deb creates it, with a README).
pub const EVENTS_DIR: &str = "/etc/multihome/events.d";
/// How long one hook may run; then it is killed, with everything in its process group.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Events waiting for the hooks: beyond this many (hooks far slower than the events) an event
/// is dropped, logged and counted rather than holding memory without bound.
const QUEUE: usize = 1024;
/// The longest line of a hook's output logged as one.
const MAX_LINE: u64 = 4096;
/// The PATH hooks get: the standard one, the daemon's own environment stays out.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The daemon's end of the queue.
pub(super) struct Hooks {
    queue: mpsc::Sender<Change>,
    dropped: Arc<AtomicU64>,
}

impl Hooks {
    /// Starts the runner on the daemon's runtime, reading `dir` at every event.
    pub(super) fn start(dir: PathBuf) -> Hooks {
        Hooks::with_queue(dir, QUEUE)
    }

    fn with_queue(dir: PathBuf, capacity: usize) -> Hooks {
        let (queue, rx) = mpsc::channel(capacity);
        tokio::spawn(run_queue(dir, rx));
        Hooks { queue, dropped: Arc::new(AtomicU64::new(0)) }
    }

    /// Queues `change` for the hooks; never waits.
    pub(super) fn send(&self, change: Change) {
        if let Err(e) = self.queue.try_send(change) {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            let c = match &e {
                mpsc::error::TrySendError::Full(c) | mpsc::error::TrySendError::Closed(c) => c,
            };
            tracing::warn!(
                "event hooks: dropped the event {} {} {} -> {} ({n} dropped since start): {} events already wait for the hooks",
                c.kind.word(),
                c.uplink,
                c.old,
                c.new,
                self.queue.max_capacity()
            );
        }
    }
}

async fn run_queue(dir: PathBuf, mut rx: mpsc::Receiver<Change>) {
    while let Some(change) = rx.recv().await {
        for hook in executables(&dir) {
            run_one(&hook, &change, TIMEOUT).await;
        }
    }
}

/// Whether a file of events.d is a hook by its name alone (see the module's doc).
pub fn is_hook_name(name: &str) -> bool {
    !(name.is_empty() || name.starts_with('.') || name.ends_with('~') || name.contains(".dpkg-"))
}

/// The hooks of `dir` in lexical order of their names; none when it does not exist.
pub fn executables(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!("event hooks: cannot read {}: {e}", dir.display());
            return Vec::new();
        }
    };
    let mut hooks: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| is_hook_name(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        // Follows a symlink: the administrator's (see the module's doc).
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .collect();
    hooks.sort();
    hooks
}

/// Runs one hook to its end or its timeout; its output lines go to the log as they come.
async fn run_one(hook: &Path, change: &Change, timeout: Duration) {
    let name = hook.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut cmd = tokio::process::Command::new(hook);
    cmd.env_clear()
        .env("PATH", PATH)
        .envs(change.environment())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: a timeout kills what it started too (a `sleep` would keep the pipes open).
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(hook = name.as_str(), "event hook {name}: cannot run {}: {e}", hook.display());
            return;
        }
    };
    let out = child.stdout.take().map(|o| tokio::spawn(log_lines(name.clone(), o)));
    let err = child.stderr.take().map(|e| tokio::spawn(log_lines(name.clone(), e)));
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => tracing::warn!(hook = name.as_str(), "event hook {name}: {status}"),
        Ok(Err(e)) => tracing::warn!(hook = name.as_str(), "event hook {name}: cannot wait for it: {e}"),
        Err(_) => {
            if let Some(pid) = child.id() {
                // SAFETY: killpg has no memory effects; the group is the hook's own.
                unsafe { libc::killpg(pid as libc::pid_t, libc::SIGKILL) };
            }
            let _ = child.wait().await;
            tracing::warn!(hook = name.as_str(), "event hook {name}: killed after {}s (its timeout)", timeout.as_secs());
        }
    }
    // A grandchild that left the group may still hold a pipe: its output is not waited for.
    for task in [out, err].into_iter().flatten() {
        if tokio::time::timeout(Duration::from_secs(1), task).await.is_err() {
            tracing::warn!(hook = name.as_str(), "event hook {name}: something it started still holds its output; no longer read");
        }
    }
}

/// Logs what a hook writes, line by line: bytes that are not UTF-8 replaced (a hook's output
/// must not stop being read, which would block the hook), a line longer than [`MAX_LINE`] cut
/// into several (no unbounded buffer for a hook that never writes a newline).
async fn log_lines(name: String, stream: impl AsyncRead + Unpin) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(&line));
                tracing::info!(hook = name.as_str(), "{name}: {text}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hooks far slower than the events: `send` never waits, the queue holds what it can, and
    /// each event beyond it is dropped and counted; the ones queued still reach the hook.
    #[tokio::test]
    async fn events_beyond_the_queue_are_dropped_and_counted_without_waiting() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("multihome-events-queue-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let seen = dir.join("seen");
        let hook = dir.join("10-slow");
        std::fs::write(&hook, format!("#!/bin/sh\necho \"$MULTIHOME_UPLINK\" >>{}\nsleep 0.2\n", seen.display())).unwrap();
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let hooks = Hooks::with_queue(dir.clone(), 2);
        let change = |n: usize| Change {
            kind: super::super::events::Kind::Down,
            family: super::super::probe::Family::V4,
            uplink: format!("eth{n}"),
            old: "up".into(),
            new: "down".into(),
            reason: "test".into(),
            active: String::new(),
        };
        let start = std::time::Instant::now();
        // The test's runtime has one thread: the runner takes nothing before the first await,
        // so exactly two of the ten fit.
        for n in 0..10 {
            hooks.send(change(n));
        }
        assert!(start.elapsed() < Duration::from_millis(100), "send waited {:?}", start.elapsed());
        assert_eq!(hooks.dropped.load(Ordering::Relaxed), 8);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&seen).unwrap_or_default().lines().count() < 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(std::fs::read_to_string(&seen).unwrap_or_default(), "eth0\neth1\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dotfiles_backups_and_dpkg_leftovers_are_not_hooks() {
        for name in [".hidden", "10-vpn~", "10-vpn.dpkg-old", "10-vpn.dpkg-dist", "10-vpn.dpkg-new", "10-vpn.dpkg-tmp"] {
            assert!(!is_hook_name(name), "{name}");
        }
        for name in ["10-vpn", "README", "50-notify.sh"] {
            assert!(is_hook_name(name), "{name}");
        }
    }

    #[test]
    fn executables_are_listed_in_lexical_order_and_the_rest_skipped() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("multihome-events-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("20-dir")).unwrap();
        for (name, mode) in [("20-b", 0o755), ("10-a", 0o700), ("30-plain", 0o644), (".40-hidden", 0o755), ("50-c.dpkg-old", 0o755)] {
            std::fs::write(dir.join(name), "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        std::os::unix::fs::symlink(dir.join("10-a"), dir.join("15-link")).unwrap();
        std::os::unix::fs::symlink(dir.join("missing"), dir.join("16-dangling")).unwrap();
        let names: Vec<String> = executables(&dir).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["10-a", "15-link", "20-b"]);
        assert!(executables(&dir.join("none")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
