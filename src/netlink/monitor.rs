//! A stream of link, address, route and rule changes, from rtnetlink's multicast groups
//! (as `ip monitor`), in multihome's own words.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use futures::channel::mpsc::UnboundedReceiver;
use ipnet::Ipv4Net;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::MulticastGroup;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::sys::SocketAddr;
use tokio::task::JoinHandle;

use super::links::{ipv4_address, link_state};
use super::routes::kernel_route;
use super::rules::kernel_rule;
use super::{Error, KernelRoute, KernelRoute6, KernelRule, LinkState};

/// One change the kernel announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A link appeared or changed (state, carrier, flags, name).
    Link(LinkState),
    LinkRemoved(LinkState),
    AddressAdded {
        ifindex: u32,
        address: Ipv4Net,
    },
    AddressRemoved {
        ifindex: u32,
        address: Ipv4Net,
    },
    /// An IPv6 address came, went or changed (a new temporary address, one that expired, one
    /// no longer tentative): whoever cares reads the link's addresses again.
    Address6Changed {
        ifindex: u32,
    },
    RouteAdded(KernelRoute),
    RouteRemoved(KernelRoute),
    /// An IPv6 unicast route came or went (an advertised router, the daemon's own copies).
    Route6Changed(KernelRoute6),
    RuleAdded(KernelRule),
    RuleRemoved(KernelRule),
    /// The socket's buffer overflowed and events were lost: whoever keeps state from these
    /// events must read the kernel's state again.
    Overrun,
}

/// The event stream; dropping it closes the socket.
pub struct Monitor {
    messages: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    connection: JoinHandle<()>,
}

impl Monitor {
    /// Subscribes, in the calling thread's network namespace, to links, addresses of both
    /// families, routes of both families and IPv4 rules. Must run inside a tokio runtime.
    pub fn connect() -> Result<Monitor, Error> {
        let groups = [
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv4Route,
            MulticastGroup::Ipv4Rule,
            MulticastGroup::Ipv6Ifaddr,
            MulticastGroup::Ipv6Route,
        ];
        let (connection, _handle, messages) = rtnetlink::new_multicast_connection(&groups).map_err(Error::Socket)?;
        let connection = tokio::spawn(connection);
        Ok(Monitor { messages, connection })
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Stream for Monitor {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        loop {
            match Pin::new(&mut self.messages).poll_next(cx) {
                Poll::Ready(Some((message, _))) => {
                    if let Some(event) = event(message.payload) {
                        return Poll::Ready(Some(event));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// The event a notification means, if it is one callers care about.
fn event(payload: NetlinkPayload<RouteNetlinkMessage>) -> Option<Event> {
    use RouteNetlinkMessage as M;
    match payload {
        NetlinkPayload::Overrun(_) => Some(Event::Overrun),
        NetlinkPayload::InnerMessage(m) => match m {
            M::NewLink(l) => Some(Event::Link(link_state(&l))),
            M::DelLink(l) => Some(Event::LinkRemoved(link_state(&l))),
            M::NewAddress(a) | M::DelAddress(a) if a.header.family == AddressFamily::Inet6 => Some(Event::Address6Changed { ifindex: a.header.index }),
            M::NewAddress(a) => ipv4_address(&a).map(|(ifindex, address)| Event::AddressAdded { ifindex, address }),
            M::DelAddress(a) => ipv4_address(&a).map(|(ifindex, address)| Event::AddressRemoved { ifindex, address }),
            M::NewRoute(r) | M::DelRoute(r) if r.header.address_family == AddressFamily::Inet6 => kernel_route(&r).map(Event::Route6Changed),
            M::NewRoute(r) => kernel_route(&r).map(Event::RouteAdded),
            M::DelRoute(r) => kernel_route(&r).map(Event::RouteRemoved),
            M::NewRule(r) => kernel_rule(&r).map(Event::RuleAdded),
            M::DelRule(r) => kernel_rule(&r).map(Event::RuleRemoved),
            _ => None,
        },
        _ => None,
    }
}
