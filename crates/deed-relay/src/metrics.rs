//! Prometheus metrics, rendered as text for the command line to serve.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub events: AtomicU64,
    pub duplicates: AtomicU64,
    pub dead_letters: AtomicU64,
    pub errors: AtomicU64,
    pub batches: AtomicU64,
    /// Events per second over the last progress interval, times 1000.
    pub rate_milli: AtomicU64,
    pub lag_bytes: AtomicI64,
    /// Estimated events not yet delivered.
    pub lag_events: AtomicI64,
    /// Milliseconds between the last delivered commit and its delivery;
    /// 0 when nothing is waiting.
    pub lag_millis: AtomicI64,
    pub retained_bytes: AtomicI64,
    pub leader: AtomicI64,
    /// Commit → ack: how long after its commit each event was stored.
    pub ack_latency: Histogram,
}

/// Upper bounds of the commit → ack buckets, in milliseconds.
pub const LATENCY_BUCKETS_MS: [u64; 13] =
    [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];

/// A Prometheus histogram of milliseconds, counted per event.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; 13],
    count: AtomicU64,
    sum_ms: AtomicU64,
}

impl Histogram {
    /// `n` events that took `ms` milliseconds.
    pub fn observe(&self, ms: u64, n: u64) {
        if let Some(i) = LATENCY_BUCKETS_MS.iter().position(|b| ms <= *b) {
            self.buckets[i].fetch_add(n, Ordering::Relaxed);
        }
        self.count.fetch_add(n, Ordering::Relaxed);
        self.sum_ms.fetch_add(ms * n, Ordering::Relaxed);
    }

    /// Counts per bucket (not cumulative), and the total.
    pub fn snapshot(&self) -> ([u64; 13], u64) {
        let mut out = [0; 13];
        for (o, b) in out.iter_mut().zip(&self.buckets) {
            *o = b.load(Ordering::Relaxed);
        }
        (out, self.count.load(Ordering::Relaxed))
    }

    /// The smallest bucket bound at or below which the fraction `q` of
    /// events fall (`None` past the last bucket).
    pub fn quantile_bound(&self, q: f64) -> Option<u64> {
        let (counts, total) = self.snapshot();
        let want = (total as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (c, b) in counts.iter().zip(LATENCY_BUCKETS_MS) {
            seen += c;
            if seen >= want {
                return Some(b);
            }
        }
        None
    }

    fn render(&self, l: &str) -> String {
        let (counts, total) = self.snapshot();
        let mut out = String::from(
            "# HELP deed_relay_commit_to_ack_seconds Time from an event's commit to the sink storing it.
# TYPE deed_relay_commit_to_ack_seconds histogram
",
        );
        let labels = l.trim_start_matches('{').trim_end_matches('}');
        let mut cumulative = 0;
        for (c, b) in counts.iter().zip(LATENCY_BUCKETS_MS) {
            cumulative += c;
            out.push_str(&format!(
                "deed_relay_commit_to_ack_seconds_bucket{{{labels},le=\"{}\"}} {cumulative}\n",
                b as f64 / 1000.0
            ));
        }
        out.push_str(&format!(
            "deed_relay_commit_to_ack_seconds_bucket{{{labels},le=\"+Inf\"}} {total}\ndeed_relay_commit_to_ack_seconds_sum{l} {}\ndeed_relay_commit_to_ack_seconds_count{l} {total}\n",
            self.sum_ms.load(Ordering::Relaxed) as f64 / 1000.0
        ));
        out
    }
}

impl Metrics {
    /// The metrics of a relay of `service` delivering to a `sink` (the
    /// bus's kind: inbox, nats, rabbitmq, kafka, webhook), each labelled
    /// with both.
    pub fn render(&self, service: &str, sink: &str) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let i = |a: &AtomicI64| a.load(Ordering::Relaxed);
        let l = format!("{{service=\"{service}\",sink=\"{sink}\"}}");
        let histogram = self.ack_latency.render(&l);
        let text = format!(
            "# HELP deed_relay_events_total Events delivered.\n# TYPE deed_relay_events_total counter\ndeed_relay_events_total{l} {}\n\
             # HELP deed_relay_duplicates_total Events the sink already had (redeliveries).\n# TYPE deed_relay_duplicates_total counter\ndeed_relay_duplicates_total{l} {}\n\
             # HELP deed_relay_dead_letters_total Events that could not be delivered and were recorded as dead letters.\n# TYPE deed_relay_dead_letters_total counter\ndeed_relay_dead_letters_total{l} {}\n\
             # HELP deed_relay_errors_total Failed deliveries or reads, retried.\n# TYPE deed_relay_errors_total counter\ndeed_relay_errors_total{l} {}\n\
             # HELP deed_relay_batches_total Slot reads.\n# TYPE deed_relay_batches_total counter\ndeed_relay_batches_total{l} {}\n\
             # HELP deed_relay_events_per_second Delivery rate over the last interval.\n# TYPE deed_relay_events_per_second gauge\ndeed_relay_events_per_second{l} {}\n\
             # HELP deed_relay_lag_bytes WAL between the server's position and the last confirmed delivery.\n# TYPE deed_relay_lag_bytes gauge\ndeed_relay_lag_bytes{l} {}\n\
             # HELP deed_relay_lag_events Estimated events committed but not yet delivered.\n# TYPE deed_relay_lag_events gauge\ndeed_relay_lag_events{l} {}\n\
             # HELP deed_relay_lag_seconds Age of the oldest commit not yet delivered.\n# TYPE deed_relay_lag_seconds gauge\ndeed_relay_lag_seconds{l} {}\n\
             # HELP deed_relay_retained_wal_bytes WAL the slot keeps on the server's disk.\n# TYPE deed_relay_retained_wal_bytes gauge\ndeed_relay_retained_wal_bytes{l} {}\n\
             # HELP deed_relay_leader 1 while this relay delivers, 0 while it stands by.\n# TYPE deed_relay_leader gauge\ndeed_relay_leader{l} {}\n",
            g(&self.events),
            g(&self.duplicates),
            g(&self.dead_letters),
            g(&self.errors),
            g(&self.batches),
            g(&self.rate_milli) as f64 / 1000.0,
            i(&self.lag_bytes),
            i(&self.lag_events),
            i(&self.lag_millis) as f64 / 1000.0,
            i(&self.retained_bytes),
            i(&self.leader),
        );
        text + &histogram
    }
}
