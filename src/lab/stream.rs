//! One long-lived connection, as an scp or SSH session is: an echo server on the internet host
//! that accepts MPTCP (and plain TCP, which an MPTCP listener also takes), and a client on the
//! lab host that sends a numbered 100-byte message every few milliseconds and waits for each
//! to come back. What it records (when each echo came back, whether every byte came back in
//! order) shows whether the connection survived a fault, and how long it stalled.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::echo::Server;
use super::netns::in_netns;

/// The port of the stream echo on the internet host (the UDP echo has port 7 there).
pub const STREAM_PORT: u16 = 9;
/// The size of one message, as in issue 15's measurement.
pub const MESSAGE: usize = 100;
/// IPPROTO_MPTCP (linux/in.h): libc has no constant for it on every target.
const IPPROTO_MPTCP: i32 = 262;

fn stream_socket(mptcp: bool) -> std::io::Result<Socket> {
    Socket::new(Domain::IPV4, Type::STREAM, Some(if mptcp { Protocol::from(IPPROTO_MPTCP) } else { Protocol::TCP }))
}

/// An MPTCP echo on `addr`:`STREAM_PORT` in `ns`, a thread per connection, echoing every byte
/// until the peer closes or the server is dropped.
pub fn mptcp_echo(ns: &str, addr: Ipv4Addr) -> anyhow::Result<Server> {
    let listener: TcpListener = in_netns(ns, move || {
        let s = stream_socket(true)?;
        s.set_reuse_address(true)?;
        s.bind(&SocketAddrV4::new(addr, STREAM_PORT).into())?;
        s.listen(16)?;
        Ok(s.into())
    })?;
    listener.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut workers = Vec::new();
        while !flag.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((conn, _)) => {
                    let flag = flag.clone();
                    workers.push(std::thread::spawn(move || echo_until_closed(conn, &flag)));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        for w in workers {
            let _ = w.join();
        }
    });
    Ok(Server::new(stop, thread))
}

fn echo_until_closed(mut conn: TcpStream, stop: &AtomicBool) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// What a stream saw.
#[derive(Debug, Clone, Default)]
pub struct StreamRecord {
    /// When each echo came back, since the stream started.
    pub echoes: Vec<Duration>,
    /// Bytes sent, and bytes that came back intact and in order.
    pub sent: u64,
    pub echoed: u64,
    /// The error that ended the connection, if one did.
    pub error: Option<String>,
    /// When the stream started (the clock the faults are timed with).
    pub started: Option<Instant>,
}

impl StreamRecord {
    /// The longest time without an echo between `from` and `to` (since the start), counting
    /// the time from the last echo to `to` if none came after it.
    pub fn worst_stall(&self, from: Duration, to: Duration) -> Duration {
        let mut last = from;
        let mut worst = Duration::ZERO;
        for &t in self.echoes.iter().filter(|t| **t > from && **t <= to) {
            worst = worst.max(t - last);
            last = t;
        }
        worst.max(to.saturating_sub(last))
    }

    /// How many gaps between echoes from `from` to `to` were longer than `over`: a dead path
    /// retried after each retransmission timeout shows as many.
    pub fn stalls(&self, from: Duration, to: Duration, over: Duration) -> usize {
        let within: Vec<Duration> = std::iter::once(from).chain(self.echoes.iter().copied().filter(|t| *t > from && *t <= to)).collect();
        within.windows(2).filter(|w| w[1] - w[0] > over).count()
    }

    /// Echoes that came back between `from` and `to`.
    pub fn echoes_between(&self, from: Duration, to: Duration) -> usize {
        self.echoes.iter().filter(|t| **t > from && **t <= to).count()
    }

    /// Bytes that were sent but never came back: 0 on a connection that survived (the last
    /// message may be in flight when the stream stops, so it is not counted as lost).
    pub fn bytes_lost(&self) -> u64 {
        self.sent.saturating_sub(self.echoed).saturating_sub(MESSAGE as u64)
    }
}

/// A client connection from the lab host to the stream echo, with its own thread.
pub struct Stream {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<StreamRecord>>,
    started: Instant,
    /// Microseconds from the start to the last echo (0: none yet), for a live view.
    last_echo: Arc<AtomicU64>,
}

impl Stream {
    /// Connects from `ns` (unbound: routing picks the source) to `to`, MPTCP or plain TCP, and
    /// starts sending a message every `every`.
    pub fn start(ns: &str, to: Ipv4Addr, mptcp: bool, every: Duration) -> anyhow::Result<Stream> {
        let target = SocketAddr::from((to, STREAM_PORT));
        let conn: TcpStream = in_netns(ns, move || {
            let s = stream_socket(mptcp)?;
            s.connect_timeout(&target.into(), Duration::from_secs(5))?;
            Ok(s.into())
        })?;
        conn.set_nodelay(true)?;
        conn.set_read_timeout(Some(Duration::from_millis(50)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let started = Instant::now();
        let last_echo = Arc::new(AtomicU64::new(0));
        let last = last_echo.clone();
        let thread = std::thread::spawn(move || run(conn, &flag, started, every, &last));
        Ok(Stream { stop, thread: Some(thread), started, last_echo })
    }

    /// When the last echo came back, since the start, while the stream runs.
    pub fn last_echo(&self) -> Option<Duration> {
        Some(self.last_echo.load(Ordering::Relaxed)).filter(|us| *us > 0).map(Duration::from_micros)
    }

    /// Whether the connection ended (an error, or closed by the peer).
    pub fn ended(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Time since the stream started.
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn stop(mut self) -> StreamRecord {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().map(|t| t.join().unwrap_or_default()).unwrap_or_default()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Message `n`: its number, then filler derived from it, so a lost, repeated or reordered
/// byte shows as a mismatch.
fn message(n: u64) -> [u8; MESSAGE] {
    let mut m = [0u8; MESSAGE];
    m[..8].copy_from_slice(&n.to_be_bytes());
    for (i, b) in m[8..].iter_mut().enumerate() {
        *b = (n as u8).wrapping_add(i as u8);
    }
    m
}

fn run(mut conn: TcpStream, stop: &AtomicBool, started: Instant, every: Duration, last_echo: &AtomicU64) -> StreamRecord {
    let mut record = StreamRecord { started: Some(started), ..Default::default() };
    let mut n = 0u64;
    'messages: while !stop.load(Ordering::Relaxed) {
        let out = message(n);
        if let Err(e) = conn.write_all(&out) {
            record.error = Some(format!("write: {e}"));
            break;
        }
        record.sent += MESSAGE as u64;
        let mut back = [0u8; MESSAGE];
        let mut got = 0;
        while got < MESSAGE {
            if stop.load(Ordering::Relaxed) {
                break 'messages;
            }
            match conn.read(&mut back[got..]) {
                Ok(0) => {
                    record.error = Some("closed by the peer".into());
                    break 'messages;
                }
                Ok(k) => got += k,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => {
                    record.error = Some(format!("read: {e}"));
                    break 'messages;
                }
            }
        }
        if back != out {
            record.error = Some(format!("echo {n} came back altered"));
            break;
        }
        record.echoed += MESSAGE as u64;
        let at = started.elapsed();
        record.echoes.push(at);
        last_echo.store((at.as_micros() as u64).max(1), Ordering::Relaxed);
        n += 1;
        std::thread::sleep(every);
    }
    record
}
