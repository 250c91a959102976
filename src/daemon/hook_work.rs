//! What the dispatcher hook's work in the daemon ([`super::hook`]) has left to do: the uplinks
//! whose rules and routes to reconcile, whether the MPTCP endpoints follow, and whether a
//! failure waits for its retry. The events mark it; `Daemon::run_hook` does it.

use std::collections::BTreeSet;

use crate::dispatch::ipv6::AdvertisedRouter;

/// What is left to reconcile, and how.
pub(super) struct HookWork {
    /// Uplinks (by index) whose link, addresses or default routes changed since their last run.
    pub(super) uplinks: BTreeSet<usize>,
    /// A link or address changed: the endpoints may have to follow.
    pub(super) endpoints: bool,
    /// After a failure: nothing until the retry (not at every probe round).
    pub(super) waiting: bool,
    /// Who copies the advertised IPv6 router into the uplinks' tables on this host.
    pub(super) router: AdvertisedRouter,
}

impl HookWork {
    pub(super) fn new(router: AdvertisedRouter) -> HookWork {
        HookWork { uplinks: BTreeSet::new(), endpoints: false, waiting: false, router }
    }

    /// Uplink `i`'s link or addresses changed: its rules and the endpoints.
    pub(super) fn link_changed(&mut self, i: usize) {
        self.uplinks.insert(i);
        self.endpoints = true;
    }

    /// A default route on uplink `i`'s interface came or went (the router a table's copy
    /// follows): its rules and routes only.
    pub(super) fn route_changed(&mut self, i: usize) {
        self.uplinks.insert(i);
    }

    /// The retry's time has come.
    pub(super) fn retry(&mut self) {
        self.waiting = false;
    }
}
