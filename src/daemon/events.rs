//! The daemon's events as one value (issue 26): a change of an uplink's state in one family, or
//! of the uplink new connections of a family leave by. Each kind has its own journal
//! `MESSAGE_ID` (packaging/multihome.catalog, installed in /usr/lib/systemd/catalog, explains each one and what to do), and each event
//! is logged once with the fields `UPLINK=`, `FAMILY=`, `STATE=`, `OLD_STATE=`, `REASON=`,
//! `ACTIVE=` and handed to the event hooks ([`super::event_hooks`]) as their environment.
//! Pure: no I/O but the log line.

use super::probe::Family;

/// What happened, as the journal's `MESSAGE_ID` tells it apart. The ids were made once with
/// `journalctl --new-id128` and never change: administrators filter and alert on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The uplink (or, under Mode=bond, the path through a slave) may no longer carry traffic:
    /// down, no carrier, no address, not enslaved, no bond.
    Down,
    /// The uplink carries traffic again (`up`).
    Up,
    /// Trusted by the probes, but its loss or latency is beyond the policy's limits.
    Poor,
    /// `multihome force down|up`: an administrator's order took effect.
    Forced,
    /// Any other change of state (degraded, recovering, unknown): worth a line, not an alert.
    State,
    /// Mode=routes: the uplink new connections of the family leave by changed.
    ActiveChanged,
    /// Mode=bond: the bond's active slave changed.
    BondSlaveChanged,
}

impl Kind {
    pub const ALL: [Kind; 7] = [Kind::Down, Kind::Up, Kind::Poor, Kind::Forced, Kind::State, Kind::ActiveChanged, Kind::BondSlaveChanged];

    pub fn message_id(self) -> &'static str {
        match self {
            Kind::Down => "f04aa98c65c14fbea47e07142382d903",
            Kind::Up => "52cdf3222aa64cc48459cb7a0517caec",
            Kind::Poor => "671dc39af26f428a8ff7f400a52ed3e8",
            Kind::Forced => "48773fa374ee48b9bb5eeef5d3e99dcd",
            Kind::State => "472605fd741445998a2e0a72817fab6f",
            Kind::ActiveChanged => "4e011363192c48219b402dd82887c04a",
            Kind::BondSlaveChanged => "c558f8374b794184a20599be37e3569e",
        }
    }

    /// The word hooks read in `MULTIHOME_KIND`.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Down => "down",
            Kind::Up => "up",
            Kind::Poor => "poor",
            Kind::Forced => "forced",
            Kind::State => "state",
            Kind::ActiveChanged => "active",
            Kind::BondSlaveChanged => "bond-slave",
        }
    }

    /// A state change's kind, from the state word it changed to (`down`, `path down`,
    /// `path-down`, `no-carrier`, `forced-up`, `poor`, ...: the words the log and the bus show).
    pub fn of_state(to: &str) -> Kind {
        let word = to.strip_prefix("path ").or_else(|| to.strip_prefix("path-")).unwrap_or(to);
        match word {
            "up" => Kind::Up,
            "poor" => Kind::Poor,
            "forced-down" | "forced-up" => Kind::Forced,
            "down" | "no-carrier" | "no-address" | "going-down" | "not-enslaved" | "no-bond" => Kind::Down,
            _ => Kind::State,
        }
    }
}

/// `ipv4` or `ipv6`, as `FAMILY=` and `MULTIHOME_FAMILY` say it (the metrics' label values).
pub fn family_word(f: Family) -> &'static str {
    match f {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

/// One event, with every fact a hook or the journal gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: Kind,
    pub family: Family,
    /// The uplink whose state changed; for an active change the new active uplink ("" for none).
    pub uplink: String,
    /// State changes: the states before and after. Active changes: the previous and the new
    /// active uplink.
    pub old: String,
    pub new: String,
    pub reason: String,
    /// The family's active uplink after the event ("" for none).
    pub active: String,
}

impl Change {
    pub fn is_state(&self) -> bool {
        !matches!(self.kind, Kind::ActiveChanged | Kind::BondSlaveChanged)
    }

