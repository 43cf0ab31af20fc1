//! The settings of a service's JetStream stream (and of its Kafka
//! topics), and how an existing one differs from them: deed creates the
//! stream with these, and reports a stream that exists with others instead
//! of changing it behind the back of whoever manages the cluster.

use std::time::Duration;

use async_nats::jetstream::stream;
pub use async_nats::jetstream::stream::RetentionPolicy;

/// How long the stream remembers message ids for de-duplication.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq)]
pub struct StreamSettings {
    /// Copies kept by a clustered JetStream (1 on a single server); a
    /// Kafka topic's replication factor.
    pub replicas: usize,
    /// Kafka: the partitions of each event topic deed creates.
    pub partitions: usize,
    /// `limits` (kept until the limits say) or `interest` (kept while a
    /// consumer has yet to acknowledge).
    pub retention: RetentionPolicy,
    /// Zero: kept until another limit removes them. A Kafka topic's
    /// `retention.ms`.
    pub max_age: Duration,
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            replicas: 1,
            partitions: 1,
            retention: RetentionPolicy::Limits,
            max_age: Duration::ZERO,
            duplicate_window: DUPLICATE_WINDOW,
        }
    }
}

fn retention_name(r: RetentionPolicy) -> &'static str {
    match r {
        RetentionPolicy::Limits => "limits",
        RetentionPolicy::Interest => "interest",
        RetentionPolicy::WorkQueue => "workqueue",
    }
}

impl StreamSettings {
    pub fn config(&self, name: &str, subject: &str) -> stream::Config {
        stream::Config {
            name: name.to_string(),
            subjects: vec![subject.to_string()],
            duplicate_window: self.duplicate_window,
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            retention: self.retention,
            max_age: self.max_age,
            ..Default::default()
        }
    }

    /// What differs between an existing stream and these settings, in
    /// words (`replicas 1, not 3`); empty when nothing does.
    pub fn differences(&self, existing: &stream::Config) -> Vec<String> {
        let mut out = Vec::new();
        let secs = |d: Duration| deed_text::duration(d.as_secs_f64());
        if existing.num_replicas.max(1) != self.replicas.max(1) {
            out.push(format!("replicas {}, not {}", existing.num_replicas, self.replicas));
        }
        if existing.retention != self.retention {
            out.push(format!(
                "retention {}, not {}",
                retention_name(existing.retention),
                retention_name(self.retention)
            ));
        }
        if existing.max_age != self.max_age {
            let show = |d: Duration| if d.is_zero() { "unlimited".to_string() } else { secs(d) };
            out.push(format!("max age {}, not {}", show(existing.max_age), show(self.max_age)));
        }
        if existing.duplicate_window != self.duplicate_window {
            out.push(format!(
                "duplicate window {}, not {}",
                secs(existing.duplicate_window),
                secs(self.duplicate_window)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_named() {
        let asked = StreamSettings {
            replicas: 3,
            partitions: 1,
            retention: RetentionPolicy::Interest,
            max_age: Duration::from_secs(7 * 86400),
            duplicate_window: DUPLICATE_WINDOW,
        };
        let existing = StreamSettings::default().config("DEED_CATALOG", "deed.catalog.>");
        assert_eq!(
            asked.differences(&existing),
            [
                "replicas 1, not 3",
                "retention limits, not interest",
                "max age unlimited, not 7 days"
            ]
        );
        assert!(asked.differences(&asked.config("DEED_CATALOG", "deed.catalog.>")).is_empty());
    }
}
