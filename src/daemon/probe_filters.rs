//! Tests only: the probe sockets' kernel filters ([`super::bpf`]) on the real sockets of both
//! families' wires ([`super::probe`], [`super::probe6`]). Each test opens the daemon's probe
//! sockets in a network namespace of its own, sends what should and what should not pass, and
//! reads what the kernel queued. Apart from bpf.rs, which the wires use, so that no file
//! imports one that imports it.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::private_net::{self, veth_pair};
use super::probe::{Wire, Wire4, arp_request, echo_request, interface_index};
use super::probe6::{Wire6, echo_request6, neighbour_solicitation};
use super::stamp;

/// Every packet queued on `fd` now.
fn drain(fd: RawFd) -> Vec<Vec<u8>> {
    std::thread::sleep(Duration::from_millis(100));
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    while let Ok(got) = stamp::recv(fd, &mut buf) {
        out.push(buf[..got.len].to_vec());
    }
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// The kernel answers echoes to 127.0.0.1 with their identifier: only ours reach the
/// daemon's socket, although an unfiltered socket sees both answers.
#[test]
fn the_echo_socket_gets_only_replies_with_its_identifier() {
    private_net::run(|| {
        let rt = runtime();
        let _g = rt.enter();
        let lo = Ipv4Addr::LOCALHOST;
        let wire = Wire4::open("lo", interface_index("lo").unwrap(), lo, 0x1234).unwrap();
        let other = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).unwrap();
        other.set_nonblocking(true).unwrap();
        for (ident, seq) in [(0x1234, 1), (0x4321, 2)] {
            other.send_to(&echo_request(ident, seq), &SockAddr::from(SocketAddrV4::new(lo, 0))).unwrap();
        }
        let echo_replies = |packets: Vec<Vec<u8>>| -> Vec<(u8, u16)> {
            packets.iter().map(|p| (p[20], u16::from_be_bytes([p[24], p[25]]))).filter(|(t, _)| *t == 0).collect()
        };
        assert_eq!(echo_replies(drain(other.as_raw_fd())), [(0, 0x1234), (0, 0x4321)], "the kernel answered both");
        let ours: Vec<(u8, u16)> = drain(wire.echo_socket().get_ref().as_raw_fd()).iter().map(|p| (p[20], u16::from_be_bytes([p[24], p[25]]))).collect();
        assert_eq!(ours, [(0, 0x1234)]);
    });
}

#[test]
fn the_icmpv6_echo_socket_gets_only_replies_with_its_identifier() {
    private_net::run(|| {
        let rt = runtime();
        let _g = rt.enter();
        let lo = Ipv6Addr::LOCALHOST;
        let wire = Wire6::open("lo", interface_index("lo").unwrap(), lo, 0x1234).unwrap();
        let other = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).unwrap();
        other.set_nonblocking(true).unwrap();
        for (ident, seq) in [(0x1234, 1), (0x4321, 2)] {
            other.send_to(&echo_request6(ident, seq), &SockAddr::from(SocketAddrV6::new(lo, 0, 0, 0))).unwrap();
        }
        let replies =
            |packets: Vec<Vec<u8>>| -> Vec<(u8, u16)> { packets.iter().map(|p| (p[0], u16::from_be_bytes([p[4], p[5]]))).filter(|(t, _)| *t == 129).collect() };
        assert_eq!(replies(drain(other.as_raw_fd())), [(129, 0x1234), (129, 0x4321)], "the kernel answered both");
        let ours: Vec<(u8, u16)> = drain(wire.echo_socket().get_ref().as_raw_fd()).iter().map(|p| (p[0], u16::from_be_bytes([p[4], p[5]]))).collect();
        assert_eq!(ours, [(129, 0x1234)]);
    });
}

/// Advertisements sent to ::1 with hop limits and flags of our choosing: only the solicited
/// one at hop limit 255 is queued, and the daemon's reader takes it as the answer.
#[test]
fn the_ndp_socket_gets_only_solicited_advertisements_from_the_link() {
    private_net::run(|| {
        let rt = runtime();
        let _g = rt.enter();
        let lo = Ipv6Addr::LOCALHOST;
        let wire = Wire6::open("lo", interface_index("lo").unwrap(), lo, 0x1234).unwrap();
        let tx = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).unwrap();
        tx.bind(&SockAddr::from(SocketAddrV6::new(lo, 0, 0, 0))).unwrap();
        let na = |flags: u8, mac_last: u8| {
            let mut p = neighbour_solicitation(lo, [2, 0, 0, 0, 0, mac_last]);
            p[0] = 136;
            p[4] = flags;
            p[24] = 2;
            p
        };
        let to = SockAddr::from(SocketAddrV6::new(lo, 0, 0, 0));
        tx.set_unicast_hops_v6(64).unwrap();
        tx.send_to(&na(0x40, 1), &to).unwrap();
        tx.set_unicast_hops_v6(255).unwrap();
        tx.send_to(&na(0x20, 2), &to).unwrap();
        tx.send_to(&echo_request6(0x1234, 1), &to).unwrap();
        tx.send_to(&na(0x60, 3), &to).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let mut buf = [0u8; 1500];
        assert_eq!(wire.recv_gateway(&mut buf, lo).unwrap(), Some([2, 0, 0, 0, 0, 3]), "the solicited one, at 255");
        assert_eq!(wire.recv_gateway(&mut buf, lo).unwrap_err().kind(), io::ErrorKind::WouldBlock, "nothing else was queued");
    });
}

/// ARP frames sent from the other end of a veth: only replies to our address are queued.
#[test]
fn the_arp_socket_gets_only_replies_to_our_address() {
    private_net::run(|| {
        veth_pair();
        let rt = runtime();
        let _g = rt.enter();
        let us = Ipv4Addr::new(10, 9, 0, 1);
        let wire = Wire4::open("va", interface_index("va").unwrap(), us, 0x1234).unwrap();
        let fake = Ipv4Addr::new(10, 9, 0, 50);
        let fake_mac = [2, 0, 0, 0, 0, 0x50];
        let reply = |target: Ipv4Addr| {
            let mut p = arp_request(fake_mac, fake, target);
            p[7] = 2;
            p
        };
        let tx = Socket::new(Domain::PACKET, Type::DGRAM, None).unwrap();
        let b = interface_index("vb").unwrap();
        for frame in [arp_request(fake_mac, fake, us), reply(Ipv4Addr::new(10, 9, 0, 77)), reply(us)] {
            tx.send_to(&frame, &super::probe::link_address(b, &[0xff; 6])).unwrap();
        }
        let got = drain(wire.gateway_socket().get_ref().as_raw_fd());
        assert!(got.iter().all(|p| p[6..8] == [0, 2] && p[24..28] == us.octets()), "only replies to us: {got:?}");
        assert!(got.iter().any(|p| p[14..18] == fake.octets()), "ours came: {got:?}");
    });
}
