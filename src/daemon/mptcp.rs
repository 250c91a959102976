//! Steering MPTCP subflows by health (issue 15). The endpoint of an uplink that carries no new
//! connections (demoted, or poor beside a better one) becomes backup, so the kernel sends an
//! open connection's data on the healthy uplinks' subflows and tells the peers (MP_PRIO); when
//! the uplink is trusted again its endpoint gets the plan's flag back.
//!
//! An uplink that loses carrier loses its endpoint at once: removing it closes the subflows
//! through it, and the kernel reinjects what was in flight on them at once (measured: 12-29 ms),
//! where a backup flag leaves that data waiting for the subflow's retransmission timeout
//! (at least 200 ms). When the uplink is trusted again its endpoint is added back, which makes
//! the kernel open a subflow through it on every open connection (a join: the plan's subflow
//! limit allows one per uplink for that). The kernel's scheduler breaks ties between idle
//! subflows by their age, so the subflows of the normal endpoints ranked below it are
//! re-opened right after it: the returning, more preferred uplink carries the data again.
//!
//! Only multihome's own endpoints are touched; which ones exist otherwise is the business of
//! `multihome apply`, the hook and the daemon's own run of the hook's sync (`super::hook`,
//! `netlink::mptcp::sync`). A pure [`desired`], then [`Steering::steer`] against the kernel.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::status_record::{Snapshot, UplinkMptcp};
use crate::netlink::mptcp::{self, Endpoint, Mptcp};
use crate::plan::UplinkPlan;

/// One endpoint as the daemon wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    pub id: u8,
    pub backup: bool,
    /// The uplink has carrier: without it the endpoint is removed.
    pub present: bool,
    /// The uplink carries new connections: an endpoint removed at carrier loss comes back then
    /// (not at the carrier's return, when the manager may not have put its routes back yet and
    /// the kernel would try the new subflows once and give up).
    pub carrying: bool,
    /// The uplink has a verdict (its state machine left `unknown`). Until then its endpoint
    /// keeps the flag the kernel has (the plan's after `apply` or a stop's cleanup, a previous
    /// daemon's after a crash): a daemon that starts changes nothing the probes have not judged
    /// (it flipped every endpoint to backup and back at start, an MP_PRIO to every peer each).
    pub judged: bool,
}

/// For each uplink with an endpoint (`uplinks` most preferred first, `carrying`, `carrier` and
/// `judged` beside them): the plan's flag while it carries, backup while it does not, absent
/// without carrier, the kernel's own while it has no verdict yet; and if that leaves no
/// carrying uplink with a normal subflow (nor one without a verdict that may have one), the
/// most preferred carrying one gets one, so data never waits for a backup subflow to be
/// promoted while a healthy path is there.
pub fn desired(uplinks: &[&UplinkPlan], carrying: &[bool], carrier: &[bool], judged: &[bool]) -> Vec<Flag> {
    let mut flags: Vec<Flag> = Vec::new();
    let mut best_carrying = None;
    for (((u, &c), &present), &judged) in uplinks.iter().zip(carrying).zip(carrier).zip(judged) {
        let Some(e) = u.mptcp else { continue };
        if c && best_carrying.is_none() {
            best_carrying = Some(flags.len());
        }
        flags.push(Flag { id: e.id, backup: e.backup || !c, present, carrying: c, judged });
    }
    // An uplink without a verdict but with carrier keeps its flag, and may carry.
    let any_normal_carrying = (0..uplinks.len()).any(|i| (carrying[i] || (!judged[i] && carrier[i])) && uplinks[i].mptcp.is_some_and(|e| !e.backup));
    if let (false, Some(i)) = (any_normal_carrying, best_carrying) {
        flags[i].backup = false;
    }
    flags
}

/// What the daemon remembers between steers: the endpoints it removed at carrier loss, to add
/// back (and re-open the subflows below them) once their uplinks carry again; and those whose
/// uplinks stopped carrying while they had carried (a silent failure, poor quality), which are
/// re-opened the same way on their return: their subflows sat in retransmission backoff during
/// the fault, and the scheduler, which picks the first idle subflow, would send on them first
/// and wait for that backoff (measured: 0.2 s without an echo right after the repair).
#[derive(Debug, Default)]
pub struct Steering {
    removed: BTreeSet<u8>,
    carried: BTreeSet<u8>,
    demoted: BTreeSet<u8>,
}

impl Steering {
    /// The endpoints it removed at carrier loss and adds back itself once their uplinks carry:
    /// the daemon's own sync leaves them alone (see `super::hook`).
    pub fn held(&self) -> &BTreeSet<u8> {
        &self.removed
    }

