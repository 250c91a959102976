//! Probes out of one uplink alone: ICMP echo to the `[Probe]` targets and ARP for the gateway.
//!
//! Both sockets are tied to the uplink's interface (`SO_BINDTODEVICE`; the packet socket is
//! bound to its ifindex) and the echo socket also to the uplink's own address, so a probe can
//! never be answered through another uplink: the kernel sends it out of that interface from that
//! address (the uplink's `from` rule picks its own table) and delivers only replies that arrived
//! on it.
//!
//! The echo socket is raw (`SOCK_RAW`/`IPPROTO_ICMP`, needs CAP_NET_RAW): the unprivileged ICMP
//! datagram socket is gated by `net.ipv4.ping_group_range`, which excludes every group by
//! default. An `ICMP_FILTER` keeps everything but echo replies out of it.
//!
//! Traffic at the defaults (Interval=200ms; the ceiling for any policy: [`super::probe_rate`]):
//! per uplink and round one echo per target and one ARP
//! request, i.e. 5 × (targets + 1) packets per second out and as many replies in — 15 pps each way
//! with two targets, about 0.7 kB/s out (42-byte ARP frames, 36-byte IP echo packets). ARP goes
//! unicast to the gateway's known MAC (as the kernel's own neighbour probes do), broadcast only
//! until the MAC is known or after a miss. While an uplink is suspect (a round failed) its rounds
//! send up to [`super::fsm::SUSPECT_PROBES`] echoes per target, stopping at the first
//! answer.
//!
//! A late answer starts the follow-ups at once (issue 14): when the uplink is trusted and a
//! target has not answered its echo within [`late`] (four smoothed round trips, at least
//! [`LATE_MIN`], at most half the timeout), the round sends `FailAfter - 1` groups of
//! `SUSPECT_PROBES` echoes to it right away, [`FOLLOW_UP_SPACING`] apart, instead of waiting for
//! the next rounds to do so one interval at a time; the first answer from the target ends them.
//! A round in which every one of those echoes was lost stands for `FailAfter` failed rounds. The
//! packets are the ones the suspect rounds sent before (one echo, then two rounds of five), only
//! sooner, and the steady rate stays one echo per target per interval; what 20 % random loss
//! needs to demote a healthy uplink is unchanged (eleven echoes in a row lost). A silent failure
//! is then seen one timeout after the first unanswered echo (plus `late` and the spread of the
//! follow-ups), not after FailAfter intervals.
//!
//! A round's verdict: with targets, whether the answered targets satisfy `Require=`; without
//! targets, whether the gateway answered ARP. ARP alone never vouches for an uplink that has
//! targets: a gateway whose upstream is dead still answers ARP (the silent failure).
//!
//! What is an answer (issue 23): an echo reply with this prober's identifier and a sequence
//! number of the round, both random (from `getrandom`); an ARP reply from the gateway to our
//! address and MAC while our question is outstanding (packets queued before the question are
//! discarded unread); for IPv6 see `probe6::answer_from`. Kernel filters ([`super::bpf`]) keep
//! everything else out of the sockets. ARP and NDP carry no nonce: a host on the link that
//! answers for the gateway's address passes as the gateway, which is why ARP never decides for
//! an uplink with targets.

use std::io;
use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use crate::policy::Require;

/// What one round is to do (`A`: the family's address, IPv4 unless said).
#[derive(Debug, Clone)]
pub struct RoundPlan<A = Ipv4Addr> {
    pub targets: Vec<A>,
    pub require: Require,
    /// Ask this gateway on the link (ARP for IPv4, neighbour solicitation for IPv6).
    pub arp: Option<A>,
    /// Echoes per target at most (the first answer ends a target's series).
    pub probes: u32,
    pub timeout: Duration,
    /// Groups of follow-up echoes a late answer starts (see the module doc); 0: none.
    pub follow_ups: u32,
}

/// The least time an echo may take before its answer counts as late: far above a LAN's round
/// trip, and short next to the timeout that decides the round.
pub const LATE_MIN: Duration = Duration::from_millis(20);

/// The most packets read and thrown away from the gateway socket before a question (see
/// [`Prober::round`]): a default receive buffer holds a few hundred ARP frames.
const DRAIN_AT_MOST: usize = 1024;

/// Between two follow-up echoes to a target: spread a little, so that one short burst of loss
/// (a queue overflowing once) does not take all of them, and all ten still leave within 45 ms.
pub const FOLLOW_UP_SPACING: Duration = Duration::from_millis(5);

