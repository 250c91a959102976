//! A bond as the kernel reports it over rtnetlink: its active slave (IFLA_BOND_ACTIVE_SLAVE in
//! the bond's link info), each slave's MII state (IFLA_BOND_SLAVE_MII_STATUS in the slave's) and
//! its priority (IFLA_BOND_SLAVE_PRIO, kernels since 6.0), and the two changes the daemon makes:
//! the active slave, and a slave's priority.
//!
//! rtnetlink rather than /sys/class/net/BOND/bonding: the socket answers for the network
//! namespace it was opened in whatever /sys is mounted there (a namespace that kept the parent's
//! sysfs shows the parent's links), it is the one the daemon already holds, and the kernel
//! announces a failover as an RTM_NEWLINK on it, so nothing has to poll files.

use futures::TryStreamExt;
use netlink_packet_route::link::{InfoBond, InfoBondPort, InfoData, InfoKind, InfoPortData, InfoPortKind, LinkAttribute, LinkInfo, LinkMessage, MiiStatus};

use super::{Error, Netlink};

/// The MII state the bond keeps for a slave (with its up/down delays, not the bare carrier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mii {
    Up,
    /// Carrier lost, DownDelaySec= still running.
    GoingDown,
    Down,
    /// Carrier back, UpDelaySec= still running.
    GoingBack,
    Other(u8),
}

impl Mii {
    /// As /proc/net/bonding shows it.
    pub fn word(self) -> String {
        match self {
            Mii::Up => "up".into(),
            Mii::GoingDown => "going-down".into(),
            Mii::Down => "down".into(),
            Mii::GoingBack => "going-back".into(),
            Mii::Other(n) => format!("mii-{n}"),
        }
    }
}

/// One slave of a bond.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BondSlave {
    pub name: String,
    pub index: u32,
    pub mii: Mii,
    /// The bond's own view: the slave that carries the traffic (active-backup).
    pub active: bool,
    /// Its priority among the slaves when the active one fails (higher first, 0 by default and
    /// again after every enslavement); `None` on a kernel before 6.0, which has none and does not
    /// report it.
    pub prio: Option<i32>,
}

/// A bond and its slaves, in the kernel's order of their interface indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BondState {
    pub name: String,
    pub index: u32,
    /// The active slave's name; `None` while no slave is up.
    pub active: Option<String>,
    pub slaves: Vec<BondSlave>,
}

impl Netlink {
    /// The bond called `name` and its slaves, from one dump of the links; `None` when there is
    /// no link of that name or it is not a bond.
    pub async fn bond(&self, name: &str) -> Result<Option<BondState>, Error> {
        let messages: Vec<LinkMessage> = self.handle.link().get().execute().try_collect().await.map_err(|e| Error::from_rtnetlink("list links", e))?;
        Ok(bond_state(name, &messages))
    }
}

impl Netlink {
    /// Makes `slave` the active slave of the bond `bond` (both interface indexes), as
    /// `ip link set BOND type bond active_slave SLAVE` does: IFLA_BOND_ACTIVE_SLAVE in the bond's
    /// IFLA_INFO_DATA of an RTM_NEWLINK. The kernel refuses a slave whose link is not up.
    pub async fn set_bond_active(&self, bond: u32, slave: u32) -> Result<(), Error> {
        self.handle.link().change(active_slave_message(bond, slave)).execute().await.map_err(|e| Error::from_rtnetlink("set the bond's active slave", e))
    }
}

impl Netlink {
    /// Sets the priority of the bond's slave `slave` (its interface index), as `ip link set
    /// SLAVE type bond_slave prio N` does: IFLA_BOND_SLAVE_PRIO in the slave's
    /// IFLA_INFO_SLAVE_DATA of an RTM_NEWLINK. A kernel before 6.0 answers success and ignores
    /// the attribute (its parser drops types it does not know): only reading it back tells.
    pub async fn set_bond_slave_prio(&self, slave: u32, prio: i32) -> Result<(), Error> {
        self.handle.link().change(slave_prio_message(slave, prio)).execute().await.map_err(|e| Error::from_rtnetlink("set the bond slave's priority", e))
    }
}

fn slave_prio_message(slave: u32, prio: i32) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = slave;
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::PortKind(InfoPortKind::Bond),
        LinkInfo::PortData(InfoPortData::BondPort(vec![InfoBondPort::Prio(prio)])),
    ]));
    m
}

fn active_slave_message(bond: u32, slave: u32) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = bond;
    m.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bond), LinkInfo::Data(InfoData::Bond(vec![InfoBond::ActivePort(slave)]))]));
    m
}

fn link_info(m: &LinkMessage) -> impl Iterator<Item = &LinkInfo> {
    m.attributes.iter().flat_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.as_slice(),
        _ => &[],
    })
}

