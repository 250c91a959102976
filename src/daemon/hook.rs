//! The dispatcher hook's work, done by the daemon while it runs (issue 22): the `from`/`to`
//! rules and table routes of DHCP leases and of SLAAC and DHCPv6 addresses, the copies of
//! advertised IPv6 routers (where NetworkManager is the manager), and the MPTCP endpoints and
//! subflow limit. At start and after every link, address or default-route event of an uplink,
//! with the hook's own functions (`dispatch::hook::reconcile_uplink`, `netlink::mptcp::sync`),
//! so a host without a dispatcher (networkd without networkd-dispatcher), a reboot without
//! `apply` and a daemon restart converge as soon as the kernel has the address.
//!
//! The hooks stay for hosts without the daemon. Both compute the same state from the same
//! kernel and are idempotent, so neither undoes the other; the one difference is the MPTCP
//! endpoint of an uplink that lost carrier, which the daemon's sync leaves to the daemon's
//! steering ([`super::mptcp`]): it comes back once the uplink carries again, not at the
//! carrier's return. What is left to do is [`super::hook_work::HookWork`], the daemon's field.

use tokio::time::Instant;

use super::{Daemon, RETRY_AFTER};
use crate::dispatch::hook;
use crate::netlink::mptcp;

impl Daemon {
    /// Runs what [`HookWork`] holds, before the steering (which then sees the endpoints the
    /// sync made). Logs what changed, as the hook does.
    pub(super) async fn run_hook(&mut self) {
        if self.hook.waiting || (self.hook.uplinks.is_empty() && !self.hook.endpoints) {
            return;
        }
        let mut failed = false;
        for i in std::mem::take(&mut self.hook.uplinks) {
            let Some(link) = self.links.get(i) else { continue };
            let (name, plan) = (link.name().to_string(), link.plan.clone());
            match hook::reconcile_uplink(&plan, self.hook.router, &self.nl).await {
                Ok(Some(outcome)) if outcome.changed_anything() => tracing::info!(iface = %name, "{name}: {outcome}"),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(iface = %name, "{name}: cannot bring the rules of its leases and dynamic addresses up to date: {e}; retrying in {RETRY_AFTER:?}");
                    self.hook.uplinks.insert(i);
                    failed = true;
                }
            }
        }
        if std::mem::take(&mut self.hook.endpoints) {
            match mptcp::sync_holding(&self.plan, &self.nl, mptcp::Flags::Kept, self.mptcp.held()).await {
                Ok(synced) if synced.changed_anything() || !synced.blocked.is_empty() => tracing::info!("{synced}"),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("cannot bring the MPTCP endpoints up to date: {e}; retrying in {RETRY_AFTER:?}");
                    self.hook.endpoints = true;
                    failed = true;
                }
            }
        }
        if failed {
            self.hook.waiting = true;
            self.retry_at = Some(Instant::now() + RETRY_AFTER);
        }
    }
}
