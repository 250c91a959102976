//! IPv6's probe sockets ([`Wire6`]) for [`super::probe::Prober`]: ICMPv6 echo to the `[Probe]`
//! IPv6 targets, and a neighbour solicitation (NDP) for the IPv6 gateway where IPv4 asks by
//! ARP.
//!
//! Both are raw ICMPv6 sockets tied to the uplink's interface (`SO_BINDTODEVICE`) and bound to
//! the uplink's global IPv6 address, as the IPv4 echo socket is: the uplink's `from` rule picks
//! its table, so an echo leaves through this uplink and its router alone, and only answers that
//! arrived on it, to that address, are read. The kernel fills in the ICMPv6 checksum (the
//! pseudo-header needs the source it picks). An `ICMP6_FILTER` lets only echo replies into one
//! socket and only neighbour advertisements into the other, and a socket filter
//! ([`super::bpf`]) narrows that to replies with our identifier and to solicited advertisements
//! that came with hop limit 255.
//!
//! The solicitation goes to the gateway's solicited-node multicast group with hop limit 255 (a
//! router ignores neighbour discovery with any other, RFC 4861 7.1.1) and carries our hardware
//! address, so the router can answer at once; its advertisement comes back to our address. This
//! is the question the kernel's own neighbour discovery asks, sent every round instead of when
//! the kernel's cache says so: the kernel's neighbour state (REACHABLE for 30 s after any
//! traffic) would vouch for a gateway long after it died. As with ARP, an answer never vouches
//! for an uplink that has targets: a router whose upstream is dead still answers.
//!
//! An advertisement answers only when RFC 4861 says it may ([`answer_from`]): hop limit 255 (the
//! kernel reports it, `IPV6_RECVHOPLIMIT`), the Solicited flag, the router as target and as
//! source, read while our solicitation is outstanding. With no nonce in NDP, a host on the link
//! that answers for the router's address still passes: an IPv6 side without IPv6 targets is
//! judged by its link alone (docs/daemon.md, "What counts as an answer").

use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::probe::{Echo, Family, Wire, hardware_address, register};

const ICMP6_ECHO_REQUEST: u8 = 128;
const ICMP6_ECHO_REPLY: u8 = 129;
const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;
/// Payload of our echoes, so a capture shows whose they are.
const PAYLOAD: &[u8; 8] = b"multihom";

/// IPv6's sockets: one raw ICMPv6 socket for echoes, one for neighbour discovery.
pub struct Wire6 {
    echo: AsyncFd<Socket>,
    ndp: AsyncFd<Socket>,
    ifindex: u32,
    mac: [u8; 6],
}

impl Wire for Wire6 {
    type Addr = Ipv6Addr;
    const FAMILY: Family = Family::V6;

    fn open(interface: &str, ifindex: u32, source: Ipv6Addr, ident: u16) -> io::Result<Wire6> {
        let open = |pass: u8| -> io::Result<Socket> {
            let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
            s.bind_device(Some(interface.as_bytes()))?;
            s.bind(&SockAddr::from(SocketAddrV6::new(source, 0, 0, 0)))?;
            s.set_nonblocking(true)?;
            icmp6_filter_only(s.as_raw_fd(), pass)?;
            Ok(s)
        };
        let echo = open(ICMP6_ECHO_REPLY)?;
        super::bpf::attach(echo.as_raw_fd(), &super::bpf::icmp6_echo_replies(ident))?;
        super::stamp::enable(echo.as_raw_fd())?;
        let ndp = open(ND_NEIGHBOR_ADVERT)?;
        super::bpf::attach(ndp.as_raw_fd(), &super::bpf::neighbour_advertisements())?;
        // The hop limit each advertisement came with, checked again when it is read.
        ndp.set_recv_hoplimit_v6(true)?;
        ndp.set_multicast_hops_v6(255)?;
        ndp.set_unicast_hops_v6(255)?;
        ndp.set_multicast_if_v6(ifindex)?;
        let mac = hardware_address(ndp.as_raw_fd(), interface)?;
        Ok(Wire6 { echo: register(echo)?, ndp: register(ndp)?, ifindex, mac })
    }