    /// Brings multihome's endpoints in line with `want`, returning what it did for the log (by
    /// endpoint id).
    /// `ours(endpoint)` says whether an endpoint with one of the ids is multihome's (on the
    /// uplink's interface); `locate(id)` gives an uplink's current address and interface, for
    /// an endpoint to add back. An endpoint not there (no lease yet, MPTCP off) and never
    /// removed here is left to the hook. Blocking netlink calls that the kernel answers at
    /// once; only run when a verdict, link or address changed.
    pub fn steer(
        &mut self,
        want: &[Flag],
        ours: impl Fn(&Endpoint) -> bool,
        locate: impl Fn(u8) -> Option<(Ipv4Addr, u32)>,
    ) -> Result<Vec<(u8, String)>, crate::netlink::Error> {
        let mut done = Vec::new();
        if want.is_empty() {
            return Ok(done);
        }
        let Some(mut pm) = Mptcp::open()? else { return Ok(done) };
        let mut kernel: Vec<Endpoint> = pm.endpoints()?.into_iter().filter(|k| ours(k)).collect();
        for (i, f) in want.iter().enumerate() {
            if !f.present {
                if let Some(k) = kernel.iter().find(|k| k.id == f.id) {
                    delete(&mut pm, k.id)?;
                    // The kernel told the peers on the first subflow that could send, often the
                    // one just closed, so the word was lost and a peer's data in flight on it
                    // would wait for its retransmission timeout. The connections that started
                    // from this address say it again (RM_ADDR, id 0), now on a live subflow.
                    if let Some(address) = k.address {
                        match pm.delete_id_zero(address) {
                            Err(e) if !e.is_not_found() => return Err(e),
                            _ => {}
                        }
                    }
                    done.push((f.id, format!("MPTCP endpoint {} removed (no carrier): open connections move off it at once", describe(k))));
                    self.removed.insert(f.id);
                    self.carried.remove(&f.id);
                    kernel.retain(|k| k.id != f.id);
                }
                continue;
            }
            if f.carrying {
                self.carried.insert(f.id);
            } else if self.carried.remove(&f.id) && kernel.iter().any(|k| k.id == f.id) {
                self.demoted.insert(f.id);
            }
            if !(f.carrying && (self.removed.contains(&f.id) || self.demoted.contains(&f.id))) {
                continue;
            }
            let Some((address, ifindex)) = locate(f.id) else { continue };
            // Added back by the hook in the meantime, maybe before its routes: once more, now.
            if kernel.iter().any(|k| k.id == f.id) {
                delete(&mut pm, f.id)?;
            }
            pm.add_endpoint(f.id, address, ifindex, f.backup)?;
            self.removed.remove(&f.id);
            self.demoted.remove(&f.id);
            done.push((f.id, format!("MPTCP endpoint {address} id {} added back: open connections get a fresh subflow through it", f.id)));
            // The normal subflows below it, re-opened after it (see the module's comment).
            for lower in want[i + 1..].iter().filter(|l| l.present && !l.backup) {
                if let Some(k) = kernel.iter().find(|k| k.id == lower.id && !k.backup())
                    && let Some(address) = k.address
                    && let Some(ifindex) = k.ifindex
                {
                    delete(&mut pm, k.id)?;
                    pm.add_endpoint(k.id, address, ifindex, false)?;
                    done.push((k.id, format!("MPTCP endpoint {} re-opened behind the one added back", describe(k))));
                }
            }
            kernel = pm.endpoints()?.into_iter().filter(|k| ours(k)).collect();
        }
        for k in &kernel {
            let Some(f) = want.iter().find(|f| f.id == k.id) else { continue };
            if k.subflow() && f.judged && k.backup() != f.backup {
                pm.set_backup(k.id, f.backup)?;
                done.push((k.id, format!("MPTCP endpoint {} is now {}", describe(k), if f.backup { "backup" } else { "a normal subflow" })));
            }
        }
        Ok(done)
    }
}

/// `status`'s lines on MPTCP, below the table; `None` when no uplink has anything to show.
pub fn render(s: &Snapshot) -> Option<String> {
    let mut out = String::new();
    for u in s.uplinks.iter().filter(|u| u.mptcp != UplinkMptcp::default()) {
        let endpoint = match (&u.mptcp.mptcp_id, &u.mptcp.mptcp_address, &u.mptcp.mptcp_flags) {
            (Some(id), address, flags) => {
                format!("endpoint {} id {id} {}", address.as_deref().unwrap_or("(IPv6)"), flags.as_deref().unwrap_or_default().join(" "))
            }
            _ => "no endpoint".to_string(),
        };
        let connections = u.mptcp.mptcp_connections.map_or(String::new(), |n| format!(", {n} MPTCP connection{}", if n == 1 { "" } else { "s" }));
        let _ = writeln!(out, "MPTCP {:<10} {endpoint}{connections}", u.interface);
    }
    (!out.is_empty()).then_some(out)
}

