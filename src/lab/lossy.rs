//! A lossy ICMP echo responder: the kernel has no netem here, so loss and latency are made in
//! user space. In one lab namespace the kernel's own echo replies are switched off and this
//! responder answers echo requests itself, dropping those from chosen sources at random and
//! holding back the answers to others by a fixed delay. IPv4 and IPv6 (ICMPv6 echo) alike.

use std::collections::HashMap;
use std::hash::Hash;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::netns::{in_netns, run};

pub struct LossyResponder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    ns: String,
    /// The sysctl that switched the kernel's own echo replies off, on again when dropped.
    ignore_all: &'static str,
}

/// An echo request's source and the reply to send it.
type Answer<A> = Option<(A, Vec<u8>)>;

/// What differs between the families: the socket, the kernel's switch for its own answers,
/// how a request is read into its source and reply, and where the reply goes.
struct Family<A> {
    domain: Domain,
    protocol: Protocol,
    ignore_all: &'static str,
    reply: fn(&[u8], &SockAddr) -> Answer<A>,
    to: fn(A) -> SockAddr,
}

const V4: Family<Ipv4Addr> = Family {
    domain: Domain::IPV4,
    protocol: Protocol::ICMPV4,
    ignore_all: "net.ipv4.icmp_echo_ignore_all",
    reply: |packet, _| echo_reply(packet),
    to: |a| SockAddr::from(SocketAddrV4::new(a, 0)),
};

const V6: Family<Ipv6Addr> = Family {
    domain: Domain::IPV6,
    protocol: Protocol::ICMPV6,
    ignore_all: "net.ipv6.icmp.echo_ignore_all",
    reply: echo_reply6,
    to: |a| SockAddr::from(SocketAddrV6::new(a, 0, 0, 0)),
};

impl LossyResponder {
    /// Answers ICMP echo requests in `ns` in place of its kernel; requests from a source in
    /// `loss` are dropped with that probability (others always answered). `seed` makes the
    /// drops repeatable.
    pub fn start(ns: &str, loss: HashMap<Ipv4Addr, f64>, seed: u64) -> anyhow::Result<LossyResponder> {
        Self::start_with_delay(ns, loss, HashMap::new(), seed)
    }

    /// As [`LossyResponder::start`]; answers to a source in `delay` leave that much later (an
    /// uplink with added latency).
    pub fn start_with_delay(ns: &str, loss: HashMap<Ipv4Addr, f64>, delay: HashMap<Ipv4Addr, Duration>, seed: u64) -> anyhow::Result<LossyResponder> {
        Self::start_family(V4, ns, loss, delay, seed)
    }

    /// As [`LossyResponder::start`], for ICMPv6 echo requests (the kernel's IPv4 answers go on).
    pub fn start6(ns: &str, loss: HashMap<Ipv6Addr, f64>, seed: u64) -> anyhow::Result<LossyResponder> {
        Self::start_family(V6, ns, loss, HashMap::new(), seed)
    }

    fn start_family<A>(family: Family<A>, ns: &str, loss: HashMap<A, f64>, delay: HashMap<A, Duration>, seed: u64) -> anyhow::Result<LossyResponder>
    where
        A: Copy + Eq + Hash + Send + 'static,
    {
        let (domain, protocol) = (family.domain, family.protocol);
        let socket = in_netns(ns, move || Socket::new(domain, Type::RAW, Some(protocol)))?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        run("ip", &["netns", "exec", ns, "sysctl", "-qw", &format!("{}=1", family.ignore_all)])?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let ignore_all = family.ignore_all;
        let thread = std::thread::spawn(move || serve(&family, socket, &loss, &delay, seed, &flag));
        Ok(LossyResponder { stop, thread: Some(thread), ns: ns.to_string(), ignore_all })
    }
}

impl Drop for LossyResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = run("ip", &["netns", "exec", &self.ns, "sysctl", "-qw", &format!("{}=0", self.ignore_all)]);
    }
}

