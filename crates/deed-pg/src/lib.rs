//! PostgreSQL plumbing shared by every deed command.
//!
//! - [`connect`]: a client with `application_name = deed`, TLS with libpq's
//!   `sslmode` semantics, and errors that name the target without ever
//!   showing its password.
//! - [`Actor`]: the role deed acts as, what it may do, and the managed
//!   service ([`Provider`]) that made it.
//! - [`Catalog`]: relations, columns and view dependencies read from the
//!   live catalog, resolving names exactly as the server's search path does.
//! - [`replication`]: a logical replication stream over the wire protocol,
//!   with the same TLS and authentication as [`connect`].
//!
//! Private throwaway clusters and PgBouncers are `deed-cluster`'s.

mod actor;
mod catalog;
mod conn_string;
mod connect;
mod endpoint;
mod error;
mod libpq;
mod redact;
pub mod replication;
pub mod session;
mod tls;
mod url;

pub use actor::{Actor, Provider, act_as};
pub use catalog::{Catalog, RelationKind};
pub use conn_string::{ConnString, ConnStringError};
pub use connect::{BACKFILL_MARKER, DEED_APPLICATION, connect, connect_as, connect_plain};
pub use endpoint::{Endpoint, endpoint};
pub use error::PgError;
pub use libpq::split_password;
pub use redact::redact_url;
pub use tls::{TlsMode, TlsSettings, client_config};
pub use tokio_postgres::error::SqlState;
pub use tokio_postgres::{Client, Error as DbError, Row};
pub use url::url_with_database;