/// When an answer is late, for an uplink whose smoothed round trip is `srtt` (none yet: the
/// least): four round trips, at least [`LATE_MIN`], at most half of `timeout`.
pub fn late(srtt: Option<Duration>, timeout: Duration) -> Duration {
    srtt.map_or(LATE_MIN, |s| s * 4).max(LATE_MIN).min(timeout / 2)
}

/// What one round saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoundResult {
    pub ok: bool,
    /// Echo requests sent and answered, for the loss figure ([`for_loss`]: echoes sent to a
    /// target after the one it answered are not counted).
    pub sent: u32,
    pub answered: u32,
    /// Per target, in plan order: answered in this round.
    pub targets: Vec<bool>,
    /// Fastest echo answer of the round.
    pub rtt: Option<Duration>,
    /// `None` when ARP was not asked.
    pub gateway_arp: Option<bool>,
    /// How many rounds this one stands for: 1, or 1 + the follow-up groups when it failed after
    /// sending them (each group is what a suspect round used to be).
    pub rounds: u32,
}

/// Whether the per-target answers satisfy `require`.
pub fn combine(answered: &[bool], require: Require) -> bool {
    let n = answered.iter().filter(|a| **a).count();
    match require {
        Require::All => !answered.is_empty() && n == answered.len(),
        Require::AtLeast(k) => n >= k.min(answered.len()).max(1),
    }
}

/// The round's verdict from its parts (see the module doc).
pub fn verdict(targets: &[bool], require: Require, gateway_arp: Option<bool>) -> bool {
    if targets.is_empty() { gateway_arp.unwrap_or(false) } else { combine(targets, require) }
}

/// An address family as a value: which of an uplink's sides a round, a transition or a log
/// line is of (the type-level side of it is `super::family::IpFamily`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// One family's probe sockets on one uplink: how an echo and a gateway question are sent, and
/// how their answers are read. The round itself ([`Prober::round`]) is the same for both
/// families; IPv4's sockets are [`Wire4`], IPv6's are `probe6::Wire6`.
pub trait Wire: Sized {
    type Addr: Copy + Eq + std::fmt::Display + Send + Sync + 'static;
    const FAMILY: Family;
    /// Opens the sockets on `interface` (index `ifindex`), sending from `source`; the echo
    /// socket's kernel filter passes only replies with identifier `ident` (see [`super::bpf`]).
    fn open(interface: &str, ifindex: u32, source: Self::Addr, ident: u16) -> io::Result<Self>;
    fn echo_socket(&self) -> &AsyncFd<Socket>;
    fn gateway_socket(&self) -> &AsyncFd<Socket>;
    fn send_echo(&self, target: Self::Addr, ident: u16, seq: u16) -> io::Result<usize>;
    /// Asks `gateway` on the link; `known` is its hardware address from its last answer.
    fn send_gateway(&self, gateway: Self::Addr, known: Option<[u8; 6]>) -> io::Result<usize>;
    /// Reads one packet from the echo socket, without blocking: the echo reply it is if it
    /// answers one of ours.
    fn recv_echo(&self, buf: &mut [u8], ident: u16) -> io::Result<Option<Echo<Self::Addr>>>;
    /// Reads one packet from the gateway socket: the gateway's hardware address if it is a
    /// valid answer from `gateway` to a question of ours (the caller knows whether one is
    /// outstanding).
    fn recv_gateway(&self, buf: &mut [u8], gateway: Self::Addr) -> io::Result<Option<[u8; 6]>>;
}

/// An answer to one of our echoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo<A> {
    pub from: A,
    pub seq: u16,
    /// When the kernel received it (see [`super::stamp`]); `None` if it gave no stamp.
    pub stamp: Option<std::time::SystemTime>,
}

/// Open probe sockets of one uplink, for one family.
pub struct Prober<W: Wire = Wire4> {
    interface: String,
    source: W::Addr,
    wire: W,
    gateway_mac: Option<(W::Addr, [u8; 6])>,
    ident: u16,
    seq: u16,
    /// Smoothed round trip of the answers (RFC 6298's 1/8 gain), for [`late`].
    srtt: Option<Duration>,
}

/// IPv4's sockets: a raw ICMP socket and an ARP packet socket.
pub struct Wire4 {
    source: Ipv4Addr,
    icmp: AsyncFd<Socket>,
    arp: AsyncFd<Socket>,
    ifindex: u32,
    mac: [u8; 6],
}

/// The index of the interface called `name`.
pub fn interface_index(interface: &str) -> io::Result<u32> {
    let name = std::ffi::CString::new(interface).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a NUL-terminated string that outlives the call.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 { Err(io::Error::last_os_error()) } else { Ok(ifindex) }
}

impl Wire for Wire4 {
    type Addr = Ipv4Addr;
    const FAMILY: Family = Family::V4;

