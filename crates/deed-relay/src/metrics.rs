//! The relay's Prometheus metrics: live counters, encoded at each scrape
//! by prometheus-client; and its liveness, for `/readyz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use deed_events::Liveness;
use deed_events::exposition::{Sample, family};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

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
    /// Working, standing by, retrying, or stalled.
    pub liveness: Liveness,
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
}

/// The labels of every relay metric.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    service: String,
    sink: String,
}

/// The relay's metrics as Prometheus reads them, encoded by
/// prometheus-client (names, labels and escaping per OpenMetrics) from the
/// live counters at each scrape.
#[derive(Debug)]
struct Collect {
    metrics: Arc<Metrics>,
    labels: Labels,
}

impl Metrics {
    /// A registry of the metrics of a relay of `service` delivering to a
    /// `sink` (the bus's kind: inbox, nats, rabbitmq, kafka, webhook), each
    /// labelled with both.
    pub fn registry(self: &Arc<Self>, service: &str, sink: &str) -> Registry {
        let mut registry = Registry::default();
        let labels = Labels { service: service.to_string(), sink: sink.to_string() };
        registry.register_collector(Box::new(Collect { metrics: self.clone(), labels }));
        registry
    }
}

impl Collector for Collect {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        use Sample::{Count, Fraction, Whole};
        let (m, e) = (&self.metrics, &mut encoder);
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let i = |a: &AtomicI64| a.load(Ordering::Relaxed);
        let families = [
            ("deed_relay_events", "Events delivered.", Count(g(&m.events))),
            (
                "deed_relay_duplicates",
                "Events the sink already had (redeliveries).",
                Count(g(&m.duplicates)),
            ),
            (
                "deed_relay_dead_letters",
                "Events that could not be delivered and were recorded as dead letters.",
                Count(g(&m.dead_letters)),
            ),
            ("deed_relay_errors", "Failed deliveries or reads, retried.", Count(g(&m.errors))),
            ("deed_relay_batches", "Slot reads.", Count(g(&m.batches))),
            (
                "deed_relay_events_per_second",
                "Delivery rate over the last interval.",
                Fraction(g(&m.rate_milli) as f64 / 1000.0),
            ),
            (
                "deed_relay_lag_bytes",
                "WAL between the server's position and the last confirmed delivery.",
                Whole(i(&m.lag_bytes)),
            ),
            (
                "deed_relay_lag_events",
                "Estimated events committed but not yet delivered.",
                Whole(i(&m.lag_events)),
            ),
            (
                "deed_relay_lag_seconds",
                "Age of the oldest commit not yet delivered.",
                Fraction(i(&m.lag_millis) as f64 / 1000.0),
            ),
            (
                "deed_relay_retained_wal_bytes",
                "WAL the slot keeps on the server's disk.",
                Whole(i(&m.retained_bytes)),
            ),
            (
                "deed_relay_leader",
                "1 while this relay delivers, 0 while it stands by.",
                Whole(i(&m.leader)),
            ),
        ];
        for (name, help, sample) in families {
            family(e, name, help, &[(self.labels.clone(), sample)])?;
        }
        let (counts, total) = m.ack_latency.snapshot();
        let mut buckets: Vec<(f64, u64)> =
            LATENCY_BUCKETS_MS.iter().zip(counts).map(|(b, c)| (*b as f64 / 1000.0, c)).collect();
        // Beyond the last bound: the +Inf bucket.
        buckets.push((f64::INFINITY, total.saturating_sub(counts.iter().sum::<u64>())));
        let sum = m.ack_latency.sum_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        let mut histogram = e.encode_descriptor(
            "deed_relay_commit_to_ack_seconds",
            "Time from an event's commit to the sink storing it.",
            None,
            MetricType::Histogram,
        )?;
        histogram
            .encode_family(&self.labels)?
            .encode_histogram::<NoLabelSet>(sum, total, &buckets, None)
    }
}
