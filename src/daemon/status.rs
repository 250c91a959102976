//! `multihome status`: the daemon's view over D-Bus, as a table or JSON, and the maintenance
//! calls. "No daemon" is its own error ([`NotRunning`]) so the command can exit with 3.

use std::fmt::Write as _;

use super::bus::{BUS_NAME, DaemonProxy, Snapshot, UplinkStatus};

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
    Ok(Snapshot { uplinks: p.uplinks().await?.into_iter().map(UplinkStatus::from).collect(), active: p.active().await?, policy: p.policy().await? })
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
    for u in &s.uplinks {
        let mark = if u.interface == s.active { "*" } else { " " };
        let latency = u.latency_ms.map_or("-".to_string(), |ms| format!("{ms:.2} ms"));
        let _ = writeln!(
            out,
            "{mark}{:<15} {:<12} {:>5.0}% {:>9}  {:<18} {:<15}  {}",
            u.interface,
            u.state,
            u.loss_percent,
            latency,
            if u.address.is_empty() { "-" } else { &u.address },
            if u.gateway.is_empty() { "-" } else { &u.gateway },
            u.reason
        );
    }
    out.extend(super::mptcp::render(s));
    if s.active.is_empty() {
        let _ = writeln!(out, "No uplink is healthy: new connections follow the main table.");
    } else {
        let _ = writeln!(out, "New connections leave via {} (*).", s.active);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_marks_the_active_uplink_and_says_it() {
        let s = Snapshot {
            uplinks: vec![
                UplinkStatus {
                    interface: "eth0".into(),
                    rank: 0,
                    state: "down".into(),
                    loss_percent: 100.0,
                    latency_ms: None,
                    reason: "3 probe rounds in a row failed".into(),
                    carrying: false,
                    address: "192.168.178.99/24".into(),
                    gateway: "192.168.178.1".into(),
                    mptcp: Default::default(),
                },
                UplinkStatus {
                    interface: "wlan1".into(),
                    rank: 1,
                    state: "up".into(),
                    loss_percent: 0.0,
                    latency_ms: Some(0.25),
                    reason: String::new(),
                    carrying: true,
                    address: "192.168.178.98/24".into(),
                    gateway: "192.168.178.1".into(),
                    mptcp: Default::default(),
                },
            ],
            active: "wlan1".into(),
            policy: "/etc/multihome/multihome.conf".into(),
        };
        let t = render(&s);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].starts_with(" eth0 ") && lines[1].contains("down") && lines[1].contains("100%"), "{t}");
        assert!(lines[2].starts_with("*wlan1") && lines[2].contains("0.25 ms"), "{t}");
        assert_eq!(lines[3], "New connections leave via wlan1 (*).");
    }
}
