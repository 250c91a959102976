//! Interfaces: index by name, the state of a link, and the IPv4 addresses on it (with the
//! metric of their prefix routes, which a stale one is removed for).

use std::net::IpAddr;

use futures::TryStreamExt;
use ipnet::{Ipv4Net, Ipv6Net};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};

use super::{Error, Netlink};

/// RFC 2863 operational state, as `ip link` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperState {
    Unknown,
    NotPresent,
    Down,
    LowerLayerDown,
    Testing,
    Dormant,
    Up,
    Other(u8),
}

/// What the failover logic needs to know about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub index: u32,
    pub name: String,
    /// `ip link set X up` (IFF_UP).
    pub admin_up: bool,
    /// The lower layer is up (IFF_LOWER_UP / IFLA_CARRIER).
    pub carrier: bool,
    pub oper: OperState,
}

impl Netlink {
    /// The index of the interface called `name`; [`Error::NotFound`] if there is none.
    pub async fn ifindex(&self, name: &str) -> Result<u32, Error> {
        Ok(self.link(name).await?.index)
    }

    /// The state of the interface called `name`; [`Error::NotFound`] if there is none.
    pub async fn link(&self, name: &str) -> Result<LinkState, Error> {
        let what = format!("look up interface {name}");
        let messages: Vec<LinkMessage> =
            self.handle.link().get().match_name(name).execute().try_collect().await.map_err(|e| Error::from_rtnetlink(what.clone(), e))?;
        messages.first().map(link_state).ok_or(Error::NotFound { what })
    }

    /// Every link.
    pub async fn links(&self) -> Result<Vec<LinkState>, Error> {
        let messages: Vec<LinkMessage> = self.handle.link().get().execute().try_collect().await.map_err(|e| Error::from_rtnetlink("list links", e))?;
        Ok(messages.iter().map(link_state).collect())
    }

    /// The IPv4 addresses of interface `ifindex` with their prefix lengths, in the kernel's
    /// order (primary addresses first).
    pub async fn ipv4_addresses(&self, ifindex: u32) -> Result<Vec<Ipv4Net>, Error> {
        Ok(self.ipv4_address_metrics(ifindex).await?.into_iter().map(|(net, _)| net).collect())
    }

    /// The IPv4 addresses of interface `ifindex` with the metric of their prefix routes
    /// (`ip addr` shows it as `metric N`; 0 when the address has none).
    pub async fn ipv4_address_metrics(&self, ifindex: u32) -> Result<Vec<(Ipv4Net, u32)>, Error> {
        let messages = self.address_messages(ifindex).await?;
        Ok(messages
            .iter()
            .filter_map(|m| {
                let (_, net) = ipv4_address(m)?;
                let metric = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::RoutePriority(p) => Some(*p),
                    _ => None,
                });
                Some((net, metric.unwrap_or(0)))
            })
            .collect())
    }

    /// Every address message of interface `ifindex`, both families: one dump for each reader.
    async fn address_messages(&self, ifindex: u32) -> Result<Vec<AddressMessage>, Error> {
        self.handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::from_rtnetlink(format!("list the addresses of interface #{ifindex}"), e))
    }

    /// The global IPv6 addresses of interface `ifindex` (static, SLAAC, temporary, DHCPv6),
    /// with their prefix lengths; not link-local ones, which no rule can tell apart.
    pub async fn ipv6_addresses(&self, ifindex: u32) -> Result<Vec<Ipv6Net>, Error> {
        let messages = self.address_messages(ifindex).await?;
        Ok(messages
            .iter()
            .filter(|m| m.header.family == AddressFamily::Inet6)
            .filter_map(|m| {
                let addr = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(IpAddr::V6(a)) => Some(*a),
                    _ => None,
                })?;
                let link_local = addr.segments()[0] & 0xffc0 == 0xfe80;
                (!link_local && !addr.is_loopback()).then(|| Ipv6Net::new(addr, m.header.prefix_len).ok()).flatten()
            })
            .collect())
    }

    /// `ip addr del NET dev #ifindex`; [`Error::NotFound`] when it is not there.
    pub async fn delete_ipv4_address(&self, ifindex: u32, net: Ipv4Net) -> Result<(), Error> {
        let what = format!("delete address {net} dev #{ifindex}");
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        message.header.index = ifindex;
        message.header.prefix_len = net.prefix_len();
        message.attributes.push(AddressAttribute::Local(IpAddr::V4(net.addr())));
        message.attributes.push(AddressAttribute::Address(IpAddr::V4(net.addr())));
        self.handle.address().del(message).execute().await.map_err(|e| Error::from_rtnetlink(what, e))
    }
}

pub(super) fn link_state(m: &LinkMessage) -> LinkState {
    let mut state = LinkState {
        index: m.header.index,
        name: String::new(),
        admin_up: m.header.flags.contains(LinkFlags::Up),
        carrier: m.header.flags.contains(LinkFlags::LowerUp),
        oper: OperState::Unknown,
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => state.name = n.clone(),
            LinkAttribute::OperState(s) => state.oper = oper_state(*s),
            LinkAttribute::Carrier(c) => state.carrier = *c != 0,
            _ => {}
        }
    }
    state
}

/// The interface index and the address of an IPv4 address message. IFA_LOCAL is the address
/// itself; IFA_ADDRESS is the peer on point-to-point links, so it is only the fallback.
pub(super) fn ipv4_address(m: &AddressMessage) -> Option<(u32, Ipv4Net)> {
    if m.header.family != AddressFamily::Inet {
        return None;
    }
    let local = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(IpAddr::V4(a)) => Some(*a),
        _ => None,
    });
    let address = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(IpAddr::V4(a)) => Some(*a),
        _ => None,
    });
    let addr = local.or(address)?;
    Some((m.header.index, Ipv4Net::new(addr, m.header.prefix_len).ok()?))
}

fn oper_state(s: State) -> OperState {
    match s {
        State::Unknown => OperState::Unknown,
        State::NotPresent => OperState::NotPresent,
        State::Down => OperState::Down,
        State::LowerLayerDown => OperState::LowerLayerDown,
        State::Testing => OperState::Testing,
        State::Dormant => OperState::Dormant,
        State::Up => OperState::Up,
        other => OperState::Other(u8::from(other)),
    }
}
