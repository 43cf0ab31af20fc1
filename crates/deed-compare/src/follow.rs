//! The consistent point: a fence on the owner's database, and the wait
//! until the projection has applied every change committed before it.
//!
//! Caught up means both: the relay has delivered everything before the
//! fence (the slot's confirmed position is past it, or, with no relay
//! attached, the slot holds no change before it), and the projector has
//! applied everything delivered before it (its position is past the
//! fence, or nothing before the fence waits in the inbox or in its
//! JetStream consumer, RabbitMQ stream or Kafka topic).

use std::time::{Duration, Instant};

use deed_events::{Position, lsn_text};
use deed_pg::Client;
use deed_project::ProjectionSpec;
use deed_project::source::nats::NatsSource;

/// Where the projector reads events, when not the inbox.
pub enum EventsFrom {
    Nats(NatsSource),
    Amqp(deed_bus::AmqpUrl),
    Kafka(deed_bus::KafkaUrl),
}

use crate::error::{CompareError, query};

/// A consistent point both sides can be brought to: a fence taken on the
/// source and waited for on the target. Re-checks look again only after
/// one, so a row still travelling is seen as moving, not as a difference.
pub trait Fence {
    /// Takes a fence and waits until the target has applied up to it;
    /// returns the fence's LSN on the source.
    fn catch_up(
        &mut self,
        source: &Client,
        target: &Client,
    ) -> impl std::future::Future<Output = Result<u64, CompareError>>;
}

impl Fence for Follow {
    async fn catch_up(&mut self, source: &Client, target: &Client) -> Result<u64, CompareError> {
        Follow::catch_up(self, source, target).await
    }
}

/// How a compare waits for a projection.
pub struct Follow {
    pub spec: ProjectionSpec,
    /// The projector reads JetStream or RabbitMQ (else the inbox).
    pub events: Option<EventsFrom>,
    pub timeout: Duration,
    /// The producer's slot on the owner's database, looked up once.
    slot: Option<String>,
}

impl Follow {
    pub fn new(spec: ProjectionSpec, events: Option<EventsFrom>, timeout: Duration) -> Follow {
        Follow { spec, events, timeout, slot: None }
    }

    /// Takes a fence and waits until the projection has applied up to it;
    /// returns the fence's LSN.
    pub async fn catch_up(
        &mut self,
        source: &Client,
        target: &Client,
    ) -> Result<u64, CompareError> {
        let lsn = deed_project::backfill::fence_lsn(source).await?;
        let started = Instant::now();
        loop {
            if self.relayed(source, lsn).await? && self.applied(target, lsn).await? {
                return Ok(lsn);
            }
            if started.elapsed() > self.timeout {
                return Err(CompareError::Setup(format!(
                    "projection {}.{} has not applied the owner's changes up to the fence {} after {} s: \
                     is `deed relay --service {}` delivering and `deed project --service {}` running? \
                     (--wait sets how long to wait)",
                    self.spec.service,
                    self.spec.name,
                    lsn_text(lsn),
                    self.timeout.as_secs(),
                    self.spec.producer,
                    self.spec.service
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The producer's slot on the owner's database, looked up once.
    async fn slot(&mut self, source: &Client) -> Result<String, CompareError> {
        if let Some(slot) = &self.slot {
            return Ok(slot.clone());
        }
        let slot = deed_events::capture_slot(source, &self.spec.producer)
            .await
            .map_err(query("looking for the producer's replication slot"))?;
        self.slot = Some(slot.clone());
        Ok(slot)
    }

    /// Whether the producer's relay has delivered every commit before `lsn`.
    async fn relayed(&mut self, source: &Client, lsn: u64) -> Result<bool, CompareError> {
        let slot = self.slot(source).await?;
        let producer = &self.spec.producer;
        let row = source
            .query_opt(
                "SELECT confirmed_flush_lsn >= $2::text::pg_lsn, active
                   FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
                &[&slot, &lsn_text(lsn)],
            )
            .await
            .map_err(query("reading the producer's replication slot"))?;
        let Some(row) = row else {
            return Err(CompareError::Setup(format!(
                "{producer} has no replication slot in the owner's database: declare its events and run `deed apply`"
            )));
        };
        let (confirmed, active): (bool, bool) = (row.get(0), row.get(1));
        if confirmed || active {
            return Ok(confirmed);
        }
        // No relay attached: done if nothing it would publish is left
        // before the fence. First the next transaction alone (cheap);
        // only if it was empty, everything up to the fence: pgoutput on
        // PostgreSQL 14 sends a BEGIN and COMMIT with nothing between for
        // every transaction that touches no published table (15 and later
        // skip them), and those are nothing to deliver.
        let publication = deed_events::publication_name(producer);
        for limit in [Some(1i32), None] {
            let row = source
                .query_one(
                    "SELECT count(*), count(*) FILTER (WHERE pg_catalog.get_byte(data, 0) IN (73, 85, 68, 84))
                       FROM pg_catalog.pg_logical_slot_peek_binary_changes($1, $2::text::pg_lsn, $3,
                            'proto_version', '1', 'publication_names', $4)",
                    &[&slot, &lsn_text(lsn), &limit, &publication.as_str()],
                )
                .await
                .map_err(query("looking for undelivered changes in the producer's slot"))?;
            // Rows, and the inserts, updates, deletes and truncates among them.
            let (rows, changes): (i64, i64) = (row.get(0), row.get(1));
            if changes > 0 {
                return Ok(false);
            }
            if rows == 0 {
                return Ok(true);
            }
        }
        Ok(true)
    }

    /// Whether the projection has applied every delivered event before `lsn`.
    async fn applied(&mut self, target: &Client, lsn: u64) -> Result<bool, CompareError> {
        let fence = Position::before_text(lsn);
        let progress =
            deed_state::projections::progress(target, &self.spec.service, &self.spec.name).await?;
        let Some(progress) = progress else {
            return Err(CompareError::Setup(format!(
                "projection {}.{} has not started: run `deed project --service {}`",
                self.spec.service, self.spec.name, self.spec.service
            )));
        };
        if !progress.is_live() {
            // A backfill in progress is not a copy to prove yet.
            return Ok(false);
        }
        let position = progress.position;
        if position >= fence {
            return Ok(true);
        }
        match &mut self.events {
            Some(EventsFrom::Nats(nats)) => return Ok(nats.unapplied(&self.spec).await? == 0),
            Some(EventsFrom::Amqp(url)) => {
                let waiting =
                    deed_project::source::amqp::waiting(url, target, &self.spec, &position, &fence)
                        .await?;
                return Ok(!waiting);
            }
            Some(EventsFrom::Kafka(url)) => {
                let waiting =
                    deed_project::source::kafka::waiting(url, &self.spec, &position, &fence)
                        .await?;
                return Ok(!waiting);
            }
            None => {}
        }
        match deed_state::inbox::has_between(target, &self.spec.event, &position, &fence).await? {
            Some(waiting) => Ok(!waiting),
            // deed project makes the inbox with deed.projections: someone
            // dropped it, and what the projection still has to apply
            // cannot be told.
            None => Err(CompareError::Setup(format!(
                "the consumer's database has no deed.inbox, so whether projection {}.{} applied every event up to the fence cannot be told: run `deed project --service {}` to make it again",
                self.spec.service, self.spec.name, self.spec.service
            ))),
        }
    }
}
