//! When a probe's answer reached the kernel, not when the daemon got round to reading it: the
//! probe sockets ask for a receive timestamp (`SO_TIMESTAMPNS`), which the kernel takes as the
//! packet arrives and hands over with it (an `SCM_TIMESTAMPNS` control message).
//!
//! A round trip measured on the daemon's clock alone also counts the time the answer waited in
//! the socket while the daemon's thread was busy or not scheduled: on a loaded host, or while a
//! bus client had the daemon list 60,000 sockets, a LAN's 0.2 ms echo measured 50 ms and more and
//! made a healthy uplink "poor" (issue 22). With the kernel's stamp that wait is taken off, and
//! an answer that came before the round's deadline counts even when it is read after it.

use std::io;
use std::mem::{MaybeUninit, size_of};
use std::os::fd::RawFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Asks the kernel to stamp every packet `fd` receives.
pub fn enable(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: passes an int of the size given.
    let rc = unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, (&on as *const libc::c_int).cast(), size_of::<libc::c_int>() as libc::socklen_t)
    };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// One datagram read by [`recv`].
#[derive(Debug)]
pub struct Received {
    pub len: usize,
    /// Its source address, as the kernel wrote it into a `sockaddr_in6`-sized buffer (IPv4's
    /// `sockaddr_in` fits too).
    pub from: libc::sockaddr_in6,
    /// The kernel's receive stamp, when the socket asks for one ([`enable`]).
    pub stamp: Option<SystemTime>,
    /// The IPv6 hop limit it arrived with, when the socket asks for it (`IPV6_RECVHOPLIMIT`).
    pub hop_limit: Option<u8>,
}

/// One datagram read without blocking, with what the kernel said about it.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut from = MaybeUninit::<libc::sockaddr_in6>::zeroed();
    // u64s: the control buffer must be aligned for cmsghdr.
    let mut control = [0u64; 16];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: msghdr is plain old data; zeroed is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = from.as_mut_ptr().cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control) as _;
    // SAFETY: every pointer in msg is valid for the length given during the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stamp = None;
    let mut hop_limit = None;
    // SAFETY: the CMSG_* walk stays inside the control buffer the kernel filled (msg_controllen).
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                stamp = Some(UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
            if (*c).cmsg_level == libc::IPPROTO_IPV6 && (*c).cmsg_type == libc::IPV6_HOPLIMIT {
                let hops: libc::c_int = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                hop_limit = u8::try_from(hops).ok();
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    // SAFETY: zero-initialised, then written by the kernel; every bit pattern is valid.
    Ok(Received { len: n as usize, from: unsafe { from.assume_init() }, stamp, hop_limit })
}

/// How long a packet stamped `stamp` has waited since it arrived: 0 without a stamp, or when the
/// wall clock was stepped back in between.
pub fn waited(stamp: Option<SystemTime>) -> Duration {
    stamp.and_then(|s| SystemTime::now().duration_since(s).ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    /// The stamp is the packet's arrival: a datagram read 50 ms after it came says it waited
    /// about that long, whatever the reader did meanwhile.
    #[test]
    fn the_stamp_says_how_long_a_packet_waited_in_the_socket() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable(rx.as_raw_fd()).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        // The kernel turns receive stamping on for the whole system from a work queue when the
        // first socket asks (net_enable_timestamp); until then a packet is stamped when it is
        // read. So the first tries may say "no wait"; one of a few must show the real one.
        let mut seen = Vec::new();
        for _ in 0..5 {
            tx.send_to(b"ping", rx.local_addr().unwrap()).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            let mut buf = [0u8; 16];
            let Received { len: n, from, stamp, .. } = recv(rx.as_raw_fd(), &mut buf).unwrap();
            assert_eq!(&buf[..n], b"ping");
            assert_eq!(from.sin6_family as i32, libc::AF_INET);
            assert!(stamp.is_some(), "no SCM_TIMESTAMPNS");
            assert_eq!(recv(rx.as_raw_fd(), &mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
            let waited = waited(stamp);
            assert!(waited < Duration::from_secs(5), "waited {waited:?}");
            if waited >= Duration::from_millis(45) {
                return;
            }
            seen.push(waited);
        }
        panic!("no packet's stamp showed the 50 ms it waited: {seen:?}");
    }
}
