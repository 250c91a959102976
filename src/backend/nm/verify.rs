//! The last step of an apply: wait until the devices show what multihome set, and say what is
//! missing when they do not in time (the apply then rolls back).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use zbus::Connection;

use super::proxies::{DeviceProxy, DeviceState, Ip4ConfigProxy};
use super::settings;
use super::survey::{Target, to_profile};
use crate::netlink::Netlink;
use crate::plan::{Rule, Table};

/// How long the devices get to show the new configuration. A static profile is reapplied in
/// well under a second; a DHCP uplink needs its lease, which can take some seconds on Wi-Fi.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(20);
const VERIFY_INTERVAL: Duration = Duration::from_millis(100);

/// Waits until every activated device is up with the merged values and its table's routes.
pub(super) async fn verify(bus: &Connection, targets: &[&Target]) -> anyhow::Result<()> {
    let deadline = Instant::now() + VERIFY_TIMEOUT;
    let kernel = Netlink::connect().context("cannot read the kernel's rules to verify the apply")?;
    loop {
        let mut pending = Vec::new();
        let rules: Vec<Rule> = kernel.rules().await?.iter().filter_map(|r| r.as_plan_rule()).collect();
        for t in targets {
            if let Some(why) = not_yet(bus, t).await? {
                pending.push(format!("{}: {why}", t.interface));
            } else if let Some(missing) = t.want.rules.iter().find(|r| !rules.contains(r)) {
                pending.push(format!("{}: rule {missing} is not in the kernel", t.interface));
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("after {} s the devices do not show the policy: {}", VERIFY_TIMEOUT.as_secs(), pending.join("; "));
        }
        tokio::time::sleep(VERIFY_INTERVAL).await;
    }
}

/// `None` when the device shows what multihome set, else what is missing.
async fn not_yet(bus: &Connection, t: &Target) -> anyhow::Result<Option<String>> {
    let dev = DeviceProxy::builder(bus).path(t.device.clone()).build().await?;
    let state = DeviceState::from_number(dev.state().await?);
    if state != DeviceState::Activated {
        return Ok(Some(format!("device state {state}, not {}", DeviceState::Activated)));
    }
    let (applied, _) = dev.get_applied_connection(0).await?;
    if settings::ip_lines(&to_profile(applied)) != settings::ip_lines(&t.merged) {
        return Ok(Some("the applied connection differs from the profile".into()));
    }
    if t.want.method == "disabled" {
        // An IPv6-only uplink: nothing of IPv4 to see on the device.
        return Ok(None);
    }
    let config = dev.ip4_config().await?;
    if config.as_str() == "/" {
        return Ok(Some("no IPv4 configuration yet".into()));
    }
    let ip4 = Ip4ConfigProxy::builder(bus).path(config).build().await?;
    let addresses: Vec<String> = ip4.address_data().await?.iter().filter_map(|a| a.get("address").and_then(|v| String::try_from(v.clone()).ok())).collect();
    if addresses.is_empty() {
        // A DHCP uplink is "activated" before its lease arrives (ipv4.may-fail).
        return Ok(Some("no IPv4 address yet".into()));
    }
    if let Some(missing) = t.want.addresses.iter().find(|n| !addresses.contains(&n.addr().to_string())) {
        return Ok(Some(format!("address {missing} is not on the device")));
    }
    let routes = ip4.route_data().await?;
    for r in t.want.routes.iter().filter(|r| r.table == Table::Id(t.table)) {
        let found = routes.iter().any(|e| {
            let s = |k: &str| e.get(k).and_then(|v| String::try_from(v.clone()).ok());
            let u = |k: &str| e.get(k).and_then(|v| u32::try_from(v).ok());
            s("dest").as_deref() == Some(r.destination.network().to_string().as_str())
                && u("prefix") == Some(u32::from(r.destination.prefix_len()))
                && u("table") == Some(t.table)
                && s("next-hop").filter(|h| h != "0.0.0.0") == r.gateway.map(|g| g.to_string())
        });
        if !found {
            return Ok(Some(format!("route {} is not on the device", crate::plan::show_route(r, &t.interface))));
        }
    }
    Ok(None)
}
