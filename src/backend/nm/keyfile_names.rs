//! Where NetworkManager keyfiles of multihome's live, what they are called and their mode:
//! shared by the routes mode's keyfiles ([`super::keyfile`]) and the bond's ([`super::bond`]).

use crate::backend::files::Owned;
use crate::backend::sysctl;

use super::settings::profile_id;

pub const CONNECTIONS_DIR: &str = "etc/NetworkManager/system-connections";

/// NetworkManager ignores keyfiles that others than root can read.
pub const KEYFILE_MODE: u32 = 0o600;

pub fn path(interface: &str) -> String {
    format!("{CONNECTIONS_DIR}/{}.nmconnection", profile_id(interface))
}

pub fn owned_patterns() -> Vec<Owned> {
    vec![(CONNECTIONS_DIR, "multihome-", ".nmconnection"), sysctl::OWNED]
}
