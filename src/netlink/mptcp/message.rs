//! The messages of the kernel's MPTCP path manager family (generic netlink `mptcp_pm`, version
//! 1; include/uapi/linux/mptcp_pm.h): the commands multihome sends and the attributes it reads
//! and writes, with attributes it does not know carried through as they are. Pure: bytes in,
//! values out, tested against what `ip mptcp` sends.

use std::net::Ipv4Addr;

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, ErrorContext, NLA_F_NESTED, Nla, NlaBuffer, NlasIterator, Parseable, ParseableParametrized, emit_u16, emit_u32,
    parse_u8, parse_u16, parse_u32,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

pub const FAMILY_NAME: &str = "mptcp_pm";
const FAMILY_VERSION: u8 = 1;

/// The commands used (MPTCP_PM_CMD_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    AddAddr,
    DelAddr,
    GetAddr,
    SetLimits,
    GetLimits,
    SetFlags,
    Other(u8),
}

impl From<Command> for u8 {
    fn from(c: Command) -> u8 {
        match c {
            Command::AddAddr => 1,
            Command::DelAddr => 2,
            Command::GetAddr => 3,
            Command::SetLimits => 5,
            Command::GetLimits => 6,
            Command::SetFlags => 7,
            Command::Other(n) => n,
        }
    }
}

impl From<u8> for Command {
    fn from(n: u8) -> Command {
        match n {
            1 => Command::AddAddr,
            2 => Command::DelAddr,
            3 => Command::GetAddr,
            5 => Command::SetLimits,
            6 => Command::GetLimits,
            7 => Command::SetFlags,
            n => Command::Other(n),
        }
    }
}

/// Endpoint flags (MPTCP_PM_ADDR_FLAG_*).
pub const FLAG_SIGNAL: u32 = 1;
pub const FLAG_SUBFLOW: u32 = 2;
pub const FLAG_BACKUP: u32 = 4;
pub const FLAG_FULLMESH: u32 = 8;
pub const FLAG_IMPLICIT: u32 = 16;

pub(super) const AF_INET: u16 = libc::AF_INET as u16;

/// An attribute of an endpoint (MPTCP_PM_ADDR_ATTR_*).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrAttr {
    Family(u16),
    Id(u8),
    Addr4(Ipv4Addr),
    Flags(u32),
    IfIndex(i32),
    Other(DefaultNla),
}

/// A top-level attribute (MPTCP_PM_ATTR_*).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    Addr(Vec<AddrAttr>),
    RcvAddAddrs(u32),
    Subflows(u32),
    Other(DefaultNla),
}

