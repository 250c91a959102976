//! The daemon's bookkeeping of one family over all uplinks: which sides carry, the copies it
//! last put in main, the foreign routes that decide their metrics, and what must be worked out
//! again. One [`FamilyState`] per family ([`States`]); `Daemon::converge_family` works on it.

use ipnet::{Ipv4Net, Ipv6Net};

use super::routes::{FailoverRoute, Foreign};
use crate::plan::Prefix;

pub(super) struct FamilyState<N: Prefix> {
    /// A side's verdict, link, address or router changed: who carries, the copies and the
    /// probers are worked out again. An ordinary round changes none of them and costs only its
    /// own uplink's figures: the daemon's work per round does not grow with the uplinks.
    pub(super) dirty: bool,
    /// Main may differ from what it should be (a route of ours vanished, a restart).
    pub(super) routes_dirty: bool,
    pub(super) last_routes: Option<Vec<FailoverRoute<N>>>,
    /// The other routes in main, which decide the metrics of the copies; reread when a route
    /// event in main says they changed.
    pub(super) foreign: Vec<Foreign<N>>,
    pub(super) foreign_dirty: bool,
    /// Which uplinks' sides carry new connections, as of the last converge of the family.
    pub(super) carriers: Vec<bool>,
    /// The uplink new connections of the family leave through; "" when none is healthy.
    pub(super) active: String,
    /// A change of `active` not yet logged: the previous active uplink and the log's phrase.
    pub(super) announce: Option<(String, String)>,
}

impl<N: Prefix> FamilyState<N> {
    /// Everything to be read and worked out: at start.
    pub(super) fn new() -> FamilyState<N> {
        FamilyState {
            dirty: true,
            routes_dirty: true,
            last_routes: None,
            foreign: Vec::new(),
            foreign_dirty: true,
            carriers: Vec::new(),
            active: String::new(),
            announce: None,
        }
    }

    pub(super) fn needs_converge(&self) -> bool {
        self.dirty || self.routes_dirty || self.foreign_dirty
    }

    /// Everything read again (after lost events or a failed change).
    pub(super) fn reread(&mut self) {
        self.routes_dirty = true;
        self.foreign_dirty = true;
        self.dirty = true;
    }

    /// Whether uplink `i`'s side carries, as of the last converge.
    pub(super) fn carries(&self, i: usize) -> bool {
        self.carriers.get(i).copied().unwrap_or(false)
    }
}

/// Both families' states.
pub(super) struct States {
    pub(super) v4: FamilyState<Ipv4Net>,
    pub(super) v6: FamilyState<Ipv6Net>,
}

impl States {
    pub(super) fn new() -> States {
        States { v4: FamilyState::new(), v6: FamilyState::new() }
    }
}
