//! A profile's `ipv4` (or `ipv6`) setting as typed values, nmstate's way: each property
//! multihome reads or writes has a field of its own type, and every other property stays in
//! `other` with its D-Bus type, so reading a setting and writing it back changes nothing.
//!
//! A property NetworkManager sends with another D-Bus type than the one named here (a newer
//! NetworkManager could) is not guessed at: it stays in `other` (or an entry's `attributes`)
//! untouched, and multihome treats it as absent.

use std::net::IpAddr;

use zbus::Variant;

use super::{Dict, Profile, owned};

/// `ipv4` or `ipv6`: the setting's name in a profile.
pub type Family = &'static str;
pub const IPV4: Family = "ipv4";
pub const IPV6: Family = "ipv6";

/// Takes `key` out of `d` when its value has the type `T`; otherwise leaves it where it is.
fn take<T>(d: &mut Dict, key: &str) -> Option<T>
where
    T: TryFrom<zbus::OwnedVariant>,
{
    let value = T::try_from(d.get(key)?.clone()).ok()?;
    d.remove(key);
    Some(value)
}

/// Takes a string property that holds an address; one that does not parse stays in `d`.
fn take_address(d: &mut Dict, key: &str) -> Option<IpAddr> {
    let text = String::try_from(d.get(key)?.clone()).ok()?;
    let address = text.parse().ok()?;
    d.remove(key);
    Some(address)
}

fn put<'a>(d: &mut Dict, key: &str, value: Option<impl Into<Variant<'a>>>) {
    if let Some(v) = value {
        d.insert(key.into(), owned(v));
    }
}

fn list(d: &mut Dict, key: &str) -> Option<Vec<Dict>> {
    take::<Vec<Dict>>(d, key)
}

/// One `address-data` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AddressEntry {
    pub address: IpAddr,
    pub prefix: u32,
    /// Attributes multihome does not set (none today; NetworkManager may add some).
    pub attributes: Dict,
}

impl AddressEntry {
    pub fn new(address: IpAddr, prefix: u8) -> AddressEntry {
        AddressEntry { address, prefix: u32::from(prefix), attributes: Dict::new() }
    }

    fn read(mut d: Dict) -> Result<AddressEntry, Dict> {
        let (Some(address), Some(prefix)) = (take_address(&mut d, "address"), take::<u32>(&mut d, "prefix")) else {
            return Err(d);
        };
        Ok(AddressEntry { address, prefix, attributes: d })
    }

    pub fn to_dict(&self) -> Dict {
        let mut d = self.attributes.clone();
        put(&mut d, "address", Some(self.address.to_string()));
        put(&mut d, "prefix", Some(self.prefix));
        d
    }
}

/// One `route-data` entry: the attributes multihome writes typed, the rest in `attributes`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteEntry {
    pub dest: Option<IpAddr>,
    pub prefix: Option<u32>,
    pub next_hop: Option<IpAddr>,
    pub metric: Option<u32>,
    pub table: Option<u32>,
    pub onlink: Option<bool>,
    pub src: Option<IpAddr>,
    pub attributes: Dict,
}

impl RouteEntry {
    pub fn read(mut d: Dict) -> RouteEntry {
        RouteEntry {
            dest: take_address(&mut d, "dest"),
            prefix: take(&mut d, "prefix"),
            next_hop: take_address(&mut d, "next-hop"),
            metric: take(&mut d, "metric"),
            table: take(&mut d, "table"),
            onlink: take(&mut d, "onlink"),
            src: take_address(&mut d, "src"),
            attributes: d,
        }
    }

    pub fn to_dict(&self) -> Dict {
        let mut d = self.attributes.clone();
        put(&mut d, "dest", self.dest.map(|a| a.to_string()));
        put(&mut d, "prefix", self.prefix);
        put(&mut d, "next-hop", self.next_hop.map(|a| a.to_string()));
        put(&mut d, "metric", self.metric);
        put(&mut d, "table", self.table);
        put(&mut d, "onlink", self.onlink);
        put(&mut d, "src", self.src.map(|a| a.to_string()));
        d
    }

    /// The entry in nmcli's syntax, every attribute included so that any difference shows.
    pub fn text(&self) -> String {
        super::route_text(&self.to_dict())
    }
}

/// One `routing-rules` entry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleEntry {
    pub family: Option<i32>,
    pub priority: Option<u32>,
    pub from: Option<(IpAddr, u8)>,
    pub to: Option<(IpAddr, u8)>,
    pub table: Option<u32>,
    pub attributes: Dict,
}

