//! The lab's one rule, checked: the root namespace's links, addresses, routes and rules, and the
//! machine's resolver and hostname (which a NetworkManager let loose would rewrite), are the
//! same after a lab as before it.

use super::netns::run;

/// What the machine looks like: its resolv.conf and hostname, and the root namespace as `ip`
/// prints it.
pub fn snapshot() -> anyhow::Result<String> {
    let resolv_conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_else(|e| format!("unreadable: {e}"));
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|e| format!("unreadable: {e}"));
    let mut s = format!("## /etc/resolv.conf\n{resolv_conf}\n## hostname\n{hostname}");
    for args in [
        &["-o", "link", "show"][..],
        &["-o", "-4", "addr", "show"],
        &["-o", "-6", "addr", "show"],
        &["-4", "route", "show", "table", "all"],
        &["-6", "route", "show", "table", "all"],
        &["-4", "rule", "show"],
        &["-6", "rule", "show"],
    ] {
        let out = run("ip", args)?;
        s.push_str(&format!("## ip {}\n", args.join(" ")));
        // Lifetimes of addresses count down by themselves; they are not a change.
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let line = line.split("valid_lft").next().unwrap_or(line);
            s.push_str(line.trim_end());
            s.push('\n');
        }
    }
    Ok(s)
}

/// The lines that differ between two snapshots, or `None`.
pub fn difference(before: &str, after: &str) -> Option<String> {
    if before == after {
        return None;
    }
    let diff = similar::TextDiff::from_lines(before, after);
    Some(diff.unified_diff().header("root namespace before", "root namespace after").to_string())
}
