//! Maintenance orders (`multihome force down|up IFACE`) kept across a restart of the daemon: a
//! crash, the watchdog or `systemctl restart` must not quietly put a drained uplink back into
//! service. They live in the unit's runtime directory (`$RUNTIME_DIRECTORY`, /run/multihome,
//! kept across restarts by `RuntimeDirectoryPreserve=restart` and removed by a stop), one line per
//! uplink: `eth0 down`. Without that directory (not started by the unit) they last as long as the
//! daemon, and a stop says which ones it drops.

use std::path::{Path, PathBuf};

use super::fsm::Force;

const FILE: &str = "forced";

/// Orders by interface, and the lines that were not orders.
pub type Parsed = (Vec<(String, Force)>, Vec<String>);

/// Where the orders are kept, if the service manager gave the daemon a runtime directory.
pub fn path() -> Option<PathBuf> {
    std::env::var_os("RUNTIME_DIRECTORY").map(|d| Path::new(&d).join(FILE))
}

pub fn render(orders: &[(String, Force)]) -> String {
    orders.iter().filter_map(|(iface, f)| word(*f).map(|w| format!("{iface} {w}\n"))).collect()
}

fn word(f: Force) -> Option<&'static str> {
    match f {
        Force::Down => Some("down"),
        Force::Up => Some("up"),
        Force::Release => None,
    }
}

/// The orders in `text`; a line that is not `IFACE down|up` is skipped and named in the errors
/// (the file is the daemon's own, but a hand edit must not stop it from starting).
pub fn parse(text: &str) -> Parsed {
    let mut orders = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        match line.split_whitespace().collect::<Vec<_>>()[..] {
            [iface, "down"] => orders.push((iface.to_string(), Force::Down)),
            [iface, "up"] => orders.push((iface.to_string(), Force::Up)),
            [] => {}
            _ => errors.push(format!("line {}: {line:?} is not \"IFACE down\" or \"IFACE up\"", n + 1)),
        }
    }
    (orders, errors)
}

/// Replaces the file with `orders` (written beside it, then renamed: a crash mid-write leaves the
/// previous orders, not half of them).
pub fn save(path: &Path, orders: &[(String, Force)]) -> std::io::Result<()> {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, render(orders))?;
    std::fs::rename(&tmp, path)
}

pub fn load(path: &Path) -> std::io::Result<Parsed> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Vec::new(), Vec::new())),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_round_trip_and_releases_are_not_kept() {
        let orders = vec![("eth0".to_string(), Force::Down), ("wlan1".to_string(), Force::Up), ("wlan0".to_string(), Force::Release)];
        let text = render(&orders);
        assert_eq!(text, "eth0 down\nwlan1 up\n");
        assert_eq!(parse(&text), (orders[..2].to_vec(), vec![]));
    }

    #[test]
    fn a_bad_line_is_named_and_skipped() {
        let (orders, errors) = parse("eth0 down\neth0 sideways\n\n");
        assert_eq!(orders, [("eth0".to_string(), Force::Down)]);
        assert_eq!(errors, ["line 2: \"eth0 sideways\" is not \"IFACE down\" or \"IFACE up\""]);
    }
}
