//! One step of a deed plan.
//!
//! Every planner in deed (contract views and grants in `deed-contracts`,
//! change capture in `deed-capture`) turns the difference between what the
//! manifest wants and what the catalogs hold into [`Change`]s. Each names
//! its [`Phase`], the order apply runs it in, and carries its SQL; a
//! [`Stage`] picks the changes that only add. `deed plan` shows them,
//! `deed drift` describes them as findings, `deed apply` runs them in one
//! transaction.

use deed_ident::QualifiedName;
use serde::Serialize;

/// The order changes apply in: each phase only needs what earlier phases
/// made (roles before memberships, schemas before views, views before the
/// grants on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Something deed cannot fix; apply refuses while one remains.
    Blocker,
    /// A route to private data deed does not change by itself (a view or
    /// function someone else owns): drift reports it, apply goes on.
    Warning,
    /// Replication slots: created before the transaction (PostgreSQL does
    /// not create one inside a transaction that has written), and dropped
    /// again if the transaction fails.
    Slots,
    Roles,
    Memberships,
    Schemas,
    Ownership,
    Revokes,
    DropViews,
    Views,
    Grants,
    Defaults,
    /// Publications, replica identity, the `deed` schema and its emit
    /// function.
    Capture,
    /// Replication slots no longer wanted, dropped after the commit.
    DropSlots,
}

impl Phase {
    pub fn title(self) -> &'static str {
        match self {
            Phase::Blocker => "Blocking problems",
            Phase::Warning => "Other routes to private data (deed does not change these)",
            Phase::Roles => "Roles",
            Phase::Memberships => "Memberships",
            Phase::Schemas => "Api schemas",
            Phase::Ownership => "Ownership",
            Phase::Revokes => "Revokes",
            Phase::DropViews => "Obsolete contract views",
            Phase::Views => "Contract views",
            Phase::Grants => "Grants",
            Phase::Defaults => "Default privileges",
            Phase::Slots => "Replication slots (created before the transaction)",
            Phase::Capture => "Change capture",
            Phase::DropSlots => "Replication slots to drop (after the commit)",
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub phase: Phase,
    /// A stable, machine-readable kind: `create-role`, `revoke`, ...
    pub kind: &'static str,
    /// The object changed, as shown to people.
    pub object: String,
    /// What the plan will do, in words.
    pub summary: String,
    /// How `deed drift` describes the same difference.
    pub drift: String,
    /// The statements, every identifier quoted.
    pub sql: Vec<String>,
    /// The manifest entry it comes from, when one entry is the cause
    /// (`deed.toml:12:11`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// For revokes on relations: which relation and grantee lose what, so
    /// the impact preview can name what breaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revokes: Option<Revoked>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Revoked {
    pub relation: QualifiedName,
    /// `None` is PUBLIC.
    pub grantee: Option<String>,
    pub privileges: Vec<String>,
}

/// Which part of a plan to apply: adoption goes in two steps, so
/// consumers can move to contract views before their direct access ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Only what adds: roles, schemas, ownership, contract views, grants,
    /// default privileges, capture. Nothing anyone can do today is taken
    /// away, so nothing in use can break.
    Publish,
    /// Everything, the revokes and drops included.
    #[default]
    Enforce,
}

impl Stage {
    pub fn includes(self, change: &Change) -> bool {
        self == Stage::Enforce || !change.takes_away()
    }
}

impl Change {
    /// Whether it removes something a role can do or use today.
    pub fn takes_away(&self) -> bool {
        matches!(self.phase, Phase::Revokes | Phase::DropViews | Phase::DropSlots)
            || self.kind.starts_with("revoke")
            || self.kind.starts_with("drop-")
            || self.kind == "alter-role"
    }
}