fn serve<A: Copy + Eq + Hash>(family: &Family<A>, socket: Socket, loss: &HashMap<A, f64>, delay: &HashMap<A, Duration>, seed: u64, stop: &AtomicBool) {
    let mut rng = seed | 1;
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    // Held-back answers: when each is due, to whom, what.
    let mut held: Vec<(Instant, A, Vec<u8>)> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        held.retain(|(due, to, reply)| {
            if *due > now {
                return true;
            }
            let _ = socket.send_to(reply, &(family.to)(*to));
            false
        });
        let wait = held.iter().map(|(due, _, _)| due.saturating_duration_since(now)).min().unwrap_or(Duration::from_millis(100));
        let _ = socket.set_read_timeout(Some(wait.clamp(Duration::from_millis(1), Duration::from_millis(100))));
        let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
        // SAFETY: recv_from initialised the first n bytes.
        let packet: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
        let Some((source, reply)) = (family.reply)(&packet, &from) else { continue };
        if let Some(p) = loss.get(&source) {
            // xorshift64: small, seeded, good enough to drop a fraction of packets.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if (rng % 1_000_000) as f64 / 1e6 < *p {
                continue;
            }
        }
        match delay.get(&source) {
            Some(d) => held.push((Instant::now() + *d, source, reply)),
            None => {
                let _ = socket.send_to(&reply, &(family.to)(source));
            }
        }
    }
}

/// For an IPv4 packet holding an ICMP echo request: its source and the ICMP echo reply to send.
fn echo_reply(packet: &[u8]) -> Option<(Ipv4Addr, Vec<u8>)> {
    let header_len = usize::from(packet.first()? & 0x0f) * 4;
    let icmp = packet.get(header_len..)?;
    if icmp.len() < 8 || icmp[0] != 8 {
        return None;
    }
    let source = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let mut reply = icmp.to_vec();
    reply[0] = 0;
    reply[2] = 0;
    reply[3] = 0;
    let sum = checksum(&reply);
    reply[2..4].copy_from_slice(&sum.to_be_bytes());
    Some((source, reply))
}

/// For an ICMPv6 message (a raw ICMPv6 socket gets no IPv6 header) from `from` holding an echo
/// request: its source and the echo reply to send. The kernel fills in an ICMPv6 checksum.
fn echo_reply6(icmp: &[u8], from: &SockAddr) -> Option<(Ipv6Addr, Vec<u8>)> {
    if icmp.len() < 8 || icmp[0] != 128 {
        return None;
    }
    let source = *from.as_socket_ipv6()?.ip();
    let mut reply = icmp.to_vec();
    reply[0] = 129;
    reply[2] = 0;
    reply[3] = 0;
    Some((source, reply))
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_valid_echo_reply() {
        // IPv4 header (20 bytes, source 10.0.0.2) + echo request id 1 seq 2 "hi".
        let mut p = vec![0x45, 0, 0, 30, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1];
        let mut icmp = vec![8, 0, 0, 0, 0, 1, 0, 2, b'h', b'i'];
        let sum = checksum(&icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(&icmp);
        let (src, reply) = echo_reply(&p).unwrap();
        assert_eq!(src, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(reply[0], 0);
        assert_eq!(checksum(&reply), 0, "a valid checksum sums to zero");
        assert_eq!(&reply[4..], &icmp[4..]);
        assert!(echo_reply(&reply_as_packet(&reply)).is_none(), "replies are not answered");
    }

    #[test]
    fn answers_an_icmpv6_echo_request_and_not_a_reply() {
        let from = SockAddr::from(SocketAddrV6::new("2001:db8:178::99".parse().unwrap(), 0, 0, 0));
        let request = [128, 0, 0x12, 0x34, 0, 1, 0, 2, b'h', b'i'];
        let (src, reply) = echo_reply6(&request, &from).unwrap();
        assert_eq!(src, "2001:db8:178::99".parse::<Ipv6Addr>().unwrap());
        assert_eq!(reply, [129, 0, 0, 0, 0, 1, 0, 2, b'h', b'i']);
        assert!(echo_reply6(&reply, &from).is_none(), "replies are not answered");
    }

    fn reply_as_packet(icmp: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 30, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        p.extend_from_slice(icmp);
        p
    }
}