    fn open(interface: &str, ifindex: u32, source: Ipv4Addr, ident: u16) -> io::Result<Wire4> {
        let icmp = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
        icmp.bind_device(Some(interface.as_bytes()))?;
        icmp.bind(&SockAddr::from(SocketAddrV4::new(source, 0)))?;
        icmp.set_nonblocking(true)?;
        icmp_filter_echo_replies(icmp.as_raw_fd())?;
        super::bpf::attach(icmp.as_raw_fd(), &super::bpf::icmp_echo_replies(ident))?;
        super::stamp::enable(icmp.as_raw_fd())?;

        // Opened for no protocol and bound to ARP on the interface in one step: a packet socket
        // opened for ARP already receives every interface's ARP, and binding it then has the
        // kernel wait for an RCU grace period (`synchronize_net`) to unhook it — 7 to 16 ms
        // each, measured, which at 64 uplinks held every first verdict back by a second.
        let arp = Socket::new(Domain::PACKET, Type::DGRAM, None)?;
        // Filtered before it is bound: from the bind on, frames are queued.
        super::bpf::attach(arp.as_raw_fd(), &super::bpf::arp_replies_to(source))?;
        arp.bind(&link_address(ifindex, &[0; 6]))?;
        arp.set_nonblocking(true)?;
        let mac = hardware_address(arp.as_raw_fd(), interface)?;
        Ok(Wire4 { source, icmp: register(icmp)?, arp: register(arp)?, ifindex, mac })
    }

    fn echo_socket(&self) -> &AsyncFd<Socket> {
        &self.icmp
    }

    fn gateway_socket(&self) -> &AsyncFd<Socket> {
        &self.arp
    }

    fn send_echo(&self, target: Ipv4Addr, ident: u16, seq: u16) -> io::Result<usize> {
        let packet = echo_request(ident, seq);
        self.icmp.get_ref().send_to(&packet, &SockAddr::from(SocketAddrV4::new(target, 0)))
    }

    fn send_gateway(&self, gateway: Ipv4Addr, known: Option<[u8; 6]>) -> io::Result<usize> {
        let frame = arp_request(self.mac, self.source, gateway);
        self.arp.get_ref().send_to(&frame, &link_address(self.ifindex, &known.unwrap_or([0xff; 6])))
    }

    fn recv_echo(&self, buf: &mut [u8], ident: u16) -> io::Result<Option<Echo<Ipv4Addr>>> {
        let got = super::stamp::recv(self.icmp.get_ref().as_raw_fd(), buf)?;
        Ok(parse_echo_reply(&buf[..got.len], ident).map(|(from, seq)| Echo { from, seq, stamp: got.stamp }))
    }

    fn recv_gateway(&self, buf: &mut [u8], gateway: Ipv4Addr) -> io::Result<Option<[u8; 6]>> {
        let len = recv(self.arp.get_ref().as_raw_fd(), buf)?;
        Ok(parse_arp_reply(&buf[..len], self.source, self.mac, gateway))
    }
}

impl<W: Wire> Prober<W> {
    /// Opens the sockets on `interface`, sending from `source`. The echo identifier and the
    /// first sequence number are random, so a host that does not see our requests cannot forge
    /// their answers by guessing (issue 23).
    pub fn open(interface: &str, source: W::Addr) -> io::Result<Prober<W>> {
        let ifindex = interface_index(interface)?;
        let ident = super::random::random_u16()?;
        let seq = super::random::random_u16()?;
        let wire = W::open(interface, ifindex, source, ident)?;
        Ok(Prober { interface: interface.to_string(), source, wire, gateway_mac: None, ident, seq, srtt: None })
    }