fn name_of(m: &LinkMessage) -> Option<&str> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

/// Reads the bond `name` out of a link dump. Pure, so the parsing is tested on a kernel without
/// the bonding driver.
pub(super) fn bond_state(name: &str, messages: &[LinkMessage]) -> Option<BondState> {
    let bond = messages.iter().find(|m| name_of(m) == Some(name))?;
    let data = link_info(bond).find_map(|i| match i {
        LinkInfo::Data(InfoData::Bond(data)) => Some(data),
        _ => None,
    })?;
    let active_index = data.iter().find_map(|d| match d {
        InfoBond::ActivePort(i) => Some(*i),
        _ => None,
    });
    let index = bond.header.index;
    let mut slaves = Vec::new();
    for m in messages {
        let master = m.attributes.iter().find_map(|a| match a {
            LinkAttribute::Controller(i) => Some(*i),
            _ => None,
        });
        if master != Some(index) {
            continue;
        }
        let port = link_info(m)
            .find_map(|i| match i {
                LinkInfo::PortData(InfoPortData::BondPort(p)) => Some(p.as_slice()),
                _ => None,
            })
            .unwrap_or(&[]);
        let mii = port.iter().find_map(|p| match p {
            InfoBondPort::MiiStatus(s) => Some(mii(*s)),
            _ => None,
        });
        let prio = port.iter().find_map(|p| match p {
            InfoBondPort::Prio(n) => Some(*n),
            _ => None,
        });
        let active = active_index == Some(m.header.index);
        slaves.push(BondSlave {
            name: name_of(m).unwrap_or_default().to_string(),
            index: m.header.index,
            mii: mii.unwrap_or(Mii::Other(u8::MAX)),
            active,
            prio,
        });
    }
    let active = slaves.iter().find(|s| s.active).map(|s| s.name.clone());
    Some(BondState { name: name.to_string(), index, active, slaves })
}

