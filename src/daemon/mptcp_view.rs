//! What `Uplinks` (and `multihome status`) show of MPTCP, read from the kernel away from the
//! probes: on a blocking thread, at most once per [`FRESH_FOR`], the readers in between served
//! the last reading.
//!
//! Counting the connections dumps every established TCP socket of the host (inet_diag: MPTCP
//! subflows are TCP sockets). Anyone may read `Uplinks`; done inline on the daemon's one thread,
//! each read held the probes back for as long as the dump took (0.35 s with 60,000 sockets), and
//! a few unprivileged `busctl` loops made both healthy uplinks "poor" on latency (issue 22).

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::status_record::{UplinkMptcp, UplinkStatus};
use crate::netlink::mptcp::{self, Endpoint, Mptcp, Subflow};
use crate::plan::mptcp::rank_of;

/// How long one reading is shown before a reader has the kernel read again.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// The kernel's MPTCP state as read once.
#[derive(Debug, Default)]
pub struct Reading {
    /// `false` where the kernel has no MPTCP (nothing to show).
    pub available: bool,
    pub endpoints: Vec<Endpoint>,
    /// `None` when the socket dump failed.
    pub subflows: Option<Vec<Subflow>>,
}

/// Reads the endpoints and the subflows (two netlink dumps; blocking).
pub fn read() -> Reading {
    let Ok(Some(mut pm)) = Mptcp::open() else { return Reading::default() };
    Reading { available: true, endpoints: pm.endpoints().unwrap_or_default(), subflows: mptcp::subflows().ok() }
}

/// Fills in each uplink's [`UplinkMptcp`] from `reading`. Without MPTCP the fields stay empty.
pub fn annotate(reading: &Reading, uplinks: &mut [UplinkStatus]) {
    if !reading.available {
        return;
    }
    for u in uplinks {
        // SAFETY: a NUL-terminated string that outlives the call.
        let ifindex = std::ffi::CString::new(u.interface.as_str()).ok().map(|n| unsafe { libc::if_nametoindex(n.as_ptr()) }).filter(|i| *i != 0);
        let address = u.v4.address.split('/').next().and_then(|a| a.parse::<Ipv4Addr>().ok());
        let own = reading.endpoints.iter().find(|e| rank_of(e.id) == Some(u.rank as usize) && e.ifindex.is_some() && e.ifindex == ifindex);
        u.mptcp = UplinkMptcp {
            mptcp_id: own.map(|e| u32::from(e.id)),
            mptcp_address: own.and_then(|e| e.address).map(|a| a.to_string()),
            mptcp_flags: own.map(|e| e.flag_names().into_iter().map(String::from).collect()),
            mptcp_connections: reading.subflows.as_ref().map(|s| mptcp::connections(s, address, ifindex) as u32),
        };
    }
}

/// A reading and when it was taken.
type Stamped = (Instant, Arc<Reading>);

/// The last reading, shared by the bus's readers.
#[derive(Clone, Default)]
pub struct View {
    last: Arc<Mutex<Option<Stamped>>>,
    /// Held while the kernel is read: readers who come meanwhile wait for that reading instead
    /// of starting their own.
    reading: Arc<tokio::sync::Mutex<()>>,
}

impl View {
    /// A reading at most [`FRESH_FOR`] old; a new one is taken on a blocking thread, never on
    /// the caller's.
    pub async fn current(&self) -> Arc<Reading> {
        let _one_at_a_time = self.reading.lock().await;
        if let Some(r) = self.fresh() {
            return r;
        }
        let reading = Arc::new(tokio::task::spawn_blocking(read).await.unwrap_or_default());
        *self.last.lock().expect("mptcp view lock") = Some((Instant::now(), reading.clone()));
        reading
    }

    fn fresh(&self) -> Option<Arc<Reading>> {
        let last = self.last.lock().expect("mptcp view lock");
        last.as_ref().filter(|(at, _)| at.elapsed() < FRESH_FOR).map(|(_, r)| r.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Readers within a second share one reading; after it, the kernel is read again.
    #[tokio::test]
    async fn readers_within_a_second_share_one_reading() {
        let view = View::default();
        let first = view.current().await;
        let again = view.current().await;
        assert!(Arc::ptr_eq(&first, &again), "read twice within a second");
        let Some(old) = Instant::now().checked_sub(FRESH_FOR) else { return };
        view.last.lock().unwrap().as_mut().unwrap().0 = old;
        let later = view.current().await;
        assert!(!Arc::ptr_eq(&first, &later), "a reading older than a second was shown");
    }
}
