//! The daemon's figures as Prometheus reads them, pure: a [`Snapshot`] (with each side's
//! [`Counters`]) in, exposition text out. `[Metrics] Listen=` serves it (see
//! [`super::metrics_serve`]), `TextfileDirectory=` writes it for node_exporter.
//!
//! Two formats of one content: OpenMetrics 1.0 for scrapers that ask for it (Prometheus does),
//! and the classic text format 0.0.4 otherwise (node_exporter's textfile collector and
//! `promtool check metrics` read only that one). They differ in a counter's family name
//! (`x` with samples `x_total` in OpenMetrics, `x_total` in the classic one), the info type, and
//! OpenMetrics' closing `# EOF`.

use std::fmt::Write;

use super::counters::{Counters, RTT_BUCKETS};
use super::fsm;
use super::status_record::{FamilyStatus, Shown, Snapshot, UplinkStatus};

/// The two content types a scraper may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Text,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// OpenMetrics when the request's `Accept` names it (as Prometheus' scrapes do).
    pub fn from_accept(accept: Option<&str>) -> Format {
        if accept.is_some_and(|a| a.contains("application/openmetrics-text")) { Format::OpenMetrics } else { Format::Text }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
    Histogram,
    Info,
}

/// The exposition text of `snapshot` (its MPTCP fields as annotated by the caller).
pub fn render(snapshot: &Snapshot, version: &str, format: Format) -> String {
    let mut out = String::new();
    let w = &mut Writer { out: &mut out, format };
    w.family("multihome_build_info", Kind::Info, "The multihome build that serves these metrics.");
    w.sample("multihome_build_info", &[("version", version)], 1.0);
    let sides: Vec<(&UplinkStatus, &str, &FamilyStatus)> =
        snapshot.uplinks.iter().flat_map(|u| std::iter::once((u, "ipv4", &u.v4)).chain(u.ipv6.as_ref().map(|v6| (u, "ipv6", v6)))).collect();
    let gauge = |w: &mut Writer, name: &str, help: &str, value: &dyn Fn(&UplinkStatus, &str, &FamilyStatus) -> f64| {
        w.family(name, Kind::Gauge, help);
        for (u, family, s) in &sides {
            w.sample(name, &[("uplink", &u.interface), ("family", family)], value(u, family, s));
        }
    };
    gauge(w, "multihome_uplink_up", "1 while the uplink may carry traffic of this family (its probes pass).", &|_, _, s| flag(may_carry(&s.state)));
    w.family("multihome_uplink_state", Kind::Gauge, "The uplink's state: 1 for the current one, 0 for the others.");
    for (u, family, s) in &sides {
        let current = s.state.to_string();
        let mut words: Vec<String> = fsm::State::ALL.iter().map(|st| st.as_str().to_string()).chain(["poor".to_string()]).collect();
        if !words.contains(&current) && !current.is_empty() {
            words.push(current.clone());
        }
        for word in &words {
            w.sample("multihome_uplink_state", &[("uplink", &u.interface), ("family", family), ("state", word)], flag(*word == current));
        }
    }
    gauge(w, "multihome_uplink_active", "1 for the uplink new connections of this family leave by.", &|u, family, _| {
        flag(u.interface == if family == "ipv6" { snapshot.active6.as_str() } else { snapshot.active.as_str() })
    });
    if let Some(max) = snapshot.max_loss_percent {
        w.family("multihome_probe_max_loss_ratio", Kind::Gauge, "The policy's MaxLoss=: a path losing this share or more is poor.");
        w.sample("multihome_probe_max_loss_ratio", &[], f64::from(max) / 100.0);
    }
    gauge(w, "multihome_uplink_loss_ratio", "Share of probes lost over the path-quality window (the last 50 rounds).", &|_, _, s| s.loss_percent / 100.0);
    histogram(w, &sides);
    let counter = |w: &mut Writer, name: &str, help: &str, value: fn(&Counters) -> u64| {
        w.family(name, Kind::Counter, help);
        for (u, family, s) in &sides {
            w.sample(name, &[("uplink", &u.interface), ("family", family)], value(&s.counters) as f64);
        }
    };
    counter(w, "multihome_uplink_transitions_total", "Changes of the uplink's state since the daemon started.", |c| c.transitions);
    counter(w, "multihome_probes_sent_total", "Echo requests sent through the uplink.", |c| c.probes_sent);
    counter(w, "multihome_probes_lost_total", "Echo requests sent through the uplink and never answered within their round.", |c| c.probes_lost);
    mptcp(w, snapshot);
    bond(w, snapshot);
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Whether a side in this state may carry traffic: trusted by its probes (a poor path too: it
/// carries when every path is poor), or a bond's slave whose MII is up.
fn may_carry(state: &Shown) -> bool {
    match state {
        Shown::Machine(s) | Shown::Path(s) => s.carries_traffic(),
        Shown::Poor => true,
        _ => false,
    }
}

fn histogram(w: &mut Writer, sides: &[(&UplinkStatus, &str, &FamilyStatus)]) {
    let name = "multihome_uplink_rtt_seconds";
    w.family(name, Kind::Histogram, "Round trip of each probe round's fastest answer.");
    for (u, family, s) in sides {
        let c = &s.counters;
        let mut cumulative = 0;
        let bounds = RTT_BUCKETS.iter().map(|b| b.to_string()).chain(["+Inf".to_string()]);
        for (le, n) in bounds.zip(c.rtt_buckets) {
            cumulative += n;
            w.sample(&format!("{name}_bucket"), &[("uplink", &u.interface), ("family", family), ("le", &le)], cumulative as f64);
        }
        w.sample(&format!("{name}_sum"), &[("uplink", &u.interface), ("family", family)], c.rtt_sum_seconds);
        w.sample(&format!("{name}_count"), &[("uplink", &u.interface), ("family", family)], c.rtt_count as f64);
    }
}

/// Each uplink's MPTCP endpoint (its flags, one series each) and the connections through it,
/// where the kernel has MPTCP and the uplink an endpoint.
fn mptcp(w: &mut Writer, snapshot: &Snapshot) {
    let with_endpoint: Vec<&UplinkStatus> = snapshot.uplinks.iter().filter(|u| u.mptcp.mptcp_flags.is_some()).collect();
    if !with_endpoint.is_empty() {
        w.family("multihome_mptcp_endpoint_flag", Kind::Gauge, "1 for each flag of the uplink's MPTCP endpoint (subflow, backup, ...).");
        for u in &with_endpoint {
            for f in u.mptcp.mptcp_flags.iter().flatten() {
                w.sample("multihome_mptcp_endpoint_flag", &[("uplink", &u.interface), ("flag", f)], 1.0);
            }
        }
    }
    let counted: Vec<(&UplinkStatus, u32)> = snapshot.uplinks.iter().filter_map(|u| Some((u, u.mptcp.mptcp_connections?))).collect();
    if !counted.is_empty() {
        w.family("multihome_mptcp_connections", Kind::Gauge, "Open MPTCP connections with a subflow through the uplink.");
        for (u, n) in counted {
            w.sample("multihome_mptcp_connections", &[("uplink", &u.interface)], f64::from(n));
        }
    }
}

/// Mode=bond: which slave is active, and each slave's MII state.
fn bond(w: &mut Writer, snapshot: &Snapshot) {
    let slaves: Vec<&UplinkStatus> = snapshot.uplinks.iter().filter(|u| u.bond_active.is_some()).collect();
    if slaves.is_empty() {
        return;
    }
    w.family("multihome_bond_active_slave", Kind::Gauge, "1 for the bond's active slave.");
    for u in &slaves {
        w.sample("multihome_bond_active_slave", &[("uplink", &u.interface)], flag(u.bond_active == Some(true)));
    }
    w.family("multihome_bond_slave_mii", Kind::Gauge, "The slave's MII state in the kernel's bond: 1 for the current one.");
    for u in &slaves {
        let current = u.mii.clone().unwrap_or_default();
        let mut words: Vec<String> = ["up", "going-down", "down", "going-back"].map(String::from).to_vec();
        if !words.contains(&current) && !current.is_empty() {
            words.push(current.clone());
        }
        for word in &words {
            w.sample("multihome_bond_slave_mii", &[("uplink", &u.interface), ("state", word)], flag(*word == current));
        }
    }
}

struct Writer<'a> {
    out: &'a mut String,
    format: Format,
}

impl Writer<'_> {
    /// A family's HELP and TYPE lines, under the name its format wants.
    fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let (family, word) = match (kind, self.format) {
            (Kind::Counter, Format::OpenMetrics) => (name.trim_end_matches("_total"), "counter"),
            (Kind::Counter, Format::Text) => (name, "counter"),
            (Kind::Info, Format::OpenMetrics) => (name.trim_end_matches("_info"), "info"),
            (Kind::Info, Format::Text) | (Kind::Gauge, _) => (name, "gauge"),
            (Kind::Histogram, _) => (name, "histogram"),
        };
        let _ = writeln!(self.out, "# HELP {family} {help}");
        let _ = writeln!(self.out, "# TYPE {family} {word}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (k, (key, v)) in labels.iter().enumerate() {
                if k > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// A label value as both formats quote it: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::daemon::status_record::UplinkMptcp;

    fn snapshot() -> Snapshot {
        let mut counters = Counters::default();
        counters.record_round(2, 1, Some(Duration::from_micros(700)));
        counters.transitions = 3;
        let eth0 = UplinkStatus {
            interface: "eth0".into(),
            v4: FamilyStatus { state: fsm::State::Up.into(), loss_percent: 4.0, counters, ..Default::default() },
            ipv6: Some(FamilyStatus { state: fsm::State::Down.into(), ..Default::default() }),
            mptcp: UplinkMptcp { mptcp_flags: Some(vec!["subflow".into()]), mptcp_connections: Some(2), ..Default::default() },
            ..Default::default()
        };
        let wlan1 = UplinkStatus { interface: "wl\"an1".into(), v4: FamilyStatus { state: Shown::Poor, ..Default::default() }, ..Default::default() };
        Snapshot { uplinks: vec![eth0, wlan1], active: "eth0".into(), max_loss_percent: Some(50), ..Default::default() }
    }

    #[test]
    fn the_families_show_the_status_and_the_counters() {
        let text = render(&snapshot(), "1.2.3", Format::OpenMetrics);
        for line in [
            "multihome_build_info{version=\"1.2.3\"} 1",
            "multihome_uplink_up{uplink=\"eth0\",family=\"ipv4\"} 1",
            "multihome_uplink_up{uplink=\"eth0\",family=\"ipv6\"} 0",
            "multihome_uplink_up{uplink=\"wl\\\"an1\",family=\"ipv4\"} 1",
            "multihome_uplink_state{uplink=\"eth0\",family=\"ipv6\",state=\"down\"} 1",
            "multihome_uplink_state{uplink=\"eth0\",family=\"ipv6\",state=\"up\"} 0",
            "multihome_uplink_state{uplink=\"wl\\\"an1\",family=\"ipv4\",state=\"poor\"} 1",
            "multihome_uplink_active{uplink=\"eth0\",family=\"ipv4\"} 1",
            "multihome_uplink_active{uplink=\"eth0\",family=\"ipv6\"} 0",
            "multihome_uplink_loss_ratio{uplink=\"eth0\",family=\"ipv4\"} 0.04",
            "multihome_uplink_rtt_seconds_bucket{uplink=\"eth0\",family=\"ipv4\",le=\"0.0005\"} 0",
            "multihome_uplink_rtt_seconds_bucket{uplink=\"eth0\",family=\"ipv4\",le=\"0.001\"} 1",
            "multihome_uplink_rtt_seconds_bucket{uplink=\"eth0\",family=\"ipv4\",le=\"+Inf\"} 1",
            "multihome_uplink_rtt_seconds_count{uplink=\"eth0\",family=\"ipv4\"} 1",
            "multihome_uplink_transitions_total{uplink=\"eth0\",family=\"ipv4\"} 3",
            "multihome_probes_sent_total{uplink=\"eth0\",family=\"ipv4\"} 2",
            "multihome_probes_lost_total{uplink=\"eth0\",family=\"ipv4\"} 1",
            "multihome_mptcp_endpoint_flag{uplink=\"eth0\",flag=\"subflow\"} 1",
            "multihome_mptcp_connections{uplink=\"eth0\"} 2",
            "# TYPE multihome_uplink_transitions counter",
            "# TYPE multihome_build info",
            "multihome_probe_max_loss_ratio 0.5",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        assert!(!text.contains("multihome_bond"), "no bond families in Mode=routes");
    }

    #[test]
    fn the_classic_format_names_counters_by_their_samples_and_has_no_eof() {
        let text = render(&snapshot(), "1.2.3", Format::Text);
        assert!(text.contains("# TYPE multihome_uplink_transitions_total counter\n"));
        assert!(text.contains("# TYPE multihome_build_info gauge\n"));
        assert!(!text.contains("# EOF"));
        assert_eq!(Format::from_accept(Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")), Format::OpenMetrics);
        assert_eq!(Format::from_accept(None), Format::Text);
    }

    #[test]
    fn a_bond_shows_its_active_slave_and_mii_states() {
        let slave = |name: &str, active: bool, mii: &str| UplinkStatus {
            interface: name.into(),
            bond_active: Some(active),
            mii: Some(mii.into()),
            ..Default::default()
        };
        let s = Snapshot { uplinks: vec![slave("eth0", false, "down"), slave("wlan1", true, "up")], ..Default::default() };
        let text = render(&s, "1", Format::Text);
        assert!(text.contains("multihome_bond_active_slave{uplink=\"wlan1\"} 1\n"));
        assert!(text.contains("multihome_bond_active_slave{uplink=\"eth0\"} 0\n"));
        assert!(text.contains("multihome_bond_slave_mii{uplink=\"eth0\",state=\"down\"} 1\n"));
        assert!(text.contains("multihome_bond_slave_mii{uplink=\"eth0\",state=\"up\"} 0\n"));
    }
}
