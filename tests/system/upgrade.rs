//! An upgrade from an earlier package version on the networkd machine, by dpkg's own path: the
//! earlier package (this tree's binary with a lower version, tests/system/image.rs) installed,
//! the seed applied, the daemon running under its unit with a maintenance order (`multihome
//! force down eth0`), an MPTCP connection open from the machine to the lab's internet host, then
//! `dpkg -i` of this version's package (prerm upgrade, unpack, postinst configure with the old
//! version, whose try-restart restarts the running daemon). Afterwards the order is still in
//! force, the seed's rules, tables and routes are there, one MPTCP endpoint per uplink, and the
//! open connection still echoes.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use multihome::lab::netns::ip;
use multihome::lab::stream;

use super::image;
use super::network::{self, Network};
use super::policy::assert_seed_holds;
use super::seeded::{self, ENDPOINTS};

const INTERNET: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

/// A long-lived MPTCP connection from the machine to the internet host's stream echo: a line
/// every 100 ms, each checked when it comes back. /run/mptcp-echo.count holds how many came
/// back and the longest wait between two (seconds); an error ends it, in /run/mptcp-echo.err.
const CLIENT: &str = r#"cat >/run/mptcp-echo.py <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)  # IPPROTO_MPTCP
s.settimeout(60)
s.connect(("198.51.100.10", 9))
n, last, worst = 0, time.monotonic(), 0.0
while True:
    msg = b"%08d\n" % n
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(len(msg) - len(got))
        if not chunk:
            sys.exit("the server closed the connection")
        got += chunk
    if got != msg:
        sys.exit("echo %r, sent %r" % (got, msg))
    now = time.monotonic()
    n, worst, last = n + 1, max(worst, now - last), now
    with open("/run/mptcp-echo.count.new", "w") as f:
        f.write("%d %.3f\n" % (n, worst))
    import os; os.replace("/run/mptcp-echo.count.new", "/run/mptcp-echo.count")
    time.sleep(0.1)
PY
setsid python3 /run/mptcp-echo.py >/run/mptcp-echo.err 2>&1 </dev/null &"#;

/// Echoes so far and the longest wait between two.
fn echoes(vm: &mut super::machine::Machine) -> anyhow::Result<(u64, f64)> {
    let out = vm.ok("cat /run/mptcp-echo.count 2>/dev/null || echo 0 0")?;
    let mut it = out.split_whitespace();
    match (it.next().map(str::parse), it.next().map(str::parse)) {
        (Some(Ok(n)), Some(Ok(w))) => Ok((n, w)),
        _ => anyhow::bail!("/run/mptcp-echo.count: {out:?}"),
    }
}

