//! MPTCP in the plan: which uplink's address is an endpoint of the kernel's path manager (so an
//! open MPTCP connection has a subflow through it and survives the failure of another uplink),
//! whether as a normal subflow or as backup, and the subflow limit that lets every uplink carry
//! one (and carry one again after it lost carrier). Applied only where the kernel has MPTCP
//! enabled (`net.mptcp.enabled`), which the backends read; the plan itself stays a function of
//! the policy alone.

use std::net::Ipv4Addr;

use serde::Serialize;

use crate::numbers::{MPTCP_FIRST_ID, MPTCP_MAX_ENDPOINTS, MPTCP_MAX_SUBFLOWS};
use crate::policy::Subflows;

/// Uplinks ranked below this carry normal subflows by default, the rest backup ones: the most
/// preferred uplink and the next one, which then already holds a live subflow when the first
/// fails silently, so data moves at the first retransmission (measured in issue 15: 0.215 s),
/// while the others stay idle until both are gone.
pub const NORMAL_SUBFLOW_RANKS: usize = 2;

/// One uplink's endpoint (`ip mptcp endpoint add ADDR dev IFACE id ID subflow [backup]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// multihome's mark on it (see [`MPTCP_FIRST_ID`]).
    pub id: u8,
    /// Static uplinks: their first address; DHCP ones: `None`, the hook adds the lease's.
    pub address: Option<Ipv4Addr>,
    pub backup: bool,
}

/// What the kernel's path manager must allow for the endpoints to be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Extra subflows per connection (`ip mptcp limits set subflows N`): one per uplink, the
    /// one the connection started on included: when that uplink loses carrier the daemon
    /// removes its endpoint, and its subflow comes back as an extra one (a join). Raised to
    /// this, never lowered (an administrator's larger limit stays).
    pub subflows: u32,
}

/// The endpoint of the uplink at `rank`, from its `MPTCP=` or else its rank; `None` when it has
/// none (MPTCP=no, or past the ids multihome has).
pub fn endpoint(rank: usize, given: Option<Subflows>, address: Option<Ipv4Addr>) -> Option<Endpoint> {
    if rank >= MPTCP_MAX_ENDPOINTS {
        return None;
    }
    let backup = match given {
        Some(Subflows::No) => return None,
        Some(Subflows::Subflow) => false,
        Some(Subflows::Backup) => true,
        None => rank >= NORMAL_SUBFLOW_RANKS,
    };
    Some(Endpoint { id: MPTCP_FIRST_ID + rank as u8, address, backup })
}

/// The limits for `endpoints` uplinks with an endpoint.
pub fn limits(endpoints: usize) -> Limits {
    Limits { subflows: (endpoints as u32).min(MPTCP_MAX_SUBFLOWS) }
}

/// The uplink of an endpoint id, if the id is one of multihome's.
pub fn rank_of(id: u8) -> Option<usize> {
    id.checked_sub(MPTCP_FIRST_ID).map(usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_the_rank_unless_given_and_ids_run_out_at_255() {
        assert!(!endpoint(0, None, None).unwrap().backup);
        assert!(!endpoint(1, None, None).unwrap().backup);
        assert!(endpoint(2, None, None).unwrap().backup);
        assert!(!endpoint(2, Some(Subflows::Subflow), None).unwrap().backup);
        assert!(endpoint(0, Some(Subflows::Backup), None).unwrap().backup);
        assert_eq!(endpoint(0, Some(Subflows::No), None), None);
        assert_eq!(endpoint(MPTCP_MAX_ENDPOINTS - 1, None, None).unwrap().id, 255);
        assert_eq!(endpoint(MPTCP_MAX_ENDPOINTS, None, None), None);
        assert_eq!(rank_of(255), Some(MPTCP_MAX_ENDPOINTS - 1));
        assert_eq!(rank_of(7), None);
    }

    #[test]
    fn limits_allow_a_subflow_per_uplink_up_to_the_kernels_eight() {
        // One per uplink, the first one's included: it returns as a join after carrier loss.
        assert_eq!(limits(0).subflows, 0);
        assert_eq!(limits(1).subflows, 1);
        assert_eq!(limits(3).subflows, 3);
        assert_eq!(limits(16).subflows, MPTCP_MAX_SUBFLOWS);
    }
}
