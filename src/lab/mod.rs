//! The lab: the seed's topology in network namespaces, with the real systemd-networkd or
//! NetworkManager in the host namespace, and the tools to fail links and measure what an
//! application sees. Used by the lab tests, the benchmark and `multihome lab`.
//!
//! Everything runs inside namespaces the lab made; the root namespace is snapshotted when a lab
//! starts and compared when it ends, and a difference fails loudly.

pub mod bond;
pub mod echo;
pub mod ipv6;
pub mod lossy;
pub mod netns;
pub mod notice;
pub mod policies;
pub mod probe;
pub mod probe6;
pub mod radio;
pub mod root_guard;
pub mod scale;
pub mod scenario;
mod services;
pub mod stream;
pub mod timeline;
pub mod timeline_mptcp;
pub mod topology;

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use netns::ip;
pub use topology::{GATEWAY, INTERNET, SEED_ADDRESSES, UPLINKS};

/// The seed's address of a lab uplink (examples/seed.conf).
pub fn seed_address(uplink: &str) -> Ipv4Addr {
    SEED_ADDRESSES.iter().find(|(u, _)| *u == uplink).unwrap_or_else(|| panic!("{uplink} is not a lab uplink")).1
}

/// Which network manager runs in the lab host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Manager {
    /// None: links are addressed by hand (`topology::address_host_by_hand`).
    #[default]
    None,
    Networkd,
    NetworkManager,
}

#[derive(Debug, Clone, Default)]
pub struct LabOptions {
    pub manager: Manager,
    /// Run dnsmasq on the router's LAN (leases from 192.168.178.150 to .199).
    pub dhcp: bool,
    /// Run networkd-dispatcher beside networkd with a copy of this script directory as `-S`.
    pub networkd_dispatcher_scripts: Option<PathBuf>,
    /// The multihome binary to run inside the lab; default: this executable.
    pub multihome: Option<PathBuf>,
    /// A policy for /etc/multihome/multihome.conf, applied (`multihome apply --no-reload`)
    /// before networkd starts, as at boot: networkd reads its networkd.conf.d drop-in only then.
    pub policy: Option<String>,
    /// The umask that apply of `policy` runs under (a hardened host's 077 or 027); default: the
    /// test's own.
    pub umask: Option<u32>,
    /// IPv6 on the LAN and the internet host, with router advertisements (`ipv6`).
    pub ipv6: bool,
    /// With `ipv6`: the advertisements ask for DHCPv6 too, and the router serves it.
    pub dhcpv6: bool,
    /// Run multihome as the package installed it, not the binary under test: /usr/sbin/multihome,
    /// NetworkManager's dispatcher running the package's hook from its own directory, and
    /// networkd-dispatcher (with networkd) running the package's hooks from its default
    /// directories. Otherwise the lab hides an installed hook, so an installed package never
    /// runs beside the binary under test.
    pub installed: bool,
}

/// Where the package puts the multihome binary and NetworkManager's hook (Cargo.toml's assets).
pub const INSTALLED_BINARY: &str = "/usr/sbin/multihome";
pub const INSTALLED_NM_HOOK: &str = "/usr/lib/NetworkManager/dispatcher.d/90-multihome";

impl LabOptions {
    /// A lab with `manager` that runs this `multihome` binary (for a test,
    /// `env!("CARGO_BIN_EXE_multihome")`; the test executable itself is not multihome).
    pub fn new(manager: Manager, multihome: impl Into<PathBuf>) -> LabOptions {
        LabOptions { manager, multihome: Some(multihome.into()), ..Default::default() }
    }
}

/// A background process in the lab, killed (with its process group) when the lab ends.
pub struct Spawned {
    child: Child,
    pub log: PathBuf,
}