impl RuleEntry {
    fn side(d: &mut Dict, key: &str) -> Option<(IpAddr, u8)> {
        let len_key = format!("{key}-len");
        let len = u8::try_from(d.get(&len_key)?.clone()).ok()?;
        let address = take_address(d, key)?;
        d.remove(&len_key);
        Some((address, len))
    }

    pub fn read(mut d: Dict) -> RuleEntry {
        RuleEntry {
            family: take(&mut d, "family"),
            priority: take(&mut d, "priority"),
            from: RuleEntry::side(&mut d, "from"),
            to: RuleEntry::side(&mut d, "to"),
            table: take(&mut d, "table"),
            attributes: d,
        }
    }

    pub fn to_dict(&self) -> Dict {
        let mut d = self.attributes.clone();
        put(&mut d, "family", self.family);
        put(&mut d, "priority", self.priority);
        for (key, side) in [("from", self.from), ("to", self.to)] {
            if let Some((address, len)) = side {
                put(&mut d, key, Some(address.to_string()));
                put(&mut d, &format!("{key}-len"), Some(len));
            }
        }
        put(&mut d, "table", self.table);
        d
    }

    /// The entry in nmcli's syntax (`priority N from A/L table T`).
    pub fn text(&self) -> String {
        super::rule_text(&self.to_dict())
    }
}

/// The `ipv4` or `ipv6` setting of a profile.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IpSetting {
    pub method: Option<String>,
    pub addresses: Vec<AddressEntry>,
    /// `address-data` entries that are not address and prefix, kept as they came.
    pub other_addresses: Vec<Dict>,
    pub gateway: Option<IpAddr>,
    pub route_metric: Option<i64>,
    pub never_default: Option<bool>,
    pub route_table: Option<u32>,
    /// How long activation waits for this family before the profile counts as up without it
    /// (ms; NetworkManager 1.34+).
    pub required_timeout: Option<i32>,
    pub routes: Vec<RouteEntry>,
    pub rules: Vec<RuleEntry>,
    /// Every other property (dns, dhcp-*, may-fail, ...), as NetworkManager sent it.
    pub other: Dict,
}

impl IpSetting {
    /// The setting `family` of `p`; an empty one when `p` has none.
    ///
    /// GetSettings returns the deprecated `addresses`/`routes` beside `address-data`/
    /// `route-data`; sent back, NetworkManager would take the deprecated ones and lose route
    /// attributes such as `table=`. They are dropped when the -data forms are there, which hold
    /// everything (NetworkManager derives the deprecated ones again).
    pub fn of(p: &Profile, family: Family) -> IpSetting {
        let mut d = p.get(family).cloned().unwrap_or_default();
        if d.contains_key("address-data") {
            d.remove("addresses");
        }
        if d.contains_key("route-data") {
            d.remove("routes");
        }
        let (mut addresses, mut other_addresses) = (Vec::new(), Vec::new());
        for entry in list(&mut d, "address-data").unwrap_or_default() {
            match AddressEntry::read(entry) {
                Ok(a) => addresses.push(a),
                Err(raw) => other_addresses.push(raw),
            }
        }
        IpSetting {
            method: take(&mut d, "method"),
            addresses,
            other_addresses,
            gateway: take_address(&mut d, "gateway"),
            route_metric: take(&mut d, "route-metric"),
            never_default: take(&mut d, "never-default"),
            route_table: take(&mut d, "route-table"),
            required_timeout: take(&mut d, "required-timeout"),
            routes: list(&mut d, "route-data").unwrap_or_default().into_iter().map(RouteEntry::read).collect(),
            rules: list(&mut d, "routing-rules").unwrap_or_default().into_iter().map(RuleEntry::read).collect(),
            other: d,
        }
    }

    pub fn to_dict(&self) -> Dict {
        let mut d = self.other.clone();
        put(&mut d, "method", self.method.clone());
        let addresses: Vec<Dict> = self.addresses.iter().map(AddressEntry::to_dict).chain(self.other_addresses.iter().cloned()).collect();
        put(&mut d, "address-data", Some(addresses));
        put(&mut d, "gateway", self.gateway.map(|g| g.to_string()));
        put(&mut d, "route-metric", self.route_metric);
        put(&mut d, "never-default", self.never_default);
        put(&mut d, "route-table", self.route_table);
        put(&mut d, "required-timeout", self.required_timeout);
        put(&mut d, "route-data", Some(self.routes.iter().map(RouteEntry::to_dict).collect::<Vec<_>>()));
        put(&mut d, "routing-rules", Some(self.rules.iter().map(RuleEntry::to_dict).collect::<Vec<_>>()));
        d
    }

    /// `p` with this setting as `family`; the profile's other settings as they were.
    pub fn write(&self, p: &mut Profile, family: Family) {
        p.insert(family.into(), self.to_dict());
    }
}
