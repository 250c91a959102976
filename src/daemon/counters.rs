//! What the daemon counts for the metrics of one side of an uplink (probes sent and lost,
//! transitions, the round trips' histogram): plain numbers in a `Copy` value, bumped where the
//! daemon already records a round or a transition, so counting costs a few additions and no
//! allocation. The status record carries a copy; [`super::metrics`] renders it.

use std::time::Duration;

/// Upper bounds of the round-trip histogram's buckets, in seconds (`le`): from a LAN gateway's
/// fraction of a millisecond to a satellite or a congested LTE link's second; `+Inf` after them.
pub const RTT_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// One side's counters since the daemon started (a reload keeps them for the uplinks that stay).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    /// Echo requests sent and those never answered within the round.
    pub probes_sent: u64,
    pub probes_lost: u64,
    /// Changes of the shown state (`up -> down`, `up -> poor`, ...).
    pub transitions: u64,
    /// Per bucket of [`RTT_BUCKETS`] (not cumulative; the renderer sums them), then `+Inf`.
    pub rtt_buckets: [u64; RTT_BUCKETS.len() + 1],
    pub rtt_sum_seconds: f64,
    pub rtt_count: u64,
}

impl Counters {
    /// One probe round: its echoes, and the round trip of its fastest answer (the figure the
    /// status shows as latency and path quality judges), `None` when nothing answered.
    pub fn record_round(&mut self, sent: u32, answered: u32, rtt: Option<Duration>) {
        self.probes_sent += u64::from(sent);
        self.probes_lost += u64::from(sent.saturating_sub(answered));
        if let Some(rtt) = rtt {
            let s = rtt.as_secs_f64();
            let bucket = RTT_BUCKETS.iter().position(|le| s <= *le).unwrap_or(RTT_BUCKETS.len());
            self.rtt_buckets[bucket] += 1;
            self.rtt_sum_seconds += s;
            self.rtt_count += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_counts_its_echoes_and_files_its_round_trip_under_the_first_bound_it_fits() {
        let mut c = Counters::default();
        c.record_round(5, 3, Some(Duration::from_micros(800)));
        c.record_round(2, 0, None);
        c.record_round(1, 1, Some(Duration::from_secs(10)));
        c.record_round(1, 1, Some(Duration::from_millis(1)));
        assert_eq!((c.probes_sent, c.probes_lost, c.rtt_count), (9, 4, 3));
        assert_eq!(c.rtt_buckets[1], 2, "0.8 ms and exactly 1 ms are both `le=0.001`");
        assert_eq!(c.rtt_buckets[RTT_BUCKETS.len()], 1, "10 s lands in +Inf");
        assert!((c.rtt_sum_seconds - 10.0018).abs() < 1e-9);
    }
}
