//! The kernel's MPTCP path manager over generic netlink (`ip mptcp endpoint`, `ip mptcp
//! limits`): read, add, change and remove endpoints, read and raise the subflow limit, and
//! [`sync`] them with the plan; and which addresses open connections use ([`subflows`]).
//!
//! rust-netlink's `mptcp-pm` crate (0.2) only dumps endpoints and limits, so the messages are
//! built here on its sibling crates (netlink-packet-generic, netlink-sys); their types stay in
//! this module. Endpoints carry no owner mark: multihome's are those with its ids (240 + the
//! uplink's rank, see `numbers::MPTCP_FIRST_ID`) on an uplink's interface, and it never
//! changes or removes any other.

mod diag;
mod message;
mod socket;
mod sync;

use std::fmt;
use std::net::Ipv4Addr;

use message::{AddrAttr, Attr, Command, FLAG_FULLMESH, FLAG_IMPLICIT, FLAG_SIGNAL, Message};
pub(crate) use message::{FLAG_BACKUP, FLAG_SUBFLOW};
use socket::Genl;

use super::Error;
pub use diag::{Subflow, connections, subflows};
pub use sync::{Change, Flags, Preview, Synced, Wanted, changes, preview, sync, sync_holding};

/// An endpoint as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: u8,
    /// `None` for an IPv6 endpoint (multihome makes none).
    pub address: Option<Ipv4Addr>,
    /// `None` when it names no interface.
    pub ifindex: Option<u32>,
    /// MPTCP_PM_ADDR_FLAG_* bits, as `ip mptcp endpoint` shows them.
    pub flags: u32,
}

impl Endpoint {
    pub fn subflow(&self) -> bool {
        self.flags & FLAG_SUBFLOW != 0
    }

    pub fn backup(&self) -> bool {
        self.flags & FLAG_BACKUP != 0
    }
}

impl Endpoint {
    /// Its flags as `ip mptcp endpoint` names them.
    pub fn flag_names(&self) -> Vec<&'static str> {
        [(FLAG_SIGNAL, "signal"), (FLAG_SUBFLOW, "subflow"), (FLAG_BACKUP, "backup"), (FLAG_FULLMESH, "fullmesh"), (FLAG_IMPLICIT, "implicit")]
            .into_iter()
            .filter(|(bit, _)| self.flags & bit != 0)
            .map(|(_, word)| word)
            .collect()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.address {
            Some(a) => write!(f, "{a} id {}", self.id)?,
            None => write!(f, "(IPv6) id {}", self.id)?,
        }
        for word in self.flag_names() {
            write!(f, " {word}")?;
        }
        if let Some(i) = self.ifindex {
            write!(f, " dev #{i}")?;
        }
        Ok(())
    }
}

/// `ip mptcp limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub add_addr_accepted: u32,
    pub subflows: u32,
}

/// Whether MPTCP is enabled for new sockets (`net.mptcp.enabled`), as far as this process can
/// tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enabled {
    Yes,
    /// The sysctl says 0, or the kernel has no MPTCP (the sysctls are there, this one is not).
    No,
    /// /proc/sys cannot be read here: the shipped unit's `ProcSubset=pid` hides it. Never taken
    /// for "off": endpoints cost nothing where MPTCP is off (no socket uses them), while taking
    /// them away under a sandbox destroyed a working host's endpoints at every daemon stop.
    Unknown,
}

/// [`Enabled`] in the calling thread's network namespace.
pub fn enabled() -> Enabled {
    enabled_in(std::path::Path::new("/proc/sys"))
}

/// [`enabled`] under `sys` (/proc/sys, or a test's stand-in).
pub fn enabled_in(sys: &std::path::Path) -> Enabled {
    match std::fs::read_to_string(sys.join("net/mptcp/enabled")) {
        Ok(s) if s.trim() == "1" => Enabled::Yes,
        Ok(_) => Enabled::No,
        // The other sysctls are readable, this one is not there: a kernel without MPTCP.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && sys.join("net/ipv4").is_dir() => Enabled::No,
        Err(_) => Enabled::Unknown,
    }
}

/// A path manager socket in the calling thread's network namespace.
pub struct Mptcp {
    genl: Genl,
}

impl Mptcp {
    /// `Ok(None)` when the kernel has no MPTCP path manager.
    pub fn open() -> Result<Option<Mptcp>, Error> {
        Ok(Genl::open()?.map(|genl| Mptcp { genl }))
    }

