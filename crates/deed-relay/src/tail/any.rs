//! One entry to every bus `deed tail` reads: the URL decides.

use std::time::Duration;

use deed_bus::{Bus, NatsAuth};

use crate::error::RelayError;

/// A service's events of one type (or every type, with `*`) from whatever
/// `bus` is, each envelope exactly as the relay wrote it; from the start
/// or only what comes next, until `limit` events or `idle` without one.
/// An inbox is read in commit order from its start, whole. `auth` signs in
/// to NATS; the other buses carry their credentials in the URL.
#[allow(clippy::too_many_arguments)]
pub async fn tail_bus(
    bus: &Bus,
    auth: &NatsAuth,
    service: &str,
    event: &str,
    from_start: bool,
    limit: Option<usize>,
    idle: Option<Duration>,
    each: impl FnMut(&[u8]),
) -> Result<usize, RelayError> {
    match bus {
        Bus::Inbox(url) => {
            super::tail_inbox_raw(url, &format!("{service}.{event}"), limit, each).await
        }
        Bus::Nats(servers) => {
            super::tail_nats_servers(auth, servers, service, event, from_start, limit, idle, each)
                .await
        }
        Bus::Amqp(url) => {
            super::tail_amqp(url, service, event, from_start, limit, idle, each).await
        }
        Bus::Kafka(url) => {
            super::tail_kafka(url, service, event, from_start, limit, idle, each).await
        }
        Bus::Webhook(url) => Err(url.not_a_source().into()),
    }
}
