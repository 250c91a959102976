//! Bond mode through a running NetworkManager, the same transaction as the routes mode
//! ([`super::routes_apply`], in one [`super::checkpoint`]): survey (read only) -> checkpoint over the slaves' devices -> the bond's
//! profile added or updated, each slave's profile (the one the interface has, so a Wi-Fi profile
//! keeps its SSID and secrets, or a new wired one) made a slave -> the bond activated -> verified
//! (the bond and its primary activated) -> the checkpoint destroyed by `commit`. Any failure
//! rolls the checkpoint back, which also deletes the profiles it created.

use crate::backend::Root;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use zbus::{Connection, ObjectPath, OwnedObjectPath};

use super::checkpoint::{self, Applied, sysctl_file_changes};
use super::connection::system_bus;
use super::proxies::{DeviceProxy, DeviceState, NetworkManagerProxy};
use super::settings::bond::{bond_profile, diff, enslave, lines};
use super::settings::{self, Profile, created_for};
use super::survey::{self, active_profile, all_profiles, base_profile, bound_profile, device, profile_name};
use crate::backend::diff::{self as plan_diff, Action};
use crate::backend::files;
use crate::plan::Plan;
use crate::plan::bond::BondPlan;

/// How long the bond gets to come up with its primary. With `UpDelaySec=` the primary is used
/// only after its delay, so that counts too.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(20);
const VERIFY_INTERVAL: Duration = Duration::from_millis(200);

/// A profile as found: its path and settings, or `None` when it is to be created.
type Found = Option<survey::Found>;

struct Slave {
    interface: String,
    device: OwnedObjectPath,
    profile: Found,
    wanted: Profile,
}

impl Slave {
    fn label(&self) -> String {
        match &self.profile {
            Some((_, p)) => format!("profile {:?} on {}", profile_name(p), self.interface),
            None => format!("new profile {:?} on {}", settings::profile_id(&self.interface), self.interface),
        }
    }
}

struct Survey {
    bond: Found,
    bond_wanted: Profile,
    slaves: Vec<Slave>,
    /// multihome's own profiles the bond does not use (Mode=routes' for another interface).
    stale: Vec<(OwnedObjectPath, String, Option<OwnedObjectPath>)>,
}

fn changes(current: &Found, wanted: &Profile) -> bool {
    current.as_ref().is_none_or(|(_, p)| lines(p) != lines(wanted))
}

fn bond_label(b: &BondPlan, found: &Found) -> String {
    match found {
        Some((_, p)) => format!("profile {:?} of bond {}", profile_name(p), b.name),
        None => format!("new profile {:?} of bond {}", settings::profile_id(&b.name), b.name),
    }
}

async fn survey(bus: &Connection, b: &BondPlan) -> anyhow::Result<Survey> {
    let all = all_profiles(bus).await?;
    let nm = NetworkManagerProxy::new(bus).await?;
    let bond = all.iter().find(|(_, p)| created_for(p).as_deref() == Some(b.name.as_str())).cloned();
    let mut slaves = Vec::new();
    for interface in &b.slaves {
        let (device, dev) = device(bus, &nm, interface).await?;
        let profile = active_profile(bus, &dev, &all).await?.or_else(|| bound_profile(&all, interface));
        let mut base = base_profile(&dev, profile.as_ref(), interface, &format!(" to make a slave of {}", b.name)).await?;
        if profile.is_none() {
            base.remove(settings::IPV6);
        }
        slaves.push(Slave { interface: interface.clone(), device, wanted: enslave(&base, b), profile });
    }
    let mut stale = Vec::new();
    for (path, p) in &all {
        let Some(interface) = created_for(p) else { continue };
        if interface != b.name && !b.slaves.contains(&interface) {
            stale.push((path.clone(), profile_name(p), nm.get_device_by_ip_iface(&interface).await.ok()));
        }
    }
    Ok(Survey { bond, bond_wanted: bond_profile(b), slaves, stale })
}

/// `multihome plan --backend networkmanager` in bond mode.
pub async fn plan_diff(plan: &Plan, b: &BondPlan, root: &Root) -> anyhow::Result<Vec<plan_diff::Change>> {
    let bus = system_bus().await?;
    let s = survey(&bus, b).await?;
    let mut out = Vec::new();
    for (_, name, _) in &s.stale {
        out.push(plan_diff::Change {
            subject: format!("profile {name:?}"),
            action: Action::Remove,
            note: Some(format!("profile {name:?} is removed: the bond does not use its interface")),
            diff: String::new(),
        });
    }
    let label = bond_label(b, &s.bond);
    let text = diff(&label, s.bond.as_ref().map(|(_, p)| p), &s.bond_wanted);
    if !text.is_empty() {
        out.push(plan_diff::Change { subject: label, action: if s.bond.is_some() { Action::Update } else { Action::Create }, note: None, diff: text });
    }
    for sl in &s.slaves {
        let text = diff(&sl.label(), sl.profile.as_ref().map(|(_, p)| p), &sl.wanted);
        if !text.is_empty() {
            out.push(plan_diff::Change {
                subject: sl.label(),
                action: if sl.profile.is_some() { Action::Update } else { Action::Create },
                note: None,
                diff: text,
            });
        }
    }
    if !bond_is_up(&bus, b).await {
        out.push(plan_diff::Change {
            subject: b.name.clone(),
            action: Action::Activate,
            note: Some(format!("{}: the bond is activated with its slaves", b.name)),
            diff: String::new(),
        });
    }
    out.extend(plan_diff::Change::of_files(root.path(), &sysctl_file_changes(plan, root)?));
    Ok(out)
}