impl Nla for AddrAttr {
    fn value_len(&self) -> usize {
        match self {
            AddrAttr::Family(_) => 2,
            AddrAttr::Id(_) => 1,
            AddrAttr::Addr4(_) | AddrAttr::Flags(_) | AddrAttr::IfIndex(_) => 4,
            AddrAttr::Other(n) => n.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            AddrAttr::Family(_) => 1,
            AddrAttr::Id(_) => 2,
            AddrAttr::Addr4(_) => 3,
            AddrAttr::Flags(_) => 6,
            AddrAttr::IfIndex(_) => 7,
            AddrAttr::Other(n) => n.kind(),
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            AddrAttr::Family(f) => emit_u16(buf, *f).expect("2 bytes"),
            AddrAttr::Id(id) => buf[0] = *id,
            // struct in_addr: network byte order, as the octets read.
            AddrAttr::Addr4(a) => buf[..4].copy_from_slice(&a.octets()),
            AddrAttr::Flags(f) => emit_u32(buf, *f).expect("4 bytes"),
            AddrAttr::IfIndex(i) => buf[..4].copy_from_slice(&i.to_ne_bytes()),
            AddrAttr::Other(n) => n.emit_value(buf),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for AddrAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let v = buf.value();
        Ok(match buf.kind() {
            1 => AddrAttr::Family(parse_u16(v).context("MPTCP_PM_ADDR_ATTR_FAMILY")?),
            2 => AddrAttr::Id(parse_u8(v).context("MPTCP_PM_ADDR_ATTR_ID")?),
            3 if v.len() == 4 => AddrAttr::Addr4(Ipv4Addr::new(v[0], v[1], v[2], v[3])),
            6 => AddrAttr::Flags(parse_u32(v).context("MPTCP_PM_ADDR_ATTR_FLAGS")?),
            7 if v.len() == 4 => AddrAttr::IfIndex(i32::from_ne_bytes([v[0], v[1], v[2], v[3]])),
            _ => AddrAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

impl Nla for Attr {
    fn value_len(&self) -> usize {
        match self {
            Attr::Addr(attrs) => attrs.as_slice().buffer_len(),
            Attr::RcvAddAddrs(_) | Attr::Subflows(_) => 4,
            Attr::Other(n) => n.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            // The kernel's policy says nested; iproute2 marks it so too.
            Attr::Addr(_) => 1 | NLA_F_NESTED,
            Attr::RcvAddAddrs(_) => 2,
            Attr::Subflows(_) => 3,
            Attr::Other(n) => n.kind(),
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            Attr::Addr(attrs) => attrs.as_slice().emit(buf),
            Attr::RcvAddAddrs(n) | Attr::Subflows(n) => emit_u32(buf, *n).expect("4 bytes"),
            Attr::Other(n) => n.emit_value(buf),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for Attr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let v = buf.value();
        Ok(match buf.kind() {
            1 => {
                let mut attrs = Vec::new();
                for nla in NlasIterator::new(v) {
                    attrs.push(AddrAttr::parse(&nla.context("MPTCP_PM_ATTR_ADDR")?)?);
                }
                Attr::Addr(attrs)
            }
            2 => Attr::RcvAddAddrs(parse_u32(v).context("MPTCP_PM_ATTR_RCV_ADD_ADDRS")?),
            3 => Attr::Subflows(parse_u32(v).context("MPTCP_PM_ATTR_SUBFLOWS")?),
            _ => Attr::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// One message of the family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub command: Command,
    pub attrs: Vec<Attr>,
}

impl Message {
    pub fn new(command: Command, attrs: Vec<Attr>) -> Message {
        Message { command, attrs }
    }
}

impl GenlFamily for Message {
    fn family_name() -> &'static str {
        FAMILY_NAME
    }

    fn command(&self) -> u8 {
        self.command.into()
    }

    fn version(&self) -> u8 {
        FAMILY_VERSION
    }
}

impl Emitable for Message {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    fn emit(&self, buf: &mut [u8]) {
        self.attrs.as_slice().emit(buf)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for Message {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let mut attrs = Vec::new();
        for nla in NlasIterator::new(buf) {
            attrs.push(Attr::parse(&nla.context("mptcp_pm attribute")?)?);
        }
        Ok(Message { command: header.cmd.into(), attrs })
    }
}

/// The attributes of an IPv4 endpoint to add: `ip mptcp endpoint add ADDR dev IFACE id ID FLAGS`.
pub fn endpoint_attrs(id: u8, address: Ipv4Addr, ifindex: u32, flags: u32) -> Vec<AddrAttr> {
    // In iproute2's order, so the bytes compare with what `ip mptcp` sends.
    vec![AddrAttr::Id(id), AddrAttr::Flags(flags), AddrAttr::IfIndex(ifindex as i32), AddrAttr::Family(AF_INET), AddrAttr::Addr4(address)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attributes `ip mptcp endpoint add 192.168.178.98 dev wlan1 id 241 subflow backup`
    /// sends after the genl header (`strace -e sendmsg -xx` of iproute2 6.1, wlan1 being
    /// ifindex 3): the nested address with id, flags, interface, family and address.
    const IP_ENDPOINT_ADD: [u8; 44] = [
        0x2c, 0x00, 0x01, 0x80, // MPTCP_PM_ATTR_ADDR, nested, 44 bytes
        0x05, 0x00, 0x02, 0x00, 0xf1, 0x00, 0x00, 0x00, // id 241
        0x08, 0x00, 0x06, 0x00, 0x06, 0x00, 0x00, 0x00, // subflow | backup
        0x08, 0x00, 0x07, 0x00, 0x03, 0x00, 0x00, 0x00, // ifindex 3
        0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, // family AF_INET
        0x08, 0x00, 0x03, 0x00, 0xc0, 0xa8, 0xb2, 0x62, // 192.168.178.98
    ];

    #[test]
    fn an_endpoint_is_emitted_as_ip_mptcp_sends_it_and_parses_back() {
        let msg = Message::new(Command::AddAddr, vec![Attr::Addr(endpoint_attrs(241, Ipv4Addr::new(192, 168, 178, 98), 3, FLAG_SUBFLOW | FLAG_BACKUP))]);
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        assert_eq!(buf, IP_ENDPOINT_ADD);
        let parsed = Message::parse_with_param(&buf[..], GenlHeader { cmd: 1, version: 1 }).unwrap();
        assert_eq!(parsed, msg);
    }

    #[test]
    fn unknown_attributes_are_carried_through() {
        // MPTCP_PM_ADDR_ATTR_PORT (5), which multihome never sets, inside an address.
        let bytes = [0x0c, 0x00, 0x01, 0x80, 0x06, 0x00, 0x05, 0x00, 0x1f, 0x90, 0x00, 0x00];
        let parsed = Message::parse_with_param(&bytes[..], GenlHeader { cmd: 3, version: 1 }).unwrap();
        let Attr::Addr(attrs) = &parsed.attrs[0] else { panic!("{parsed:?}") };
        assert!(matches!(&attrs[0], AddrAttr::Other(n) if n.kind() == 5), "{attrs:?}");
        let mut again = vec![0; parsed.buffer_len()];
        parsed.emit(&mut again);
        assert_eq!(again, bytes);
    }
}
