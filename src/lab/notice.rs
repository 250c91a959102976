//! When the kernel told user space that a link lost carrier: the RTM_NEWLINK without
//! IFF_LOWER_UP that systemd-networkd, NetworkManager and the daemon all wait for. The kernel
//! sends it from its linkwatch work, at once for a link it treats as urgent and otherwise at
//! most once a second for the whole machine (a veth whose peer has the same ifindex counts as
//! an ordinary NIC): another lab's link change in the second before a fault delays it. The
//! bench reports the time after this notice beside the time after the fault.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use super::netns::in_netns;

const RTMGRP_LINK: u32 = 1;
const RTM_NEWLINK: u16 = 16;
const IFF_LOWER_UP: u32 = 0x10000;

/// A watch for one link's carrier loss, from [`CarrierNotice::start`] until dropped.
pub struct CarrierNotice {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Option<Instant>>>,
}

impl CarrierNotice {
    /// Subscribes to `interface`'s link events in namespace `ns`; to be started before the
    /// fault.
    pub fn start(ns: &str, interface: &str) -> anyhow::Result<CarrierNotice> {
        let name = std::ffi::CString::new(interface)?;
        let (socket, ifindex) = in_netns(ns, move || {
            let mut socket = Socket::new(NETLINK_ROUTE)?;
            socket.bind(&SocketAddr::new(0, RTMGRP_LINK))?;
            // SAFETY: a NUL-terminated string that outlives the call.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
            Ok((socket, ifindex))
        })?;
        anyhow::ensure!(ifindex != 0, "no interface {interface} in {ns}");
        socket.set_non_blocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || watch(&socket, ifindex as i32, &flag));
        Ok(CarrierNotice { stop, thread: Some(thread) })
    }

    /// When the kernel reported the carrier loss, waiting at most `within` for it.
    pub fn seen(mut self, within: Duration) -> Option<Instant> {
        let until = Instant::now() + within;
        while self.thread.as_ref().is_some_and(|t| !t.is_finished()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok().flatten())
    }
}

impl Drop for CarrierNotice {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn watch(socket: &Socket, ifindex: i32, stop: &AtomicBool) -> Option<Instant> {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let n = match socket.recv(&mut &mut buf[..], 0) {
            Ok(n) => n,
            Err(_) => {
                std::thread::sleep(Duration::from_micros(500));
                continue;
            }
        };
        let now = Instant::now();
        let mut at = 0;
        // nlmsghdr (16 bytes), then struct ifinfomsg: family, pad, type, index, flags, change.
        while at + 32 <= n {
            let len = u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
            let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
            let index = i32::from_ne_bytes(buf[at + 20..at + 24].try_into().expect("4 bytes"));
            let flags = u32::from_ne_bytes(buf[at + 24..at + 28].try_into().expect("4 bytes"));
            if kind == RTM_NEWLINK && index == ifindex && flags & IFF_LOWER_UP == 0 {
                return Some(now);
            }
            if len < 16 {
                break;
            }
            at += len.next_multiple_of(4);
        }
    }
    None
}
