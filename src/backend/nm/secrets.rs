//! A user's profile keeps its secrets (a Wi-Fi PSK, 802.1X passwords, a WireGuard key, ...)
//! through every update multihome sends: an update that drops one of the profile's settings
//! carries the secrets NetworkManager stores, read just before with GetSecrets; any other is
//! left to NetworkManager's own merge.
//!
//! Why it must: GetSettings gives a profile without its secrets, and multihome sends it back
//! with its changes through Update2. NetworkManager (1.42 and later: `update_auth_cb` in
//! nm-settings-connection.c) merges the stored secrets into an update that carries none, but
//! that merge (`nm_connection_update_secrets` with the whole stored profile) does nothing at all
//! when the stored profile has a setting the update lacks; the update then replaces the profile
//! without its secrets, in memory and in its keyfile. multihome's updates do drop settings:
//! `reset`, and an uplink leaving the policy, drop the `user` setting that held only multihome's
//! record; enslaving a profile to the bond drops `ipv4`, `ipv6` and `proxy`; freeing it drops
//! `user` again. (Seen: `reset` took the PSK out of a Wi-Fi profile, `apply`, which only adds
//! `user`, kept it.) Such an update carries the stored secrets itself, so NetworkManager stores
//! exactly these and merges nothing; an update with every setting of the profile is left to
//! NetworkManager's merge, which keeps them.
//!
//! The secrets live only in the settings sent: never in a [`Profile`] that `plan`, the diffs,
//! the messages or the errors show, nor in a file multihome writes.

use std::collections::HashMap;

use anyhow::Context;
use zbus::{Connection, OwnedObjectPath, OwnedVariant};

use super::connection::to_wire;
use super::proxies::{self, ConnectionProxy};
use super::settings::{Dict, Profile, owned};
use super::survey::to_profile;

/// NetworkManager's settings with secret properties (as of 1.42, and `wifi-p2p` since).
pub const SECRET_SETTINGS: [&str; 10] = ["802-11-wireless-security", "802-1x", "wireguard", "vpn", "gsm", "cdma", "pppoe", "adsl", "macsec", "wifi-p2p"];

/// Sends `wanted` as the profile at `path` (read as `current`), written to disk; when it lacks
/// a setting `current` has, with the secrets NetworkManager stores for the secret settings both
/// have. `label` names the profile
/// in errors. When the secrets cannot be read, nothing is sent: an update without them could
/// drop them.
pub async fn update(bus: &Connection, path: &OwnedObjectPath, current: &Profile, wanted: &Profile, label: &str) -> anyhow::Result<()> {
    let conn = ConnectionProxy::builder(bus).path(path.clone()).build().await?;
    let mut stored = Profile::new();
    // An update with every setting the profile has is left to NetworkManager's own merge,
    // which keeps the secrets (tests/system/wifi_networkmanager.rs asks GetSecrets after each
    // apply); reading them costs a call that NetworkManager authorizes and answers by updating
    // the profile in memory, so only an update that drops a setting carries them.
    let drops_a_setting = current.keys().any(|k| !wanted.contains_key(k));
    for setting in SECRET_SETTINGS.into_iter().filter(|s| drops_a_setting && current.contains_key(*s) && wanted.contains_key(*s)) {
        let answer = conn
            .get_secrets(setting)
            .await
            .with_context(|| format!("cannot read the secrets of {label} ({setting}), which its update must carry to keep them; nothing was sent"))?;
        if let Some(values) = to_profile(answer).remove(setting) {
            stored.insert(setting.to_string(), values);
        }
    }
    let sent = with_secrets(wanted, &stored);
    conn.update2(to_wire(&sent), proxies::UPDATE2_TO_DISK, HashMap::new()).await.with_context(|| format!("NetworkManager refused the update of {label}"))?;
    Ok(())
}

/// `wanted` with the `stored` settings' secrets: every stored value the update lacks is added,
/// and nothing it has is replaced. GetSecrets answers with the secrets alone (1.42.4) or with
/// the whole setting (the source of later versions); either way, only what GetSettings left
/// out is added: a key (`psk`, `password`), an entry of `vpn.secrets`, a key of a WireGuard peer
/// (`preshared-key`, matched by `public-key`).
pub fn with_secrets(wanted: &Profile, stored: &Profile) -> Profile {
    let mut out = wanted.clone();
    for (name, values) in stored {
        let Some(setting) = out.get_mut(name) else { continue };
        for (key, value) in values {
            match setting.get_mut(key) {
                None => {
                    setting.insert(key.clone(), value.clone());
                }
                Some(have) => {
                    if let Some(merged) = merged(have, value) {
                        *have = merged;
                    }
                }
            }
        }
    }
    out
}

