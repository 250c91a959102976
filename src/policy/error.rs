//! Policy errors: each names the file and line, and the key and value where there is one, so the
//! user can go straight to the mistake. All problems of a file are reported together.

use std::fmt;

/// One problem in the policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: &str, line: usize, message: impl Into<String>) -> Self {
        Diagnostic { file: file.to_string(), line, message: message.into() }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Every problem found in one policy file, in line order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

/// The most problems shown: enough to fix a file in one round, and a file of 200,000 bad lines
/// does not print megabytes into the journal at every reload.
pub const MAX_SHOWN: usize = 50;

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().take(MAX_SHOWN).enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        if self.0.len() > MAX_SHOWN {
            write!(f, "\n... and {} more problem(s) in {}", self.0.len() - MAX_SHOWN, self.0[0].file)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_problems_are_capped_with_a_count() {
        let all = Diagnostics((1..=200_000).map(|n| Diagnostic::new("p.conf", n, "bad")).collect());
        let shown = all.to_string();
        assert_eq!(shown.lines().count(), MAX_SHOWN + 1);
        assert!(shown.ends_with("... and 199950 more problem(s) in p.conf"), "{}", &shown[shown.len() - 80..]);
    }
}
