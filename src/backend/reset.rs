//! `multihome reset`: the host as it was before multihome, for an administrator leaving it (and
//! before `apt purge`). It is an apply of [`Plan::nothing`] with each backend that has something
//! of multihome's, so it removes exactly what an apply would call its own (files with the
//! marker, profiles multihome created, the entries its record names in a user's profile) and
//! nothing else; then the kernel state tagged with multihome's protocol (the hooks' rules and
//! tables, the daemon's routes), its MPTCP endpoints, and the sysctls the removed sysctl.d file had set, each back to
//! what the rest of the system's sysctl.d files say (see [`restored_values`]).

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::Path;

use crate::backend::Root;

use anyhow::{Context, bail};
use ipnet::Ipv6Net;

use super::{Backend, Diff, Target, diff, files, is_live, nm, sysctl};
use crate::netlink::{self, Netlink};
use crate::numbers::{LEGACY_DAEMON_RULE_PRIORITY, LEGACY_DAEMON_TABLE};
use crate::plan::mptcp::rank_of;
use crate::plan::{Plan, Rule, Table};

/// Named in what the reset writes (nothing) and reports.
const SOURCE: &str = "multihome reset";

/// The daemon's bus name: while it runs it would put its routes back.
const DAEMON_BUS_NAME: &str = "org.multihome1";
/// networkd's bus name: when it runs, it reloads to let go of the removed files.
const NETWORKD_BUS_NAME: &str = "org.freedesktop.network1";

/// What a reset takes away (the dry run) or took away.
#[derive(Debug, Default)]
pub struct Reset {
    pub diffs: Vec<Diff>,
    /// Rules and routes tagged with multihome's protocol, as `ip` would show them.
    pub kernel: Vec<String>,
    /// (key, value now, value restored).
    pub sysctls: Vec<(String, String, String)>,
}

impl Reset {
    pub fn is_empty(&self) -> bool {
        self.diffs.iter().all(|d| d.changes.is_empty()) && self.kernel.is_empty() && self.sysctls.is_empty()
    }
}

impl fmt::Display for Reset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "Nothing of multihome's is on this host.");
        }
        for d in self.diffs.iter().filter(|d| !d.changes.is_empty()) {
            write!(f, "{d}")?;
        }
        for k in &self.kernel {
            writeln!(f, "# kernel: {k}")?;
        }
        for (key, now, restored) in &self.sysctls {
            writeln!(f, "# sysctl {key}: {now} -> {restored}")?;
        }
        Ok(())
    }
}

/// What `reset` would take away under `root` (`/`: this running system).
pub async fn survey(root: &Root) -> anyhow::Result<Reset> {
    let plan = Plan::nothing(SOURCE);
    let mut reset = Reset::default();
    for backend in backends(root).await {
        reset.diffs.push(backend.diff(&plan, root).await?);
    }
    if !nm_runs(root).await {
        reset.diffs.push(keyfiles(root)?);
    }
    // Both backends name the sysctl.d file: it is listed once.
    let mut seen = std::collections::BTreeSet::new();
    for d in &mut reset.diffs {
        d.changes.retain(|c| seen.insert(c.subject.clone()));
    }
    if is_live(root) {
        let nl = Netlink::connect().context("cannot open a netlink socket")?;
        reset.kernel = kernel_state(&nl).await?.iter().map(|k| k.describe()).collect();
        reset.sysctls = sysctls(root)?;
    }
    Ok(reset)
}

