//! Where multihome's networkd files live and what they are called: the names every other part of
//! the backend (render, placement, netdev, conflicts, reset) agrees on.

use crate::backend::files::Owned;
use crate::backend::sysctl;

pub const NETWORK_DIR: &str = "etc/systemd/network";
pub const NETWORKD_CONF_DIR: &str = "etc/systemd/networkd.conf.d";
pub const NETWORKD_CONF_FILE: &str = "etc/systemd/networkd.conf.d/60-multihome.conf";

/// `10-`: networkd uses the first .network file (in lexical order over all its directories)
/// whose [Match] fits a link, so ours must sort before the usual 20-/50-/80- files.
pub const FILE_PREFIX: &str = "10-multihome-";

/// The .network file of an uplink that no administrator's file takes.
pub fn network_file_name(interface: &str) -> String {
    format!("{FILE_PREFIX}{interface}.network")
}

/// The name of multihome's drop-in in `<file>.network.d/`: after the usual 10-/50- drop-ins, so
/// its single values win over theirs; an administrator's drop-in that must win over it sorts
/// later (placement reports one that undoes the policy).
pub const DROPIN_NAME: &str = "60-multihome.conf";

/// Everything multihome owns under a root for this backend, so stale files can be found.
pub fn owned_patterns() -> Vec<Owned> {
    vec![
        (NETWORK_DIR, FILE_PREFIX, ".network"),
        (NETWORK_DIR, FILE_PREFIX, ".netdev"),
        ("etc/systemd/network/*.network.d", "60-multihome", ".conf"),
        sysctl::OWNED,
        ("etc/systemd/networkd.conf.d", "60-multihome", ".conf"),
    ]
}
