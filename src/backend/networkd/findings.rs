//! What placing the policy among an administrator's .network files found worth saying: notes
//! (`plan` shows them), warnings (also `apply`), and errors (nothing is written). Each one that
//! is about a line names it as file:line, then `[Section] Key=value`, then what to change.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Note,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// The uplink it is about.
    pub interface: String,
    /// The file (as the host names it) and line, when it is about one.
    pub at: Option<(String, usize)>,
    pub text: String,
}

impl Finding {
    pub fn new(severity: Severity, interface: &str, at: Option<(&str, usize)>, text: String) -> Finding {
        Finding { severity, interface: interface.to_string(), at: at.map(|(f, l)| (f.to_string(), l)), text }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some((file, line)) => write!(f, "{file}:{line}: {}", self.text),
            None => write!(f, "{}: {}", self.interface, self.text),
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// The error `apply`, `plan` and `render` stop with when the administrator's files conflict with
/// the policy in a way a drop-in cannot settle; nothing has been written then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflicts(pub Vec<Finding>);

impl fmt::Display for Conflicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "networkd's files conflict with the policy; nothing was written:")?;
        for c in &self.0 {
            write!(f, "\n{c}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Conflicts {}