/// Takes away everything [`survey`] lists. Refuses while the daemon runs: it would put its
/// routes back (stop it first).
pub async fn run(root: &Root) -> anyhow::Result<Reset> {
    let live = is_live(root);
    if live && crate::bus::runs_on_system_bus(DAEMON_BUS_NAME).await {
        bail!("the multihome daemon is running and would put its routes back: stop it first (systemctl stop multihome)");
    }
    // Read before the sysctl.d file goes: it names what to restore.
    let reset = survey(root).await?;
    let plan = Plan::nothing(SOURCE);
    for backend in backends(root).await {
        let target = match backend {
            _ if !live => Target::Image,
            Backend::Networkd if !crate::bus::runs_on_system_bus(NETWORKD_BUS_NAME).await => Target::LiveNoReload,
            _ => Target::Live,
        };
        backend.apply_and_commit(&plan, root, target).await.with_context(|| format!("cannot reset {}", backend.name()))?;
    }
    if !nm_runs(root).await {
        files::apply(root, &files::compare(root, &[], &nm::keyfile::owned_patterns())?)?;
    }
    if live {
        let nl = Netlink::connect().context("cannot open a netlink socket")?;
        for k in kernel_state(&nl).await? {
            k.remove(&nl).await?;
        }
        for (key, _, value) in &reset.sysctls {
            let path = format!("/proc/sys/{key}");
            fs::write(&path, value).with_context(|| format!("cannot set {key} = {value}"))?;
        }
    }
    Ok(reset)
}

/// The backends whose files or profiles a reset looks at: networkd's files always (they may be
/// there whichever manager runs now), NetworkManager's profiles when it runs on this system.
async fn backends(root: &Root) -> Vec<Backend> {
    let mut out = vec![Backend::Networkd];
    if nm_runs(root).await {
        out.push(Backend::NetworkManager);
    }
    out
}

async fn nm_runs(root: &Root) -> bool {
    is_live(root) && nm::apply::is_running().await
}

/// Keyfiles `render --backend nm-keyfile` wrote, where no NetworkManager runs to remove their
/// profiles.
fn keyfiles(root: &Root) -> anyhow::Result<Diff> {
    let changes = files::compare(root, &[], &nm::keyfile::owned_patterns())?;
    Ok(Diff {
        backend: "NetworkManager keyfiles",
        root: root.path().display().to_string(),
        placement: Vec::new(),
        changes: diff::Change::of_files(root.path(), &changes),
    })
}

/// One rule or route of multihome's in the kernel; a route with its device's name.
enum Tagged {
    Rule(Rule),
    Rule6(Rule<Ipv6Net>),
    Route(netlink::KernelRoute, String),
    /// The daemon's IPv6 copies (left by a daemon whose ExecStopPost never ran).
    Route6(netlink::KernelRoute6, String),
    /// An MPTCP endpoint with one of multihome's ids (240 + rank): multihome makes only these,
    /// and the kernel numbers everyone else's from 1.
    Endpoint(netlink::mptcp::Endpoint),
}

impl Tagged {
    fn describe(&self) -> String {
        match self {
            Tagged::Rule(r) => format!("rule {r}"),
            Tagged::Rule6(r) => format!("rule {r}"),
            Tagged::Route(k, dev) => format!("route {} metric {}", crate::plan::show_route(&k.as_plan_route(), dev), k.metric),
            Tagged::Route6(k, dev) => {
                let via = k.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
                format!("route {}{via} dev {dev} table {} metric {}", k.destination, k.table, k.metric)
            }
            Tagged::Endpoint(e) => format!("mptcp endpoint {e}"),
        }
    }

    async fn remove(&self, nl: &Netlink) -> anyhow::Result<()> {
        let gone = match self {
            Tagged::Rule(r) => nl.delete_rule(r).await,
            Tagged::Rule6(r) => nl.delete_rule6(r).await,
            Tagged::Route(k, _) => match k.ifindex {
                Some(ifindex) => nl.delete_route(&k.as_plan_route(), ifindex).await,
                None => Ok(()),
            },
            Tagged::Route6(k, _) => match k.ifindex {
                Some(ifindex) => nl.delete_route(&k.as_plan_route(), ifindex).await,
                None => Ok(()),
            },
            Tagged::Endpoint(e) => match netlink::mptcp::Mptcp::open() {
                Ok(Some(mut pm)) => pm.delete_endpoint(e.id),
                Ok(None) => Ok(()),
                Err(err) => Err(err),
            },
        };
        match gone {
            Err(e) if !e.is_not_found() => Err(e).with_context(|| format!("cannot remove {}", self.describe())),
            _ => Ok(()),
        }
    }
}