    /// The echo identifier and the next sequence number (for tests).
    pub fn echo_ids(&self) -> (u16, u16) {
        (self.ident, self.seq)
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn source(&self) -> W::Addr {
        self.source
    }

    /// Runs one round: sends, waits for answers until `plan.timeout` (or until everything
    /// asked has answered), and judges it.
    pub async fn round(&mut self, plan: &RoundPlan<W::Addr>) -> RoundResult {
        let start = Instant::now();
        let deadline = start + plan.timeout;
        let probes = plan.probes.max(1);
        // A suspect uplink's extra echoes are spread over the first half of the round, so each
        // still has half the timeout to come back.
        let spacing = plan.timeout / (2 * probes);
        let first_seq = self.seq;
        let n = plan.targets.len();
        // Per target, the echo it answered (its sequence number), once it has.
        let mut answered: Vec<Option<u16>> = vec![None; n];
        let mut sent_per_target = vec![0u32; n];
        let mut send_times: Vec<(u16, usize, Instant)> = Vec::new();
        let mut result = RoundResult::default();
        let mut arp_answered = plan.arp.map(|_| false);
        let known = self.gateway_mac.filter(|(ip, _)| Some(*ip) == plan.arp).map(|(_, mac)| mac);
        let mut buf = [0u8; 1500];
        if let Some(gw) = plan.arp {
            self.ask_gateway(gw, known, &mut buf);
        }
        let mut next_burst = 0u32;
        let mut next_send_at = start;
        // Follow-ups: only in a round of one echo (a trusted uplink); started when it is late.
        let follow_up_echoes = if probes == 1 { plan.follow_ups * super::fsm::SUSPECT_PROBES } else { 0 };
        let late_at = start + late(self.srtt, plan.timeout);
        let mut follow_ups_sent = 0u32;
        let mut next_follow_up: Option<Instant> = None;
        let mut deadline = deadline;
        loop {
            let now = Instant::now();
            let regular = next_burst < probes && now >= next_send_at;
            if next_follow_up.is_none() && follow_up_echoes > 0 && now >= late_at && answered.iter().any(Option::is_none) {
                next_follow_up = Some(now);
            }
            let follow_up = follow_ups_sent < follow_up_echoes && next_follow_up.is_some_and(|at| now >= at);
            if regular || follow_up {
                self.send_echoes(&plan.targets, &answered, &mut send_times, &mut sent_per_target);
                if regular {
                    next_burst += 1;
                    next_send_at = start + spacing * next_burst;
                } else {
                    follow_ups_sent += 1;
                    next_follow_up = next_follow_up.map(|at| at + FOLLOW_UP_SPACING);
                    // Each follow-up gets the whole timeout to come back.
                    deadline = deadline.max(Instant::now() + plan.timeout);
                }
                continue;
            }
            let all_done = answered.iter().all(Option::is_some) && arp_answered != Some(false);
            if all_done {
                break;
            }
            if now >= deadline {
                // Answers that came in time but were not read by then (the daemon's thread was
                // busy, or not scheduled) still count: the kernel's stamp says when they came.
                while let Ok(Some(echo)) = self.wire.recv_echo(&mut buf, self.ident) {
                    if echo.stamp.is_some_and(|_| now - super::stamp::waited(echo.stamp) <= deadline) {
                        self.take_answer(echo, &plan.targets, first_seq, &send_times, &mut answered, &mut result);
                    }
                }
                if let Some(gw) = plan.arp {
                    while let Ok(Some(mac)) = self.wire.recv_gateway(&mut buf, gw) {
                        self.take_gateway(gw, mac, &mut arp_answered);
                    }
                }
                break;
            }
            let mut wake = if next_burst < probes { next_send_at.min(deadline) } else { deadline };
            // Only a moment still ahead: once every target has answered (the round may still
            // wait for ARP), the late mark has passed without starting anything and must not
            // wake the loop again and again.
            match next_follow_up {
                None if follow_up_echoes > 0 && late_at > now && answered.iter().any(Option::is_none) => wake = wake.min(late_at),
                Some(at) if follow_ups_sent < follow_up_echoes => wake = wake.min(at),
                _ => {}
            }
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                guard = self.wire.echo_socket().readable() => {
                    let Ok(mut guard) = guard else { break };
                    if let Ok(Ok(Some(echo))) = guard.try_io(|_| self.wire.recv_echo(&mut buf, self.ident)) {
                        self.take_answer(echo, &plan.targets, first_seq, &send_times, &mut answered, &mut result);
                    }
                }
                guard = self.wire.gateway_socket().readable(), if plan.arp.is_some() => {
                    let Ok(mut guard) = guard else { break };
                    let gw = plan.arp.expect("read only when asked");
                    if let Ok(Ok(Some(mac))) = guard.try_io(|_| self.wire.recv_gateway(&mut buf, gw)) {
                        self.take_gateway(gw, mac, &mut arp_answered);
                    }
                }
            }
        }
        if arp_answered == Some(false) {
            // Ask by broadcast next time: the gateway may have a new MAC.
            self.gateway_mac = None;
        }
        result.sent = for_loss(&send_times, &answered);
        result.targets = answered.iter().map(Option::is_some).collect();
        result.gateway_arp = arp_answered;
        result.ok = verdict(&result.targets, plan.require, result.gateway_arp);
        result.rounds = if result.ok { 1 } else { 1 + follow_ups_sent / super::fsm::SUSPECT_PROBES };
        result
    }

