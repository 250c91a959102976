//! The candidates in the manager's order, written as a policy: wired before Wi-Fi, then the lower
//! route metric, then the higher autoconnect priority, then the device's place in the manager's
//! list. Each `[Uplink]` says where it came from and why it stands where it does. Pure.

use std::cmp::Reverse;
use std::net::IpAddr;

use super::{Candidate, Found, Init};
use crate::import::policy_text;

/// The order the policy takes, the manager's preference made total.
fn rank_key(c: &Candidate) -> (super::Medium, u32, Reverse<i32>, u32) {
    (c.medium, c.metric, Reverse(c.autoconnect_priority), c.order)
}

/// The policy for what was found; an error naming every note when nothing is an uplink.
pub fn policy(found: &Found) -> Result<Init, String> {
    if found.candidates.is_empty() {
        let mut why = format!("{}: no wired or Wi-Fi device has a default route or a configuration that would give one; nothing to write", found.manager);
        found.notes.iter().for_each(|n| why.push_str(&format!("\n  {n}")));
        return Err(why);
    }
    let mut ranked: Vec<&Candidate> = found.candidates.iter().collect();
    ranked.sort_by_key(|c| rank_key(c));
    let comments = vec![
        format!("Made by `multihome init` from {} as it is configured; review it, then `multihome check` and `multihome plan`.", found.manager),
        format!("The uplinks: wired before Wi-Fi, then by the lower route metric, {}.", found.tie_breakers),
        "Backend= names the manager it was read from; what was left out was listed on stderr when it ran.".to_string(),
    ];
    let mut text = policy_text::header(&comments, found.backend);
    text.push_str("Mode=routes\n");
    let targets: Vec<IpAddr> = ranked.iter().flat_map(|c| c.targets.iter().copied()).collect();
    policy_text::write_probe(&mut text, "The uplinks' routers; add a host behind them to see a dead provider too.", &targets);
    for (rank, c) in ranked.iter().enumerate() {
        let mut comments = c.explain.clone();
        comments.push(standing(found, rank.checked_sub(1).map(|r| ranked[r]), c));
        policy_text::write_uplink(&mut text, &comments, rank, &c.keys);
    }
    Ok(Init { policy: text, notes: found.notes.clone() })
}

/// Why `c` stands where it does: what it is, and what puts it after the one before.
fn standing(found: &Found, before: Option<&Candidate>, c: &Candidate) -> String {
    let autoconnect = if found.backend == "networkmanager" { format!(", autoconnect priority {}", c.autoconnect_priority) } else { String::new() };
    let what = format!("{} ({}), route metric {} ({}){autoconnect}", c.medium.word(), c.medium_why, c.metric, c.metric_why);
    let Some(b) = before else { return format!("First: {what}.") };
    let name = &b.keys.interface;
    let why = if b.medium != c.medium {
        format!("Wi-Fi comes after wired {name}")
    } else if b.metric != c.metric {
        format!("its metric is higher than {name}'s {}", b.metric)
    } else if b.autoconnect_priority != c.autoconnect_priority {
        format!("the same metric as {name}, and a lower autoconnect priority than its {}", b.autoconnect_priority)
    } else {
        format!("the same metric as {name}{}, and later in {}", if autoconnect.is_empty() { "" } else { " and autoconnect priority" }, found.order_word)
    };
    format!("After {name}: {what}; {why}.")
}

#[cfg(test)]
mod tests {
    use super::super::Medium;
    use super::*;
    use crate::import::policy_text::UplinkKeys;

    fn candidate(name: &str, medium: Medium, metric: u32, priority: i32, order: u32) -> Candidate {
        Candidate {
            keys: UplinkKeys { interface: name.into(), dhcp4: true, ..Default::default() },
            medium,
            medium_why: "test".into(),
            metric,
            metric_why: "test".into(),
            autoconnect_priority: priority,
            order,
            explain: vec![format!("{name} as read")],
            targets: vec!["192.168.178.1".parse().unwrap()],
        }
    }

    fn found(candidates: Vec<Candidate>) -> Found {
        Found {
            manager: "NetworkManager 1.42.4".into(),
            backend: "networkmanager",
            tie_breakers: "then the higher autoconnect priority, then NetworkManager's device order",
            order_word: "NetworkManager's device order",
            candidates,
            notes: Vec::new(),
        }
    }

    fn order(text: &str) -> Vec<&str> {
        text.lines().filter_map(|l| l.strip_prefix("Interface=")).collect()
    }

    #[test]
    fn wired_first_then_metric_then_autoconnect_priority_then_device_order() {
        let init = policy(&found(vec![
            candidate("wlan0", Medium::WiFi, 50, 0, 1),
            candidate("eth1", Medium::Wired, 200, 0, 2),
            candidate("eth0", Medium::Wired, 100, 0, 3),
            candidate("eth3", Medium::Wired, 200, 5, 4),
            candidate("eth2", Medium::Wired, 200, 0, 0),
        ]))
        .unwrap();
        assert_eq!(order(&init.policy), ["eth0", "eth3", "eth2", "eth1", "wlan0"], "{}", init.policy);
        for why in [
            "# First: wired (test), route metric 100 (test), autoconnect priority 0.",
            "its metric is higher than eth0's 100.",
            "the same metric as eth3, and a lower autoconnect priority than its 5.",
            "the same metric as eth2 and autoconnect priority, and later in NetworkManager's device order.",
            "Wi-Fi comes after wired eth1.",
        ] {
            assert!(init.policy.contains(why), "{why}\n{}", init.policy);
        }
        // One target for the one router, and a policy `check` takes.
        assert_eq!(init.policy.matches("Target=192.168.178.1\n").count(), 1);
        let parsed = crate::policy::parse("init", &init.policy).unwrap();
        assert_eq!(parsed.backend, crate::policy::Backend::NetworkManager);
        assert_eq!(parsed.ranked().iter().map(|u| u.interface.as_str()).collect::<Vec<_>>(), ["eth0", "eth3", "eth2", "eth1", "wlan0"]);
    }

    #[test]
    fn nothing_found_is_an_error_with_the_notes() {
        let mut f = found(Vec::new());
        f.notes.push("wlan0: no profile".into());
        let e = policy(&f).unwrap_err();
        assert!(e.contains("nothing to write") && e.ends_with("\n  wlan0: no profile"), "{e}");
    }
}