/// Rules (both families) and routes with multihome's protocol (the hooks', the daemon's), the
/// rule of a daemon before 0.2, and multihome's MPTCP endpoints.
async fn kernel_state(nl: &Netlink) -> anyhow::Result<Vec<Tagged>> {
    let mut out: Vec<Tagged> = Vec::new();
    let legacy = Rule { priority: LEGACY_DAEMON_RULE_PRIORITY, from: None, to: None, table: Table::Id(LEGACY_DAEMON_TABLE) };
    for k in nl.rules().await.context("cannot read the rules")? {
        let rule = k.as_plan_rule();
        if k.is_ours() || rule.as_ref() == Some(&legacy) {
            out.extend(rule.map(Tagged::Rule));
        }
    }
    // The hooks' rules for IPv6 addresses (SLAAC, DHCPv6).
    out.extend(nl.our_rules6().await.context("cannot read the IPv6 rules")?.iter().filter_map(|k| k.as_plan_rule()).map(Tagged::Rule6));
    let names: BTreeMap<u32, String> = nl.links().await.context("cannot read the links")?.into_iter().map(|l| (l.index, l.name)).collect();
    for k in nl.routes().await.context("cannot read the routes")?.into_iter().filter(|k| k.is_ours()) {
        let dev = k.ifindex.and_then(|i| names.get(&i).cloned()).unwrap_or_else(|| "?".into());
        out.push(Tagged::Route(k, dev));
    }
    for k in nl.routes6().await.context("cannot read the IPv6 routes")?.into_iter().filter(|k| k.is_ours()) {
        let dev = k.ifindex.and_then(|i| names.get(&i).cloned()).unwrap_or_else(|| "?".into());
        out.push(Tagged::Route6(k, dev));
    }
    // A kernel without MPTCP has no endpoints.
    if let Some(mut pm) = netlink::mptcp::Mptcp::open().context("cannot open the MPTCP path manager")? {
        let endpoints = pm.endpoints().context("cannot read the MPTCP endpoints")?;
        out.extend(endpoints.into_iter().filter(|e| rank_of(e.id).is_some()).map(Tagged::Endpoint));
    }
    Ok(out)
}

/// What an apply of `plan` sets on the live kernel: the plan's sysctls, and those the sysctl.d
/// file of an earlier apply set but `plan` no longer does (routes mode left for Mode=bond, an
/// uplink dropped), each back to what the rest of the system says, as `reset` restores them.
/// Read before the apply replaces that file, which names them. `try` takes both back.
pub fn sysctls_for_apply(plan: &Plan, root: &Root) -> anyhow::Result<Vec<crate::plan::Sysctl>> {
    let mut out = plan.sysctls.clone();
    for (key, _, value) in sysctls(root)? {
        if !plan.sysctls.iter().any(|s| s.key == key) {
            out.push(crate::plan::Sysctl { key, value, why: "the policy no longer sets it: back to what the rest of the system says" });
        }
    }
    Ok(out)
}

/// The sysctls multihome's sysctl.d file sets, each with its value now and the value it goes
/// back to; only those that differ.
fn sysctls(root: &Root) -> anyhow::Result<Vec<(String, String, String)>> {
    let ours = match read_bounded(&root.join(sysctl::FILE)) {
        Some(text) if files::is_ours(&text) => assignments(&text),
        _ => return Ok(Vec::new()),
    };
    let others = other_sysctl_files(root);
    let current = |key: &str| fs::read_to_string(format!("/proc/sys/{key}")).ok().map(|v| v.trim().to_string());
    let mut out = Vec::new();
    for (key, value) in restored_values(&ours, &others, &current) {
        if let Some(now) = current(&key).filter(|now| *now != value) {
            out.push((key, now, value));
        }
    }
    Ok(out)
}

