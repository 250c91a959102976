//! What a dispatcher is telling us, from its arguments and environment, as a value. Pure: the
//! same argv and environment always give the same [`Event`] or the same refusal.
//!
//! Two callers: NetworkManager's nm-dispatcher (`$1` interface, `$2` action, `IP4_NUM_ADDRESSES`
//! and `IP4_ADDRESS_N="ADDR/PLEN GW"`), and networkd-dispatcher (no arguments; `IFACE`, `STATE`
//! and `IP_ADDRS`, addresses without their prefix length). Everything read here is untrusted
//! bytes: a value that is not what the dispatcher documents (not UTF-8 included) is refused
//! with a bounded message naming the variable or argument, and nothing is handed to a shell.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::net::Ipv4Addr;
use std::os::unix::ffi::OsStrExt;

use ipnet::Ipv4Net;

use super::quote::{quote, quote_str};
use crate::policy::valid_interface_name;

/// At most this many addresses per uplink (the room its rule priorities leave): a count above it
/// is not a real lease.
pub use crate::numbers::MAX_ADDRESSES;

/// Which dispatcher called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatcher {
    NetworkManager,
    Networkd,
}

/// An IPv4 address as the dispatcher reported it; networkd-dispatcher leaves out the prefix
/// length, which the hook then takes from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub addr: Ipv4Addr,
    pub prefix_len: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The interface is up with these addresses (possibly none): make the rules match them.
    /// `gateway` is the lease's router when the dispatcher says it (NetworkManager does).
    Up { addresses: Vec<Address>, gateway: Option<Ipv4Addr> },
    /// The interface went down: remove what multihome added for it.
    Down,
    /// Its DHCPv6 addresses changed (NetworkManager's dhcp6-change): only the IPv6 rules,
    /// from the kernel's addresses; the event says nothing about IPv4.
    Ipv6Changed,
    /// Nothing for multihome to do (connectivity checks, hostname, administrative states, ...).
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub dispatcher: Dispatcher,
    /// The dispatcher's own word for it (`dhcp4-change`, `routable`, ...).
    pub action: String,
    /// A name the kernel would accept; empty only for NetworkManager's events that concern no
    /// device (connectivity-change, hostname), which are ignored.
    pub interface: String,
    pub kind: Kind,
}

/// The longest refusal: one line of the journal, whatever the input (each quotes at most two
/// values, cut by [`quote`]). The dispatcher fixtures and the property tests hold it to this.
pub const MAX_REFUSAL: usize = 512;

/// Input that is not what a dispatcher sends; nothing was done. Its text quotes what it refuses
/// with [`quote`] (escaped, cut), so that it stays one line of the journal of bounded length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused: {0}")]
pub struct Refused(pub String);

/// The hook's environment as the kernel handed it over: bytes, not text. A value is judged as
/// bytes first, so that one that is not UTF-8 is refused rather than read lossily (`up\xff`
/// would become `up\u{FFFD}`, the name of another interface).
pub type Environment = BTreeMap<OsString, OsString>;

/// Reads the event from the arguments after `multihome dispatch` and the environment.
pub fn parse(args: &[OsString], env: &Environment) -> Result<Event, Refused> {
    let env = Input(env);
    if env.has("NM_DISPATCHER_ACTION") || !args.is_empty() {
        network_manager(args, &env)
    } else if env.has("IFACE") || env.has("STATE") {
        networkd(&env)
    } else {
        Err(Refused("no dispatcher event: expected NetworkManager's INTERFACE ACTION arguments or networkd-dispatcher's IFACE and STATE".into()))
    }
}

/// The environment, read one key at a time: only the keys the parser needs are judged, and
/// each as UTF-8 text, since both dispatchers pass what they got over D-Bus (UTF-8 strings).
struct Input<'a>(&'a Environment);

impl<'a> Input<'a> {
    fn has(&self, key: &str) -> bool {
        self.0.contains_key(OsStr::new(key))
    }

    fn get(&self, key: &str) -> Result<Option<&'a str>, Refused> {
        self.0.get(OsStr::new(key)).map(|v| v.to_str().ok_or_else(|| not_utf8(&format!("{key}={}", quote(v.as_bytes()))))).transpose()
    }
}

/// An argument as text; one that is not UTF-8 is refused, naming which.
fn argument<'a>(what: &str, value: &'a OsStr) -> Result<&'a str, Refused> {
    value.to_str().ok_or_else(|| not_utf8(&format!("{what} {}", quote(value.as_bytes()))))
}

fn not_utf8(quoted: &str) -> Refused {
    Refused(format!("{quoted} is not UTF-8 text, which no dispatcher sends"))
}