fn mii(s: MiiStatus) -> Mii {
    match s {
        MiiStatus::Up => Mii::Up,
        MiiStatus::GoingDown => Mii::GoingDown,
        MiiStatus::Down => Mii::Down,
        MiiStatus::GoingBack => Mii::GoingBack,
        other => Mii::Other(u8::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::link::BondPortState;

    fn link(index: u32, name: &str, mut attributes: Vec<LinkAttribute>) -> LinkMessage {
        let mut m = LinkMessage::default();
        m.header.index = index;
        attributes.insert(0, LinkAttribute::IfName(name.into()));
        m.attributes = attributes;
        m
    }

    fn slave(index: u32, name: &str, master: u32, mii: MiiStatus, state: BondPortState) -> LinkMessage {
        slave_with(index, name, master, vec![InfoBondPort::MiiStatus(mii), InfoBondPort::BondPortState(state)])
    }

    fn slave_with(index: u32, name: &str, master: u32, port: Vec<InfoBondPort>) -> LinkMessage {
        link(
            index,
            name,
            vec![
                LinkAttribute::Controller(master),
                LinkAttribute::LinkInfo(vec![
                    LinkInfo::Kind(InfoKind::Veth),
                    LinkInfo::PortKind(InfoPortKind::Bond),
                    LinkInfo::PortData(InfoPortData::BondPort(port)),
                ]),
            ],
        )
    }

    /// What the kernel sends (its bytes through the crate's parser) for bond0 over eth3 and eth4
    /// after eth3 lost its carrier: eth4 active, eth3 down.
    #[test]
    fn the_active_slave_and_each_slaves_mii_state_are_read_from_the_link_dump() {
        use netlink_packet_core::{Emitable, Parseable};
        let bond = link(
            7,
            "bond0",
            vec![LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bond), LinkInfo::Data(InfoData::Bond(vec![InfoBond::ActivePort(4)]))])],
        );
        let dump = [
            link(1, "lo", vec![]),
            slave(3, "eth3", 7, MiiStatus::Down, BondPortState::Backup),
            slave(4, "eth4", 7, MiiStatus::Up, BondPortState::Active),
            slave(5, "eth5", 9, MiiStatus::Up, BondPortState::Active),
            bond,
        ];
        // Through the wire format, as the socket delivers them.
        let dump: Vec<LinkMessage> = dump
            .iter()
            .map(|m| {
                let mut buf = vec![0u8; m.buffer_len()];
                m.emit(&mut buf);
                LinkMessage::parse(buf.as_slice()).expect("parses back")
            })
            .collect();
        let got = bond_state("bond0", &dump).expect("bond0 is a bond");
        assert_eq!(got.active.as_deref(), Some("eth4"));
        let seen: Vec<(&str, Mii, bool)> = got.slaves.iter().map(|s| (s.name.as_str(), s.mii, s.active)).collect();
        assert_eq!(seen, vec![("eth3", Mii::Down, false), ("eth4", Mii::Up, true)], "eth5 is another bond's");
        assert_eq!(bond_state("eth3", &dump), None, "not a bond");
        assert_eq!(bond_state("bond1", &dump), None, "no such link");
    }

    /// A kernel since 6.0 reports each slave's priority; an older one has no such attribute,
    /// which is not a priority of 0 but none at all (the daemon then reselects by itself).
    #[test]
    fn a_slaves_priority_is_read_where_the_kernel_reports_it() {
        use netlink_packet_core::{Emitable, Parseable};
        let bond = link(
            7,
            "bond0",
            vec![LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bond), LinkInfo::Data(InfoData::Bond(vec![InfoBond::ActivePort(3)]))])],
        );
        let dump = [
            slave_with(3, "eth3", 7, vec![InfoBondPort::MiiStatus(MiiStatus::Up), InfoBondPort::Prio(3)]),
            slave_with(4, "eth4", 7, vec![InfoBondPort::MiiStatus(MiiStatus::Up), InfoBondPort::Prio(-5)]),
            slave_with(5, "eth5", 7, vec![InfoBondPort::MiiStatus(MiiStatus::Up)]),
            bond,
        ];
        let dump: Vec<LinkMessage> = dump
            .iter()
            .map(|m| {
                let mut buf = vec![0u8; m.buffer_len()];
                m.emit(&mut buf);
                LinkMessage::parse(buf.as_slice()).expect("parses back")
            })
            .collect();
        let got = bond_state("bond0", &dump).expect("bond0 is a bond");
        let prios: Vec<(&str, Option<i32>)> = got.slaves.iter().map(|s| (s.name.as_str(), s.prio)).collect();
        assert_eq!(prios, vec![("eth3", Some(3)), ("eth4", Some(-5)), ("eth5", None)]);
    }

    /// The request's bytes have the layout of `ip link set eth4 type bond_slave prio 2` (iproute2
    /// 6.1, the numbers of linux/if_link.h): the slave by its index in the header, the attribute
    /// nested in IFLA_LINKINFO > IFLA_INFO_SLAVE_DATA after IFLA_INFO_SLAVE_KIND "bond". The
    /// system test sets it on a real bond and reads it back.
    #[test]
    fn a_slaves_priority_is_set_in_its_slave_data() {
        use netlink_packet_core::Emitable;
        let m = slave_prio_message(4, 2);
        let mut buf = vec![0u8; m.buffer_len()];
        m.emit(&mut buf);
        // ifinfomsg (index 4), then IFLA_LINKINFO (18) { IFLA_INFO_SLAVE_KIND (4) "bond",
        // IFLA_INFO_SLAVE_DATA (5) { IFLA_BOND_SLAVE_PRIO (9) = 2 (s32) } }.
        let want: Vec<u8> = [
            &[0u8, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
            &[28, 0, 18, 0],
            &[9, 0, 4, 0, b'b', b'o', b'n', b'd', 0, 0, 0, 0],
            &[12, 0, 5, 0, 8, 0, 9, 0, 2, 0, 0, 0],
        ]
        .concat();
        assert_eq!(buf, want);
        let mut buf = vec![0u8; slave_prio_message(4, -1).buffer_len()];
        slave_prio_message(4, -1).emit(&mut buf);
        assert_eq!(&buf[buf.len() - 4..], &[0xff, 0xff, 0xff, 0xff], "signed");
    }

    /// The request's bytes have the layout of `ip link set bond0 type bond active_slave eth4`
    /// (the numbers of linux/if_link.h): the attribute nested in IFLA_LINKINFO > IFLA_INFO_DATA,
    /// the bond by its index in the header. The system test sets it on a real bond.
    #[test]
    fn the_active_slave_is_set_in_the_bonds_link_info() {
        use netlink_packet_core::Emitable;
        let m = active_slave_message(7, 4);
        let mut buf = vec![0u8; m.buffer_len()];
        m.emit(&mut buf);
        // ifinfomsg (16 bytes: family, pad, type, index 7, flags, change), then
        // IFLA_LINKINFO (18) { IFLA_INFO_KIND (1) "bond", IFLA_INFO_DATA (2) { IFLA_BOND_ACTIVE_SLAVE (2) = 4 } }.
        let want: Vec<u8> = [
            &[0u8, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
            &[28, 0, 18, 0],
            &[9, 0, 1, 0, b'b', b'o', b'n', b'd', 0, 0, 0, 0],
            &[12, 0, 2, 0, 8, 0, 2, 0, 4, 0, 0, 0],
        ]
        .concat();
        assert_eq!(buf, want);
    }
}
