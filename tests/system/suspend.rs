//! A laptop's night: the networkd machine with the seed and the daemon under its unit is
//! suspended to RAM the way a desktop does it (`systemctl suspend`: logind, systemd-suspend,
//! the kernel's ACPI S3, which qemu's PIIX4 offers) and woken (QMP `system_wakeup`, a key
//! press), twice: once with every link as it was, once after eth0's cable was pulled while it
//! slept and plugged back a few seconds after waking (a laptop carried to another desk). What
//! must hold: the guest really slept (its CLOCK_BOOTTIME counts the sleep, its CLOCK_MONOTONIC,
//! on which the daemon's probes and holds run, does not); no uplink that kept its link is
//! demoted by the gap; the states are right within 2 s of the links returning; the seed's rules
//! and routes and one MPTCP endpoint per uplink are there afterwards.

use std::time::{Duration, Instant};

use super::image;
use super::network::{self, Network};
use super::policy::{SEED_ROUTES, assert_seed_holds};
use super::seeded::{self, ENDPOINTS};

/// How long the machine sleeps each time.
const ASLEEP: Duration = Duration::from_secs(10);

/// Exits 0 when the daemon judges every uplink up and new connections leave via eth0; prints
/// what it sees either way.
const ALL_UP: &str = "multihome status --json | python3 -c 'import json,sys
s=json.load(sys.stdin); st={u[\"interface\"]: u[\"state\"] for u in s[\"uplinks\"]}
print(\" \".join(f\"{i}={v}\" for i, v in sorted(st.items())), \"active=\" + s[\"active\"])
sys.exit(0 if set(st.values()) == {\"up\"} and s[\"active\"] == \"eth0\" else 1)'";

/// The guest's two clocks, in seconds: CLOCK_MONOTONIC, then CLOCK_BOOTTIME.
const CLOCKS: &str = "python3 -c 'import time; print(time.clock_gettime(time.CLOCK_MONOTONIC), time.clock_gettime(time.CLOCK_BOOTTIME))'";

fn clocks(vm: &mut super::machine::Machine) -> anyhow::Result<(f64, f64)> {
    let out = vm.ok(CLOCKS)?;
    let mut it = out.split_whitespace().map(str::parse::<f64>);
    match (it.next(), it.next()) {
        (Some(Ok(m)), Some(Ok(b))) => Ok((m, b)),
        _ => anyhow::bail!("the guest's clocks: {out:?}"),
    }
}

/// The journal from now on: a cursor to read after (its last entry's: `-n 0` shows none).
fn cursor(vm: &mut super::machine::Machine) -> anyhow::Result<String> {
    let cursor = vm.ok("journalctl -n 1 --show-cursor --no-pager -o cat | sed -n 's/^-- cursor: //p'")?.trim().to_string();
    anyhow::ensure!(!cursor.is_empty(), "the guest's journal gave no cursor");
    Ok(cursor)
}

/// The daemon's state transitions logged after `cursor` ("[  81.234567] ... eth0: up ->
/// degraded (...)"), with networkd's carrier lines and the kernel's suspend lines among them.
fn transitions_after(vm: &mut super::machine::Machine, cursor: &str) -> anyhow::Result<Vec<String>> {
    let log = vm.ok(&format!("journalctl --no-pager -o short-monotonic --after-cursor='{cursor}'"))?;
    Ok(log
        .lines()
        .filter(|l| (l.contains(" multihome[") && l.contains(" -> ")) || l.contains(" carrier") || l.contains("PM: suspend"))
        .map(str::to_string)
        .collect())
}

/// The daemon's transitions alone.
fn of_the_daemon(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.contains(" multihome[")).collect()
}

/// A journal line's CLOCK_MONOTONIC time (`-o short-monotonic`: "[  81.234567] ...").
fn at(line: &str) -> Option<f64> {
    line.trim_start().strip_prefix('[')?.split(']').next()?.trim().parse().ok()
}

/// Suspends the guest with `systemctl suspend`, keeps it asleep for [`ASLEEP`] (running
/// `while_asleep` meanwhile), wakes it and waits for its agent; prints how long each step took.
fn sleep_and_wake(vm: &mut super::machine::Machine, while_asleep: impl FnOnce(&mut super::machine::Machine) -> anyhow::Result<()>) -> anyhow::Result<()> {
    // Detached: the command returns before the guest goes to sleep.
    vm.ok("setsid sh -c 'sleep 1; systemctl suspend' >/dev/null 2>&1 </dev/null &")?;
    let asked = Instant::now();
    loop {
        let state = vm.run_state()?;
        if state == "suspended" {
            break;
        }
        anyhow::ensure!(asked.elapsed() < Duration::from_secs(120), "the guest did not suspend within 120 s (qemu: {state})");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("suspend: asleep {:.1} s after `systemctl suspend` (1 s of it the command's own delay)", asked.elapsed().as_secs_f64());
    while_asleep(vm)?;
    std::thread::sleep(ASLEEP);
    let woken = Instant::now();
    vm.wake_up()?;
    eprintln!("resume: the agent answered {:.1} s after system_wakeup", woken.elapsed().as_secs_f64());
    let kernel = vm.ok("journalctl -k -b --no-pager -o short-monotonic | grep -E 'PM: suspend (entry|exit)' | tail -n 2")?;
    eprintln!("resume: the kernel's log:\n{kernel}");
    Ok(())
}

#[test]
fn suspend_and_resume_keep_the_uplinks_judged_right() -> anyhow::Result<()> {
    let _one = crate::one_machine_at_a_time();
    if !image::require() {
        return Ok(());
    }
    let started = Instant::now();
    let nics = network::seed_nics();
    let net = Network::build(&nics)?;
    let mut vm = seeded::boot(&net, &nics, &[("multihome.deb", &image::deb())])?;
    seeded::install(&mut vm, "multihome.deb")?;
    seeded::apply_seed(&mut vm)?;
    vm.ok("systemctl start multihome")?;
    vm.wait_for("every uplink up", ALL_UP, Duration::from_secs(60))?;
    vm.wait_for("every uplink's MPTCP endpoint", &format!("test $({ENDPOINTS}) -eq 3"), Duration::from_secs(10))?;
    let sleeps = vm.ok("cat /sys/power/state /sys/power/mem_sleep")?;
    assert!(sleeps.contains("mem"), "the guest cannot suspend to RAM (/sys/power/state, mem_sleep):\n{sleeps}");

    // 1. Asleep and awake, every link as it was: no uplink changes state.
    let pid = vm.ok("systemctl show -p MainPID --value multihome")?;
    let before = clocks(&mut vm)?;
    let mark = cursor(&mut vm)?;
    sleep_and_wake(&mut vm, |_| Ok(()))?;
    let after = clocks(&mut vm)?;
    let (monotonic, boottime) = (after.0 - before.0, after.1 - before.1);
    eprintln!("clocks across the first sleep: CLOCK_MONOTONIC +{monotonic:.1} s, CLOCK_BOOTTIME +{boottime:.1} s");
    // The sleep is in CLOCK_BOOTTIME alone (the RTC's whole seconds): a real suspend, not a
    // frozen guest, and the daemon's monotonic timers saw no gap.
    assert!(boottime - monotonic >= ASLEEP.as_secs_f64() - 2.0, "the guest did not sleep: CLOCK_BOOTTIME +{boottime:.1} s, CLOCK_MONOTONIC +{monotonic:.1} s");
    let woke = Instant::now();
    let states = vm.wait_for("every uplink up after the resume", ALL_UP, Duration::from_secs(30))?;
    eprintln!("after the first resume, {:.1} s after the agent answered: {}", woke.elapsed().as_secs_f64(), states.trim());
    std::thread::sleep(Duration::from_secs(3));
    let seen = transitions_after(&mut vm, &mark)?;
    eprintln!("the daemon's transitions (and networkd's carrier lines) around the first sleep:\n{}", seen.join("\n"));
    assert!(of_the_daemon(&seen).is_empty(), "a sleep with every link as it was changed the daemon's verdicts:\n{}", seen.join("\n"));
    assert_eq!(vm.ok("systemctl show -p MainPID --value multihome")?, pid, "the daemon was restarted across the sleep");
    assert_seed_holds(&mut vm)?;
    assert_eq!(vm.ok(ENDPOINTS)?.trim(), "3", "MPTCP endpoints after the resume:\n{}", vm.ok("ip mptcp endpoint show")?);

    // 2. eth0's cable pulled while asleep: awake, eth0 is demoted and new connections leave via
    // wlan1; wlan1 and wlan0 keep their verdicts. The cable back a few seconds later: every
    // state right within 2 s.
    let mark = cursor(&mut vm)?;
    sleep_and_wake(&mut vm, |vm| vm.set_link("eth0", false))?;
    let states = vm.wait_for(
        "eth0 demoted after the resume",
        "multihome status --json | python3 -c 'import json,sys
s=json.load(sys.stdin); st={u[\"interface\"]: u[\"state\"] for u in s[\"uplinks\"]}
print(st, s[\"active\"]); sys.exit(0 if st[\"eth0\"] in (\"no-carrier\", \"down\") and s[\"active\"] == \"wlan1\" else 1)'",
        Duration::from_secs(30),
    )?;
    eprintln!("after the second resume: {}", states.trim());
    std::thread::sleep(Duration::from_secs(3));
    // The guest's CLOCK_MONOTONIC (the journal's) just before the cable goes back: the moment
    // the link returns, at the latest (the agent's answer travels between the two).
    let (back_at, _) = clocks(&mut vm)?;
    let back = Instant::now();
    vm.set_link("eth0", true)?;
    let states = vm.wait_for("every uplink up after eth0's cable came back", ALL_UP, Duration::from_secs(30))?;
    eprintln!(
        "eth0's cable back: every uplink up and eth0 active seen {:.2} s later (agent round trips and 1 s polls included): {}",
        back.elapsed().as_secs_f64(),
        states.trim()
    );
    std::thread::sleep(Duration::from_secs(3));
    let seen = transitions_after(&mut vm, &mark)?;
    eprintln!("the daemon's transitions (and networkd's carrier lines) around the second sleep:\n{}", seen.join("\n"));
    let others: Vec<&String> = of_the_daemon(&seen).into_iter().filter(|l| l.contains("wlan1:") || l.contains("wlan0:")).collect();
    assert!(others.is_empty(), "uplinks that kept their link changed state across the sleep:\n{}", seen.join("\n"));
    // In the guest's own time: from the cable's return (networkd's "Gained carrier" when the
    // guest saw one, else the clock read just before it) to the daemon's return of eth0 to up,
    // which made every state right.
    let carrier = seen.iter().rev().find(|l| l.contains("eth0: Gained carrier")).and_then(|l| at(l)).filter(|t| *t >= back_at).unwrap_or(back_at);
    let up = seen.iter().rev().find(|l| l.contains(" eth0: ") && l.contains(" -> up ")).and_then(|l| at(l));
    let Some(up) = up else { anyhow::bail!("eth0 never went back to up in the journal:\n{}", seen.join("\n")) };
    eprintln!("eth0: cable back at {carrier:.3} s (guest CLOCK_MONOTONIC), up at {up:.3} s: {:.3} s", up - carrier);
    assert!(up - carrier <= 2.0, "eth0 up {:.3} s after its cable came back, not within 2 s:\n{}", up - carrier, seen.join("\n"));
    vm.wait_for("the seed's routes", SEED_ROUTES, Duration::from_secs(10))?;
    assert_seed_holds(&mut vm)?;
    assert_eq!(vm.ok(ENDPOINTS)?.trim(), "3", "MPTCP endpoints after the resume:\n{}", vm.ok("ip mptcp endpoint show")?);
    assert_eq!(vm.ok("systemctl show -p MainPID --value multihome")?, pid, "the daemon was restarted across the sleep");
    vm.journal()?;
    vm.passed();
    eprintln!("suspend test: {:.0} s in all", started.elapsed().as_secs_f64());
    Ok(())
}