/// After the daemon ended, whatever ended it (a stop, a restart, the watchdog, kill -9):
/// multihome's endpoints as `multihome apply` makes them without a daemon, the plan's flags on
/// all (a backup flag the daemon set goes back to the plan's), an endpoint removed at carrier
/// loss back; nothing the plan wants is removed, also where /proc/sys cannot be read (the
/// unit's `ProcSubset=pid`: see `mptcp::Enabled`). A policy that does not load now leaves them
/// as they are, said in the log: the routes' cleanup does not depend on it.
pub async fn restore(config: &std::path::Path, nl: &crate::netlink::Netlink) {
    let plan = match crate::policy::load(config) {
        Ok(policy) => crate::plan::plan(&policy),
        Err(e) => {
            tracing::warn!("MPTCP endpoints left as the daemon left them: cannot read the policy ({e:#})");
            return;
        }
    };
    match mptcp::sync(&plan, nl, mptcp::Flags::Planned).await {
        Ok(synced) if synced.changed_anything() => tracing::info!("{synced}"),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot restore the MPTCP endpoints: {e}"),
    }
}

fn delete(pm: &mut Mptcp, id: u8) -> Result<(), crate::netlink::Error> {
    match pm.delete_endpoint(id) {
        Err(e) if e.is_not_found() => Ok(()),
        r => r,
    }
}

fn describe(k: &Endpoint) -> String {
    format!("{} id {}", k.address.map_or_else(|| "(IPv6)".to_string(), |a| a.to_string()), k.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::status_record::{FamilyStatus, UplinkStatus};
    use crate::plan::plan;
    use crate::policy::parse;

    const SEED: &str = include_str!("../../examples/seed.conf");

    fn flags(carrying: [bool; 3], carrier: [bool; 3]) -> Vec<(u8, bool, bool)> {
        let p = plan(&parse("seed", SEED).unwrap());
        let uplinks: Vec<&UplinkPlan> = p.uplinks().iter().collect();
        desired(&uplinks, &carrying, &carrier, &[true; 3]).into_iter().map(|f| (f.id, f.backup, f.present)).collect()
    }

    #[test]
    fn a_demoted_uplink_is_backup_and_the_best_carrying_one_always_normal() {
        let up = [true; 3];
        // Healthy: the plan's (eth0 and wlan1 normal, wlan0 backup).
        assert_eq!(flags([true, true, true], up), [(240, false, true), (241, false, true), (242, true, true)]);
        // eth0 demoted: backup at once; wlan1 carries on as normal.
        assert_eq!(flags([false, true, true], up), [(240, true, true), (241, false, true), (242, true, true)]);
        // eth0 and wlan1 demoted: wlan0, the planned backup, becomes the normal one.
        assert_eq!(flags([false, false, true], up), [(240, true, true), (241, true, true), (242, false, true)]);
        // Nothing carries: every endpoint backup, so any path that still works is used.
        assert_eq!(flags([false, false, false], up), [(240, true, true), (241, true, true), (242, true, true)]);
    }

    #[test]
    fn status_shows_each_uplinks_endpoint_and_connections() {
        let mut s = Snapshot::default();
        for (name, mptcp) in [
            ("eth0", UplinkMptcp { mptcp_connections: Some(0), ..Default::default() }),
            (
                "wlan1",
                UplinkMptcp {
                    mptcp_id: Some(241),
                    mptcp_address: Some("192.168.178.98".into()),
                    mptcp_flags: Some(vec!["subflow".into()]),
                    mptcp_connections: Some(1),
                },
            ),
        ] {
            s.uplinks.push(UplinkStatus {
                interface: name.into(),
                rank: 0,
                v4: FamilyStatus { state: crate::daemon::fsm::State::Up.into(), carrying: true, ..Default::default() },
                mptcp,
                ..Default::default()
            });
        }
        assert_eq!(
            render(&s).unwrap(),
            "MPTCP eth0       no endpoint, 0 MPTCP connections\nMPTCP wlan1      endpoint 192.168.178.98 id 241 subflow, 1 MPTCP connection\n"
        );
    }

    #[test]
    fn an_uplink_without_a_verdict_keeps_the_kernels_flag_and_no_backup_is_promoted_meanwhile() {
        let p = plan(&parse("seed", SEED).unwrap());
        let uplinks: Vec<&UplinkPlan> = p.uplinks().iter().collect();
        // Just started: wlan0 (the planned backup) answered first, eth0 and wlan1 not yet.
        let want = desired(&uplinks, &[false, false, true], &[true; 3], &[false, false, true]);
        let seen: Vec<(u8, bool, bool)> = want.iter().map(|f| (f.id, f.backup, f.judged)).collect();
        // eth0 and wlan1 are left as the kernel has them; wlan0 stays backup (eth0 and wlan1
        // may still carry as normal subflows).
        assert_eq!(seen, [(240, true, false), (241, true, false), (242, true, true)]);
    }

    #[test]
    fn an_uplink_without_carrier_has_no_endpoint() {
        assert_eq!(flags([false, true, true], [false, true, true]), [(240, true, false), (241, false, true), (242, true, true)]);
    }
}