    /// Asks `gateway` its hardware address (ARP, NDP). What waits in the socket came before this
    /// question: not an answer to it, whatever it says (a forged reply sent between rounds must
    /// not vouch for the next one). Bounded, so that a flood cannot hold the round here: more
    /// than a receive buffer's worth of replies in one interval is a flood, and the round then
    /// runs on it. A failed send leaves the question unanswered.
    fn ask_gateway(&mut self, gateway: W::Addr, known: Option<[u8; 6]>, buf: &mut [u8]) {
        for _ in 0..DRAIN_AT_MOST {
            if self.wire.recv_gateway(buf, gateway).is_err() {
                break;
            }
        }
        let _ = self.wire.send_gateway(gateway, known);
    }

    /// One echo to each target that has not answered in this round yet.
    fn send_echoes(&mut self, targets: &[W::Addr], answered: &[Option<u16>], send_times: &mut Vec<(u16, usize, Instant)>, sent_per_target: &mut [u32]) {
        for (i, target) in targets.iter().enumerate() {
            if answered[i].is_some() {
                continue;
            }
            let seq = self.seq;
            self.seq = self.seq.wrapping_add(1);
            // Taken just before the send: the round trip starts there, whenever the round
            // itself got to run. A failed send (no route, link gone) is a lost probe, nothing
            // more.
            send_times.push((seq, i, Instant::now()));
            let _ = self.wire.send_echo(*target, self.ident, seq);
            sent_per_target[i] += 1;
        }
    }

    /// Counts `echo` if it answers an echo of this round to its target not answered yet. Its
    /// round trip ends when the kernel received it, not when it was read (see [`super::stamp`]).
    fn take_answer(
        &mut self,
        echo: Echo<W::Addr>,
        targets: &[W::Addr],
        first_seq: u16,
        send_times: &[(u16, usize, Instant)],
        answered: &mut [Option<u16>],
        result: &mut RoundResult,
    ) {
        let in_round = echo.seq.wrapping_sub(first_seq) < self.seq.wrapping_sub(first_seq);
        let Some((_, i, sent_at)) = send_times.iter().find(|(s, _, _)| *s == echo.seq).filter(|_| in_round) else { return };
        if targets[*i] != echo.from || answered[*i].is_some() {
            return;
        }
        answered[*i] = Some(echo.seq);
        result.answered += 1;
        let rtt = round_trip(*sent_at, Instant::now(), super::stamp::waited(echo.stamp));
        result.rtt = Some(result.rtt.map_or(rtt, |r: Duration| r.min(rtt)));
        self.srtt = Some(self.srtt.map_or(rtt, |s| s * 7 / 8 + rtt / 8));
    }

    /// Counts the gateway's answer while our question is outstanding (one answer ends it).
    fn take_gateway(&mut self, gw: W::Addr, mac: [u8; 6], arp_answered: &mut Option<bool>) {
        if *arp_answered == Some(false) {
            *arp_answered = Some(true);
            self.gateway_mac = Some((gw, mac));
        }
    }
}

/// How many of a round's echoes (`send_times`: sequence number and target, in the order sent)
/// count for the loss figure: to a target that answered, those up to the one it answered
/// (`answered`: its sequence number), since the ones after it were follow-ups the round stopped
/// waiting for once the answer was read, redundant rather than lost (issue 22: an answer read
/// late, as after a resume, made every follow-up sent meanwhile look lost); to a target that did
/// not answer, all.
fn for_loss<T>(send_times: &[(u16, usize, T)], answered: &[Option<u16>]) -> u32 {
    let mut done = vec![false; answered.len()];
    let mut counted = 0;
    for (seq, i, _) in send_times {
        if done[*i] {
            continue;
        }
        counted += 1;
        done[*i] = answered[*i] == Some(*seq);
    }
    counted
}

/// The round trip of an echo sent at `sent_at` whose answer is read at `read_at` after waiting
/// `waited` in the socket: from the send to the answer's arrival, never less than zero.
pub fn round_trip(sent_at: Instant, read_at: Instant, waited: Duration) -> Duration {
    read_at.saturating_duration_since(sent_at).saturating_sub(waited)
}

const ETH_P_ARP: u16 = 0x0806;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
/// Payload of our echoes, so a capture shows whose they are.
const PAYLOAD: &[u8; 8] = b"multihom";

pub(super) fn register(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: the Socket owns its descriptor and keeps it open until the AsyncFd drops it.
    unsafe { AsyncFd::register(socket) }.map_err(|e| e.into_parts().1)
}

