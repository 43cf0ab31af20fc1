//! What the long-running processes that move events (relay, projector)
//! expose to Prometheus: metric families encoded by prometheus-client
//! (OpenMetrics names, label escaping, the `_total` suffix of counters),
//! from values read at each scrape.

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
pub use prometheus_client::registry::Registry;

/// One sample's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    /// A counter: `name_total`.
    Count(u64),
    /// A gauge of whole numbers.
    Whole(i64),
    /// A gauge of fractions.
    Fraction(f64),
}

impl Sample {
    fn kind(self) -> MetricType {
        match self {
            Sample::Count(_) => MetricType::Counter,
            Sample::Whole(_) | Sample::Fraction(_) => MetricType::Gauge,
        }
    }
}

/// One family, `name` (without `_total` for a counter), with a sample per
/// label set. Nothing is written for a family without samples.
pub fn family<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(L, Sample)],
) -> std::fmt::Result {
    let Some((_, first)) = samples.first() else { return Ok(()) };
    let mut family = encoder.encode_descriptor(name, help, None, first.kind())?;
    for (labels, sample) in samples {
        let metric = family.encode_family(labels)?;
        match *sample {
            Sample::Count(v) => ConstCounter::new(v).encode(metric)?,
            Sample::Whole(v) => ConstGauge::new(v).encode(metric)?,
            Sample::Fraction(v) => ConstGauge::new(v).encode(metric)?,
        }
    }
    Ok(())
}

/// The registry's text, as served on `/metrics`.
pub fn text(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// The content type of [`text`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