/// Applies the bond and keeps the checkpoint for [`checkpoint::commit`] or `revert`.
pub async fn apply_kept(plan: &Plan, b: &BondPlan, root: &Root, rollback_timeout: Duration) -> anyhow::Result<Applied> {
    let bus = system_bus().await?;
    let s = survey(&bus, b).await?;
    // Routes mode's sysctls (arp_ignore, rp_filter, ...) go back with its sysctl.d file.
    let sysctls = crate::backend::reset::sysctls_for_apply(plan, root)?;
    let file_changes = sysctl_file_changes(plan, root)?;
    let nothing = !changes(&s.bond, &s.bond_wanted)
        && s.slaves.iter().all(|sl| !changes(&sl.profile, &sl.wanted))
        && s.stale.is_empty()
        && file_changes.iter().all(|c| c.is_noop())
        && bond_is_up(&bus, b).await;
    if nothing {
        return Ok(Applied::default());
    }
    let devices: Vec<ObjectPath<'_>> =
        s.slaves.iter().map(|sl| sl.device.as_ref()).chain(s.stale.iter().filter_map(|(_, _, d)| d.as_ref().map(|d| d.as_ref()))).collect();
    let mut applied = checkpoint::open(&bus, &devices, rollback_timeout).await?;
    let result = change_and_verify(&bus, b, root, &s, &sysctls, &file_changes, &mut applied).await;
    checkpoint::settle(result, applied, root).await
}

/// Adds or updates `wanted` (at `found`, when there is one); returns its path.
async fn put(bus: &Connection, found: &Found, wanted: &Profile, label: &str, applied: &mut Applied) -> anyhow::Result<OwnedObjectPath> {
    checkpoint::put(bus, found.as_ref(), wanted, changes(found, wanted), label, applied).await
}

async fn change_and_verify(
    bus: &Connection,
    b: &BondPlan,
    root: &Root,
    s: &Survey,
    sysctls: &[crate::plan::Sysctl],
    file_changes: &[files::Change],
    applied: &mut Applied,
) -> anyhow::Result<()> {
    checkpoint::write_host_files(applied, root, sysctls, file_changes)?;
    for (path, name, _) in &s.stale {
        checkpoint::remove(bus, path, name, "the bond does not use its interface", applied).await?;
    }
    // The bond's profile first: NetworkManager checks that a slave's master exists.
    let bond_path = put(bus, &s.bond, &s.bond_wanted, &bond_label(b, &s.bond), applied).await?;
    let mut slave_paths = Vec::new();
    for sl in &s.slaves {
        slave_paths.push(put(bus, &sl.profile, &sl.wanted, &sl.label(), applied).await?);
    }
    let nm = NetworkManagerProxy::new(bus).await?;
    let root_path = ObjectPath::from_static_str_unchecked("/");
    nm.activate_connection(&bond_path.as_ref(), &root_path, &root_path)
        .await
        .with_context(|| format!("NetworkManager could not activate bond {} (does the kernel have the bonding driver?)", b.name))?;
    applied.changes.push(format!("activated bond {}", b.name));
    for (sl, path) in s.slaves.iter().zip(&slave_paths) {
        nm.activate_connection(&path.as_ref(), &sl.device.as_ref(), &root_path)
            .await
            .with_context(|| format!("NetworkManager could not activate {} as a slave of {}", sl.label(), b.name))?;
        applied.changes.push(format!("activated {} as a slave of {}", sl.interface, b.name));
    }
    verify(bus, b).await
}

async fn state_of(bus: &Connection, interface: &str) -> Option<DeviceState> {
    let nm = NetworkManagerProxy::new(bus).await.ok()?;
    let device = nm.get_device_by_ip_iface(interface).await.ok()?;
    let dev = DeviceProxy::builder(bus).path(device).build().await.ok()?;
    Some(DeviceState::from_number(dev.state().await.ok()?))
}

async fn bond_is_up(bus: &Connection, b: &BondPlan) -> bool {
    state_of(bus, &b.name).await == Some(DeviceState::Activated) && state_of(bus, &b.primary).await == Some(DeviceState::Activated)
}

/// Waits until the bond and its primary slave are activated.
async fn verify(bus: &Connection, b: &BondPlan) -> anyhow::Result<()> {
    let deadline = Instant::now() + VERIFY_TIMEOUT;
    loop {
        if bond_is_up(bus, b).await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let show = |s: Option<DeviceState>| s.map_or("absent".to_string(), |s| s.to_string());
            bail!(
                "after {} s bond {} is {} and its primary {} is {}, not both {}",
                VERIFY_TIMEOUT.as_secs(),
                b.name,
                show(state_of(bus, &b.name).await),
                b.primary,
                show(state_of(bus, &b.primary).await),
                DeviceState::Activated
            );
        }
        tokio::time::sleep(VERIFY_INTERVAL).await;
    }
}