pub(super) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for buf.len() bytes for the duration of the call.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// Lets only echo replies reach the raw socket (the kernel's per-socket ICMP type filter).
fn icmp_filter_echo_replies(fd: RawFd) -> io::Result<()> {
    const ICMP_FILTER: libc::c_int = 1;
    let mask: u32 = !(1u32 << ICMP_ECHO_REPLY);
    // SAFETY: passes a u32 of the size given.
    let rc = unsafe { libc::setsockopt(fd, libc::SOL_RAW, ICMP_FILTER, (&mask as *const u32).cast(), size_of::<u32>() as libc::socklen_t) };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

pub(super) fn hardware_address(fd: RawFd, interface: &str) -> io::Result<[u8; 6]> {
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(interface.as_bytes()) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR reads ifr_name and writes ifr_hwaddr of the ifreq we own.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the ioctl filled the hwaddr member of the union.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (m, d) in mac.iter_mut().zip(data.iter()) {
        *m = *d as u8;
    }
    Ok(mac)
}

/// The `sockaddr_ll` an ARP frame is sent to: `mac` on the link `ifindex` (also the lab's ARP
/// spoofer's, tests/lab_spoof.rs).
pub fn link_address(ifindex: u32, mac: &[u8; 6]) -> SockAddr {
    // SAFETY: sockaddr_ll is plain old data; zeroed is a valid value.
    let mut ll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    ll.sll_family = libc::AF_PACKET as u16;
    ll.sll_protocol = ETH_P_ARP.to_be();
    ll.sll_ifindex = ifindex as i32;
    ll.sll_halen = 6;
    ll.sll_addr[..6].copy_from_slice(mac);
    // SAFETY: sockaddr_ll fits in sockaddr_storage, and the length says exactly what we wrote.
    let (_, addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            std::ptr::write(storage.cast::<libc::sockaddr_ll>(), ll);
            *len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            Ok(())
        })
    }
    .expect("filling a sockaddr_ll cannot fail");
    addr
}

/// The internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP echo request (without IP header: the kernel adds it on a raw ICMP socket).
pub fn echo_request(ident: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![ICMP_ECHO_REQUEST, 0, 0, 0];
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(PAYLOAD);
    let sum = checksum(&p);
    p[2..4].copy_from_slice(&sum.to_be_bytes());
    p
}

/// An IPv4 packet as a raw ICMP socket receives it -> (source, sequence) if it is an echo reply
/// to one of our requests.
pub fn parse_echo_reply(packet: &[u8], ident: u16) -> Option<(Ipv4Addr, u16)> {
    let ihl = usize::from(packet.first()? & 0x0f) * 4;
    if packet.first()? >> 4 != 4 || packet.get(9) != Some(&1) || ihl < 20 {
        return None;
    }
    let source = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let icmp = packet.get(ihl..)?;
    if icmp.len() < 8 || icmp[0] != ICMP_ECHO_REPLY || icmp[1] != 0 {
        return None;
    }
    if u16::from_be_bytes([icmp[4], icmp[5]]) != ident {
        return None;
    }
    Some((source, u16::from_be_bytes([icmp[6], icmp[7]])))
}

/// An ARP request (the payload of an `ETH_P_ARP` packet socket; the kernel adds the Ethernet
/// header from the destination `sockaddr_ll`).
pub fn arp_request(mac: [u8; 6], source: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0, 1, 8, 0, 6, 4, 0, 1];
    p.extend_from_slice(&mac);
    p.extend_from_slice(&source.octets());
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&target.octets());
    p
}

