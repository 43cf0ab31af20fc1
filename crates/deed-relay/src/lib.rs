//! Rung 2: the owner's changes leave the database as events.
//!
//! Capture is PostgreSQL's own logical decoding: `deed apply` puts each
//! owner's state-event tables in a publication and creates a `pgoutput`
//! replication slot; domain events are transactional logical messages
//! written by `deed.emit`. Writers pay no trigger: an event exists exactly
//! when its transaction committed, and the slot hands transactions over in
//! commit order.
//!
//! The relay reads the slot (streamed over the replication protocol,
//! [`stream`], as a daemon; through the SQL functions, [`source`], for a
//! bounded `--until-idle` run), turns pgoutput messages into
//! [`Envelope`]s ([`transform`]), delivers them to a [`Sink`] (NATS
//! JetStream or a PostgreSQL inbox), and only then confirms them on the
//! slot. A crash before the confirmation re-reads the same transactions
//! with the same event ids, which both sinks recognise as duplicates. One
//! relay per service delivers at a time ([`leader`]).

pub mod auth;
pub mod emit;
pub mod envelope;
mod error;
pub mod health;
pub mod leader;
pub mod locate;
pub mod metrics;
pub mod pgoutput;
pub mod pipeline;
pub mod plan;
pub mod presence;
pub mod relay;
pub mod sink;
pub mod slot;
pub mod source;
pub mod spec;
pub mod stream;
pub mod tail;
pub mod transform;
pub mod unchanged;
pub mod value;

pub use emit::emit;
pub use envelope::{Envelope, Op, Position};
pub use error::RelayError;
pub use metrics::Metrics;
pub use relay::{RelayOptions, RelayReport, run};
pub use sink::Sink;
pub use spec::CaptureSpec;
