//! Rung 1: the database is an API.
//!
//! Each service gets a NOLOGIN owner role that owns its tables and its api
//! schema; its logins are members. Each contract version becomes a
//! `security_barrier` view in the api schema with exactly the manifest's
//! columns, and consumers' roles may read exactly the versions they list in
//! `reads`. Every other privilege on owned relations is revoked.
//!
//! [`Desired`] is that state computed from the manifest; [`Live`] is read
//! from the catalogs; [`diff`] turns the difference into ordered
//! [`Change`]s, each with its SQL. A plan is those changes; `apply` runs
//! them in one transaction under an advisory lock; drift is a non-empty
//! plan described as findings. With observed traffic, [`impact`] names the
//! statements a plan would break.
//!
//! The same plan installs what rung 2's capture needs, because `deed
//! apply` is the one command that changes a database's roles and schema:
//! [`deed_capture`] holds the publication of each service's event tables,
//! its replication slot, `deed.emit`, the relay's login and its grants,
//! each as desired state, live state and a diff into the same [`Change`]s
//! (`deed-change`).

mod acting;
mod apply;
mod canonical;
mod desired;
mod diff;
mod error;
mod impact;
mod live;
mod live_owned;
mod naming;
mod not_null;
mod plan;
mod query_check;
pub mod report;
mod roles;
mod routes;
mod unproven;

pub use acting::{Access, ActingLive};
pub use apply::{ApplyOptions, ApplyOutcome, apply, apply_with};
pub use deed_change::{Change, Phase, Stage};
pub use desired::{ContractView, Desired, OwnedRelation, ServiceRoles};
pub use diff::diff;
pub use error::ContractError;
pub use impact::{Break, Impact, impact};
pub use live::Live;
pub use naming::{ADVISORY_LOCK_KEY, CONTRACT_MARKER, owner_role};
pub use plan::{Plan, PlanRequest, plan};
pub use unproven::{UnprovenCutover, unproven_cutovers};
