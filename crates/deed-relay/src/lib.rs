//! Rung 2: the owner's changes leave the database as events.
//!
//! Capture is PostgreSQL's own logical decoding: `deed apply` puts each
//! owner's state-event tables in a publication and creates a `pgoutput`
//! replication slot; domain events are transactional logical messages
//! written by `deed.emit`. Writers pay no trigger: an event exists exactly
//! when its transaction committed, and the slot hands transactions over in
//! commit order.
//!
//! The relay reads the slot over the replication protocol ([`stream`];
//! a bounded `--until-idle` run stops at the WAL position it started at),
//! turns pgoutput messages into [`Envelope`]s ([`transform`], with a
//! [`plan`] per table), and hands them to a [`Sink`] (NATS JetStream, one
//! server or a cluster, signed in as [`deed_bus::NatsAuth`] says; or a PostgreSQL inbox)
//! through a [`pipeline`] that keeps a few batches in flight while the next
//! are decoded. Only once the sink has every event before a position is it
//! confirmed on the slot. A crash in between re-reads the same
//! transactions with the same event ids, which both sinks recognise as
//! duplicates. [`source`] is the relay's ordinary session (the slot, the
//! lock, the lag). One relay per service delivers at a time ([`leader`]).

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
