//! What multihome wrote into a profile's `ipv4.routes` and `ipv4.routing-rules`, kept in the
//! profile itself: NetworkManager's `user` setting (free key-value data that it stores in the
//! keyfile's `[user]` section and returns with the profile). The next apply removes exactly
//! these entries before it adds the plan's, so a changed table or rank leaves nothing behind in
//! a user's profile, and routes and rules the user wrote stay, whatever table they use.
//!
//! Each entry is kept in nmcli's words ([`super::route_text`], [`super::rule_text`]), which
//! name every attribute, so an entry is recognised exactly; derived from the plan alone, so
//! the same policy always writes the same record.

use std::collections::BTreeMap;

use super::{Dict, Profile, owned};

/// NetworkManager's setting for user data, and its one property (`a{ss}`).
const SETTING: &str = "user";
const DATA: &str = "data";
/// Keys need a dot (a namespace); values may be up to 8 KiB, which holds the routes or the
/// rules of an uplink with 50 addresses (about 100 bytes each).
pub const ROUTES_KEY: &str = "multihome.routes";
pub const RULES_KEY: &str = "multihome.rules";
/// Present (`yes`) when the policy owns the profile's `ipv6` setting too; absent otherwise, so a
/// profile whose IPv6 the policy leaves alone keeps exactly the record it had before.
pub const IPV6_KEY: &str = "multihome.ipv6";
/// nmcli separates list entries so; neither kind of entry contains a comma.
const SEPARATOR: &str = ", ";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub routes: Vec<String>,
    pub rules: Vec<String>,
    /// multihome set the profile's `ipv6` method, addresses, gateway and metric.
    pub ipv6: bool,
}

/// The profile's `user.data`, also read by the bond's slaves' marker.
pub(super) fn user_data(p: &Profile) -> BTreeMap<String, String> {
    p.get(SETTING)
        .and_then(|s| s.get(DATA))
        .and_then(|v| std::collections::HashMap::<String, String>::try_from(v.clone()).ok())
        .map(|m| m.into_iter().collect())
        .unwrap_or_default()
}

fn split(text: &str) -> Vec<String> {
    text.split(SEPARATOR).filter(|e| !e.is_empty()).map(str::to_string).collect()
}

impl Record {
    /// The record in `p`, or `None` when multihome never wrote one there.
    pub fn of(p: &Profile) -> Option<Record> {
        let data = user_data(p);
        if !data.contains_key(ROUTES_KEY) && !data.contains_key(RULES_KEY) {
            return None;
        }
        let get = |k: &str| data.get(k).map(|v| split(v)).unwrap_or_default();
        Some(Record { routes: get(ROUTES_KEY), rules: get(RULES_KEY), ipv6: data.get(IPV6_KEY).is_some_and(|v| v == "yes") })
    }

    pub fn routes_value(&self) -> String {
        self.routes.join(SEPARATOR)
    }

    pub fn rules_value(&self) -> String {
        self.rules.join(SEPARATOR)
    }

    /// `p` with this record, and the user's other keys as they were.
    pub fn write(&self, p: &mut Profile) {
        let mut data = user_data(p);
        data.insert(ROUTES_KEY.into(), self.routes_value());
        data.insert(RULES_KEY.into(), self.rules_value());
        if self.ipv6 {
            data.insert(IPV6_KEY.into(), "yes".into());
        } else {
            data.remove(IPV6_KEY);
        }
        let data: std::collections::HashMap<String, String> = data.into_iter().collect();
        let mut setting = p.get(SETTING).cloned().unwrap_or_else(Dict::new);
        setting.insert(DATA.into(), owned(data));
        p.insert(SETTING.into(), setting);
    }

    /// `p` without a record; the user setting goes when nothing else is in it.
    pub fn erase(p: &mut Profile) {
        let mut data = user_data(p);
        data.remove(ROUTES_KEY);
        data.remove(RULES_KEY);
        data.remove(IPV6_KEY);
        if data.is_empty() {
            p.remove(SETTING);
            return;
        }
        let data: std::collections::HashMap<String, String> = data.into_iter().collect();
        if let Some(setting) = p.get_mut(SETTING) {
            setting.insert(DATA.into(), owned(data));
        }
    }

    /// The record as lines beside [`super::ipv4_lines`], for `multihome plan` and for deciding
    /// whether a profile needs an update.
    pub fn lines(p: &Profile) -> Vec<String> {
        match Record::of(p) {
            None => Vec::new(),
            Some(r) => {
                let mut lines = vec![format!("user.{ROUTES_KEY}: {}", r.routes_value()), format!("user.{RULES_KEY}: {}", r.rules_value())];
                if r.ipv6 {
                    lines.push(format!("user.{IPV6_KEY}: yes"));
                }
                lines
            }
        }
    }
}