fn network_manager(args: &[OsString], env: &Input) -> Result<Event, Refused> {
    let [interface, action] = args else {
        return Err(Refused(format!("NetworkManager passes 2 arguments (interface, action), not {}", args.len())));
    };
    let action = word("action argument", argument("action argument", action)?)?;
    if let Some(from_env) = env.get("NM_DISPATCHER_ACTION")?
        && from_env != action
    {
        return Err(Refused(format!("the action argument {} disagrees with NM_DISPATCHER_ACTION={}", quote_str(&action), quote_str(from_env))));
    }
    // connectivity-change and hostname concern no device: NetworkManager passes an empty name.
    let deviceless = interface.is_empty() && matches!(action.as_str(), "connectivity-change" | "hostname");
    let interface = if deviceless { String::new() } else { interface_name("interface argument", interface)? };
    let kind = match action.as_str() {
        "up" | "dhcp4-change" | "reapply" => {
            let (addresses, gateway) = nm_addresses(env)?;
            Kind::Up { addresses, gateway }
        }
        "down" | "pre-down" => Kind::Down,
        "dhcp6-change" => Kind::Ipv6Changed,
        _ => Kind::Ignore,
    };
    Ok(Event { dispatcher: Dispatcher::NetworkManager, action, interface, kind })
}

/// `IP4_NUM_ADDRESSES=N` and `IP4_ADDRESS_0..N-1="ADDR/PLEN GATEWAY"` (the gateway may be
/// missing or 0.0.0.0), and `IP4_GATEWAY`. No count means no IPv4 configuration. The gateway
/// is `IP4_GATEWAY`, else the first one an address names.
fn nm_addresses(env: &Input) -> Result<(Vec<Address>, Option<Ipv4Addr>), Refused> {
    // Judged also when no count follows: a value NetworkManager cannot send is refused
    // wherever it appears, not only where it would be used.
    let mut gateway = match env.get("IP4_GATEWAY")? {
        Some(g) => router("IP4_GATEWAY", None, g)?,
        None => None,
    };
    let Some(count) = env.get("IP4_NUM_ADDRESSES")? else { return Ok((Vec::new(), None)) };
    let n = count_of(count)?;
    let mut addresses = Vec::with_capacity(n);
    for i in 0..n {
        let key = format!("IP4_ADDRESS_{i}");
        let value = env.get(&key)?.ok_or_else(|| Refused(format!("IP4_NUM_ADDRESSES={n} but {key} is not set")))?;
        let mut fields = value.split(' ');
        let net_text = fields.next().unwrap_or_default();
        let net: Ipv4Net = net_text.parse().map_err(|_| Refused(format!("{key}={}: {} is not ADDRESS/PREFIXLEN", quote_str(value), quote_str(net_text))))?;
        if let Some(gw) = fields.next() {
            gateway = gateway.or(router(&key, Some(value), gw)?);
        }
        if fields.next().is_some() {
            return Err(Refused(format!("{key}={}: expected \"ADDRESS/PREFIXLEN GATEWAY\"", quote_str(value))));
        }
        host_address(&key, value, net.addr())?;
        lease_address(&key, value, net)?;
        push_unique(&mut addresses, Address { addr: net.addr(), prefix_len: Some(net.prefix_len()) });
    }
    Ok((addresses, gateway))
}

/// A router as NetworkManager names one: `None` for its 0.0.0.0 ("no gateway"); an address no
/// router can have (loopback, multicast, broadcast) is refused. `value` is the whole variable
/// when the router is one field of it.
fn router(key: &str, value: Option<&str>, text: &str) -> Result<Option<Ipv4Addr>, Refused> {
    let at = match value {
        Some(v) => format!("{key}={}", quote_str(v)),
        None => key.to_string(),
    };
    let g: Ipv4Addr = text.parse().map_err(|_| match value {
        Some(_) => Refused(format!("{at}: {} is not a gateway address", quote_str(text))),
        None => Refused(format!("{key}={} is not an IPv4 address", quote_str(text))),
    })?;
    if g.is_unspecified() {
        return Ok(None);
    }
    if g.is_loopback() || g.is_multicast() || g.is_broadcast() {
        return Err(Refused(format!("{at}: gateway {g} is not a router's address")));
    }
    Ok(Some(g))
}

fn count_of(text: &str) -> Result<usize, Refused> {
    let all_digits = !text.is_empty() && text.len() <= 3 && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<usize>() {
        Ok(n) if all_digits && n <= MAX_ADDRESSES => Ok(n),
        _ => Err(Refused(format!("IP4_NUM_ADDRESSES={}: expected a count from 0 to {MAX_ADDRESSES}", quote_str(text)))),
    }
}

fn networkd(env: &Input) -> Result<Event, Refused> {
    let interface = env.0.get(OsStr::new("IFACE")).ok_or_else(|| Refused("networkd-dispatcher sets IFACE, but it is missing".into()))?;
    let state = env.get("STATE")?.ok_or_else(|| Refused("networkd-dispatcher sets STATE, but it is missing".into()))?;
    let state = word("STATE", state)?;
    let interface = interface_name("IFACE", interface)?;
    // Operational states carry the link's addresses; administrative ones (configured,
    // configuring, failed, ...) and port states say nothing about them.
    let kind = match state.as_str() {
        "routable" | "degraded" | "carrier" | "degraded-carrier" => Kind::Up { addresses: networkd_addresses(env)?, gateway: None },
        "off" | "no-carrier" | "dormant" | "missing" => Kind::Down,
        _ => Kind::Ignore,
    };
    Ok(Event { dispatcher: Dispatcher::Networkd, action: state, interface, kind })
}