    fn echo_socket(&self) -> &AsyncFd<Socket> {
        &self.echo
    }

    fn gateway_socket(&self) -> &AsyncFd<Socket> {
        &self.ndp
    }

    fn send_echo(&self, target: Ipv6Addr, ident: u16, seq: u16) -> io::Result<usize> {
        self.echo.get_ref().send_to(&echo_request6(ident, seq), &SockAddr::from(SocketAddrV6::new(target, 0, 0, scope(target, self.ifindex))))
    }

    /// Always to the solicited-node group: a unicast solicitation would go through the kernel's
    /// own neighbour entry, which may be the stale thing being tested.
    fn send_gateway(&self, gateway: Ipv6Addr, _known: Option<[u8; 6]>) -> io::Result<usize> {
        let to = solicited_node(gateway);
        self.ndp.get_ref().send_to(&neighbour_solicitation(gateway, self.mac), &SockAddr::from(SocketAddrV6::new(to, 0, 0, self.ifindex)))
    }

    fn recv_echo(&self, buf: &mut [u8], ident: u16) -> io::Result<Option<Echo<Ipv6Addr>>> {
        let got = super::stamp::recv(self.echo.get_ref().as_raw_fd(), buf)?;
        let from = Ipv6Addr::from(got.from.sin6_addr.s6_addr);
        Ok(parse_echo_reply6(&buf[..got.len], ident).map(|seq| Echo { from, seq, stamp: got.stamp }))
    }

    fn recv_gateway(&self, buf: &mut [u8], gateway: Ipv6Addr) -> io::Result<Option<[u8; 6]>> {
        let got = super::stamp::recv(self.ndp.get_ref().as_raw_fd(), buf)?;
        let from = Ipv6Addr::from(got.from.sin6_addr.s6_addr);
        Ok(answer_from(&buf[..got.len], got.hop_limit, from, gateway))
    }
}

/// A link-local destination needs its link named; any other does not.
fn scope(addr: Ipv6Addr, ifindex: u32) -> u32 {
    if is_link_local(addr) { ifindex } else { 0 }
}

pub fn is_link_local(addr: Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// Lets only ICMPv6 messages of type `pass` reach the raw socket (`ICMP6_FILTER`, whose set
/// bits block).
fn icmp6_filter_only(fd: RawFd, pass: u8) -> io::Result<()> {
    const ICMP6_FILTER: libc::c_int = 1;
    let mut filter = [u32::MAX; 8];
    filter[usize::from(pass >> 5)] &= !(1u32 << (pass & 31));
    // SAFETY: passes the 32-byte filter the option takes.
    let rc = unsafe { libc::setsockopt(fd, libc::IPPROTO_ICMPV6, ICMP6_FILTER, filter.as_ptr().cast(), size_of_val(&filter) as libc::socklen_t) };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// An ICMPv6 echo request, checksum left to the kernel.
pub fn echo_request6(ident: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![ICMP6_ECHO_REQUEST, 0, 0, 0];
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(PAYLOAD);
    p
}

/// An ICMPv6 message -> its sequence if it is an echo reply with our identifier.
pub fn parse_echo_reply6(icmp: &[u8], ident: u16) -> Option<u16> {
    if icmp.len() < 8 || icmp[0] != ICMP6_ECHO_REPLY || icmp[1] != 0 || u16::from_be_bytes([icmp[4], icmp[5]]) != ident {
        return None;
    }
    Some(u16::from_be_bytes([icmp[6], icmp[7]]))
}

/// `ff02::1:ffXX:XXXX`, where the last 24 bits are the target's (RFC 4291 2.7.1).
pub fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let o = target.octets();
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | u16::from(o[13]), u16::from_be_bytes([o[14], o[15]]))
}

