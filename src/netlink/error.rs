//! What can go wrong talking to the kernel, with the cases callers branch on as variants.

use std::io;

/// A failed netlink request. `what` names the request in the words of `ip` ("add rule 10000
/// from 192.168.178.5/32 lookup 101"), so a message says what multihome was doing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object, or the interface it refers to, does not exist (ENOENT, ESRCH, ENODEV).
    #[error("{what}: not found")]
    NotFound { what: String },
    /// An identical object is already there (EEXIST).
    #[error("{what}: already exists")]
    AlreadyExists { what: String },
    #[error("{what}: {source}")]
    Kernel { what: String, source: io::Error },
    #[error("cannot open a netlink route socket: {0}")]
    Socket(io::Error),
    /// The kernel answered with something rtnetlink did not expect.
    #[error("{what}: {detail}")]
    Protocol { what: String, detail: String },
}

impl Error {
    pub(crate) fn from_rtnetlink(what: impl Into<String>, e: rtnetlink::Error) -> Error {
        let what = what.into();
        match e {
            rtnetlink::Error::NetlinkError(msg) => {
                let errno = msg.raw_code().abs();
                match errno {
                    libc::ENOENT | libc::ESRCH | libc::ENODEV => Error::NotFound { what },
                    libc::EEXIST => Error::AlreadyExists { what },
                    _ => Error::Kernel { what, source: io::Error::from_raw_os_error(errno) },
                }
            }
            other => Error::Protocol { what, detail: other.to_string() },
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    pub fn is_already_exists(&self) -> bool {
        matches!(self, Error::AlreadyExists { .. })
    }
}

impl Error {
    /// The error for a kernel's errno answer to the request `what`.
    pub(crate) fn from_errno(what: impl Into<String>, errno: i32) -> Error {
        let what = what.into();
        match errno {
            libc::ENOENT | libc::ESRCH | libc::ENODEV => Error::NotFound { what },
            libc::EEXIST => Error::AlreadyExists { what },
            _ => Error::Kernel { what, source: io::Error::from_raw_os_error(errno) },
        }
    }
}
