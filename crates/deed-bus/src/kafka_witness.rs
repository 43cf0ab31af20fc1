//! What a Kafka client last heard go wrong with the brokers.
//!
//! librdkafka retries a broker it cannot reach, sign in to or verify, and
//! an operation only says, in the end, that it timed out. The reason (a
//! certificate that does not verify, a refused SASL sign-in, a broker that
//! does not speak TLS) comes to the client's context as it happens: this
//! context keeps the last one, so deed's error says what to fix.

use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// A client context that remembers the last client-level error.
#[derive(Clone, Default)]
pub struct Witness {
    last: Arc<Mutex<Option<String>>>,
}

impl Witness {
    /// The last error the client reported, if any.
    pub fn last(&self) -> Option<String> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    /// `error`, followed by the last thing the client heard, if any.
    pub fn explain(&self, error: impl std::fmt::Display) -> String {
        match self.last() {
            Some(heard) => format!("{error} (the client's last error: {heard})"),
            None => error.to_string(),
        }
    }
}

impl ClientContext for Witness {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "Kafka client error");
        // "All brokers are down" follows the error that brought them down:
        // it replaces nothing more telling.
        let summary = matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::AllBrokersDown));
        if let Ok(mut last) = self.last.lock() {
            if !summary || last.is_none() {
                *last = Some(reason.to_string());
            }
        }
    }
}

impl ConsumerContext for Witness {}
