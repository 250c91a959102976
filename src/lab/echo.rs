//! Echo servers inside the lab: UDP on the internet host (answers with the source address it
//! saw, so a probe learns which uplink address it left with) and TCP on the lab host (a
//! connection to one address is answered from that address, through that address's uplink).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::netns::in_netns;

pub const ECHO_PORT: u16 = 7;

/// A server thread, stopped and joined when dropped.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// A server whose thread stops when `stop` is set.
    pub fn new(stop: Arc<AtomicBool>, thread: JoinHandle<()>) -> Server {
        Server { stop, thread: Some(thread) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// UDP echo on `addr` (IPv4 or IPv6) in `ns`: replies `"<source ip> <payload>"`.
pub fn udp_source_echo(ns: &str, addr: impl Into<IpAddr>) -> anyhow::Result<Server> {
    let addr = SocketAddr::new(addr.into(), ECHO_PORT);
    let socket = in_netns(ns, move || UdpSocket::bind(addr))?;
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !flag.load(Ordering::Relaxed) {
            if let Ok((n, peer)) = socket.recv_from(&mut buf) {
                let mut reply = format!("{} ", peer.ip()).into_bytes();
                reply.extend_from_slice(&buf[..n]);
                let _ = socket.send_to(&reply, peer);
            }
        }
    });
    Ok(Server { stop, thread: Some(thread) })
}

/// TCP echo on every address of `ns` on `ECHO_PORT`, IPv4 and IPv6.
pub fn tcp_echo(ns: &str) -> anyhow::Result<Server> {
    let listener = in_netns(ns, || TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, ECHO_PORT)))?;
    // A listener of its own for IPv6 (v6-only: [::] would otherwise take the IPv4 port too).
    let listener6 = in_netns(ns, || {
        let s = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None)?;
        s.set_only_v6(true)?;
        s.bind(&SocketAddr::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, ECHO_PORT, 0, 0)).into())?;
        s.listen(64)?;
        Ok(TcpListener::from(s))
    })?;
    listener.set_nonblocking(true)?;
    listener6.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            match listener.accept().or_else(|_| listener6.accept()) {
                Ok((mut conn, _)) => {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
                    let mut buf = [0u8; 512];
                    if let Ok(n) = conn.read(&mut buf) {
                        let _ = conn.write_all(&buf[..n]);
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Ok(Server { stop, thread: Some(thread) })
}

/// One new, unbound UDP socket in `ns` (wildcard source: a fresh routing decision), one
/// datagram to the echo at `to`; the source address the echo saw, or `None` without an answer.
pub fn udp_probe(ns: &str, to: Ipv4Addr, timeout: Duration) -> anyhow::Result<Option<Ipv4Addr>> {
    Ok(udp_probe_any(ns, to.into(), timeout)?.and_then(|a| match a {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }))
}

/// [`udp_probe`] for either family.
pub fn udp_probe_any(ns: &str, to: IpAddr, timeout: Duration) -> anyhow::Result<Option<IpAddr>> {
    let any = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let socket = in_netns(ns, move || UdpSocket::bind(any))?;
    socket.set_read_timeout(Some(timeout))?;
    if socket.send_to(b"probe", SocketAddr::from((to, ECHO_PORT))).is_err() {
        return Ok(None);
    }
    let mut buf = [0u8; 512];
    match socket.recv_from(&mut buf) {
        Ok((n, _)) => Ok(parse_source(&buf[..n])),
        Err(_) => Ok(None),
    }
}

/// The source address an echo reply names.
pub fn parse_source<A: std::str::FromStr>(reply: &[u8]) -> Option<A> {
    std::str::from_utf8(reply).ok()?.split(' ').next()?.parse().ok()
}

/// A TCP connection from `ns` to `to`: whether a payload came back within `timeout`.
pub fn tcp_roundtrip(ns: &str, to: impl Into<IpAddr>, timeout: Duration) -> anyhow::Result<bool> {
    let addr = SocketAddr::new(to.into(), ECHO_PORT);
    let conn = in_netns(ns, move || std::net::TcpStream::connect_timeout(&addr, timeout));
    let Ok(mut conn) = conn else { return Ok(false) };
    conn.set_read_timeout(Some(timeout))?;
    if conn.write_all(b"hello").is_err() {
        return Ok(false);
    }
    let mut buf = [0u8; 16];
    Ok(matches!(conn.read(&mut buf), Ok(5)))
}
