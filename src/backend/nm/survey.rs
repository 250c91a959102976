//! The read-only first step of an apply: each uplink's device and the profile bound to it (or
//! the one to create), what that profile should become, and multihome's own profiles that the
//! policy no longer needs. Nothing here changes NetworkManager's state.

use anyhow::{anyhow, bail};
use zbus::{Connection, OwnedObjectPath};

use super::proxies::{ActiveProxy, ConnectionProxy, DeviceProxy, DeviceState, NM_BUS_NAME, NetworkManagerProxy, SettingsIn, SettingsProxy};
use super::settings::{self, Profile, Wanted, created_for};
use crate::plan::Plan;

/// One uplink as found before anything is changed.
pub(super) struct Target {
    pub(super) interface: String,
    pub(super) device: OwnedObjectPath,
    pub(super) device_state: DeviceState,
    /// The profile bound to the interface and its settings, or `None` when one is created.
    pub(super) profile: Option<(OwnedObjectPath, Profile)>,
    /// What the profile should be.
    pub(super) merged: Profile,
    /// The device is active with this very profile.
    pub(super) active_with_profile: bool,
    /// The device's applied connection already has the merged values.
    pub(super) applied_matches: bool,
    pub(super) table: u32,
    pub(super) want: Wanted,
}

impl Target {
    pub(super) fn profile_changes(&self) -> bool {
        match &self.profile {
            None => true,
            Some((_, current)) => settings::needs_update(current, &self.merged),
        }
    }

    pub(super) fn can_activate(&self) -> bool {
        self.device_state >= DeviceState::Disconnected
    }

    pub(super) fn needs_activation(&self) -> bool {
        self.can_activate() && !(self.active_with_profile && self.applied_matches)
    }

    pub(super) fn label(&self) -> String {
        match &self.profile {
            Some((_, p)) => format!("profile {:?} on {}", profile_name(p), self.interface),
            None => format!("new profile {:?} on {}", settings::profile_id(&self.interface), self.interface),
        }
    }
}

pub fn profile_name(p: &Profile) -> String {
    p.get("connection").and_then(|c| c.get("id")).and_then(|v| String::try_from(v.clone()).ok()).unwrap_or_default()
}

pub fn to_profile(s: SettingsIn) -> Profile {
    s.into_iter().map(|(k, v)| (k, v.into_iter().collect())).collect()
}
/// A profile multihome created for an uplink the policy no longer has.
pub(super) struct Stale {
    pub(super) path: OwnedObjectPath,
    pub(super) name: String,
    /// Its device, when it exists, so the checkpoint covers it.
    pub(super) device: Option<OwnedObjectPath>,
}

/// A user's profile for an interface that left the policy, which still holds routes and rules
/// multihome wrote (its record says which): they go, the rest of the profile stays.
pub(super) struct Released {
    pub(super) path: OwnedObjectPath,
    pub(super) interface: String,
    pub(super) profile: Profile,
    pub(super) released: Profile,
    /// Its device, when the profile is active on it (then it is reapplied, or activated again
    /// when it was a slave of multihome's bond).
    pub(super) active_on: Option<OwnedObjectPath>,
    /// It was a slave of multihome's bond, and is a plain profile again.
    pub(super) was_slave: bool,
}

impl Released {
    pub(super) fn label(&self) -> String {
        format!("profile {:?} on {}", profile_name(&self.profile), self.interface)
    }

    /// What releasing takes out of the profile, for the user.
    pub(super) fn what(&self) -> &'static str {
        if self.was_slave { "it is no longer a slave of multihome's bond" } else { "the routes and rules multihome wrote there are removed" }
    }
}

/// What apply works on: the uplinks, multihome's own profiles to remove, and the user's
/// profiles to take multihome's routes and rules out of.
pub(super) struct Survey {
    pub(super) targets: Vec<Target>,
    pub(super) stale: Vec<Stale>,
    pub(super) released: Vec<Released>,
}