    /// Every endpoint (`ip mptcp endpoint show`).
    pub fn endpoints(&mut self) -> Result<Vec<Endpoint>, Error> {
        let answers = self.genl.query(Message::new(Command::GetAddr, Vec::new()), true, "ip mptcp endpoint show")?;
        Ok(answers.iter().flat_map(|m| &m.attrs).filter_map(endpoint_of).collect())
    }

    /// `ip mptcp endpoint add ADDRESS dev IFINDEX id ID subflow [backup]`.
    pub fn add_endpoint(&mut self, id: u8, address: Ipv4Addr, ifindex: u32, backup: bool) -> Result<(), Error> {
        let flags = FLAG_SUBFLOW | if backup { FLAG_BACKUP } else { 0 };
        let what = format!("ip mptcp endpoint add {address} dev #{ifindex} id {id} subflow{}", if backup { " backup" } else { "" });
        self.genl.execute(Message::new(Command::AddAddr, vec![Attr::Addr(message::endpoint_attrs(id, address, ifindex, flags))]), &what)
    }

    /// `ip mptcp endpoint delete id ID`: the kernel also closes the subflows that use it.
    pub fn delete_endpoint(&mut self, id: u8) -> Result<(), Error> {
        self.genl.execute(Message::new(Command::DelAddr, vec![Attr::Addr(vec![AddrAttr::Id(id)])]), &format!("ip mptcp endpoint delete id {id}"))
    }

    /// `ip mptcp endpoint delete id 0 ADDRESS`: every connection that started from `address`
    /// tells its peer (RM_ADDR for id 0) that the address is gone, on whichever of its subflows
    /// still works, and closes its subflows from it.
    pub fn delete_id_zero(&mut self, address: Ipv4Addr) -> Result<(), Error> {
        let attrs = vec![AddrAttr::Id(0), AddrAttr::Family(message::AF_INET), AddrAttr::Addr4(address)];
        self.genl.execute(Message::new(Command::DelAddr, vec![Attr::Addr(attrs)]), &format!("ip mptcp endpoint delete id 0 {address}"))
    }

    /// `ip mptcp endpoint change id ID [no]backup`: the kernel marks the subflows that use it
    /// at once and tells the peers (MP_PRIO), so data moves without waiting for a timeout.
    pub fn set_backup(&mut self, id: u8, backup: bool) -> Result<(), Error> {
        let what = format!("ip mptcp endpoint change id {id} {}", if backup { "backup" } else { "nobackup" });
        let flags = if backup { FLAG_BACKUP } else { 0 };
        self.genl.execute(Message::new(Command::SetFlags, vec![Attr::Addr(vec![AddrAttr::Id(id), AddrAttr::Flags(flags)])]), &what)
    }

    /// `ip mptcp limits show`.
    pub fn limits(&mut self) -> Result<Limits, Error> {
        let answers = self.genl.query(Message::new(Command::GetLimits, Vec::new()), false, "ip mptcp limits show")?;
        let mut limits = Limits { add_addr_accepted: 0, subflows: 0 };
        for attr in answers.iter().flat_map(|m| &m.attrs) {
            match attr {
                Attr::RcvAddAddrs(n) => limits.add_addr_accepted = *n,
                Attr::Subflows(n) => limits.subflows = *n,
                _ => {}
            }
        }
        Ok(limits)
    }

    /// `ip mptcp limits set subflows N`, leaving add_addr_accepted as it is.
    pub fn set_subflows(&mut self, n: u32) -> Result<(), Error> {
        self.genl.execute(Message::new(Command::SetLimits, vec![Attr::Subflows(n)]), &format!("ip mptcp limits set subflows {n}"))
    }
}

fn endpoint_of(attr: &Attr) -> Option<Endpoint> {
    let Attr::Addr(attrs) = attr else { return None };
    let mut e = Endpoint { id: 0, address: None, ifindex: None, flags: 0 };
    for a in attrs {
        match a {
            AddrAttr::Id(id) => e.id = *id,
            AddrAttr::Addr4(addr) => e.address = Some(*addr),
            AddrAttr::Flags(f) => e.flags = *f,
            AddrAttr::IfIndex(i) if *i > 0 => e.ifindex = Some(*i as u32),
            _ => {}
        }
    }
    Some(e)
}

#[cfg(test)]
mod tests;