impl Spawned {
    /// Sends `signal` to the process and everything it started in its process group.
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        killpg(Pid::from_raw(self.child.id() as i32), signal).context("cannot signal a lab process")
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

pub struct Lab {
    names: topology::Names,
    dir: PathBuf,
    multihome: PathBuf,
    root_before: String,
    init: Option<Spawned>,
    /// The network manager (or placeholder) in the host: `nsenter -t` enters its namespaces.
    init_pid: u32,
    dnsmasq: Option<Spawned>,
    spawned: Vec<Spawned>,
    _servers: Vec<echo::Server>,
    options: LabOptions,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Whether this machine can run a lab with these options; the reason when not. (The tests turn
/// a missing prerequisite into a skip, or a failure in CI: tests/common/lab.rs.)
pub fn prerequisites(options: &LabOptions) -> Result<(), String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err("lab tests need root (network namespaces)".into());
    }
    let mut tools = vec!["ip", "unshare", "nsenter", "dbus-daemon", "busctl", "sysctl"];
    match options.manager {
        Manager::Networkd => tools.push("/lib/systemd/systemd-networkd"),
        Manager::NetworkManager => tools.push("NetworkManager"),
        Manager::None => {}
    }
    if options.dhcp || options.ipv6 {
        tools.push("dnsmasq");
    }
    if options.networkd_dispatcher_scripts.is_some() || (options.installed && options.manager == Manager::Networkd) {
        tools.push("networkd-dispatcher");
    }
    if options.installed {
        tools.push(INSTALLED_BINARY);
    }
    for t in tools {
        let found = if t.starts_with('/') { Path::new(t).exists() } else { which(t).is_some() };
        if !found {
            return Err(format!("{t} is not installed (bash .ci/deps installs the lab's packages)"));
        }
    }
    Ok(())
}

pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(program)).find(|p| p.exists())
}

impl Lab {
    pub fn start(options: LabOptions) -> anyhow::Result<Lab> {
        prerequisites(&options).map_err(anyhow::Error::msg)?;
        let root_before = root_guard::snapshot()?;
        topology::remove_orphans();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("mh{}x{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("multihome-lab-{prefix}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        let mut options = options;
        let multihome = match &options.multihome {
            _ if options.installed => PathBuf::from(INSTALLED_BINARY),
            Some(p) => p.clone(),
            None => std::env::current_exe()?,
        };
        // The installed binary itself (`multihome lab` from the package): laying it over
        // /usr/sbin would make /usr/sbin/multihome a link to itself; it and its hooks are there.
        if fs::canonicalize(&multihome).ok().is_some_and(|m| fs::canonicalize(INSTALLED_BINARY).ok() == Some(m)) {
            options.installed = true;
        }
        let mut lab = Lab {
            names: topology::Names { prefix },
            dir,
            multihome,
            root_before,
            init: None,
            init_pid: 0,
            dnsmasq: None,
            spawned: Vec::new(),
            _servers: Vec::new(),
            options,
        };
        // From here on, Drop cleans up whatever part was made.
        topology::build(&lab.names)?;
        lab._servers.push(echo::udp_source_echo(&lab.names.internet(), INTERNET)?);
        lab._servers.push(echo::tcp_echo(&lab.names.host())?);
        if lab.options.dhcp {
            lab.start_dnsmasq()?;
        }
        if lab.options.ipv6 {
            ipv6::build(&lab.names)?;
            lab.start_router_advertisements()?;
        }
        lab.start_host_init()?;
        Ok(lab)
    }

    pub fn host(&self) -> String {
        self.names.host()
    }
    pub fn router(&self) -> String {
        self.names.router()
    }
    pub fn internet(&self) -> String {
        self.names.internet()
    }
    pub fn switch(&self, uplink: &str) -> String {
        self.names.switch(uplink)
    }
    /// The lab's private directory; `dir()/etc/...` is what the host sees as /etc/... for the
    /// directories the lab binds (systemd/network, NetworkManager, multihome, sysctl.d).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn start_dnsmasq(&mut self) -> anyhow::Result<()> {
        let log = self.dir.join("log/dnsmasq.log");
        fs::create_dir_all(self.dir.join("log"))?;
        let leases = self.dir.join("dnsmasq.leases");
        let leasefile = format!("--dhcp-leasefile={}", leases.display());
        let args =
            ["--dhcp-authoritative", "--dhcp-range=192.168.178.150,192.168.178.199,255.255.255.0,2m", "--dhcp-option=3,192.168.178.1", leasefile.as_str()];
        self.dnsmasq = Some(self.router_dnsmasq(&args, &log)?);
        Ok(())
    }