/// The kernel's own value of each setting multihome sets, for a key no file names: off for
/// ignore_routes_with_linkdown, arp_ignore, arp_announce and rp_filter; IPv6 routers probed
/// every 60 s, their default routes accepted.
fn kernel_default(setting: &str) -> &'static str {
    match setting {
        "router_probe_interval" => "60",
        "accept_ra_defrtr" => "1",
        _ => "0",
    }
}

/// For each key multihome set, the value the rest of the system gives it: the last assignment
/// in the other sysctl.d files (systemd-sysctl's order, globs such as `net.ipv4.conf.*.rp_filter`
/// included); else, for an interface's key, the value of the `default` key (what the interface
/// took when it appeared), restored first when multihome set that too; else the kernel's.
/// Pure: `others` are (file name, text) in the order systemd-sysctl applies them, `current`
/// reads a key's value now.
pub fn restored_values(ours: &[(String, String)], others: &[(String, String)], current: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let assigned: Vec<(String, String)> = others.iter().flat_map(|(_, text)| assignments(text)).collect();
    let from_files = |key: &str| assigned.iter().rev().find(|(pattern, _)| glob_match(pattern, key)).map(|(_, v)| v.clone());
    let mut restored: BTreeMap<String, String> = BTreeMap::new();
    // `default` keys first: an interface's key may fall back on them.
    let mut keys: Vec<&String> = ours.iter().map(|(k, _)| k).collect();
    keys.sort_by_key(|k| !k.contains("/conf/default/"));
    for key in keys {
        let parts: Vec<&str> = key.split('/').collect();
        let setting = parts.last().copied().unwrap_or("");
        let value = from_files(key).unwrap_or_else(|| {
            if key.contains("/conf/default/") || parts.len() != 5 {
                kernel_default(setting).to_string()
            } else {
                // net/ipv4/conf/IFACE/SETTING -> net/ipv4/conf/default/SETTING (ipv6 alike).
                let default_key = format!("{}/{}/conf/default/{setting}", parts[0], parts[1]);
                restored.get(&default_key).cloned().or_else(|| current(&default_key)).unwrap_or_else(|| kernel_default(setting).to_string())
            }
        });
        restored.insert(key.clone(), value);
    }
    ours.iter().map(|(k, _)| (k.clone(), restored[k].clone())).collect()
}

/// `key = value` lines of a sysctl.d file, keys in /proc/sys form (slashes). A leading `-`
/// (ignore errors) is dropped; comments are lines starting with `#` or `;`.
fn assignments(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (normalize(k.trim().trim_start_matches('-')), v.trim().to_string()))
        .collect()
}

/// systemd-sysctl's rule: a key whose first separator is a `/` is a path already; otherwise dots
/// separate and a `/` inside a part (an interface `eth0/100`... written `eth0.100` with slashes)
/// is a dot.
fn normalize(key: &str) -> String {
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes()[i] == b'/' => key.to_string(),
        _ => key
            .chars()
            .map(|c| {
                if c == '.' {
                    '/'
                } else if c == '/' {
                    '.'
                } else {
                    c
                }
            })
            .collect(),
    }
}

/// Whether a sysctl.d key (`*` matching one part) names `key`.
fn glob_match(pattern: &str, key: &str) -> bool {
    let (p, k): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), key.split('/').collect());
    p.len() == k.len() && p.iter().zip(&k).all(|(p, k)| *p == "*" || p == k)
}

