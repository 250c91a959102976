//! Many uplinks for the daemon's cost at scale: `n` more links on the lab host (`up0`, `up1`,
//! ...), each a veth straight to the router on a subnet of its own (10.77.I.2/24, the router
//! 10.77.I.1), every one probing the lab's internet host. The policy's rules and routes are put
//! in by hand from the plan (`ip -batch`, as a manager would): with hundreds of links a real
//! manager's start-up time would be measured instead of the daemon's.
//!
//! Made inside the lab's host and router namespaces only, like the rest of the lab.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::{INTERNET, Lab};
use crate::numbers::MAX_UPLINKS;
use crate::plan::{self, Table};

/// The name of the scale lab's uplink `i` on the host.
pub fn uplink_name(i: usize) -> String {
    format!("up{i}")
}

/// The policy for `n` scale uplinks at the default `[Probe]` settings, one target.
pub fn policy(n: usize) -> String {
    let mut s = format!("# {n} uplinks, each on its own subnet, probing the lab's internet host.\n[Probe]\nTarget={INTERNET}\n");
    for i in 0..n {
        let _ = write!(s, "\n[Uplink]\nInterface={}\nPriority={}\nAddress=10.77.{i}.2/24\nGateway=10.77.{i}.1\n", uplink_name(i), i + 1);
    }
    s
}

/// Adds `n` uplinks to a lab (no manager: `Manager::None`), with the policy's rules and routes,
/// and writes the policy the daemon reads. Returns the policy text.
pub fn add_uplinks(lab: &Lab, n: usize) -> anyhow::Result<String> {
    if n == 0 || n > MAX_UPLINKS {
        bail!("a scale lab has 1 to {MAX_UPLINKS} uplinks, not {n}");
    }
    let text = policy(n);
    let parsed = crate::policy::parse("scale.conf", &text).map_err(|e| anyhow::anyhow!("the scale policy is invalid: {e}"))?;
    let plan = plan::plan(&parsed);
    let (mut links, mut router, mut host) = (String::new(), String::new(), String::new());
    for i in 0..n {
        let name = uplink_name(i);
        // Made in the host with its peer directly in the router: never in the root namespace.
        let _ = writeln!(links, "link add {name} type veth peer name r{i} netns {}", lab.router());
        let _ = writeln!(router, "addr add 10.77.{i}.1/24 dev r{i}\nlink set r{i} up");
        let _ = writeln!(host, "addr add 10.77.{i}.2/24 dev {name}\nlink set {name} up");
    }
    for u in plan.uplinks() {
        for r in &u.rules {
            let _ = write!(host, "rule add priority {}", r.priority);
            if let Some(from) = r.from {
                let _ = write!(host, " from {from}");
            }
            if let Some(to) = r.to {
                let _ = write!(host, " to {to}");
            }
            let _ = writeln!(host, " table {}", r.table);
        }
        for r in &u.routes {
            let _ = writeln!(host, "route add {}", plan::show_route(r, &u.interface));
        }
        debug_assert!(u.routes.iter().any(|r| r.table == Table::Main));
    }
    batch(&lab.host(), &links)?;
    batch(&lab.router(), &router)?;
    batch(&lab.host(), &host)?;
    lab.write_policy(&text)?;
    Ok(text)
}

/// `ip -n NS -batch -` with `commands` on its standard input.
fn batch(ns: &str, commands: &str) -> anyhow::Result<()> {
    let mut child = Command::new("ip")
        .args(["-n", ns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run ip -batch")?;
    child.stdin.take().context("no stdin")?.write_all(commands.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("ip -n {ns} -batch failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
