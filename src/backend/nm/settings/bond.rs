//! Bond mode in NetworkManager's terms, without I/O: the bond's profile (`bond.options` in the
//! kernel's names, its addressing), and a slave's: the profile the interface already has (a
//! Wi-Fi profile keeps its SSID and secrets) with `connection.master`/`slave-type` set and no IP
//! settings. Enslaving is marked in the profile's user data, so that going back to Mode=routes
//! frees exactly the profiles multihome enslaved.

use std::collections::HashMap;
use std::net::IpAddr;

use super::record::user_data;
use super::{AddressEntry, Dict, IPV4, IPV6, IpSetting, Profile, owned, profile_id, profile_uuid};
use crate::backend::nm::bond::options;
use crate::plan::Addresses;
use crate::plan::bond::BondPlan;

/// The user-data key that says which of multihome's bonds a profile was made a slave of.
pub const SLAVE_KEY: &str = "multihome.bond";

/// The bond's own profile, as `apply` sends it (the keyfile renderer writes the same values).
pub fn bond_profile(b: &BondPlan) -> Profile {
    let mut p = Profile::new();
    let mut c = Dict::new();
    c.insert("id".into(), owned(profile_id(&b.name)));
    c.insert("uuid".into(), owned(profile_uuid(&b.name).to_string()));
    c.insert("type".into(), owned("bond".to_string()));
    c.insert("interface-name".into(), owned(b.name.clone()));
    // NM_SETTING_CONNECTION_AUTOCONNECT_SLAVES_YES: the slaves come up with the bond.
    c.insert("autoconnect-slaves".into(), owned(1i32));
    p.insert("connection".into(), c);
    let opts: HashMap<String, String> = options(b).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    p.insert("bond".into(), Dict::from([("options".to_string(), owned(opts))]));
    let ipv4 = match &b.addresses {
        Addresses::Static(nets) => IpSetting {
            method: Some("manual".into()),
            addresses: nets.iter().map(|n| AddressEntry::new(IpAddr::V4(n.addr()), n.prefix_len())).collect(),
            gateway: b.gateway.map(IpAddr::V4),
            ..Default::default()
        },
        Addresses::Dhcp(_) => IpSetting { method: Some("auto".into()), ..Default::default() },
    };
    ipv4.write(&mut p, IPV4);
    IpSetting { method: Some("auto".into()), ..Default::default() }.write(&mut p, IPV6);
    p
}

/// `current` (the interface's profile, or a new one) as a slave of the bond: everything it has
/// beyond IP stays (SSID, secrets, MTU, ...); IP settings go, since a slave has none.
pub fn enslave(current: &Profile, b: &BondPlan) -> Profile {
    let mut p = current.clone();
    let c = p.entry("connection".into()).or_default();
    c.insert("master".into(), owned(b.name.clone()));
    c.insert("slave-type".into(), owned("bond".to_string()));
    for setting in [IPV4, IPV6, "proxy"] {
        p.remove(setting);
    }
    // Mode=routes' record of its routes and rules went with ipv4.
    super::Record::erase(&mut p);
    set_user(&mut p, SLAVE_KEY, Some(&b.name));
    p
}

/// Whether `p` is a slave multihome made ([`enslave`]).
pub fn is_ours(p: &Profile) -> bool {
    user_data(p).contains_key(SLAVE_KEY)
}

/// Frees a profile multihome enslaved (back to Mode=routes); others are left as they are.
pub fn unslave(p: &mut Profile) {
    if !is_ours(p) {
        return;
    }
    if let Some(c) = p.get_mut("connection") {
        c.remove("master");
        c.remove("slave-type");
    }
    set_user(p, SLAVE_KEY, None);
}

fn set_user(p: &mut Profile, key: &str, value: Option<&str>) {
    let mut data = user_data(p);
    match value {
        Some(v) => data.insert(key.to_string(), v.to_string()),
        None => data.remove(key),
    };
    if data.is_empty() {
        p.remove("user");
        return;
    }
    let data: HashMap<String, String> = data.into_iter().collect();
    p.entry("user".into()).or_default().insert("data".into(), owned(data));
}

