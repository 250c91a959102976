//! A throwaway network namespace for tests that change routes and rules for real: made with
//! `ip netns add`, entered by one dedicated thread only (the test's netlink sockets live there),
//! deleted on Drop, also when the test fails. Nothing here ever acts in the root namespace.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sched::{CloneFlags, setns};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub(crate) struct TestNs {
    name: String,
}

impl TestNs {
    /// A new empty namespace `mh-nl-PID-N`, or `None` (with a note) when not root. Under CI a
    /// missing privilege fails the test instead: CI must run these.
    pub(crate) fn new() -> Option<TestNs> {
        if !nix::unistd::geteuid().is_root() {
            assert!(std::env::var_os("CI").is_none(), "netlink namespace tests need root, and CI must run them");
            eprintln!("skipped: netlink namespace tests need root");
            return None;
        }
        let name = format!("mh-nl-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        run("ip", &["netns", "add", &name]);
        let ns = TestNs { name };
        ns.ip(&["link", "set", "lo", "up"]);
        Some(ns)
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NS ARGS`, panicking with ip's message on failure; returns stdout.
    pub(crate) fn ip(&self, args: &[&str]) -> String {
        ip_in(&self.name, args)
    }

    /// `ip -n NS -j ARGS` parsed.
    pub(crate) fn ip_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ip(&all)).expect("ip -j prints JSON")
    }

    /// Runs `f` on a new thread that has joined this namespace, so every socket it opens is
    /// inside; the thread ends with `f`.
    pub(crate) fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// Runs the future made by `f` inside this namespace, on a single-threaded runtime of the
    /// thread [`TestNs::run`] makes.
    pub(crate) fn block_on<T, F>(&self, f: impl FnOnce() -> F + Send + 'static) -> T
    where
        F: Future<Output = T>,
        T: Send + 'static,
    {
        self.run(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(f())
        })
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// `ip -n NAMESPACE ARGS`, for code on a thread of [`TestNs::run`] that cannot borrow the
/// [`TestNs`]; panics with ip's message on failure; returns stdout.
pub(crate) fn ip_in(namespace: &str, args: &[&str]) -> String {
    let mut all = vec!["-n", namespace];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Joins the namespace at `path` on this thread and proves it did: the thread's namespace is
/// now that file's and no longer the one it started in.
fn enter(path: &str) {
    let before = std::fs::metadata("/proc/thread-self/ns/net").expect("own namespace").ino();
    let file = File::open(path).expect("namespace file");
    let target = file.metadata().expect("namespace file").ino();
    setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
    let now = std::fs::metadata("/proc/thread-self/ns/net").expect("own namespace").ino();
    assert!(now == target && now != before, "thread did not enter {path}");
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(out.status.success(), "`{program} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    String::from_utf8(out.stdout).expect("utf-8")
}
