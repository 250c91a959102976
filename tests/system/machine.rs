//! One Debian virtual machine under qemu (software emulation: `-accel tcg`), started inside the
//! lab's host namespace so that its NICs (taps) exist only there. It is driven through a test
//! agent on its second serial port (image.sh: a base64 command line in, its output and exit code
//! back); the first serial port is the console, kept in a file; QMP changes a NIC's carrier and
//! wakes a guest suspended to RAM.
//! Dropping it kills qemu by its pid and removes its files (overlay disk, sockets, logs), after
//! printing the journal and the console when the test failed.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::base64;
use super::image::Image;
use super::network::{Network, Nic};

/// From power-on to the agent under TCG on a busy 2-core machine: ~25 s alone, several times
/// that when four emulated machines share the cores.
const BOOT_TIMEOUT: Duration = Duration::from_secs(600);
/// One command through the agent (apt, journalctl under emulation are slow).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

pub struct Machine {
    dir: PathBuf,
    qemu: Child,
    agent: UnixStream,
    pending: Vec<u8>,
    boot_id: String,
    nics: Vec<Nic>,
    /// Set by the test at its end; a machine dropped without it (an error returned, a panic)
    /// prints its journal and console.
    passed: bool,
}

/// What a guest command printed (stdout and stderr) and its exit code.
pub struct Answer {
    pub code: i32,
    pub output: String,
}