/// A neighbour solicitation for `target` with our hardware address as the source link-layer
/// option (RFC 4861 4.3), checksum left to the kernel.
pub fn neighbour_solicitation(target: Ipv6Addr, mac: [u8; 6]) -> Vec<u8> {
    let mut p = vec![ND_NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
    p.extend_from_slice(&target.octets());
    p.extend_from_slice(&[1, 1]);
    p.extend_from_slice(&mac);
    p
}

/// The Solicited flag of an advertisement (RFC 4861 4.4).
const NA_SOLICITED: u8 = 0x40;

/// A packet read from the NDP socket -> the gateway's hardware address if it is a valid answer
/// to our solicitation for `gateway` (RFC 4861 7.1.2 and 7.2.5): it came with hop limit 255 (any
/// other was forwarded from off the link), has the Solicited flag, names `gateway` as its
/// target, comes from `gateway` itself (a router answers for its own address from it), and
/// carries the target's link-layer address.
pub fn answer_from(p: &[u8], hop_limit: Option<u8>, source: Ipv6Addr, gateway: Ipv6Addr) -> Option<[u8; 6]> {
    if hop_limit != Some(255) || source != gateway {
        return None;
    }
    let (target, mac) = parse_neighbour_advertisement(p)?;
    (target == gateway && p[4] & NA_SOLICITED != 0).then_some(mac)
}

/// A neighbour advertisement -> (its target, its target link-layer address) when it carries
/// one (a solicited answer to a multicast solicitation must, RFC 4861 7.2.4).
pub fn parse_neighbour_advertisement(p: &[u8]) -> Option<(Ipv6Addr, [u8; 6])> {
    if p.len() < 24 || p[0] != ND_NEIGHBOR_ADVERT || p[1] != 0 {
        return None;
    }
    let target = Ipv6Addr::from(<[u8; 16]>::try_from(&p[8..24]).ok()?);
    let mut options = &p[24..];
    while options.len() >= 8 {
        let len = usize::from(options[1]) * 8;
        if len == 0 || len > options.len() {
            return None;
        }
        if options[0] == 2 {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&options[2..8]);
            return Some((target, mac));
        }
        options = &options[len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddrV6;
    use std::time::Duration;

    use super::super::probe::{Prober, RoundPlan};
    use super::*;
    use crate::policy::Require;

    /// A round that asks the router alone.
    fn plan(arp: Ipv6Addr) -> RoundPlan<Ipv6Addr> {
        RoundPlan { targets: Vec::new(), require: Require::AtLeast(1), arp: Some(arp), probes: 1, timeout: Duration::from_millis(150), follow_ups: 0 }
    }

    /// As for ARP (see `probe`'s tests): the real neighbour's advertisement passes every RFC 4861
    /// check, and one sent before the solicitation does not count.
    #[test]
    fn a_neighbour_advertisement_nobody_asked_for_does_not_vouch_for_the_router() {
        super::super::private_net::run(|| {
            super::super::private_net::veth_pair();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let us: Ipv6Addr = "2001:db8:9::1".parse().unwrap();
                let ghost: Ipv6Addr = "2001:db8:9::50".parse().unwrap();
                let mut prober = Prober::<Wire6>::open("va", us).unwrap();
                // Sent from the ghost's address (there for the send alone), to us, hop limit 255,
                // Solicited and Override set, naming the ghost.
                super::super::private_net::ip(&["addr", "add", "2001:db8:9::50/64", "dev", "vb", "nodad"]);
                let tx = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).unwrap();
                tx.bind(&SockAddr::from(SocketAddrV6::new(ghost, 0, 0, 0))).unwrap();
                tx.set_unicast_hops_v6(255).unwrap();
                let mut na = neighbour_solicitation(ghost, [2, 0, 0, 0, 0, 0x50]);
                na[0] = 136;
                na[4] = 0x60;
                na[24] = 2;
                tx.send_to(&na, &SockAddr::from(SocketAddrV6::new(us, 0, 0, 0))).unwrap();
                super::super::private_net::ip(&["addr", "del", "2001:db8:9::50/64", "dev", "vb"]);
                tokio::time::sleep(Duration::from_millis(50)).await;
                assert_eq!(prober.round(&plan(ghost)).await.gateway_arp, Some(false), "the forged advertisement counted");
                let real = prober.round(&plan("2001:db8:9::2".parse::<Ipv6Addr>().unwrap())).await;
                assert_eq!((real.gateway_arp, real.ok), (Some(true), true), "the real neighbour answers");
            });
        });
    }

    #[test]
    fn echo_replies_are_matched_by_identifier() {
        let mut reply = echo_request6(0x1234, 7);
        assert_eq!(parse_echo_reply6(&reply, 0x1234), None, "a request is not a reply");
        reply[0] = ICMP6_ECHO_REPLY;
        assert_eq!(parse_echo_reply6(&reply, 0x1234), Some(7));
        assert_eq!(parse_echo_reply6(&reply, 0x4321), None, "someone else's echo");
    }

    #[test]
    fn a_solicitation_goes_to_the_targets_solicited_node_group() {
        assert_eq!(solicited_node("fe80::1".parse().unwrap()), "ff02::1:ff00:1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(solicited_node("2001:db8:178::abcd:ef12".parse().unwrap()), "ff02::1:ffcd:ef12".parse::<Ipv6Addr>().unwrap());
        let ns = neighbour_solicitation("fe80::1".parse().unwrap(), [2, 0, 0, 0, 0, 9]);
        assert_eq!(ns.len(), 32);
        assert_eq!((ns[0], &ns[24..26]), (ND_NEIGHBOR_SOLICIT, &[1u8, 1][..]));
    }

    #[test]
    fn an_advertisement_names_its_target_and_hardware_address() {
        let gw: Ipv6Addr = "fe80::1".parse().unwrap();
        let mut na = neighbour_solicitation(gw, [2, 0, 0, 0, 0, 1]);
        na[0] = ND_NEIGHBOR_ADVERT;
        assert_eq!(parse_neighbour_advertisement(&na), None, "a source, not a target, link-layer option");
        na[24] = 2;
        assert_eq!(parse_neighbour_advertisement(&na), Some((gw, [2, 0, 0, 0, 0, 1])));
        na[25] = 0;
        assert_eq!(parse_neighbour_advertisement(&na), None, "a zero-length option");
    }

    /// RFC 4861 7.1.2: what a forged or stray advertisement lacks.
    #[test]
    fn only_a_solicited_advertisement_from_the_router_on_the_link_answers() {
        let gw: Ipv6Addr = "fe80::1".parse().unwrap();
        let mac = [2, 0, 0, 0, 0, 1];
        let mut na = neighbour_solicitation(gw, mac);
        na[0] = ND_NEIGHBOR_ADVERT;
        na[24] = 2;
        na[4] = NA_SOLICITED;
        assert_eq!(answer_from(&na, Some(255), gw, gw), Some(mac));
        assert_eq!(answer_from(&na, Some(64), gw, gw), None, "forwarded: not sent on this link");
        assert_eq!(answer_from(&na, None, gw, gw), None, "hop limit unknown");
        assert_eq!(answer_from(&na, Some(255), "fe80::66".parse().unwrap(), gw), None, "from another host");
        let other: Ipv6Addr = "fe80::2".parse().unwrap();
        assert_eq!(answer_from(&na, Some(255), gw, other), None, "names another target");
        na[4] = 0x20;
        assert_eq!(answer_from(&na, Some(255), gw, gw), None, "unsolicited (Override alone)");
    }
}
