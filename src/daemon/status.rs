//! `multihome status`: the daemon's view over D-Bus, as a table or JSON, and the maintenance
//! calls. "No daemon" is its own error ([`NotRunning`]) so the command can exit with 3.

use std::fmt::Write as _;

use super::bus::{BUS_NAME, DaemonProxy};
use super::status_record::{FamilyStatus, Snapshot, UplinkStatus};

/// No daemon answers on the system bus (or there is no system bus).
#[derive(Debug, thiserror::Error)]
#[error("the multihome daemon is not running: {0}")]
pub struct NotRunning(pub String);

async fn proxy() -> anyhow::Result<(zbus::Connection, DaemonProxy<'static>)> {
    let conn = zbus::Connection::system().await.map_err(|e| NotRunning(format!("no system bus ({e})")))?;
    if !crate::bus::has_owner(&conn, BUS_NAME).await? {
        return Err(NotRunning(format!("nobody owns {BUS_NAME} on the system bus")).into());
    }
    let proxy = DaemonProxy::builder(&conn).cache_properties(zbus::proxy::CacheProperties::No).build().await?;
    Ok((conn, proxy))
}

/// Reads the daemon's state.
pub async fn fetch() -> anyhow::Result<Snapshot> {
    let (_conn, p) = proxy().await?;
    // A daemon from before IPv6 has no Active6: no uplink of it carries IPv6.
    let active6 = p.active6().await.unwrap_or_default();
    Ok(Snapshot {
        uplinks: p.uplinks().await?.iter().map(UplinkStatus::from_entry).collect(),
        active: p.active().await?,
        active6,
        policy: p.policy().await?,
        max_loss_percent: None,
    })
}