    /// dnsmasq on the router's LAN bridge (no DNS, logging what it hands out), with `extra` to
    /// say what it serves. As root: dropping to nobody would clear the parent-death signal (see
    /// spawn_command).
    fn router_dnsmasq(&self, extra: &[&str], log: &Path) -> anyhow::Result<Spawned> {
        let router = self.names.router();
        let mut args =
            vec!["netns", "exec", router.as_str(), "dnsmasq", "--no-daemon", "--user=root", "--group=root", "--port=0", "--interface=br0", "--bind-interfaces"];
        args.extend_from_slice(extra);
        args.push("--log-dhcp");
        spawn("ip", &args, log)
    }

    /// Starts the host's PID 1 (the script that mounts and starts the network manager, or a
    /// placeholder) and waits until the manager runs: its private mounts are in place then and, with a manager, until it owns its bus name.
    fn start_host_init(&mut self) -> anyhow::Result<()> {
        let script = services::prepare(&self.dir, &self.options, &self.multihome)?;
        fs::write(self.dir.join("init.sh"), &script)?;
        let log = self.dir.join("log/manager.log");
        let init = spawn(
            "ip",
            &["netns", "exec", &self.names.host(), "unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", &script],
            &log,
        )?;
        let unshare_pid = init.id();
        self.init = Some(init);
        // Wait until the script has started the manager (the mounts are done then).
        let want: &str = match self.options.manager {
            Manager::None => "sleep",
            Manager::Networkd => "systemd-networkd",
            Manager::NetworkManager => "NetworkManager",
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // comm holds at most 15 bytes: "systemd-network".
            if let Some(pid) = descendant_named(unshare_pid, &want[..want.len().min(15)]) {
                self.init_pid = pid;
                break;
            }
            if Instant::now() > deadline {
                bail!("the lab host did not start {want}:\n{}", self.manager_log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let name = match self.options.manager {
            Manager::None => return Ok(()),
            Manager::Networkd => "org.freedesktop.network1",
            Manager::NetworkManager => "org.freedesktop.NetworkManager",
        };
        self.wait_for(Duration::from_secs(20), || {
            // (`busctl status` cannot read a peer's credentials across PID namespaces.)
            self.run_in_host(
                "busctl",
                &["--system", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner", "s", name],
            )
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "b true")
        })
        .with_context(|| format!("{name} did not appear on the lab's bus:\n{}", self.manager_log()))?;
        if self.options.manager == Manager::NetworkManager {
            // NetworkManager owns its name before it exports its objects; `Startup` turns
            // false once it has taken over the devices.
            let args =
                ["--system", "get-property", "org.freedesktop.NetworkManager", "/org/freedesktop/NetworkManager", "org.freedesktop.NetworkManager", "Startup"];
            self.wait_for(Duration::from_secs(30), || self.run_in_host("busctl", &args).is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "b false"))
                .with_context(|| format!("NetworkManager did not finish starting:\n{}", self.manager_log()))?;
        }
        Ok(())
    }

    fn host_command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.init_pid.to_string(), "--mount", "--net", "--uts", "--pid", "--"]).arg(program).args(args);
        c
    }

    /// Runs a program inside the lab host (its network, mount, UTS and PID namespaces) and
    /// waits for it. The exit status is the caller's to judge.
    pub fn run_in_host(&self, program: &str, args: &[&str]) -> anyhow::Result<Output> {
        self.host_command(program, args).output().with_context(|| format!("cannot run {program} in the lab host"))
    }

    /// `multihome ARGS` inside the lab host.
    pub fn multihome(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.run_in_host(&self.multihome.display().to_string(), args)
    }

    /// `multihome ARGS` inside the lab host; fails with its stderr unless it succeeds.
    pub fn multihome_ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.multihome(args)?;
        if !out.status.success() {
            bail!("multihome {} failed: {}{}", args.join(" "), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts a program in the lab host in the background; it ends with the lab.
    pub fn spawn_in_host(&mut self, program: &str, args: &[&str]) -> anyhow::Result<&mut Spawned> {
        let n = self.spawned.len();
        let log = self.dir.join(format!("log/spawned-{n}.log"));
        let mut cmd = self.host_command(program, args);
        let s = spawn_command(&mut cmd, &log)?;
        self.spawned.push(s);
        Ok(self.spawned.last_mut().expect("just pushed"))
    }

    /// `multihome ARGS` in the background in the lab host; it ends with the lab.
    pub fn spawn_multihome(&mut self, args: &[&str]) -> anyhow::Result<&mut Spawned> {
        let bin = self.multihome.display().to_string();
        self.spawn_in_host(&bin, args)
    }

    /// `multihome ARGS` in the background with the journal as its stderr, as systemd starts
    /// the unit: `JOURNAL_STREAM` names its log file, so it sends its entries over the native
    /// protocol to the lab host's /run/systemd/journal/socket (a test binds it there, see
    /// [`Lab::host_path`]) instead of writing lines.
    pub fn spawn_multihome_under_journal(&mut self, args: &[&str]) -> anyhow::Result<&mut Spawned> {
        use std::os::unix::fs::MetadataExt;
        let log = self.dir.join(format!("log/spawned-{}.log", self.spawned.len()));
        fs::create_dir_all(self.dir.join("log"))?;
        // The same inode spawn_command opens again (File::create truncates, it does not replace).
        let meta = fs::File::create(&log)?.metadata()?;
        let mut cmd = self.host_command(&self.multihome.display().to_string(), args);
        cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        let s = spawn_command(&mut cmd, &log)?;
        self.spawned.push(s);
        Ok(self.spawned.last_mut().expect("just pushed"))
    }

    /// `path` of the lab host's own mount namespace (its private /run) as this process reaches
    /// it: through the root of the host's first process.
    pub fn host_path(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{path}", self.init_pid))
    }

    /// Waits until a spawned process's `log` holds `text`; the error shows the log.
    pub fn wait_for_log(&self, log: &Path, text: &str, within: Duration) -> anyhow::Result<()> {
        let read = || fs::read_to_string(log).unwrap_or_default();
        self.wait_for(within, || read().contains(text)).map_err(|e| anyhow::anyhow!("{text:?} not in {}: {e}\n{}", log.display(), read()))
    }

    pub fn multihome_path(&self) -> &Path {
        &self.multihome
    }

    /// Starts the MPTCP (and plain TCP) stream echo on the internet host ([`stream`]), with
    /// path manager limits there that accept a joining subflow from every host uplink.
    pub fn start_stream_echo(&mut self) -> anyhow::Result<()> {
        ip(&self.internet(), &["mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8"])?;
        self._servers.push(stream::mptcp_echo(&self.internet(), INTERNET)?);
        Ok(())
    }

    /// Writes the policy the host sees as /etc/multihome/multihome.conf.
    pub fn write_policy(&self, text: &str) -> anyhow::Result<()> {
        fs::write(self.dir.join("etc/multihome/multihome.conf"), text).context("cannot write the lab policy")
    }

    /// Carrier loss (or return) on a host uplink: the switch's host port goes down.
    pub fn set_carrier(&self, uplink: &str, up: bool) -> anyhow::Result<()> {
        ip(&self.switch(uplink), &["link", "set", "dev", "host", if up { "up" } else { "down" }])?;
        Ok(())
    }

    /// Silent upstream failure (or repair): the switch's uplink port leaves its bridge, so the
    /// host keeps carrier but nothing behind the switch answers.
    pub fn set_upstream(&self, uplink: &str, up: bool) -> anyhow::Result<()> {
        let sw = self.switch(uplink);
        if up {
            ip(&sw, &["link", "set", "dev", "trunk", "master", "br0"])?;
        } else {
            ip(&sw, &["link", "set", "dev", "trunk", "nomaster"])?;
        }
        Ok(())
    }

    /// One new outbound "connection" from the host: the source address the internet saw.
    pub fn outbound_source(&self, timeout: Duration) -> Option<Ipv4Addr> {
        echo::udp_probe(&self.host(), INTERNET, timeout).ok().flatten()
    }

    /// Waits until new outbound connections leave with `uplink`'s seed address; the error
    /// names the last address seen and the host's routes.
    pub fn outbound_settles_on(&self, uplink: &str, within: Duration) -> anyhow::Result<()> {
        let want = seed_address(uplink);
        let mut last = None;
        self.wait_for(within, || {
            last = self.outbound_source(Duration::from_millis(300));
            last == Some(want)
        })
        .map_err(|_| {
            anyhow::anyhow!(
                "new connections did not move to {uplink} ({want}) within {within:?}; the last left with {last:?}\n{}",
                self.ip_host(&["route"]).unwrap_or_default()
            )
        })
    }

    /// The kernel's operational state of a host link (UP, DOWN, ...).
    pub fn operstate(&self, iface: &str) -> String {
        self.ip_host(&["-j", "link", "show", "dev", iface])
            .ok()
            .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())
            .and_then(|v| v[0]["operstate"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The host's addresses, rules and routes, for comparing the state before and after a change
    /// that is taken back: routes sorted (the kernel lists them in the order they were re-added)
    /// and without the kernel's own `linkdown` marks.
    pub fn kernel_state(&self) -> anyhow::Result<String> {
        let mut s = self.ip_host(&["-4", "-br", "addr"])?;
        s.push_str(&self.ip_host(&["-4", "rule"])?);
        let routes = self.ip_host(&["-4", "route", "show", "table", "all"])?.replace(" linkdown", "");
        let mut routes: Vec<&str> = routes.lines().collect();
        routes.sort();
        s.push_str(&routes.join("\n"));
        Ok(s)
    }

    /// A TCP connection from the internet host to `host_addr`: whether it was answered.
    pub fn inbound(&self, host_addr: impl Into<IpAddr>, timeout: Duration) -> bool {
        echo::tcp_roundtrip(&self.internet(), host_addr, timeout).unwrap_or(false)
    }

    /// Packets the host has sent on `iface`.
    pub fn tx_packets(&self, iface: &str) -> anyhow::Result<u64> {
        let out = ip(&self.host(), &["-s", "-j", "link", "show", "dev", iface])?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        v[0]["stats64"]["tx"]["packets"].as_u64().context("no tx counter in `ip -s -j link`")
    }

    /// `ip ARGS` in the lab host, as text.
    pub fn ip_host(&self, args: &[&str]) -> anyhow::Result<String> {
        Ok(String::from_utf8_lossy(&ip(&self.host(), args)?.stdout).into_owned())
    }

    /// The interfaces of the daemon's default-route copies in main (protocol 77) of one family
    /// (`ip`'s "-4" or "-6"), best first: empty while no uplink (of that family) is demoted.
    pub fn daemon_copies(&self, family: &str) -> Vec<String> {
        let out = self.ip_host(&[family, "route", "show", "table", "main", "proto", "77", "default"]).unwrap_or_default();
        let mut routes: Vec<(u32, String)> = out
            .lines()
            .filter_map(|l| {
                let word = |key: &str| l.split_whitespace().skip_while(|w| *w != key).nth(1).map(str::to_string);
                Some((word("metric")?.parse().ok()?, word("dev")?))
            })
            .collect();
        routes.sort();
        routes.into_iter().map(|(_, dev)| dev).collect()
    }

    /// Polls `cond` every 20 ms until it holds or `timeout` passes.
    pub fn wait_for(&self, timeout: Duration, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
        let end = Instant::now() + timeout;
        loop {
            if cond() {
                return Ok(());
            }
            if Instant::now() > end {
                bail!("condition not met within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Gives NetworkManager a plain DHCP profile `lab-IFACE` for `iface`, as a user would
    /// have it, and brings it up (a lease, when the lab runs dnsmasq).
    pub fn activate_user_dhcp_profile(&self, iface: &str) -> anyhow::Result<()> {
        let keyfile = self.dir.join(format!("etc/NetworkManager/system-connections/lab-{iface}.nmconnection"));
        let text = format!("[connection]\nid=lab-{iface}\ntype=ethernet\ninterface-name={iface}\n\n[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=disabled\n");
        crate::backend::files::write_atomically(&keyfile, text.as_bytes(), 0o600)?;
        for args in [&["connection", "reload"][..], &["--wait", "30", "connection", "up", &format!("lab-{iface}")]] {
            let out = self.run_in_host("nmcli", args)?;
            if !out.status.success() {
                bail!("nmcli {}: {}{}", args.join(" "), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            }
        }
        Ok(())
    }

    /// Lines where networkd complained about a file multihome wrote (an unknown key, an invalid
    /// value): a rendered key that networkd rejects is a bug even when everything else passes.
    pub fn networkd_complaints(&self) -> Vec<String> {
        self.manager_log()
            .lines()
            .filter(|l| l.contains("multihome") && ["Unknown", "Invalid", "Failed to parse", "ignoring"].iter().any(|w| l.contains(w)))
            .map(str::to_string)
            .collect()
    }

    pub fn manager_log(&self) -> String {
        fs::read_to_string(self.dir.join("log/manager.log")).unwrap_or_default()
    }

    pub fn log(&self, name: &str) -> String {
        fs::read_to_string(self.dir.join("log").join(name)).unwrap_or_default()
    }

    fn cleanup(&mut self) {
        for s in self.spawned.iter_mut().chain(self.dnsmasq.iter_mut()).chain(self.init.iter_mut()) {
            let _ = s.signal(Signal::SIGKILL);
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
        self.spawned.clear();
        self.dnsmasq = None;
        self.init = None;
        self._servers.clear();
        topology::destroy(&self.names);
        // MULTIHOME_KEEP_LAB=1 keeps the directory (logs, rendered files) for reading.
        if std::env::var_os("MULTIHOME_KEEP_LAB").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.cleanup();
        match root_guard::snapshot().map(|after| root_guard::difference(&self.root_before, &after)) {
            Ok(None) => {}
            Ok(Some(diff)) => {
                let msg = format!("THE LAB CHANGED THE ROOT NETWORK NAMESPACE:\n{diff}");
                if std::thread::panicking() { eprintln!("{msg}") } else { panic!("{msg}") }
            }
            Err(e) => eprintln!("cannot check the root namespace after the lab: {e:#}"),
        }
    }
}

fn spawn(program: &str, args: &[&str], log: &Path) -> anyhow::Result<Spawned> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    spawn_command(&mut cmd, log)
}

fn spawn_command(cmd: &mut Command, log: &Path) -> anyhow::Result<Spawned> {
    if let Some(parent) = log.parent() {
        fs::create_dir_all(parent)?;
    }
    let out = fs::File::create(log)?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        // Its own process group, so the lab can end it with everything it started.
        .process_group(0);
    // Killed when the thread that owns the lab dies without dropping it (Ctrl-C on `cargo
    // test`, SIGKILL): the host's init takes the manager and all its PID namespace with it.
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().context("cannot start a lab process")?;
    Ok(Spawned { child, log: log.to_path_buf() })
}

/// The first process named `comm` below `pid` (its children, then theirs).
fn descendant_named(pid: u32, comm: &str) -> Option<u32> {
    let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()).find_map(|c| {
        let name = fs::read_to_string(format!("/proc/{c}/comm")).unwrap_or_default();
        if name.trim() == comm { Some(c) } else { descendant_named(c, comm) }
    })
}