/// The daemon's status: eth0 forced down, wlan1 and wlan0 up, new connections via wlan1.
const FORCED: &str = "multihome status --json | python3 -c 'import json,sys
s=json.load(sys.stdin); st={u[\"interface\"]: u[\"state\"] for u in s[\"uplinks\"]}
print(\" \".join(f\"{i}={v}\" for i, v in sorted(st.items())), \"active=\" + s[\"active\"])
sys.exit(0 if st == {\"eth0\": \"forced-down\", \"wlan1\": \"up\", \"wlan0\": \"up\"} and s[\"active\"] == \"wlan1\" else 1)'";

#[test]
fn an_upgrade_keeps_orders_routes_endpoints_and_an_open_mptcp_connection() -> anyhow::Result<()> {
    let _one = crate::one_machine_at_a_time();
    if !image::require_earlier_deb() {
        return Ok(());
    }
    let started = Instant::now();
    let nics = network::seed_nics();
    let net = Network::build(&nics)?;
    // The server's path manager accepts a joining subflow from each of the machine's uplinks.
    ip(&net.names.internet(), &["mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8"])?;
    let _echo = stream::mptcp_echo(&net.names.internet(), INTERNET)?;
    let (deb, earlier) = (image::deb(), image::earlier_deb());
    let mut vm = seeded::boot(&net, &nics, &[("multihome.deb", &deb), ("multihome-earlier.deb", &earlier)])?;
    seeded::install(&mut vm, "multihome-earlier.deb")?;
    assert_eq!(vm.ok("dpkg-query -W -f '${Version}' multihome")?.trim(), image::EARLIER_VERSION);
    seeded::apply_seed(&mut vm)?;
    vm.ok("systemctl start multihome")?;
    vm.wait_for("eth0 up", "multihome status | grep -q 'New connections leave via eth0'", Duration::from_secs(60))?;
    vm.wait_for("every uplink's MPTCP endpoint", &format!("test $({ENDPOINTS}) -eq 3"), Duration::from_secs(10))?;

    // Maintenance on eth0, and a connection as an SSH session is: open across the upgrade.
    vm.ok("multihome force down eth0")?;
    vm.wait_for("eth0 forced down", FORCED, Duration::from_secs(30))?;
    vm.ok(CLIENT)?;
    vm.wait_for("the MPTCP connection echoing", "test $(cut -d' ' -f1 /run/mptcp-echo.count 2>/dev/null || echo 0) -ge 10", Duration::from_secs(60))?;
    let mptcp = vm.ok("ss -nMH dst 198.51.100.10")?;
    assert!(mptcp.contains("198.51.100.10:9"), "the connection is not an MPTCP one (ss -M):\n{mptcp}\n{}", vm.ok("cat /run/mptcp-echo.err")?);
    let subflows_before = vm.ok("ss -ntiH dst 198.51.100.10 | grep -c mptcp || true")?;
    let pid = vm.ok("systemctl show -p MainPID --value multihome")?;

    // The upgrade, as dpkg does it (apt's install of a newer .deb is the same).
    let (count_before, _) = echoes(&mut vm)?;
    let mark = vm.ok("journalctl -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p'")?.trim().to_string();
    let upgrading = Instant::now();
    let dpkg = vm.ok("DEBIAN_FRONTEND=noninteractive dpkg -i /mnt/multihome.deb 2>&1")?;
    let upgrade_took = upgrading.elapsed();
    eprintln!("dpkg -i took {:.1} s (agent round trip included):\n{dpkg}", upgrade_took.as_secs_f64());
    assert_eq!(vm.ok("dpkg-query -W -f '${Version}' multihome")?.trim(), env!("CARGO_PKG_VERSION"));
    let timeline = vm.ok(&format!("journalctl -u multihome --no-pager -o short-monotonic --after-cursor='{mark}'"))?;
    eprintln!("the daemon's journal through the upgrade:\n{timeline}");
    let new_pid = vm.ok("systemctl show -p MainPID --value multihome")?;
    assert_ne!(new_pid, pid, "the upgrade did not restart the running daemon (try-restart)");
    assert_eq!(vm.ok("systemctl is-active multihome")?.trim(), "active");

    // The order, the seed, the endpoints, the connection.
    let states = vm.wait_for("eth0 still forced down after the upgrade", FORCED, Duration::from_secs(30))?;
    eprintln!("after the upgrade: {}", states.trim());
    assert_seed_holds(&mut vm)?;
    assert!(vm.ok("ip -4 route get 198.51.100.10")?.contains("dev wlan1 "), "new connections do not leave via wlan1 after the upgrade");
    assert_eq!(vm.ok(ENDPOINTS)?.trim(), "3", "MPTCP endpoints after the upgrade:\n{}", vm.ok("ip mptcp endpoint show")?);
    vm.wait_for(
        "the MPTCP connection echoing after the upgrade",
        &format!("test $(cut -d' ' -f1 /run/mptcp-echo.count) -ge {}", count_before + 20),
        Duration::from_secs(30),
    )?;
    let (count_after, worst) = echoes(&mut vm)?;
    let err = vm.ok("cat /run/mptcp-echo.err")?;
    assert_eq!(err.trim(), "", "the MPTCP client failed");
    // Measured 0.26 and 0.29 s (an echo every 0.1 s): the restart costs the connection nothing like a
    // retransmission timeout; 2 s leaves room for a loaded emulated machine.
    assert!(worst < 2.0, "the MPTCP connection waited {worst:.3} s for an echo");
    let subflows_after = vm.ok("ss -ntiH dst 198.51.100.10 | grep -c mptcp || true")?;
    eprintln!(
        "the MPTCP connection: {count_before} echoes before the upgrade, {count_after} now; longest wait between two {worst:.3} s; TCP subflows {} before, {} after",
        subflows_before.trim(),
        subflows_after.trim()
    );
    vm.journal()?;
    vm.passed();
    eprintln!("upgrade test: {:.0} s in all", started.elapsed().as_secs_f64());
    Ok(())
}