/// An ARP payload -> the sender's MAC if it is a reply (opcode 2, Ethernet/IPv4) from
/// `gateway` to our request: sender IP the gateway's, target IP and MAC ours. A gratuitous or
/// broadcast "reply", or one naming another host, is not an answer.
pub fn parse_arp_reply(p: &[u8], us: Ipv4Addr, our_mac: [u8; 6], gateway: Ipv4Addr) -> Option<[u8; 6]> {
    if p.len() < 28 || p[0..8] != [0, 1, 8, 0, 6, 4, 0, 2] {
        return None;
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&p[8..14]);
    let sender = Ipv4Addr::new(p[14], p[15], p[16], p[17]);
    let target = Ipv4Addr::new(p[24], p[25], p[26], p[27]);
    (sender == gateway && target == us && p[18..24] == our_mac && mac != [0xff; 6] && mac != [0; 6]).then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_an_answer_waited_to_be_read_is_not_its_round_trip() {
        let sent = Instant::now();
        let ms = Duration::from_millis;
        // Read 80 ms after the send, having waited 79.5 ms for a busy daemon: 0.5 ms.
        assert_eq!(round_trip(sent, sent + ms(80), Duration::from_micros(79_500)), Duration::from_micros(500));
        assert_eq!(round_trip(sent, sent + ms(3), Duration::ZERO), ms(3), "no stamp: the daemon's own clock");
        assert_eq!(round_trip(sent, sent + ms(3), ms(10)), Duration::ZERO, "a stamp from a stepped clock never makes it negative");
    }

    #[test]
    fn echoes_after_the_answered_one_are_not_counted_for_loss() {
        // Target 0 answered its second echo (the first lost), target 1 its first; the rest
        // were follow-ups nobody waited for. Target 2 answered nothing: all three are lost.
        let sent = [(10, 0, ()), (11, 1, ()), (12, 2, ()), (13, 0, ()), (14, 1, ()), (15, 2, ()), (16, 0, ()), (17, 2, ())];
        assert_eq!(for_loss(&sent, &[Some(13), Some(11), None]), 2 + 1 + 3);
        assert_eq!(for_loss(&sent, &[None, None, None]), 8, "nothing answered: every echo lost");
        assert_eq!(for_loss::<()>(&[], &[]), 0);
    }

    #[test]
    fn require_combines_per_target_answers() {
        assert!(combine(&[true, false], Require::AtLeast(1)));
        assert!(!combine(&[false, false], Require::AtLeast(1)));
        assert!(!combine(&[true, false], Require::AtLeast(2)));
        assert!(combine(&[true, true], Require::All));
        assert!(!combine(&[true, false], Require::All));
        assert!(!combine(&[], Require::All));
    }

    #[test]
    fn arp_decides_only_without_targets() {
        assert!(verdict(&[], Require::AtLeast(1), Some(true)));
        assert!(!verdict(&[], Require::AtLeast(1), None));
        // The silent failure: the gateway answers ARP, nothing behind it answers.
        assert!(!verdict(&[false], Require::AtLeast(1), Some(true)));
        assert!(verdict(&[true], Require::AtLeast(1), Some(false)));
    }

    #[test]
    fn an_answer_is_late_after_four_round_trips_within_bounds() {
        let ms = Duration::from_millis;
        assert_eq!(late(None, ms(200)), LATE_MIN, "no round trip known yet");
        assert_eq!(late(Some(ms(1)), ms(200)), LATE_MIN, "a LAN");
        assert_eq!(late(Some(ms(15)), ms(200)), ms(60));
        assert_eq!(late(Some(ms(80)), ms(200)), ms(100), "at most half the timeout");
        assert_eq!(late(Some(ms(80)), ms(30)), ms(15), "a short timeout wins over the least");
    }

    #[test]
    fn echo_request_has_a_valid_checksum_and_our_fields() {
        let p = echo_request(0x1234, 7);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        assert_eq!(&p[..2], &[8, 0]);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
    }

    #[test]
    fn echo_replies_are_matched_by_identifier() {
        // An IPv4 header from 198.51.100.10 carrying the reply to our echo 7.
        let mut reply = vec![0x45, 0, 0, 36, 0, 0, 0, 0, 64, 1, 0, 0, 198, 51, 100, 10, 192, 168, 178, 99];
        let mut icmp = echo_request(0x1234, 7);
        icmp[0] = 0;
        reply.extend_from_slice(&icmp);
        assert_eq!(parse_echo_reply(&reply, 0x1234), Some((Ipv4Addr::new(198, 51, 100, 10), 7)));
        assert_eq!(parse_echo_reply(&reply, 0x4321), None, "someone else's echo");
        reply[20] = 8;
        assert_eq!(parse_echo_reply(&reply, 0x1234), None, "a request is not a reply");
    }

    fn plan<A>(arp: A) -> RoundPlan<A> {
        RoundPlan { targets: Vec::new(), require: Require::AtLeast(1), arp: Some(arp), probes: 1, timeout: Duration::from_millis(150), follow_ups: 0 }
    }

    /// An answer the daemon reads late (its thread busy: in the VM, the first seconds after a
    /// resume from suspend) starts follow-ups the round then no longer waits for: sent after the
    /// echo that was answered, they are redundant, not lost. Counted as lost they put the loss
    /// over 48 rounds at 54 % and made two healthy uplinks "poor" after a resume (issue 22).
    #[test]
    fn follow_ups_after_an_answer_read_late_are_not_loss() {
        // The namespace's loopback answers at once (a veth peer in the same namespace would be
        // a local address, answered through lo, which the prober bound to its link ignores).
        super::super::private_net::run(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let plan = RoundPlan {
                    targets: vec![Ipv4Addr::LOCALHOST],
                    require: Require::All,
                    arp: None,
                    probes: 1,
                    timeout: Duration::from_millis(200),
                    follow_ups: 2,
                };
                let mut seen = Vec::new();
                for _ in 0..20 {
                    // The round sends its echo and waits (a new prober each time: the reactor
                    // has not yet reported its socket readable); then the runtime's only thread
                    // is busy past the late mark, while the answer (there at once) waits in the
                    // socket. The round then sees the late mark and the answer together, and
                    // takes either first.
                    let mut prober = Prober::<Wire4>::open("lo", Ipv4Addr::LOCALHOST).unwrap();
                    let busy = async { std::thread::sleep(LATE_MIN * 2) };
                    let (r, ()) = tokio::join!(prober.round(&plan), busy);
                    seen.push((r.ok, r.sent, r.answered));
                }
                assert!(seen.iter().all(|&(ok, sent, answered)| ok && sent == 1 && answered == 1), "(ok, sent, answered) of each round: {seen:?}");
            });
        });
    }

    /// An off-path host must guess both: no two probers share an identifier by design, and no
    /// series starts at a known sequence number.
    #[test]
    fn echo_identifiers_and_sequence_starts_are_random() {
        super::super::private_net::run(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let _g = rt.enter();
            let ids: Vec<(u16, u16)> = (0..4).map(|_| Prober::<Wire4>::open("lo", Ipv4Addr::LOCALHOST).unwrap().echo_ids()).collect();
            // All four equal by chance: 2^-48.
            assert!(ids.iter().any(|(i, _)| *i != ids[0].0), "identifiers {ids:?}");
            assert!(ids.iter().any(|(_, s)| *s != ids[0].1), "sequence starts {ids:?}");
            assert!(ids.iter().any(|(_, s)| *s != 0), "sequence starts {ids:?}");
        });
    }

    /// A reply sent before our question (between rounds) is not an answer to it; the same
    /// reply sent while the question is outstanding is. (Both ends are in one namespace, where
    /// the kernel does not answer ARP from its own address; the IPv6 test below has the real
    /// neighbour answer.)
    #[test]
    fn an_arp_reply_nobody_asked_for_does_not_vouch_for_the_gateway() {
        super::super::private_net::run(|| {
            super::super::private_net::veth_pair();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let us = Ipv4Addr::new(10, 9, 0, 1);
                let mut prober = Prober::<Wire4>::open("va", us).unwrap();
                // A gateway that does not exist, and a forged reply for it, correct in every field.
                let ghost = Ipv4Addr::new(10, 9, 0, 50);
                let mut forged = arp_request([2, 0, 0, 0, 0, 0x50], ghost, us);
                forged[7] = 2;
                forged[18..24].copy_from_slice(&prober.wire.mac);
                let tx = Socket::new(Domain::PACKET, Type::DGRAM, None).unwrap();
                let to = link_address(interface_index("vb").unwrap(), &prober.wire.mac);
                tx.send_to(&forged, &to).unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
                assert_eq!(prober.round(&plan(ghost)).await.gateway_arp, Some(false), "the reply sent before the question counted");
                let send_later = async {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    tx.send_to(&forged, &to).unwrap();
                };
                let asked = plan(ghost);
                let (during, ()) = tokio::join!(prober.round(&asked), send_later);
                assert_eq!((during.gateway_arp, during.ok), (Some(true), true), "the same reply while the question is outstanding");
            });
        });
    }

    #[test]
    fn arp_replies_count_only_from_the_gateway_to_us() {
        let us = Ipv4Addr::new(192, 168, 178, 99);
        let our_mac = [2, 0, 0, 0, 0, 99];
        let gw = Ipv4Addr::new(192, 168, 178, 1);
        let reply = |sender_mac: [u8; 6], sender: Ipv4Addr, target_mac: [u8; 6], target: Ipv4Addr| {
            let mut p = arp_request(sender_mac, sender, target);
            p[7] = 2;
            p[18..24].copy_from_slice(&target_mac);
            p
        };
        assert_eq!(parse_arp_reply(&reply([2, 0, 0, 0, 0, 1], gw, our_mac, us), us, our_mac, gw), Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(parse_arp_reply(&reply([2, 0, 0, 0, 0, 1], gw, our_mac, gw), us, our_mac, gw), None, "addressed to someone else");
        let other = Ipv4Addr::new(192, 168, 178, 7);
        assert_eq!(parse_arp_reply(&reply([2, 0, 0, 0, 0, 7], other, our_mac, us), us, our_mac, gw), None, "not from the gateway");
        assert_eq!(parse_arp_reply(&reply([2, 0, 0, 0, 0, 1], gw, [0xff; 6], us), us, our_mac, gw), None, "broadcast: not an answer to us");
        assert_eq!(parse_arp_reply(&reply([0xff; 6], gw, our_mac, us), us, our_mac, gw), None, "a broadcast sender");
        assert_eq!(parse_arp_reply(&arp_request([2; 6], gw, us), us, our_mac, gw), None, "a request");
    }
}
