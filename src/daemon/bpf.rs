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
