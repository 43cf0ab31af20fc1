//! Rung 2, the consumer's side: projections a service keeps from the
//! events it consumes, in its own database.
//!
//! A projection is a table kept equal to a state event's contract
//! columns, or a handler statement run once per event. The projector
//! reads events of one type in the producer's commit order from a
//! [`source`] (the inbox `deed relay` fills, or JetStream), and [`apply`]
//! commits each batch's effects together with the projection's new
//! position: events at or before it are skipped, so every event has its
//! effect exactly once however often it is delivered. Events that cannot
//! be applied become [`deadletter`]s; their key waits, other keys go on.
//! A new table projection is first filled by a [`backfill`] from the
//! contract view, fenced so that it joins the stream with no gap.

pub mod apply;
pub mod backfill;
pub mod deadletter;
mod error;
pub mod health;
pub mod incoming;
pub mod metrics;
mod report;
pub mod run;
pub mod source;
pub mod spec;
pub mod store;
pub mod table;
mod text_param;

pub use error::{Failure, ProjectError};
pub use metrics::Metrics;
pub use run::{ProjectOptions, ProjectReport, ProjectionReport, run};
pub use spec::{ProjectionSpec, projections};