    /// The hook's environment (and nothing else: the runner clears the rest but PATH).
    /// State events: the uplink's old and new state; active events: the old and the new
    /// active uplink (also in `MULTIHOME_OLD_ACTIVE`).
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("MULTIHOME_EVENT", if self.is_state() { "state" } else { "active" }.to_string()),
            ("MULTIHOME_KIND", self.kind.word().to_string()),
            ("MULTIHOME_MESSAGE_ID", self.kind.message_id().to_string()),
            ("MULTIHOME_UPLINK", self.uplink.clone()),
            ("MULTIHOME_FAMILY", family_word(self.family).to_string()),
            ("MULTIHOME_REASON", self.reason.clone()),
            ("MULTIHOME_ACTIVE", self.active.clone()),
        ];
        if self.is_state() {
            env.push(("MULTIHOME_OLD_STATE", self.old.clone()));
            env.push(("MULTIHOME_NEW_STATE", self.new.clone()));
        } else {
            env.push(("MULTIHOME_OLD_ACTIVE", self.old.clone()));
        }
        env
    }

    /// Logs the event with its `MESSAGE_ID` and fields (the journal), and `line` as the
    /// message (what stderr shows, as before the ids).
    pub fn log(&self, line: &str) {
        self.emit(line, false);
    }

    /// As [`Change::log`], for the journal alone: an active change whose phrase stderr already
    /// showed at the end of a transition's line (as the lab's timeline reads it).
    pub fn log_journal_only(&self, line: &str) {
        self.emit(line, true);
    }

    fn emit(&self, line: &str, journal_only: bool) {
        let (id, family) = (self.kind.message_id(), family_word(self.family));
        let (uplink, reason, active) = (self.uplink.as_str(), self.reason.as_str(), self.active.as_str());
        // One macro per target: a tracing target is a constant of the call site.
        macro_rules! emit {
            ($($target:tt)*) => {
                if self.is_state() {
                    let (state, old_state) = (self.new.as_str(), self.old.as_str());
                    tracing::info!($($target)* message_id = id, uplink, iface = uplink, family, state, old_state, reason, active, "{line}");
                } else {
                    let old_active = self.old.as_str();
                    tracing::info!($($target)* message_id = id, uplink, family, active, old_active, reason, "{line}");
                }
            };
        }
        if journal_only {
            emit!(target: crate::log::JOURNAL_ONLY,);
        } else {
            emit!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_word_has_its_kind() {
        for (word, kind) in [
            ("down", Kind::Down),
            ("no-carrier", Kind::Down),
            ("no-address", Kind::Down),
            ("path down", Kind::Down),
            ("path-down", Kind::Down),
            ("not-enslaved", Kind::Down),
            ("up", Kind::Up),
            ("path up", Kind::Up),
            ("poor", Kind::Poor),
            ("forced-down", Kind::Forced),
            ("forced-up", Kind::Forced),
            ("degraded", Kind::State),
            ("recovering", Kind::State),
            ("unknown", Kind::State),
        ] {
            assert_eq!(Kind::of_state(word), kind, "{word}");
        }
    }

    #[test]
    fn the_ids_are_distinct_128_bit_hex() {
        let ids: std::collections::BTreeSet<&str> = Kind::ALL.iter().map(|k| k.message_id()).collect();
        assert_eq!(ids.len(), Kind::ALL.len());
        for id in ids {
            assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{id}");
        }
    }

    #[test]
    fn a_state_event_and_an_active_event_give_their_environments() {
        let state = Change {
            kind: Kind::Down,
            family: Family::V4,
            uplink: "eth0".into(),
            old: "up".into(),
            new: "down".into(),
            reason: "3 rounds failed".into(),
            active: "wlan1".into(),
        };
        let env = state.environment();
        let get = |env: &[(&str, String)], k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get(&env, "MULTIHOME_EVENT").as_deref(), Some("state"));
        assert_eq!(get(&env, "MULTIHOME_FAMILY").as_deref(), Some("ipv4"));
        assert_eq!(get(&env, "MULTIHOME_OLD_STATE").as_deref(), Some("up"));
        assert_eq!(get(&env, "MULTIHOME_NEW_STATE").as_deref(), Some("down"));
        assert_eq!(get(&env, "MULTIHOME_ACTIVE").as_deref(), Some("wlan1"));
        assert_eq!(get(&env, "MULTIHOME_OLD_ACTIVE"), None);
        let active = Change { kind: Kind::ActiveChanged, family: Family::V6, uplink: "wlan1".into(), old: "eth0".into(), new: "wlan1".into(), ..state };
        let env = active.environment();
        assert_eq!(get(&env, "MULTIHOME_EVENT").as_deref(), Some("active"));
        assert_eq!(get(&env, "MULTIHOME_FAMILY").as_deref(), Some("ipv6"));
        assert_eq!(get(&env, "MULTIHOME_OLD_ACTIVE").as_deref(), Some("eth0"));
        assert_eq!(get(&env, "MULTIHOME_NEW_STATE"), None);
    }
}
