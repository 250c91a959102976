//! A lossy ICMP echo responder: the kernel has no netem here, so loss and latency are made in
//! user space. In one lab namespace the kernel's own echo replies are switched off and this
//! responder answers echo requests itself, dropping those from chosen sources at random and
//! holding back the answers to others by a fixed delay.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddrV4};
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
}

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
        let socket = in_netns(ns, || Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)))?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        run("ip", &["netns", "exec", ns, "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1"])?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || serve(socket, &loss, &delay, seed, &flag));
        Ok(LossyResponder { stop, thread: Some(thread), ns: ns.to_string() })
    }
}

impl Drop for LossyResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = run("ip", &["netns", "exec", &self.ns, "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=0"]);
    }
}

fn serve(socket: Socket, loss: &HashMap<Ipv4Addr, f64>, delay: &HashMap<Ipv4Addr, Duration>, seed: u64, stop: &AtomicBool) {
    let mut rng = seed | 1;
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    // Held-back answers: when each is due, to whom, what.
    let mut held: Vec<(Instant, Ipv4Addr, Vec<u8>)> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        held.retain(|(due, to, reply)| {
            if *due > now {
                return true;
            }
            let _ = socket.send_to(reply, &SockAddr::from(SocketAddrV4::new(*to, 0)));
            false
        });
        let wait = held.iter().map(|(due, _, _)| due.saturating_duration_since(now)).min().unwrap_or(Duration::from_millis(100));
        let _ = socket.set_read_timeout(Some(wait.clamp(Duration::from_millis(1), Duration::from_millis(100))));
        let Ok((n, _)) = socket.recv_from(&mut buf) else { continue };
        // SAFETY: recv_from initialised the first n bytes.
        let packet: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
        let Some((source, reply)) = echo_reply(&packet) else { continue };
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
                let _ = socket.send_to(&reply, &SockAddr::from(SocketAddrV4::new(source, 0)));
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

    fn reply_as_packet(icmp: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 30, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        p.extend_from_slice(icmp);
        p
    }
}