/// A maintenance order or a reload, as the CLI names them.
pub enum Call<'a> {
    Reload,
    ForceDown(&'a str),
    ForceUp(&'a str),
    Release(&'a str),
}

pub async fn call(c: Call<'_>) -> anyhow::Result<()> {
    let (_conn, p) = proxy().await?;
    match c {
        Call::Reload => p.reload().await?,
        Call::ForceDown(i) => p.force_down(i).await?,
        Call::ForceUp(i) => p.force_up(i).await?,
        Call::Release(i) => p.release(i).await?,
    }
    Ok(())
}

/// The human table.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<16} {:<12} {:>6} {:>9}  {:<18} {:<15}  REASON", "UPLINK", "STATE", "LOSS", "LATENCY", "ADDRESS", "GATEWAY");
    let row = |out: &mut String, mark: bool, name: &str, f: &FamilyStatus| {
        let latency = f.latency_ms.map_or("-".to_string(), |ms| format!("{ms:.2} ms"));
        let _ = writeln!(
            out,
            "{}{:<15} {:<12} {:>5.0}% {:>9}  {:<18} {:<15}  {}",
            if mark { "*" } else { " " },
            name,
            f.state,
            f.loss_percent,
            latency,
            if f.address.is_empty() { "-" } else { &f.address },
            if f.gateway.is_empty() { "-" } else { &f.gateway },
            f.reason
        );
    };
    for u in &s.uplinks {
        row(&mut out, u.interface == s.active, &u.interface, &u.v4);
        // Its IPv6 side on a line of its own under it: each family is judged on its own.
        if let Some(v6) = &u.ipv6 {
            let mark = u.interface == s.active6;
            row(&mut out, mark, "  IPv6", v6);
        }
    }
    out.extend(super::mptcp::render(s));
    if s.uplinks.iter().any(|u| u.bond_active.is_some()) {
        // Mode=bond: the kernel's bond chose; there is no main table to follow.
        if s.active.is_empty() {
            let _ = writeln!(out, "The bond has no active slave: no slave is up.");
        } else {
            let _ = writeln!(out, "The bond's active slave is {} (*): all traffic, established connections too, goes through it.", s.active);
        }
    } else if s.active.is_empty() {
        let _ = writeln!(out, "No uplink is healthy: new connections follow the main table.");
    } else {
        let _ = writeln!(out, "New connections leave via {} (*).", s.active);
    }
    if s.uplinks.iter().any(|u| u.ipv6.is_some()) {
        if s.active6.is_empty() {
            let _ = writeln!(out, "No uplink's IPv6 is healthy: new IPv6 connections follow the main table.");
        } else {
            let _ = writeln!(out, "New IPv6 connections leave via {} (* on an IPv6 line).", s.active6);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fsm::State;
    use super::super::status_record::Shown;
    use super::*;

    #[test]
    fn the_table_marks_the_active_uplink_and_says_it() {
        let s = Snapshot {
            uplinks: vec![
                UplinkStatus {
                    interface: "eth0".into(),
                    rank: 0,
                    v4: FamilyStatus {
                        state: State::Down.into(),
                        loss_percent: 100.0,
                        latency_ms: None,
                        reason: "3 probe rounds in a row failed".into(),
                        carrying: false,
                        address: "192.168.178.99/24".into(),
                        gateway: "192.168.178.1".into(),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                UplinkStatus {
                    interface: "wlan1".into(),
                    rank: 1,
                    v4: FamilyStatus {
                        state: State::Up.into(),
                        loss_percent: 0.0,
                        latency_ms: Some(0.25),
                        reason: String::new(),
                        carrying: true,
                        address: "192.168.178.98/24".into(),
                        gateway: "192.168.178.1".into(),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            ],
            active: "wlan1".into(),
            active6: String::new(),
            policy: "/etc/multihome/multihome.conf".into(),
            max_loss_percent: None,
        };
        let t = render(&s);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].starts_with(" eth0 ") && lines[1].contains("down") && lines[1].contains("100%"), "{t}");
        assert!(lines[2].starts_with("*wlan1") && lines[2].contains("0.25 ms"), "{t}");
        assert_eq!(lines[3], "New connections leave via wlan1 (*).");
        assert_eq!(lines.len(), 4, "no IPv6 lines without IPv6: {t}");
    }

    #[test]
    fn the_ipv6_side_has_its_own_line_and_its_own_mark() {
        let v4 = |name: &str, state: State, v6_state: State, carrying6: bool| UplinkStatus {
            interface: name.into(),
            rank: 0,
            v4: FamilyStatus { state: state.into(), latency_ms: Some(0.2), carrying: true, ..Default::default() },
            ipv6: Some(FamilyStatus {
                state: v6_state.into(),
                loss_percent: if carrying6 { 0.0 } else { 100.0 },
                latency_ms: None,
                reason: String::new(),
                carrying: carrying6,
                address: "2001:db8:178::99/64".into(),
                gateway: "fe80::1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let s = Snapshot {
            uplinks: vec![v4("eth0", State::Up, State::Down, false), v4("wlan1", State::Up, State::Up, true)],
            active: "eth0".into(),
            active6: "wlan1".into(),
            policy: String::new(),
            max_loss_percent: None,
        };
        let t = render(&s);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].starts_with("*eth0 "), "{t}");
        assert!(lines[2].starts_with("   IPv6 ") && lines[2].contains("down") && lines[2].contains("fe80::1"), "{t}");
        assert!(lines[3].starts_with(" wlan1 "), "{t}");
        assert!(lines[4].starts_with("*  IPv6 ") && lines[4].contains("up"), "{t}");
        assert_eq!(lines[6], "New IPv6 connections leave via wlan1 (* on an IPv6 line).");
    }

    #[test]
    fn in_bond_mode_the_table_names_the_active_slave() {
        let slave = |interface: &str, rank, mii: &str, active| UplinkStatus {
            interface: interface.into(),
            rank,
            v4: FamilyStatus { state: Shown::parse(mii), carrying: active, gateway: "192.168.178.1".into(), ..Default::default() },
            bond_active: Some(active),
            mii: Some(mii.into()),
            ipv6: None,
            ..Default::default()
        };
        let s = Snapshot {
            uplinks: vec![slave("eth3", 0, "down", false), slave("eth4", 1, "up", true)],
            active: "eth4".into(),
            active6: String::new(),
            policy: String::new(),
            max_loss_percent: None,
        };
        let t = render(&s);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].starts_with(" eth3 ") && lines[1].contains("down"), "{t}");
        assert!(lines[2].starts_with("*eth4 ") && lines[2].contains("up"), "{t}");
        assert!(lines[3].starts_with("The bond's active slave is eth4 (*)"), "{t}");
    }
}
