//! One uplink at run time: its plan, what the kernel says about its link (index, carrier), and
//! its two sides ([`Side`]), each family judged on its own.

use ipnet::{Ipv4Net, Ipv6Net};

use super::fsm;
use super::side::Side;
use crate::plan::UplinkPlan;

/// One uplink as the daemon tracks it.
pub(super) struct Link {
    pub(super) plan: UplinkPlan,
    pub(super) ifindex: Option<u32>,
    /// Carrier as last told to the state machines (which start out assuming it).
    pub(super) carrier: bool,
    pub(super) v4: Side<Ipv4Net>,
    /// Its IPv6 side; `None` when the policy gives it no IPv6.
    pub(super) v6: Option<Side<Ipv6Net>>,
}

impl Link {
    pub(super) fn new(plan: UplinkPlan, cfg: fsm::Config) -> Link {
        let v6 = plan.ipv6.as_ref().map(|_| Side::new(fsm::Uplink::new(cfg)));
        Link { v6, plan, ifindex: None, carrier: true, v4: Side::new(fsm::Uplink::new(cfg)) }
    }

    pub(super) fn name(&self) -> &str {
        &self.plan.interface
    }

    /// The uplink under a (re)loaded plan: the state machines and history kept, new settings
    /// and new probers; an IPv6 side kept when it had one, new when IPv6 came in, none when it
    /// went.
    pub(super) fn reconfigure(&mut self, plan: &UplinkPlan, cfg: fsm::Config) {
        self.plan = plan.clone();
        self.v4.reconfigure(cfg);
        self.v6 = match (plan.ipv6.as_ref(), self.v6.take()) {
            (None, old) => {
                if let Some(mut old) = old {
                    old.stop_prober();
                }
                None
            }
            (Some(_), Some(mut kept)) => {
                kept.reconfigure(cfg);
                Some(kept)
            }
            (Some(_), None) => Some(Side::new(fsm::Uplink::new(cfg))),
        };
    }

    /// Stops both families' probers.
    pub(super) fn stop_probers(&mut self) {
        self.v4.stop_prober();
        if let Some(v6) = &mut self.v6 {
            v6.stop_prober();
        }
    }
}
