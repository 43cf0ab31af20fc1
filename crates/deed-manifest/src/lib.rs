//! The `deed.toml` manifest, the single source of truth for ownership.
//!
//! [`Manifest::parse`] reads the TOML, rejects unknown keys, checks every
//! identifier and reference, and returns either a validated [`Manifest`] or
//! every problem found, each located at `file:line:col` of the offending key
//! or value so a reviewer can jump straight to it.

mod date;
pub mod edit;
mod error;
mod interpolate;
mod location;
mod model;
mod projection;
mod raw;
mod refs;
mod validate;

pub use date::Date;
pub use error::{ManifestError, ManifestErrors};
pub use interpolate::resolve_references;
pub use location::{Location, SourceFile, Span};
pub use model::{
    Compatibility, Contract, ContractShape, DatabaseSection, Event, Exception, Manifest, Privilege,
    Projection, ProjectionTarget, Service, ServiceLocations, Unchanged, default_api_schema,
};
pub use refs::{ContractKey, ContractRef, EventRef};
pub use validate::MAX_MANIFEST_BYTES;

/// The only manifest format version this build understands.
pub const MANIFEST_VERSION: i64 = 1;