/// Finds each uplink's device and profile and computes what it should become. Reads only.
pub(super) async fn survey(bus: &Connection, plan: &Plan) -> anyhow::Result<Survey> {
    let all_profiles = all_profiles(bus).await?;
    let nm = NetworkManagerProxy::new(bus).await?;
    let mut targets = Vec::new();
    for u in plan.uplinks() {
        let (device, dev) = device(bus, &nm, &u.interface).await?;
        let device_state = DeviceState::from_number(dev.state().await?);
        let active = active_profile(bus, &dev, &all_profiles).await?;
        let active_with_profile = active.is_some();
        let profile = active.or_else(|| bound_profile(&all_profiles, &u.interface));
        let want = Wanted::in_plan(plan, u);
        let base = base_profile(&dev, profile.as_ref(), &u.interface, "").await?;
        let merged = settings::merge(&base, &want);
        let applied_matches = if active_with_profile {
            let (applied, _) = dev.get_applied_connection(0).await?;
            // All that multihome owns, its record in `user` too: an applied connection that
            // lacks the record differs from its profile, and NetworkManager then refuses the
            // profile's secrets to a reactivation with that applied connection ("modified since
            // activation"), which a checkpoint's rollback is: a Wi-Fi station stayed
            // disconnected after `try`, its PSK stored but not given.
            settings::owned_lines(&to_profile(applied)) == settings::owned_lines(&merged)
        } else {
            false
        };
        targets.push(Target {
            interface: u.interface.clone(),
            device,
            device_state,
            profile,
            merged,
            active_with_profile,
            applied_matches,
            table: u.table,
            want,
        });
    }
    let mut stale = Vec::new();
    for (path, p) in &all_profiles {
        let Some(interface) = created_for(p) else { continue };
        if plan.uplink(&interface).is_none() {
            let device = nm.get_device_by_ip_iface(&interface).await.ok();
            stale.push(Stale { path: path.clone(), name: profile_name(p), device });
        }
    }
    let mut released = Vec::new();
    for (path, p) in &all_profiles {
        let Some(interface) = interface_name(p) else { continue };
        let in_use = targets.iter().any(|t| t.profile.as_ref().is_some_and(|(q, _)| q == path));
        if plan.uplink(&interface).is_some() || in_use || created_for(p).is_some() {
            continue;
        }
        let Some(without) = settings::release(p) else { continue };
        let mut active_on = None;
        if let Ok(device) = nm.get_device_by_ip_iface(&interface).await {
            let dev = DeviceProxy::builder(bus).path(device.clone()).build().await?;
            let active = dev.active_connection().await?;
            if active.as_str() != "/" && ActiveProxy::builder(bus).path(active).build().await?.connection().await? == *path {
                active_on = Some(device);
            }
        }
        let was_slave = settings::bond::is_ours(p);
        released.push(Released { path: path.clone(), interface, profile: p.clone(), released: without, active_on, was_slave });
    }
    Ok(Survey { targets, stale, released })
}

/// A profile as found: its path and settings.
pub type Found = (OwnedObjectPath, Profile);

/// Every profile NetworkManager has, once NetworkManager is known to run.
pub async fn all_profiles(bus: &Connection) -> anyhow::Result<Vec<Found>> {
    if !crate::bus::has_owner(bus, NM_BUS_NAME).await.unwrap_or(false) {
        bail!("NetworkManager is not running (nobody owns {NM_BUS_NAME} on the system bus); nothing was changed");
    }
    let mut all = Vec::new();
    for path in SettingsProxy::new(bus).await?.list_connections().await? {
        let conn = ConnectionProxy::builder(bus).path(path.clone()).build().await?;
        all.push((path, to_profile(conn.get_settings().await?)));
    }
    Ok(all)
}

/// `interface`'s device, which the policy needs: its absence ends the apply before any change.
pub(super) async fn device<'b>(bus: &'b Connection, nm: &NetworkManagerProxy<'_>, interface: &str) -> anyhow::Result<(OwnedObjectPath, DeviceProxy<'b>)> {
    let device = nm.get_device_by_ip_iface(interface).await.map_err(|e| anyhow!("NetworkManager has no device {interface} ({e}); nothing was changed"))?;
    let dev = DeviceProxy::builder(bus).path(device.clone()).build().await?;
    Ok((device, dev))
}

/// The profile active on `dev`, if any.
pub(super) async fn active_profile(bus: &Connection, dev: &DeviceProxy<'_>, all: &[Found]) -> anyhow::Result<Option<Found>> {
    let active = dev.active_connection().await?;
    if active.as_str() == "/" {
        return Ok(None);
    }
    let path = ActiveProxy::builder(bus).path(active).build().await?.connection().await?;
    if let Some(found) = all.iter().find(|(p, _)| *p == path) {
        return Ok(Some(found.clone()));
    }
    // Added since the listing: read it.
    let conn = ConnectionProxy::builder(bus).path(path.clone()).build().await?;
    Ok(Some((path, to_profile(conn.get_settings().await?))))
}

