//! Where a projector reads events: the inbox in the consumer's own
//! database (the embedded default, filled by `deed relay --to postgres://…`)
//! or JetStream (a durable consumer per projection). Both hand over
//! events of one type in the producer's commit order, possibly with
//! duplicates of events already applied, which the position skips.

pub mod inbox;
pub mod nats;

use crate::error::ProjectError;
use crate::incoming::Incoming;
use crate::spec::ProjectionSpec;

pub enum Source {
    Inbox(inbox::Inbox),
    Nats(Box<nats::NatsSource>),
}

impl Source {
    /// `None`: the inbox in the consumer's database (`target`);
    /// `nats://…`: JetStream.
    pub async fn open(from: Option<&str>, target: &str) -> Result<Source, ProjectError> {
        match from {
            None | Some("inbox") => Ok(Source::Inbox(inbox::Inbox::connect(target).await?)),
            Some(u) if u.starts_with("nats://") || u.starts_with("tls://") => {
                Ok(Source::Nats(Box::new(nats::NatsSource::connect(u).await?)))
            }
            Some(other) => Err(ProjectError::Setup(format!(
                "--from {}: give nats://host:port for JetStream, or leave it out to read the inbox in the service's database",
                deed_pg::redact_url(other)
            ))),
        }
    }

    /// Up to `limit` events of the projection after `position`.
    pub async fn fetch(
        &mut self,
        spec: &ProjectionSpec,
        position: &str,
        limit: usize,
    ) -> Result<Vec<Incoming>, ProjectError> {
        match self {
            Source::Inbox(i) => i.fetch(&spec.event, position, limit).await,
            Source::Nats(n) => n.fetch(spec, limit).await,
        }
    }

    /// The inbox, which can be read ahead of what is committed.
    pub fn inbox(&self) -> Option<&inbox::Inbox> {
        match self {
            Source::Inbox(i) => Some(i),
            Source::Nats(_) => None,
        }
    }

    /// Confirms to the source what has been committed.
    pub async fn committed(&mut self, spec: &ProjectionSpec) -> Result<(), ProjectError> {
        match self {
            Source::Inbox(_) => Ok(()),
            Source::Nats(n) => n.ack(spec).await,
        }
    }
}
