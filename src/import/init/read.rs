//! The one part of `init` that does I/O: which manager runs (the backends' own choice for
//! `Backend=auto`), and what it holds. NetworkManager: its devices, the profile active on each
//! and the profiles it could take (available connections, and those bound to its name), over
//! D-Bus. systemd-networkd: its .network files and drop-ins (the survey's reading, openat2 and
//! all) and its links from its D-Bus `Describe`. Both: the routers of the kernel's default
//! routes in main, for the probe targets of DHCP uplinks. Nothing is changed anywhere.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use anyhow::Context;

use super::{Found, networkd, nm};
use crate::backend::networkd::{live, survey};
use crate::backend::nm::connection;
use crate::backend::nm::proxies::{ActiveProxy, DeviceProxy, DeviceState, NetworkManagerProxy};
use crate::backend::nm::survey::{all_profiles, interface_name};
use crate::backend::{Backend, Root};
use crate::netlink::Netlink;
use crate::plan::Table;
use crate::policy;

/// Reads the running manager.
pub async fn read() -> anyhow::Result<Found> {
    let root = Root::system()?;
    match Backend::choose(policy::Backend::Auto, &root).await {
        Backend::NetworkManager => read_networkmanager().await,
        Backend::Networkd => read_networkd(&root).await,
    }
}

/// The IPv4 router of each interface's default route in main (multihome's own routes aside): what
/// a lease gave. Empty when the kernel cannot be asked; only probe targets depend on it.
async fn routers_now() -> BTreeMap<String, Ipv4Addr> {
    let Ok(netlink) = Netlink::connect() else { return BTreeMap::new() };
    let (Ok(links), Ok(routes)) = (netlink.links().await, netlink.routes_in(Table::Main).await) else { return BTreeMap::new() };
    let mut routes: Vec<_> = routes.into_iter().filter(|r| r.destination.prefix_len() == 0 && !r.is_ours()).collect();
    routes.sort_by_key(|r| r.metric);
    let mut out = BTreeMap::new();
    for r in routes {
        if let (Some(g), Some(l)) = (r.gateway, links.iter().find(|l| Some(l.index) == r.ifindex)) {
            out.entry(l.name.clone()).or_insert(g);
        }
    }
    out
}

async fn read_networkmanager() -> anyhow::Result<Found> {
    let bus = connection::system_bus().await?;
    let profiles = all_profiles(&bus).await?;
    let nm = NetworkManagerProxy::new(&bus).await?;
    let version = nm.version().await.unwrap_or_default();
    let routers = routers_now().await;
    let mut devices = Vec::new();
    for (order, path) in nm.get_devices().await.context("NetworkManager's GetDevices")?.into_iter().enumerate() {
        let dev = DeviceProxy::builder(&bus).path(path.clone()).build().await?;
        let interface = dev.interface().await?;
        let active_path = match dev.active_connection().await? {
            a if a.as_str() == "/" => None,
            a => Some(ActiveProxy::builder(&bus).path(a).build().await?.connection().await?),
        };
        let available = dev.available_connections().await.unwrap_or_default();
        let active = active_path.as_ref().and_then(|a| profiles.iter().find(|(p, _)| p == a)).map(|(_, p)| p.clone());
        let others = profiles
            .iter()
            .filter(|(p, profile)| Some(p) != active_path.as_ref() && (available.contains(p) || interface_name(profile).as_deref() == Some(interface.as_str())))
            .map(|(_, profile)| profile.clone())
            .collect();
        devices.push(nm::Device {
            router_now: routers.get(&interface).copied(),
            interface,
            device_type: dev.device_type().await?,
            managed: DeviceState::from_number(dev.state().await?) != DeviceState::Unmanaged,
            order: u32::try_from(order).unwrap_or(u32::MAX),
            active,
            others,
        });
    }
    Ok(nm::found(&version, &devices))
}

async fn read_networkd(root: &Root) -> anyhow::Result<Found> {
    let files = survey::read(root)?;
    let described = live::links().await.context("systemd-networkd does not answer on the system bus (org.freedesktop.network1 Describe); is it running?")?;
    let routers = routers_now().await;
    let mut links: Vec<networkd::Link> =
        described.into_values().map(|l| networkd::Link { router_now: routers.get(&l.facts.name).copied(), index: l.index, facts: l.facts }).collect();
    links.sort_by_key(|l| l.index);
    Ok(networkd::found(&files, &links))
}
