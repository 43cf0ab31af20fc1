//! The projector's Prometheus metrics, per projection, encoded at each
//! scrape by prometheus-client; and its liveness, for `/readyz`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use deed_events::Liveness;
use deed_events::exposition::{Sample, family};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::registry::Registry;

#[derive(Debug, Default, Clone)]
pub struct ProjectionMetrics {
    pub applied: u64,
    pub skipped: u64,
    pub dead_letters: u64,
    /// Dead letters waiting in the table now.
    pub dead_letters_waiting: i64,
    pub backfill_rows: u64,
    /// 1 while backfilling.
    pub backfilling: u8,
    /// Seconds between the last applied event's commit and its applying,
    /// while events are waiting; 0 when caught up.
    pub lag_seconds: f64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    by_projection: Mutex<BTreeMap<String, ProjectionMetrics>>,
    /// Working, retrying, or stalled.
    pub liveness: Liveness,
}

impl Metrics {
    pub fn update(&self, projection: &str, f: impl FnOnce(&mut ProjectionMetrics)) {
        let mut map = self.by_projection.lock().expect("metrics lock");
        f(map.entry(projection.to_string()).or_default());
    }

    pub fn get(&self, projection: &str) -> ProjectionMetrics {
        self.by_projection
            .lock()
            .expect("metrics lock")
            .get(projection)
            .cloned()
            .unwrap_or_default()
    }

    /// A registry of a projector of `service`'s metrics, one sample per
    /// projection (labelled with the service and the projection).
    pub fn registry(self: &Arc<Self>, service: &str) -> Registry {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Collect {
            metrics: self.clone(),
            service: service.to_string(),
        }));
        registry
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    service: String,
    projection: String,
}

/// The projector's metrics as Prometheus reads them, encoded by
/// prometheus-client from the live values at each scrape.
#[derive(Debug)]
struct Collect {
    metrics: Arc<Metrics>,
    service: String,
}

type Value = fn(&ProjectionMetrics) -> Sample;

impl Collector for Collect {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        use Sample::{Count, Fraction, Whole};
        let map = self.metrics.by_projection.lock().map(|m| m.clone()).unwrap_or_default();
        let families: [(&str, &str, Value); 7] = [
            ("deed_project_events_applied", "Events applied to the projection.", |m| {
                Count(m.applied)
            }),
            (
                "deed_project_events_skipped",
                "Events already applied (redeliveries, duplicates, older than the backfill).",
                |m| Count(m.skipped),
            ),
            (
                "deed_project_dead_letters",
                "Events recorded as dead letters by this process.",
                |m| Count(m.dead_letters),
            ),
            (
                "deed_project_dead_letters_waiting",
                "Dead letters waiting in the consumer's database.",
                |m| Whole(m.dead_letters_waiting),
            ),
            ("deed_project_backfill_rows", "Rows copied by the backfill.", |m| {
                Count(m.backfill_rows)
            }),
            ("deed_project_backfilling", "1 while the projection is backfilling.", |m| {
                Whole(i64::from(m.backfilling))
            }),
            (
                "deed_project_lag_seconds",
                "Age of the last applied event's commit while more wait; 0 when caught up.",
                |m| Fraction(m.lag_seconds),
            ),
        ];
        for (name, help, value) in families {
            let samples: Vec<(Labels, Sample)> = map
                .iter()
                .map(|(p, m)| {
                    (Labels { service: self.service.clone(), projection: p.clone() }, value(m))
                })
                .collect();
            family(&mut encoder, name, help, &samples)?;
        }
        Ok(())
    }
}
