//! Routing-policy rules (`ip rule`, `ip -6 rule`): list them, and add or delete a
//! `plan::Rule` of either family tagged with multihome's protocol.

use futures::TryStreamExt;
use ipnet::{Ipv4Net, Ipv6Net};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{RouteHeader, RouteProtocol};
use netlink_packet_route::rule::{self as nl, RuleAttribute, RuleMessage};
use rtnetlink::IpVersion;

use super::{Error, Netlink};
use crate::plan::{PROTOCOL, Prefix, Rule, Table};

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// `lookup TABLE`
    ToTable,
    Goto,
    Nop,
    Blackhole,
    Unreachable,
    Prohibit,
    Other(u8),
}

/// A rule as the kernel reports it (IPv4 unless said: `KernelRule<Ipv6Net>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRule<N: Prefix = Ipv4Net> {
    /// The kernel gives every rule a priority (0 for `local`).
    pub priority: u32,
    pub from: Option<N>,
    pub to: Option<N>,
    /// 0 when the action is not `ToTable`.
    pub table: u32,
    pub action: RuleAction,
    /// Who added it: 77 ([`PROTOCOL`]) for multihome, 0 for `ip rule` without `protocol`, ...
    pub protocol: u8,
    /// It also matches on something a `plan::Rule` cannot say (iif, oif, fwmark, tos, ports,
    /// uid range, `not`, ...), so it is never equal to one.
    pub other_selectors: bool,
}

impl<N: Prefix> KernelRule<N> {
    /// The plan's view of this rule, if it is one the plan could have asked for.
    pub fn as_plan_rule(&self) -> Option<Rule<N>> {
        if self.action != RuleAction::ToTable || self.other_selectors || self.table == 0 {
            return None;
        }
        let table = if self.table == u32::from(RouteHeader::RT_TABLE_MAIN) { Table::Main } else { Table::Id(self.table) };
        Some(Rule { priority: self.priority, from: self.from, to: self.to, table })
    }

    pub fn is_ours(&self) -> bool {
        self.protocol == PROTOCOL
    }
}

impl Netlink {
    /// Every IPv4 rule, in the kernel's order (by priority).
    pub async fn rules(&self) -> Result<Vec<KernelRule>, Error> {
        let messages: Vec<RuleMessage> =
            self.handle.rule().get(IpVersion::V4).execute().try_collect().await.map_err(|e| Error::from_rtnetlink("list IPv4 rules", e))?;
        Ok(messages.iter().filter_map(kernel_rule).collect())
    }

    /// The IPv4 rules multihome added (tagged with [`PROTOCOL`]).
    pub async fn our_rules(&self) -> Result<Vec<KernelRule>, Error> {
        Ok(self.rules().await?.into_iter().filter(KernelRule::is_ours).collect())
    }

    /// Every IPv6 rule, in the kernel's order.
    pub async fn rules6(&self) -> Result<Vec<KernelRule<Ipv6Net>>, Error> {
        let messages: Vec<RuleMessage> =
            self.handle.rule().get(IpVersion::V6).execute().try_collect().await.map_err(|e| Error::from_rtnetlink("list IPv6 rules", e))?;
        Ok(messages.iter().filter_map(kernel_rule).collect())
    }

    /// The IPv6 rules multihome added.
    pub async fn our_rules6(&self) -> Result<Vec<KernelRule<Ipv6Net>>, Error> {
        Ok(self.rules6().await?.into_iter().filter(KernelRule::is_ours).collect())
    }

    /// Adds `rule` tagged with [`PROTOCOL`]; [`Error::AlreadyExists`] if the kernel has it.
    pub async fn add_rule(&self, rule: &Rule) -> Result<(), Error> {
        self.add_rule_of(rule).await
    }

    /// [`Netlink::add_rule`] for IPv6.
    pub async fn add_rule6(&self, rule: &Rule<Ipv6Net>) -> Result<(), Error> {
        self.add_rule_of(rule).await
    }

    /// Deletes `rule` if it carries [`PROTOCOL`] (a foreign rule that looks the same stays);
    /// [`Error::NotFound`] if there is no such rule of ours.
    pub async fn delete_rule(&self, rule: &Rule) -> Result<(), Error> {
        self.delete_rule_of(rule).await
    }

    /// [`Netlink::delete_rule`] for IPv6.
    pub async fn delete_rule6(&self, rule: &Rule<Ipv6Net>) -> Result<(), Error> {
        self.delete_rule_of(rule).await
    }