/// The other sysctl.d files in the order systemd-sysctl applies them: by file name across
/// /etc, /run, /usr/local/lib and /usr/lib (a name in an earlier directory hides the same name
/// in a later one), then /etc/sysctl.conf, which Debian's procps applies last.
fn other_sysctl_files(root: &Root) -> Vec<(String, String)> {
    let mut by_name: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
    for dir in ["etc/sysctl.d", "run/sysctl.d", "usr/local/lib/sysctl.d", "usr/lib/sysctl.d", "lib/sysctl.d"] {
        let Ok(entries) = fs::read_dir(root.join(dir)) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".conf") && format!("{dir}/{name}") != sysctl::FILE {
                by_name.entry(name).or_insert_with(|| e.path());
            }
        }
    }
    let mut out: Vec<(String, String)> = by_name.into_iter().filter_map(|(name, path)| read_bounded(&path).map(|t| (name, t))).collect();
    out.extend(read_bounded(&root.join("etc/sysctl.conf")).map(|t| ("sysctl.conf".to_string(), t)));
    out
}

/// A configuration file of the system's, as systemd reads it (symlinks followed), but only a
/// regular file, without blocking, and at most 1 MiB.
fn read_bounded(path: &Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    if !fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let file = fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(1 << 20).read_to_end(&mut bytes).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn keys_are_read_as_systemd_sysctl_reads_them() {
        assert_eq!(normalize("net.ipv4.conf.eth0/100.rp_filter"), "net/ipv4/conf/eth0.100/rp_filter");
        assert_eq!(normalize("net/ipv4/conf/eth0.100/rp_filter"), "net/ipv4/conf/eth0.100/rp_filter");
        assert_eq!(assignments("# x\n; y\n-net.ipv4.conf.all.rp_filter = 1\nbad line\n"), pairs(&[("net/ipv4/conf/all/rp_filter", "1")]));
        assert!(glob_match("net/ipv4/conf/*/rp_filter", "net/ipv4/conf/wlan0/rp_filter"));
        assert!(!glob_match("net/ipv4/conf/*/rp_filter", "net/ipv4/conf/wlan0/arp_ignore"));
    }

    /// Debian's systemd sets rp_filter=2 by glob; nothing sets arp_ignore; an administrator's
    /// file sets eth0's arp_announce. The default key multihome set goes back to the kernel's
    /// 0, and an interface's key without a file falls back on it.
    #[test]
    fn each_key_goes_back_to_what_the_rest_of_the_system_says() {
        let ours = pairs(&[
            ("net/ipv4/conf/default/ignore_routes_with_linkdown", "1"),
            ("net/ipv4/conf/eth0/ignore_routes_with_linkdown", "1"),
            ("net/ipv4/conf/eth0/rp_filter", "2"),
            ("net/ipv4/conf/eth0/arp_ignore", "1"),
            ("net/ipv4/conf/eth0/arp_announce", "2"),
            ("net/ipv6/conf/default/ignore_routes_with_linkdown", "1"),
            ("net/ipv6/conf/eth0/router_probe_interval", "1"),
            ("net/ipv6/conf/eth0/accept_ra_defrtr", "0"),
        ]);
        let others = pairs(&[
            ("50-default.conf", "net.ipv4.conf.default.rp_filter = 2\nnet.ipv4.conf.*.rp_filter = 2\n"),
            ("80-admin.conf", "net.ipv4.conf.eth0.arp_announce = 1\n"),
        ]);
        let current = |key: &str| match key {
            "net/ipv4/conf/default/arp_ignore" => Some("0".to_string()),
            "net/ipv6/conf/default/accept_ra_defrtr" => Some("1".to_string()),
            _ => None,
        };
        let got = restored_values(&ours, &others, &current);
        assert_eq!(
            got,
            pairs(&[
                ("net/ipv4/conf/default/ignore_routes_with_linkdown", "0"),
                ("net/ipv4/conf/eth0/ignore_routes_with_linkdown", "0"),
                ("net/ipv4/conf/eth0/rp_filter", "2"),
                ("net/ipv4/conf/eth0/arp_ignore", "0"),
                ("net/ipv4/conf/eth0/arp_announce", "1"),
                ("net/ipv6/conf/default/ignore_routes_with_linkdown", "0"),
                ("net/ipv6/conf/eth0/router_probe_interval", "60"),
                ("net/ipv6/conf/eth0/accept_ra_defrtr", "1"),
            ])
        );
    }
}