/// `IP_ADDRS="A B C"`: IPv4 addresses without prefix lengths, separated by single spaces.
fn networkd_addresses(env: &Input) -> Result<Vec<Address>, Refused> {
    let Some(value) = env.get("IP_ADDRS")? else { return Ok(Vec::new()) };
    let mut addresses = Vec::new();
    for field in value.split(' ').filter(|f| !f.is_empty()) {
        let addr: Ipv4Addr = field.parse().map_err(|_| Refused(format!("IP_ADDRS={}: {} is not an IPv4 address", quote_str(value), quote_str(field))))?;
        host_address("IP_ADDRS", value, addr)?;
        push_unique(&mut addresses, Address { addr, prefix_len: None });
        if addresses.len() > MAX_ADDRESSES {
            return Err(Refused(format!("IP_ADDRS has more than {MAX_ADDRESSES} addresses")));
        }
    }
    Ok(addresses)
}

/// An address a lease can give a host: not 0.0.0.0, loopback, multicast or broadcast.
fn host_address(key: &str, value: &str, addr: Ipv4Addr) -> Result<(), Refused> {
    if addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() || addr.is_broadcast() {
        return Err(Refused(format!("{key}={}: {addr} is not an address of this host", quote_str(value))));
    }
    Ok(())
}

/// A host's address on its subnet: a prefix (`10.0.0.0/8`, the subnet's own address), the
/// subnet's broadcast address or a /0 "subnet" is no lease. /31 and /32 have neither.
fn lease_address(key: &str, value: &str, net: Ipv4Net) -> Result<(), Refused> {
    let why = if net.prefix_len() == 0 {
        "/0 is not a subnet's prefix length".to_string()
    } else if net.prefix_len() <= 30 && net.addr() == net.network() {
        format!("{} is the address of the subnet {}, not of a host on it", net.addr(), net.trunc())
    } else if net.prefix_len() <= 30 && net.addr() == net.broadcast() {
        format!("{} is the broadcast address of {}, not a host's", net.addr(), net.trunc())
    } else {
        return Ok(());
    };
    Err(Refused(format!("{key}={}: {why}", quote_str(value))))
}

fn push_unique(addresses: &mut Vec<Address>, a: Address) {
    if !addresses.iter().any(|b| b.addr == a.addr) {
        addresses.push(a);
    }
}

/// A name the kernel would accept (its dev_valid_name, and the policy's stricter rules), judged
/// as bytes: a name that is not UTF-8 is refused, never read lossily into another uplink's name.
/// The length is judged first, so that the message quotes at most 15 bytes of it.
fn interface_name(what: &str, name: &OsStr) -> Result<String, Refused> {
    let bytes = name.as_bytes();
    if bytes.len() > MAX_INTERFACE_NAME {
        return Err(Refused(format!("{what}: {} is {} bytes long; the kernel allows at most {MAX_INTERFACE_NAME}", quote(bytes), bytes.len())));
    }
    let Some(name) = name.to_str() else {
        return Err(Refused(format!("{what}: {} is not UTF-8; no dispatcher passes such a name and no uplink of a policy has one", quote(bytes))));
    };
    valid_interface_name(name).map_err(|why| Refused(format!("{what}: {why}")))?;
    Ok(name.to_string())
}

/// The kernel's IFNAMSIZ less its terminating NUL.
const MAX_INTERFACE_NAME: usize = 15;

/// An action or state: a short lower-case word, as both dispatchers send.
fn word(what: &str, text: &str) -> Result<String, Refused> {
    let ok = !text.is_empty() && text.len() <= 32 && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        return Err(Refused(format!("{what} {} is not a dispatcher action", quote_str(text))));
    }
    Ok(text.to_string())
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix_len {
            Some(len) => write!(f, "{}/{len}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

impl fmt::Display for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dispatcher::NetworkManager => "NetworkManager",
            Dispatcher::Networkd => "networkd-dispatcher",
        })
    }
}

/// `wlan0 dhcp4-change (NetworkManager): up 192.168.178.156/24`; the fixtures' expected text.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let interface = if self.interface.is_empty() { "(no interface)" } else { self.interface.as_str() };
        write!(f, "{interface} {} ({}): ", self.action, self.dispatcher)?;
        match &self.kind {
            Kind::Up { addresses, .. } if addresses.is_empty() => f.write_str("up without IPv4 addresses"),
            Kind::Up { addresses, gateway } => {
                f.write_str("up")?;
                for a in addresses {
                    write!(f, " {a}")?;
                }
                match gateway {
                    Some(g) => write!(f, " via {g}"),
                    None => Ok(()),
                }
            }
            Kind::Down => f.write_str("down"),
            Kind::Ipv6Changed => f.write_str("IPv6 addresses changed"),
            Kind::Ignore => f.write_str("ignored"),
        }
    }
}