/// A value of the update with what the stored one adds: the missing entries of a string map
/// (`vpn.secrets`), the missing keys of each dictionary of a list, matched by `public-key`
/// (`wireguard.peers`); `None` for any other value, which stays as it is.
fn merged(have: &OwnedVariant, stored: &OwnedVariant) -> Option<OwnedVariant> {
    if let (Ok(mut have), Ok(stored)) = (HashMap::<String, String>::try_from(have.clone()), HashMap::<String, String>::try_from(stored.clone())) {
        for (k, v) in stored {
            have.entry(k).or_insert(v);
        }
        return Some(owned(have));
    }
    let (Ok(mut have), Ok(stored)) = (Vec::<Dict>::try_from(have.clone()), Vec::<Dict>::try_from(stored.clone())) else { return None };
    for entry in &mut have {
        let Some(key) = entry.get(PEER_KEY).cloned() else { continue };
        let Some(found) = stored.iter().find(|s| s.get(PEER_KEY) == Some(&key)) else { continue };
        for (k, v) in found {
            entry.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    Some(owned(have))
}

/// What names a WireGuard peer in `wireguard.peers`.
const PEER_KEY: &str = "public-key";

#[cfg(test)]
mod tests {
    use zbus::{OwnedVariant, Variant};

    use super::*;
    use crate::backend::nm::settings::{self, Dict};

    fn v(x: impl Into<Variant<'static>>) -> OwnedVariant {
        OwnedVariant::try_from(x.into()).unwrap()
    }

    fn dict(entries: &[(&str, &str)]) -> Dict {
        entries.iter().map(|(k, x)| (k.to_string(), v(x.to_string()))).collect()
    }

    /// A Wi-Fi profile as GetSettings gives it after an apply: no PSK, multihome's record in
    /// `user`.
    fn applied_wifi() -> Profile {
        let mut p = Profile::new();
        p.insert("connection".into(), dict(&[("id", "home"), ("type", "802-11-wireless"), ("interface-name", "wlan1")]));
        p.insert("802-11-wireless-security".into(), dict(&[("key-mgmt", "wpa-psk")]));
        p.insert("ipv4".into(), dict(&[("method", "auto")]));
        let data: HashMap<String, String> = HashMap::from([("multihome.routes".to_string(), String::new()), ("multihome.rules".to_string(), String::new())]);
        p.insert("user".into(), Dict::from([("data".to_string(), v(data))]));
        p
    }

    /// What `reset` sends: the record's `user` setting goes, so NetworkManager's own merge of
    /// the stored secrets would do nothing; the PSK is in the update itself. GetSecrets as
    /// NetworkManager 1.42.4 answers: the secrets alone.
    #[test]
    fn a_released_profile_is_sent_with_its_stored_psk() {
        let current = applied_wifi();
        let released = settings::release(&current).expect("the profile has multihome's record");
        assert!(!released.contains_key("user"), "the case this is about: the update lacks a setting the profile has");
        let stored = Profile::from([("802-11-wireless-security".to_string(), dict(&[("psk", "secret-of-home")]))]);
        let sent = with_secrets(&released, &stored);
        assert_eq!(sent["802-11-wireless-security"], dict(&[("key-mgmt", "wpa-psk"), ("psk", "secret-of-home")]));
        assert!(!sent.contains_key("user"));
        assert_eq!(sent["ipv4"], released["ipv4"]);
        // What `plan` and the messages are made from stays without the secret.
        assert!(!format!("{released:?}").contains("secret-of-home"));
    }

    /// An answer with the whole setting adds only the secrets: what the update changed stays; a
    /// stored setting the update dropped is not sent again.
    #[test]
    fn only_what_the_update_lacks_is_added() {
        let wanted = Profile::from([("802-1x".to_string(), dict(&[("eap", "peap"), ("identity", "bob")]))]);
        let stored = Profile::from([
            ("802-1x".to_string(), dict(&[("eap", "peap"), ("identity", "alice"), ("password", "pw")])),
            ("vpn".to_string(), dict(&[("service-type", "x")])),
        ]);
        let sent = with_secrets(&wanted, &stored);
        assert_eq!(sent["802-1x"], dict(&[("eap", "peap"), ("identity", "bob"), ("password", "pw")]));
        assert!(!sent.contains_key("vpn"));
    }

    /// Secrets inside a value: a VPN's `secrets` map and a WireGuard peer's preshared key.
    #[test]
    fn nested_secrets_are_added_too() {
        let map = |entries: &[(&str, &str)]| v(entries.iter().map(|(k, x)| (k.to_string(), x.to_string())).collect::<HashMap<String, String>>());
        let peer = |entries: &[(&str, &str)]| dict(entries);
        let mut wanted = Profile::new();
        wanted.insert("vpn".into(), Dict::from([("service-type".to_string(), v("org.freedesktop.NetworkManager.openvpn")), ("secrets".to_string(), map(&[]))]));
        wanted.insert(
            "wireguard".into(),
            Dict::from([("peers".to_string(), v(vec![peer(&[("public-key", "A"), ("endpoint", "198.51.100.1:51820")]), peer(&[("public-key", "B")])]))]),
        );
        let mut stored = Profile::new();
        stored.insert("vpn".into(), Dict::from([("secrets".to_string(), map(&[("password", "vpn-pw")]))]));
        stored.insert(
            "wireguard".into(),
            Dict::from([
                ("private-key".to_string(), v("priv")),
                (
                    "peers".to_string(),
                    v(vec![peer(&[("public-key", "B"), ("preshared-key", "psk-b")]), peer(&[("public-key", "A"), ("preshared-key", "psk-a")])]),
                ),
            ]),
        );
        let sent = with_secrets(&wanted, &stored);
        assert_eq!(sent["vpn"]["secrets"], map(&[("password", "vpn-pw")]));
        assert_eq!(sent["wireguard"]["private-key"], v("priv"));
        let peers = Vec::<Dict>::try_from(sent["wireguard"]["peers"].clone()).unwrap();
        assert_eq!(
            peers,
            vec![
                peer(&[("public-key", "A"), ("endpoint", "198.51.100.1:51820"), ("preshared-key", "psk-a")]),
                peer(&[("public-key", "B"), ("preshared-key", "psk-b")])
            ]
        );
    }
}
