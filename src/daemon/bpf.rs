//! Kernel socket filters (classic BPF, `SO_ATTACH_FILTER`) on the probe sockets: only packets
//! that could answer one of our questions are queued for the daemon. Without them a raw ICMP
//! socket queues every echo reply the host receives and the ARP socket every ARP frame on the
//! link, so a flood of foreign replies fills the receive buffer and our own answers are dropped —
//! which looks like loss (issue 23). The daemon still checks every packet it reads; the filters
//! only keep the queue for candidates.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::RawFd;

// Opcodes of classic BPF (linux/filter.h, linux/bpf_common.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const W: u16 = 0x00;
const H: u16 = 0x08;
const B: u16 = 0x10;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MSH: u16 = 0xa0;
const JEQ: u16 = 0x10;
const JSET: u16 = 0x40;
/// Loads relative to the network header (`SKF_NET_OFF`): on a raw ICMPv6 socket the packet
/// starts at the ICMPv6 header, and the hop limit is in the IPv6 header before it.
const NET_OFF: u32 = (-0x10_0000i32) as u32;

/// A program of classic BPF instructions.
pub type Program = Vec<libc::sock_filter>;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt: 0, jf: 0, k }
}

/// Tests in sequence: each `(load, value)` must hold (`mask`: `jset`, every bit set), else the
/// packet is dropped; all hold: it is queued whole.
fn all_of(loads: &[(libc::sock_filter, Check)]) -> Program {
    let n = loads.len();
    let mut p = Vec::new();
    for (i, (load, check)) in loads.iter().enumerate() {
        p.push(*load);
        // Jumps count from the next instruction; the drop is the last one.
        let to_drop = (2 * (n - i) - 1) as u8;
        match check {
            Check::Eq(v) => p.push(libc::sock_filter { code: JMP | JEQ, jt: 0, jf: to_drop, k: *v }),
            Check::Bits(v) => p.push(libc::sock_filter { code: JMP | JSET, jt: 0, jf: to_drop, k: *v }),
            Check::None => p.push(libc::sock_filter { code: JMP, jt: 0, jf: 0, k: 0 }),
        }
    }
    p.push(stmt(RET, u32::MAX));
    p.push(stmt(RET, 0));
    p
}

#[derive(Clone, Copy)]
enum Check {
    Eq(u32),
    Bits(u32),
    /// A load that only sets the index register.
    None,
}

/// A raw `IPPROTO_ICMP` socket (packets start at the IPv4 header): echo replies (type 0, code 0)
/// with identifier `ident`.
pub fn icmp_echo_replies(ident: u16) -> Program {
    all_of(&[(stmt(LDX | B | MSH, 0), Check::None), (stmt(LD | H | IND, 0), Check::Eq(0x0000)), (stmt(LD | H | IND, 4), Check::Eq(u32::from(ident)))])
}

/// A raw `IPPROTO_ICMPV6` socket (packets start at the ICMPv6 header): echo replies (129, code
/// 0) with identifier `ident`.
pub fn icmp6_echo_replies(ident: u16) -> Program {
    all_of(&[(stmt(LD | H | ABS, 0), Check::Eq(129 << 8)), (stmt(LD | H | ABS, 4), Check::Eq(u32::from(ident)))])
}

/// A raw `IPPROTO_ICMPV6` socket: neighbour advertisements (136, code 0) that came with hop
/// limit 255 and the Solicited flag (RFC 4861 7.1.2: any other hop limit was forwarded, so not
/// sent on this link).
pub fn neighbour_advertisements() -> Program {
    all_of(&[(stmt(LD | H | ABS, 0), Check::Eq(136 << 8)), (stmt(LD | B | ABS, NET_OFF + 7), Check::Eq(255)), (stmt(LD | B | ABS, 4), Check::Bits(0x40))])
}

/// An `ETH_P_ARP` packet socket of type `SOCK_DGRAM` (packets start at the ARP header): ARP
/// replies for Ethernet/IPv4 whose target protocol address is `us`.
pub fn arp_replies_to(us: Ipv4Addr) -> Program {
    all_of(&[(stmt(LD | W | ABS, 0), Check::Eq(0x0001_0800)), (stmt(LD | H | ABS, 6), Check::Eq(2)), (stmt(LD | W | ABS, 24), Check::Eq(u32::from(us)))])
}

/// Attaches `program` to `fd`.
pub fn attach(fd: RawFd, program: &Program) -> io::Result<()> {
    let prog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr().cast_mut() };
    // SAFETY: passes a sock_fprog pointing at `program`, which outlives the call (the kernel
    // copies it).
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&prog as *const libc::sock_fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("attaching a socket filter: {e}")));
    }
    Ok(())
}

/// The filters on real sockets: each test opens the daemon's probe sockets in a namespace of
/// its own, sends what should and what should not pass, and reads what the kernel queued.
#[cfg(test)]
mod tests {
    use std::net::{Ipv6Addr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    use socket2::{Domain, Protocol, SockAddr, Socket, Type};

    use super::super::private_net::{self, veth_pair};
    use super::super::probe::{Wire, Wire4, arp_request, echo_request, interface_index};
    use super::super::probe6::{Wire6, echo_request6, neighbour_solicitation};
    use super::super::stamp;
    use super::*;

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
            let replies = |packets: Vec<Vec<u8>>| -> Vec<(u8, u16)> {
                packets.iter().map(|p| (p[0], u16::from_be_bytes([p[4], p[5]]))).filter(|(t, _)| *t == 129).collect()
            };
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
                tx.send_to(&frame, &super::super::probe::link_address(b, &[0xff; 6])).unwrap();
            }
            let got = drain(wire.gateway_socket().get_ref().as_raw_fd());
            assert!(got.iter().all(|p| p[6..8] == [0, 2] && p[24..28] == us.octets()), "only replies to us: {got:?}");
            assert!(got.iter().any(|p| p[14..18] == fake.octets()), "ours came: {got:?}");
        });
    }
}