/// What the profile for `interface` starts from: the one it has, else a new one of its device's
/// type; multihome creates only wired ones (a Wi-Fi profile needs an SSID and a secret no policy
/// holds). `purpose` completes "has no NetworkManager profile" in the error.
pub(super) async fn base_profile(dev: &DeviceProxy<'_>, found: Option<&Found>, interface: &str, purpose: &str) -> anyhow::Result<Profile> {
    if let Some((_, p)) = found {
        return Ok(p.clone());
    }
    let kind = dev.device_type().await?;
    let Some(ctype) = settings::connection_type(kind) else {
        bail!(
            "{interface} has no NetworkManager profile{purpose}, and multihome creates only wired ones (device type {kind}); \
             connect it once (for Wi-Fi: nmcli device wifi connect SSID ifname {interface}) and apply again; nothing was changed"
        );
    };
    Ok(settings::new_profile(interface, ctype))
}

pub fn interface_name(p: &Profile) -> Option<String> {
    p.get("connection").and_then(|c| c.get("interface-name")).and_then(|v| String::try_from(v.clone()).ok()).filter(|i| !i.is_empty())
}

/// The profile an inactive interface would use: bound to it by `connection.interface-name`;
/// multihome's own first, else the one used last.
pub(super) fn bound_profile(all: &[(OwnedObjectPath, Profile)], interface: &str) -> Option<(OwnedObjectPath, Profile)> {
    let get = |p: &Profile, k: &str| p.get("connection").and_then(|c| c.get(k)).cloned();
    let mut bound: Vec<&(OwnedObjectPath, Profile)> =
        all.iter().filter(|(_, p)| get(p, "interface-name").and_then(|v| String::try_from(v).ok()).as_deref() == Some(interface)).collect();
    let own = settings::profile_id(interface);
    bound.sort_by_key(|(_, p)| {
        let ours = profile_name(p) == own;
        let used = get(p, "timestamp").and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
        (std::cmp::Reverse(ours), std::cmp::Reverse(used))
    });
    bound.first().map(|&(path, p)| (path.clone(), p.clone()))
}

#[cfg(test)]
mod tests {
    use zbus::{OwnedVariant, Variant};

    use super::*;

    fn profile(id: &str, uuid: &str, interface: Option<&str>, timestamp: u64) -> (OwnedObjectPath, Profile) {
        let v = |x: Variant<'static>| OwnedVariant::try_from(x).unwrap();
        let mut c = settings::Dict::new();
        c.insert("id".into(), v(id.to_string().into()));
        c.insert("uuid".into(), v(uuid.to_string().into()));
        if let Some(i) = interface {
            c.insert("interface-name".into(), v(i.to_string().into()));
        }
        c.insert("timestamp".into(), v(timestamp.into()));
        let path = OwnedObjectPath::try_from(format!("/org/freedesktop/NetworkManager/Settings/{timestamp}")).unwrap();
        (path, Profile::from([("connection".to_string(), c)]))
    }

    #[test]
    fn an_inactive_interface_takes_multihomes_profile_else_the_one_used_last() {
        let own_uuid = settings::profile_uuid("eth0").to_string();
        let old = profile("office", "u-1", Some("eth0"), 100);
        let recent = profile("home", "u-2", Some("eth0"), 200);
        let other = profile("wifi", "u-3", Some("wlan0"), 300);
        let unbound = profile("any", "u-4", None, 400);
        let all = vec![old.clone(), recent.clone(), other, unbound];
        assert_eq!(bound_profile(&all, "eth0").map(|(_, p)| profile_name(&p)).as_deref(), Some("home"));
        let mut with_own = all.clone();
        with_own.push(profile("multihome-eth0", &own_uuid, Some("eth0"), 1));
        assert_eq!(bound_profile(&with_own, "eth0").map(|(_, p)| profile_name(&p)).as_deref(), Some("multihome-eth0"));
        assert!(bound_profile(&all, "wlan1").is_none());
    }

    #[test]
    fn only_profiles_multihome_created_are_its_own() {
        let (_, own) = profile("multihome-eth0", &settings::profile_uuid("eth0").to_string(), Some("eth0"), 1);
        assert_eq!(created_for(&own).as_deref(), Some("eth0"));
        // A user's profile with the same name but its own UUID is never removed as stale.
        let (_, users) = profile("multihome-eth0", "4d3cf8cc-82c4-4e20-90e9-4a98a77e9828", Some("eth0"), 1);
        assert_eq!(created_for(&users), None);
        let (_, other) = profile("office", &settings::profile_uuid("eth0").to_string(), Some("eth0"), 1);
        assert_eq!(created_for(&other), None);
    }
}
