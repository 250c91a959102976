//! Which local addresses open MPTCP connections use, from the kernel's socket diagnostics
//! (sock_diag): a dump of the established TCP sockets (inet_diag) lists each MPTCP subflow
//! among them, with its upper layer protocol "mptcp" and its connection's token. `ss -tiM`
//! reads the same; no crate of rust-netlink speaks inet_diag, so the two fixed-size structs
//! are written and read here.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};

use crate::netlink::Error;

/// One subflow of an open MPTCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subflow {
    pub local: Ipv4Addr,
    /// The interface it is bound to (the path manager binds those it opens through an
    /// endpoint with a `dev`); 0 when not bound, as the subflow a connection starts on.
    pub bound_ifindex: u32,
    /// The connection's local token: the same on all of its subflows.
    pub token: u32,
}

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const TCP_ESTABLISHED: u32 = 1;
/// inet_diag attributes (linux/inet_diag.h): the extension bit that also brings the ULP's.
const INET_DIAG_INFO: u8 = 2;
const INET_DIAG_ULP_INFO: u16 = 19;
const INET_ULP_INFO_NAME: u16 = 1;
const INET_ULP_INFO_MPTCP: u16 = 3;
const MPTCP_SUBFLOW_ATTR_TOKEN_LOC: u16 = 2;
/// struct inet_diag_msg: family, state, timer, retrans, the socket id (48), then 5 u32.
const DIAG_MSG_LEN: usize = 72;
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// Every established MPTCP subflow over IPv4 in the calling thread's network namespace.
pub fn subflows() -> Result<Vec<Subflow>, Error> {
    let what = "list the MPTCP subflows (sock_diag)";
    let kernel = |e| Error::Kernel { what: what.to_string(), source: e };
    let mut socket = Socket::new(NETLINK_SOCK_DIAG).map_err(Error::Socket)?;
    socket.bind_auto().map_err(Error::Socket)?;
    socket.connect(&SocketAddr::new(0, 0)).map_err(Error::Socket)?;
    {
        use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
        use nix::sys::time::TimeVal;
        setsockopt(&socket, ReceiveTimeout, &TimeVal::new(ANSWER_TIMEOUT.as_secs() as _, 0)).map_err(|e| kernel(e.into()))?;
    }
    socket.send(&request(), 0).map_err(kernel)?;
    let mut found = Vec::new();
    loop {
        let (bytes, _) = socket.recv_from_full().map_err(kernel)?;
        let mut at = 0;
        while at + 16 <= bytes.len() {
            let len = u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let kind = u16::from_ne_bytes([bytes[at + 4], bytes[at + 5]]);
            if len < 16 || at + len > bytes.len() {
                return Err(Error::Protocol { what: what.into(), detail: format!("a netlink message of {len} bytes") });
            }
            let body = &bytes[at + 16..at + len];
            match kind {
                NLMSG_DONE => return Ok(found),
                NLMSG_ERROR => {
                    let code = body.get(..4).map_or(0, |b| i32::from_ne_bytes(b.try_into().expect("4 bytes")));
                    if code == 0 {
                        return Ok(found);
                    }
                    return Err(Error::from_errno(what, code.abs()));
                }
                SOCK_DIAG_BY_FAMILY => found.extend(subflow(body)),
                _ => {}
            }
            at += len.next_multiple_of(4);
        }
    }
}

/// The connections (distinct tokens) among `subflows` that have one through the address or
/// bound to the interface.
pub fn connections(subflows: &[Subflow], address: Option<Ipv4Addr>, ifindex: Option<u32>) -> usize {
    subflows
        .iter()
        .filter(|s| Some(s.local) == address || (s.bound_ifindex != 0 && Some(s.bound_ifindex) == ifindex))
        .map(|s| s.token)
        .collect::<BTreeSet<u32>>()
        .len()
}

/// nlmsghdr + struct inet_diag_req_v2 for a dump of the established IPv4 TCP sockets.
fn request() -> Vec<u8> {
    let mut b = Vec::with_capacity(72);
    b.extend(72u32.to_ne_bytes());
    b.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b.extend((libc::NLM_F_REQUEST as u16 | libc::NLM_F_DUMP as u16).to_ne_bytes());
    b.extend(1u32.to_ne_bytes());
    b.extend(0u32.to_ne_bytes());
    b.extend([libc::AF_INET as u8, libc::IPPROTO_TCP as u8, 1 << (INET_DIAG_INFO - 1), 0]);
    b.extend((1u32 << TCP_ESTABLISHED).to_ne_bytes());
    b.extend([0u8; 48]);
    b
}

/// The subflow an inet_diag_msg describes, if it is one of an MPTCP connection.
fn subflow(body: &[u8]) -> Option<Subflow> {
    if body.len() < DIAG_MSG_LEN || body[0] != libc::AF_INET as u8 {
        return None;
    }
    // The socket id: sport, dport (2 each), src and dst (16 each), if (4), cookie (8).
    let local = Ipv4Addr::new(body[8], body[9], body[10], body[11]);
    let bound_ifindex = u32::from_ne_bytes(body[40..44].try_into().expect("4 bytes"));
    let ulp = attributes(&body[DIAG_MSG_LEN..]).find(|(t, _)| *t == INET_DIAG_ULP_INFO)?.1;
    let name = attributes(ulp).find(|(t, _)| *t == INET_ULP_INFO_NAME)?.1;
    if name.split(|b| *b == 0).next()? != b"mptcp" {
        return None;
    }
    let info = attributes(ulp).find(|(t, _)| *t == INET_ULP_INFO_MPTCP)?.1;
    let token = attributes(info).find(|(t, v)| *t == MPTCP_SUBFLOW_ATTR_TOKEN_LOC && v.len() == 4)?.1;
    Some(Subflow { local, bound_ifindex, token: u32::from_ne_bytes(token.try_into().ok()?) })
}

/// The attributes (type without the nested and byte-order bits, value) in `b`.
fn attributes(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let value = &b[4..len];
        b = &b[len.next_multiple_of(4).min(b.len())..];
        Some((kind, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_counts_once_per_uplink_whatever_its_subflows() {
        let sf = |last: u8, bound: u32, token: u32| Subflow { local: Ipv4Addr::new(192, 168, 178, last), bound_ifindex: bound, token };
        // Connection 7 started on eth0 (.99, unbound) and has a subflow bound to wlan1 (#3);
        // connection 8 has two subflows through eth0.
        let all = [sf(99, 0, 7), sf(98, 3, 7), sf(99, 0, 8), sf(99, 2, 8)];
        assert_eq!(connections(&all, Some(Ipv4Addr::new(192, 168, 178, 99)), Some(2)), 2);
        assert_eq!(connections(&all, Some(Ipv4Addr::new(192, 168, 178, 98)), Some(3)), 1);
        assert_eq!(connections(&all, Some(Ipv4Addr::new(192, 168, 178, 97)), Some(4)), 0);
        assert_eq!(connections(&all, None, None), 0);
    }
}