impl Machine {
    /// Boots the image with `nics` in `net`, and a read-only second disk (/dev/vdb, ext4) with
    /// the files of `payload` (the .deb, policies): `mount /dev/vdb /mnt` in the guest.
    pub fn boot(image: &Image, net: &Network, nics: &[Nic], payload: &[(&str, &Path)]) -> anyhow::Result<Machine> {
        let dir = std::env::temp_dir().join(format!("multihome-lab-{}-vm", net.names.prefix));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("payload"))?;
        for (name, from) in payload {
            fs::copy(from, dir.join("payload").join(name)).with_context(|| format!("cannot copy {}", from.display()))?;
        }
        let run = |cmd: &mut Command| -> anyhow::Result<()> {
            let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
            if !out.status.success() {
                bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(())
        };
        // The cached root is never written: each boot writes into its own overlay.
        run(Command::new("qemu-img").args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"]).arg(image.root()).arg(dir.join("overlay.qcow2")))?;
        run(Command::new("mkfs.ext4").args(["-q", "-d"]).arg(dir.join("payload")).arg(dir.join("payload.img")).arg("64M"))?;

        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let mut args: Vec<String> = vec!["netns".into(), "exec".into(), net.host(), "qemu-system-x86_64".into()];
        let mut add = |a: &[&str]| args.extend(a.iter().map(|s| s.to_string()));
        add(&["-accel", "tcg", "-smp", "2", "-m", "1024", "-nodefaults", "-no-user-config", "-display", "none"]);
        // S3 (suspend to RAM) offered to the guest, as a laptop's firmware does (the pc machine's
        // power management is the PIIX4's; said explicitly: machine types and distributions
        // have changed this default).
        add(&["-global", "PIIX4_PM.disable_s3=0"]);
        add(&["-kernel", &image.vmlinuz().to_string_lossy(), "-initrd", &image.initrd().to_string_lossy()]);
        // panic=-1: a kernel panic reboots, and the test's timeout reports it with the console.
        add(&["-append", "console=ttyS0 root=/dev/vda rw net.ifnames=0 panic=-1"]);
        add(&["-drive", &format!("file={},if=virtio,format=qcow2", path("overlay.qcow2"))]);
        add(&["-drive", &format!("file={},if=virtio,format=raw,readonly=on", path("payload.img"))]);
        add(&["-chardev", &format!("file,id=console,path={}", path("console.log")), "-serial", "chardev:console"]);
        add(&["-chardev", &format!("socket,id=agent,path={},server=on,wait=off", path("agent.sock")), "-serial", "chardev:agent"]);
        add(&["-qmp", &format!("unix:{},server=on,wait=off", path("qmp.sock"))]);
        for nic in nics {
            add(&["-netdev", &format!("tap,id={},ifname={},script=no,downscript=no", nic.netdev(), nic.tap())]);
            add(&["-device", &format!("virtio-net-pci,netdev={},mac={}", nic.netdev(), nic.mac())]);
        }
        let log = fs::File::create(dir.join("qemu.log"))?;
        let mut cmd = Command::new("ip");
        cmd.args(&args).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        // qemu dies with the test's thread, also when the test process is killed outright.
        unsafe {
            cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from));
        }
        let qemu = cmd.spawn().context("cannot start qemu")?;
        let connect = || -> anyhow::Result<UnixStream> {
            let start = Instant::now();
            loop {
                match UnixStream::connect(dir.join("agent.sock")) {
                    Ok(s) => return Ok(s),
                    Err(e) if start.elapsed() > Duration::from_secs(30) => return Err(e).context("qemu's agent socket never appeared"),
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        };
        let agent = match connect() {
            Ok(a) => a,
            Err(e) => {
                let mut qemu = qemu;
                let _ = qemu.kill();
                let _ = qemu.wait();
                bail!("{e:#}: {}", fs::read_to_string(dir.join("qemu.log")).unwrap_or_default());
            }
        };
        let mut m = Machine { dir, qemu, agent, pending: Vec::new(), boot_id: String::new(), nics: nics.to_vec(), passed: false };
        m.boot_id = m.wait_for_agent()?;
        m.wait_for_boot()?;
        Ok(m)
    }

    /// The kernel's boot id of the running boot (a reboot changes it).
    pub fn boot_id(&self) -> &str {
        &self.boot_id
    }

    fn next_line(&mut self, deadline: Instant) -> anyhow::Result<String> {
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=i).collect();
                return Ok(String::from_utf8_lossy(&line).trim_end_matches(['\n', '\r']).to_string());
            }
            if let Some(status) = self.qemu.try_wait()? {
                bail!("qemu exited ({status}): {}\nconsole:\n{}", self.qemu_log(), self.console_tail(60));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("the machine did not answer in time\nconsole:\n{}", self.console_tail(60));
            }
            self.agent.set_read_timeout(Some(left.min(Duration::from_secs(1))))?;
            let mut buf = [0u8; 65536];
            match self.agent.read(&mut buf) {
                Ok(0) => bail!("qemu closed the agent's serial port"),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => return Err(e).context("reading the agent's serial port"),
            }
        }
    }

    fn wait_for_agent(&mut self) -> anyhow::Result<String> {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            let line = self.next_line(deadline)?;
            // The same boot's id again is the agent restarted, not a new boot.
            if let Some(id) = line.strip_prefix("AGENT READY ")
                && id.trim() != self.boot_id
            {
                return Ok(id.trim().to_string());
            }
        }
    }

    /// The agent starts early in the boot: the tests start from a booted machine (every unit
    /// started, udev done with the NICs' names). A failed unit is printed, not fatal: it may be
    /// what the test is about.
    fn wait_for_boot(&mut self) -> anyhow::Result<()> {
        let state = self.sh("systemctl is-system-running --wait; udevadm settle")?;
        if state.output.trim() != "running" {
            let failed = self.sh("systemctl --failed --no-pager")?;
            eprintln!("the machine booted {}:\n{}", state.output.trim(), failed.output);
        }
        Ok(())
    }

    /// Runs a shell command line as root in the guest (test code only: never input of multihome).
    pub fn sh(&mut self, command: &str) -> anyhow::Result<Answer> {
        self.agent.write_all(format!("{}\n", base64::encode(command.as_bytes())).as_bytes()).context("writing to the agent")?;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let line = self.next_line(deadline).with_context(|| format!("guest: {command}"))?;
            let Some(rest) = line.strip_prefix("AGENT OUT ") else { continue };
            let (b64, code) = rest.rsplit_once(' ').unwrap_or(("", rest));
            let output = String::from_utf8_lossy(&base64::decode(b64)?).into_owned();
            return Ok(Answer { code: code.trim().parse().with_context(|| format!("agent's exit code {code:?}"))?, output });
        }
    }

    /// `sh`, which must exit 0; its output.
    pub fn ok(&mut self, command: &str) -> anyhow::Result<String> {
        let a = self.sh(command)?;
        if a.code != 0 {
            bail!("guest: `{command}` exited {}:\n{}", a.code, a.output);
        }
        Ok(a.output)
    }

    /// Runs `command` every second until it exits 0; its output then.
    pub fn wait_for(&mut self, what: &str, command: &str, within: Duration) -> anyhow::Result<String> {
        let start = Instant::now();
        loop {
            let a = self.sh(command)?;
            if a.code == 0 {
                return Ok(a.output);
            }
            if start.elapsed() > within {
                bail!("guest: {what} not within {within:?}; `{command}` exited {}:\n{}", a.code, a.output);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Reboots the guest the way an administrator does (`systemctl reboot`) and waits for the
    /// new boot's agent.
    pub fn reboot(&mut self) -> anyhow::Result<()> {
        // Detached: the agent is stopped by the reboot and may not answer.
        self.ok("setsid sh -c 'sleep 1; systemctl reboot' >/dev/null 2>&1 </dev/null &")?;
        let id = self.wait_for_agent()?;
        self.boot_id = id;
        self.wait_for_boot()
    }

    /// A NIC's carrier, as a cable pulled and plugged (QMP set_link).
    pub fn set_link(&mut self, guest_name: &str, up: bool) -> anyhow::Result<()> {
        let nic = self.nics.iter().find(|n| n.guest_name == guest_name).with_context(|| format!("no NIC {guest_name}"))?;
        let netdev = nic.netdev();
        self.qmp(&format!(r#"{{"execute":"set_link","arguments":{{"name":"{netdev}","up":{up}}}}}"#))?;
        Ok(())
    }

    /// qemu's run state (QMP query-status): "running", "suspended" (the guest is in S3),
    /// "paused" (stopped by QMP), ...
    pub fn run_state(&mut self) -> anyhow::Result<String> {
        let answer = self.qmp(r#"{"execute":"query-status"}"#)?;
        let status = answer.split(r#""status":"#).nth(1).and_then(|s| s.trim_start().strip_prefix('"')).and_then(|s| s.split('"').next());
        status.map(str::to_string).with_context(|| format!("QMP query-status: {answer}"))
    }

    /// Wakes a guest suspended to RAM, as a key press or a lid opened does (QMP system_wakeup),
    /// and waits until its agent answers again.
    pub fn wake_up(&mut self) -> anyhow::Result<()> {
        self.qmp(r#"{"execute":"system_wakeup"}"#)?;
        self.resync(Duration::from_secs(120))
    }

    /// qemu resets the machine's devices on a wake-up, the serial ports too, and the guest's
    /// driver restores the port's settings only during its resume: a command sent before that
    /// arrives garbled (seen: "bash: line 1: Ք: command not found"). So: numbered echoes until
    /// one comes back right; the agent answers in order, so every answer after it is in step.
    fn resync(&mut self, within: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        for n in 0.. {
            let token = format!("AWAKE-{n}");
            self.agent.write_all(format!("{}\n", base64::encode(format!("echo {token}").as_bytes())).as_bytes()).context("writing to the agent")?;
            let deadline = (Instant::now() + Duration::from_secs(3)).min(start + within);
            loop {
                let line = match self.next_line(deadline) {
                    Ok(line) => line,
                    Err(_) if Instant::now() >= deadline => break,
                    Err(e) => return Err(e),
                };
                let Some(rest) = line.strip_prefix("AGENT OUT ") else { continue };
                let b64 = rest.rsplit_once(' ').map_or("", |(b, _)| b);
                if base64::decode(b64).is_ok_and(|out| String::from_utf8_lossy(&out).trim() == token) {
                    return Ok(());
                }
            }
            if start.elapsed() >= within {
                break;
            }
        }
        bail!("the agent did not answer within {within:?} after the wake-up\nconsole:\n{}", self.console_tail(60))
    }

    /// One QMP command on a fresh connection; its `"return"` line (events before it are skipped).
    fn qmp(&mut self, request: &str) -> anyhow::Result<String> {
        let mut qmp = UnixStream::connect(self.dir.join("qmp.sock")).context("qemu's QMP socket")?;
        qmp.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut reader = BufReader::new(qmp.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?; // the greeting
        for request in [r#"{"execute":"qmp_capabilities"}"#, request] {
            qmp.write_all(format!("{request}\n").as_bytes())?;
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    bail!("QMP closed");
                }
                if line.contains("\"return\"") {
                    break;
                }
                if line.contains("\"error\"") {
                    bail!("QMP {request}: {line}");
                }
            }
        }
        Ok(line)
    }

    /// This boot's journal, also kept in the machine's directory.
    pub fn journal(&mut self) -> anyhow::Result<String> {
        let text = self.ok("journalctl -b --no-pager -o short-monotonic")?;
        let _ = fs::write(self.dir.join(format!("journal-{}.txt", self.boot_id)), &text);
        Ok(text)
    }

    /// The test got to its end: nothing to print when dropped.
    pub fn passed(&mut self) {
        self.passed = true;
    }

    fn console_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(self.dir.join("console.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn qemu_log(&self) -> String {
        fs::read_to_string(self.dir.join("qemu.log")).unwrap_or_default()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if !self.passed {
            // What the guest saw, while it still runs (bounded: a hung guest must not hang the drop).
            let deadline = Instant::now() + Duration::from_secs(60);
            let command = "journalctl -b --no-pager -o short-monotonic | tail -n 150";
            if self.agent.write_all(format!("{}\n", base64::encode(command.as_bytes())).as_bytes()).is_ok() {
                while let Ok(line) = self.next_line(deadline) {
                    if let Some(rest) = line.strip_prefix("AGENT OUT ") {
                        let b64 = rest.rsplit_once(' ').map_or("", |(b, _)| b);
                        let text = base64::decode(b64).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_else(|e| format!("{e:#}"));
                        eprintln!("---- guest journal (last 150 lines) ----\n{text}");
                        break;
                    }
                }
            }
            eprintln!("---- guest console (last 40 lines) ----\n{}", self.console_tail(40));
        }
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
        if std::env::var_os("MULTIHOME_KEEP_LAB").is_some() {
            eprintln!("kept {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// One machine at a time. Under software emulation on a two-core host, two or three guests
/// starve each other: a CI run saw RCU stalls in the guest and networkd giving up on eth0 ("Failed
/// to wait for the interface to be initialized") after a reboot. Every test that boots holds this.
pub fn one_machine_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
