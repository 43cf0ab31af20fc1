//! Rung 4: an owner's tables moved to their own PostgreSQL instance.
//!
//! `deed split S --to URL` walks phases, each safe to run again:
//! [`phases::prepare`] refuses what cannot cross instances ([`refuse`],
//! [`target`]) and creates the service's roles and tables on the target
//! ([`roles`], [`schema`]); [`phases::copy`] copies and follows them with
//! PostgreSQL's own logical replication ([`replicate`], on slots deed
//! makes itself: `slot`);
//! [`phases::prove_phase`] compares every table with the compare engine of
//! rung 3 at fences ([`prove`]); [`phases::switch`] moves the writes with a
//! fence of about a second, leaving replication running back to the shared
//! database so rung-1 readers keep their contract views and a rollback
//! stays possible ([`switch`]); [`phases::finish`] ends it. Where it stands
//! is recorded in the shared database ([`state`]) and shown by
//! [`status`].

pub mod crash;
pub mod diagnose;
mod error;
pub mod inspect;
pub mod pgbouncer;
pub mod phases;
pub mod privilege;
mod prove;
pub mod refuse;
pub mod replicate;
pub mod roles;
pub mod schema;
mod slot;
pub mod state;
pub mod status;
pub mod switch;
pub mod target;

pub use error::SplitError;
pub use phases::Split;
pub use refuse::Refusal;
pub use state::{Phase, Recorded};
