//! What the planner needs of an address family, so one function plans the routes and rules of
//! both: an uplink's IPv4 and IPv6 sides follow the same shape (a `from`/`to` rule pair per
//! address, a link route with the address as source, a default in its table and one in main).

use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::Serialize;

/// A prefix of one family (`Ipv4Net` or `Ipv6Net`).
pub trait Prefix: Copy + Eq + Hash + fmt::Debug + fmt::Display + Serialize {
    type Addr: Copy + Eq + Hash + fmt::Debug + fmt::Display + Serialize + Into<IpAddr>;
    /// `0.0.0.0/0` or `::/0`.
    const DEFAULT: Self;
    /// `ip`'s and networkd's word for the family.
    const FAMILY: &'static str;
    /// Whether gateway routes are installed on-link (see `plan::Route::gateway`).
    const GATEWAY_ONLINK: bool;
    fn addr(&self) -> Self::Addr;
    fn prefix_len(&self) -> u8;
    /// The prefix with its host bits cleared.
    fn trunc(&self) -> Self;
    /// The address as a full-length prefix (/32, /128), as rules name it.
    fn host(addr: Self::Addr) -> Self;
    /// `addr/len`, if `addr` is of this family and `len` fits it.
    fn from_ip(addr: IpAddr, len: u8) -> Option<Self>;
}

impl Prefix for Ipv4Net {
    type Addr = Ipv4Addr;
    const DEFAULT: Self = Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 0);
    const FAMILY: &'static str = "ipv4";
    const GATEWAY_ONLINK: bool = true;
    fn addr(&self) -> Ipv4Addr {
        Ipv4Net::addr(self)
    }
    fn prefix_len(&self) -> u8 {
        Ipv4Net::prefix_len(self)
    }
    fn trunc(&self) -> Self {
        Ipv4Net::trunc(self)
    }
    fn host(addr: Ipv4Addr) -> Self {
        Ipv4Net::from(addr)
    }
    fn from_ip(addr: IpAddr, len: u8) -> Option<Self> {
        match addr {
            IpAddr::V4(a) => Ipv4Net::new(a, len).ok(),
            IpAddr::V6(_) => None,
        }
    }
}

impl Prefix for Ipv6Net {
    type Addr = Ipv6Addr;
    const DEFAULT: Self = Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 0);
    const FAMILY: &'static str = "ipv6";
    // Not for IPv6: the kernel checks an on-link IPv6 gateway against main's best route to it
    // and refuses the route when that is another uplink's prefix route (seen in the lab:
    // "Nexthop has invalid gateway or device mismatch" on a subnet shared by the uplinks).
    // Without the flag it looks the gateway up through the route's own device, and a
    // link-local router (the usual one, named by the advertisements) needs no lookup at all.
    const GATEWAY_ONLINK: bool = false;
    fn addr(&self) -> Ipv6Addr {
        Ipv6Net::addr(self)
    }
    fn prefix_len(&self) -> u8 {
        Ipv6Net::prefix_len(self)
    }
    fn trunc(&self) -> Self {
        Ipv6Net::trunc(self)
    }
    fn host(addr: Ipv6Addr) -> Self {
        Ipv6Net::from(addr)
    }
    fn from_ip(addr: IpAddr, len: u8) -> Option<Self> {
        match addr {
            IpAddr::V6(a) => Ipv6Net::new(a, len).ok(),
            IpAddr::V4(_) => None,
        }
    }
}