    async fn add_rule_of<N: Prefix>(&self, rule: &Rule<N>) -> Result<(), Error> {
        let mut request = self.handle.rule().add();
        *request.message_mut() = rule_message(rule);
        request.execute().await.map_err(|e| Error::from_rtnetlink(format!("add rule {rule}"), e))
    }

    async fn delete_rule_of<N: Prefix>(&self, rule: &Rule<N>) -> Result<(), Error> {
        self.handle.rule().del(rule_message(rule)).execute().await.map_err(|e| Error::from_rtnetlink(format!("delete rule {rule}"), e))
    }
}

/// The message that adds or deletes `rule`. The kernel matches a deletion on every attribute
/// given, the protocol included, which is what keeps foreign rules safe.
fn rule_message<N: Prefix>(rule: &Rule<N>) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = family::<N>();
    m.header.action = nl::RuleAction::ToTable;
    let table = rule.table.number();
    if table > 255 {
        m.header.table = RouteHeader::RT_TABLE_UNSPEC;
    } else {
        m.header.table = table as u8;
    }
    // Always as an attribute too, as `ip rule` does: the header byte cannot hold big tables.
    m.attributes.push(RuleAttribute::Table(table));
    m.attributes.push(RuleAttribute::Priority(rule.priority));
    if let Some(from) = rule.from {
        m.header.src_len = from.prefix_len();
        m.attributes.push(RuleAttribute::Source(from.trunc().addr().into()));
    }
    if let Some(to) = rule.to {
        m.header.dst_len = to.prefix_len();
        m.attributes.push(RuleAttribute::Destination(to.trunc().addr().into()));
    }
    m.attributes.push(RuleAttribute::Protocol(RouteProtocol::from(PROTOCOL)));
    m
}

fn family<N: Prefix>() -> AddressFamily {
    if N::FAMILY == "ipv4" { AddressFamily::Inet } else { AddressFamily::Inet6 }
}

pub(super) fn kernel_rule<N: Prefix>(m: &RuleMessage) -> Option<KernelRule<N>> {
    if m.header.family != family::<N>() {
        return None;
    }
    let mut rule = KernelRule {
        priority: 0,
        from: None,
        to: None,
        table: u32::from(m.header.table),
        action: action(m.header.action),
        protocol: 0,
        // `not` inverts the selectors; the other flags are bookkeeping (permanent, detached).
        other_selectors: m.header.tos != 0 || m.header.flags.contains(nl::RuleFlags::Invert),
    };
    for a in &m.attributes {
        match a {
            RuleAttribute::Priority(p) => rule.priority = *p,
            RuleAttribute::Table(t) => rule.table = *t,
            RuleAttribute::Source(a) => rule.from = N::from_ip(*a, m.header.src_len),
            RuleAttribute::Destination(a) => rule.to = N::from_ip(*a, m.header.dst_len),
            RuleAttribute::Protocol(p) => rule.protocol = u8::from(*p),
            // The kernel reports these on rules that do not use them (-1 is "unset"); a real
            // suppressor changes what `lookup` means, so a rule with one is not a plan rule.
            RuleAttribute::SuppressPrefixLen(u32::MAX) | RuleAttribute::SuppressIfGroup(u32::MAX) => {}
            RuleAttribute::FwMask(0) | RuleAttribute::FwMark(0) => {}
            RuleAttribute::Goto(_) | RuleAttribute::Realm(_) | RuleAttribute::Other(_) => {}
            _ => rule.other_selectors = true,
        }
    }
    if rule.action != RuleAction::ToTable {
        rule.table = 0;
    }
    Some(rule)
}

fn action(a: nl::RuleAction) -> RuleAction {
    match a {
        nl::RuleAction::ToTable => RuleAction::ToTable,
        nl::RuleAction::Goto => RuleAction::Goto,
        nl::RuleAction::Nop => RuleAction::Nop,
        nl::RuleAction::Blackhole => RuleAction::Blackhole,
        nl::RuleAction::Unreachable => RuleAction::Unreachable,
        nl::RuleAction::Prohibit => RuleAction::Prohibit,
        nl::RuleAction::Other(n) => RuleAction::Other(n),
        // `Unspec` and any variant added later.
        other => RuleAction::Other(u8::from(other)),
    }
}