/// What bond mode decides in a profile, in nmcli's words: for `plan`'s diff and for deciding
/// whether a profile needs an update (applying twice changes nothing).
pub fn lines(p: &Profile) -> Vec<String> {
    let get = |s: &str, k: &str| p.get(s).and_then(|d| d.get(k)).cloned();
    let text = |s: &str, k: &str| get(s, k).and_then(|v| String::try_from(v).ok());
    let mut out = Vec::new();
    for key in ["type", "interface-name", "master", "slave-type"] {
        if let Some(v) = text("connection", key) {
            out.push(format!("connection.{key}: {v}"));
        }
    }
    if let Some(v) = get("connection", "autoconnect-slaves").and_then(|v| i32::try_from(v).ok()) {
        out.push(format!("connection.autoconnect-slaves: {v}"));
    }
    if let Some(opts) = get("bond", "options").and_then(|v| HashMap::<String, String>::try_from(v).ok()) {
        let mut opts: Vec<String> = opts.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        opts.sort();
        out.push(format!("bond.options: {}", opts.join(",")));
    }
    // A slave's IP settings are NetworkManager's normalisation, not multihome's: it has none.
    let slave = text("connection", "slave-type").is_some();
    for family in [IPV4, IPV6] {
        if p.contains_key(family) && !slave {
            let s = IpSetting::of(p, family);
            out.push(format!("{family}.method: {}", s.method.unwrap_or_default()));
            let addrs: Vec<String> = s.addresses.iter().map(|a| format!("{}/{}", a.address, a.prefix)).collect();
            if !addrs.is_empty() {
                out.push(format!("{family}.addresses: {}", addrs.join(", ")));
            }
            if let Some(gw) = s.gateway {
                out.push(format!("{family}.gateway: {gw}"));
            }
        }
    }
    if let Some(b) = user_data(p).get(SLAVE_KEY) {
        out.push(format!("user.{SLAVE_KEY}: {b}"));
    }
    out
}

/// The change from `current` to `wanted` as a unified diff of [`lines`], empty when none.
pub fn diff(label: &str, current: Option<&Profile>, wanted: &Profile) -> String {
    let old = current.map(|p| lines(p).join("\n") + "\n").unwrap_or_default();
    let new = lines(wanted).join("\n") + "\n";
    if old == new {
        return String::new();
    }
    let from = if current.is_some() { label.to_string() } else { "(no profile)".to_string() };
    similar::TextDiff::from_lines(&old, &new).unified_diff().context_radius(20).header(&from, label).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy;

    fn seed_bond() -> BondPlan {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/bond-seed/policy.conf")).unwrap();
        crate::plan::plan(&policy::parse("p", &text).unwrap()).bond().cloned().unwrap()
    }

    fn wifi_profile() -> Profile {
        let mut p = Profile::new();
        let mut c = Dict::new();
        c.insert("id".into(), owned("home".to_string()));
        c.insert("type".into(), owned("802-11-wireless".to_string()));
        c.insert("interface-name".into(), owned("wlan0".to_string()));
        p.insert("connection".into(), c);
        p.insert("802-11-wireless".into(), Dict::from([("ssid".to_string(), owned(b"home".to_vec()))]));
        p.insert("802-11-wireless-security".into(), Dict::from([("key-mgmt".to_string(), owned("wpa-psk".to_string()))]));
        IpSetting { method: Some("auto".into()), ..Default::default() }.write(&mut p, IPV4);
        p
    }

    #[test]
    fn a_wifi_profile_becomes_a_slave_keeping_its_ssid_and_is_freed_again() {
        let bond = seed_bond();
        let before = wifi_profile();
        let slave = enslave(&before, &bond);
        assert_eq!(slave["802-11-wireless"], before["802-11-wireless"]);
        assert_eq!(slave["802-11-wireless-security"], before["802-11-wireless-security"]);
        assert!(!slave.contains_key(IPV4), "a slave has no IP settings");
        assert!(lines(&slave).contains(&"connection.master: bond0".to_string()), "{:?}", lines(&slave));
        let mut freed = slave.clone();
        unslave(&mut freed);
        assert!(!lines(&freed).iter().any(|l| l.contains("master") || l.contains("slave") || l.contains(SLAVE_KEY)), "{:?}", lines(&freed));
        // A profile someone else made a slave stays one.
        let mut foreign = slave;
        set_user(&mut foreign, SLAVE_KEY, None);
        let kept = foreign.clone();
        unslave(&mut foreign);
        assert_eq!(foreign, kept);
    }

    /// `reset`, or the policy without the interface: the slave multihome made is released, a
    /// plain profile with its SSID and security again; one someone else made is not.
    #[test]
    fn a_slave_of_ours_is_released_and_no_other() {
        let slave = enslave(&wifi_profile(), &seed_bond());
        let freed = crate::backend::nm::settings::release(&slave).expect("multihome's slave is released");
        assert!(!is_ours(&freed) && !lines(&freed).iter().any(|l| l.contains("master") || l.contains("slave")), "{:?}", lines(&freed));
        assert_eq!(freed["802-11-wireless-security"], slave["802-11-wireless-security"]);
        assert!(!freed.contains_key("user"), "the user setting held only the slave's marker");
        let mut foreign = slave;
        set_user(&mut foreign, SLAVE_KEY, None);
        assert!(crate::backend::nm::settings::release(&foreign).is_none());
    }

    #[test]
    fn the_bond_profile_carries_the_plans_options() {
        let l = lines(&bond_profile(&seed_bond()));
        assert!(l.contains(&"connection.type: bond".to_string()), "{l:?}");
        let options = l.iter().find(|x| x.starts_with("bond.options: ")).unwrap();
        for o in ["mode=active-backup", "miimon=10", "updelay=4000", "downdelay=10", "primary=eth0", "fail_over_mac=active"] {
            assert!(options.split([' ', ',']).any(|x| x == o), "{options}");
        }
        assert!(l.contains(&"ipv4.method: auto".to_string()), "{l:?}");
    }
}
