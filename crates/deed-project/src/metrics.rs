//! The projector's Prometheus metrics, per projection.

use std::collections::BTreeMap;
use std::sync::Mutex;

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

    pub fn render(&self, service: &str) -> String {
        let map = self.by_projection.lock().expect("metrics lock").clone();
        let mut out = String::new();
        let mut family =
            |name: &str, kind: &str, help: &str, value: &dyn Fn(&ProjectionMetrics) -> String| {
                out.push_str(&format!(
                    "# HELP deed_project_{name} {help}\n# TYPE deed_project_{name} {kind}\n"
                ));
                for (p, m) in &map {
                    out.push_str(&format!(
                        "deed_project_{name}{{service=\"{service}\",projection=\"{p}\"}} {}\n",
                        value(m)
                    ));
                }
            };
        family("events_applied_total", "counter", "Events applied to the projection.", &|m| {
            m.applied.to_string()
        });
        family(
            "events_skipped_total",
            "counter",
            "Events already applied (redeliveries, duplicates, older than the backfill).",
            &|m| m.skipped.to_string(),
        );
        family(
            "dead_letters_total",
            "counter",
            "Events recorded as dead letters by this process.",
            &|m| m.dead_letters.to_string(),
        );
        family("dead_letters", "gauge", "Dead letters waiting in the consumer's database.", &|m| {
            m.dead_letters_waiting.to_string()
        });
        family("backfill_rows_total", "counter", "Rows copied by the backfill.", &|m| {
            m.backfill_rows.to_string()
        });
        family("backfilling", "gauge", "1 while the projection is backfilling.", &|m| {
            m.backfilling.to_string()
        });
        family(
            "lag_seconds",
            "gauge",
            "Age of the last applied event's commit while more wait; 0 when caught up.",
            &|m| format!("{:.3}", m.lag_seconds),
        );
        out
    }
}
