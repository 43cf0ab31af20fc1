use deed_audit::{AuditRequest, Catalogue};
use deed_ident::QualifiedName;
use deed_manifest::{Date, Exception, Manifest};
use deed_pg::Client;
use serde::Serialize;

use crate::desired::Desired;
use crate::diff::diff;
use crate::error::ContractError;
use crate::impact::{Impact, impact};
use crate::live::Live;
use crate::naming::ADVISORY_LOCK_KEY;
use deed_change::{Change, Phase, Stage};

/// What to plan against.
pub struct PlanRequest<'a> {
    pub manifest: &'a Manifest,
    /// Observed traffic for the impact preview, if any.
    pub audit: Option<AuditRequest>,
    pub today: Date,
    pub stage: Stage,
}

/// A contract view the manifest dropped but traffic still reads, so it is
/// kept.
#[derive(Debug, Clone, Serialize)]
pub struct KeptView {
    pub view: QualifiedName,
    pub readers: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub impact: Option<Impact>,
    pub kept: Vec<KeptView>,
    pub exceptions: Vec<Exception>,
    pub expired: Vec<Exception>,
    /// Revokes of reads a projection replaces, with no clean compare of it
    /// (set by [`Plan::guard_cutovers`]).
    pub unproven: Vec<crate::UnprovenCutover>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn blockers(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.phase == Phase::Blocker)
    }

    /// Whether it breaks a consumer: observed traffic a revoke would
    /// break, or a consumed event moved to another contract version in a
    /// way that breaks its `compatibility`.
    pub fn is_breaking(&self) -> bool {
        self.impact.as_ref().is_some_and(Impact::is_breaking)
            || self.changes.iter().any(|c| c.kind == "event-contract")
            || !self.unproven.is_empty()
    }

    /// Marks revokes of replaced reads that no clean compare proves:
    /// `proven(service, projection)`.
    pub fn guard_cutovers(&mut self, manifest: &Manifest, proven: &dyn Fn(&str, &str) -> bool) {
        self.unproven = crate::unproven_cutovers(&self.changes, manifest, proven);
    }

    /// What `deed apply` must find still to do to run this plan: its
    /// statements but the replication slots it creates beforehand.
    pub fn expected(&self) -> Vec<String> {
        applied_statements(&self.changes)
    }

    /// The statements apply runs, in order, inside its transaction.
    pub fn statements(&self) -> Vec<&str> {
        self.changes.iter().flat_map(|c| c.sql.iter().map(String::as_str)).collect()
    }

    /// The whole run as a script, as apply runs it: replication slots are
    /// created before the transaction and dropped after it.
    pub fn script(&self) -> String {
        let phase =
            |p: Phase| self.changes.iter().filter(move |c| c.phase == p).flat_map(|c| c.sql.iter());
        let mut out = format!("SELECT pg_advisory_lock({ADVISORY_LOCK_KEY});\n");
        for s in phase(Phase::Slots) {
            out.push_str(&format!("{s};  -- outside the transaction; dropped again if it fails\n"));
        }
        out.push_str("BEGIN;\nSET LOCAL lock_timeout = '5s';\n");
        for c in self.changes.iter().filter(|c| !matches!(c.phase, Phase::Slots | Phase::DropSlots))
        {
            for s in &c.sql {
                out.push_str(s);
                out.push_str(";\n");
            }
        }
        out.push_str("COMMIT;\n");
        for s in phase(Phase::DropSlots) {
            out.push_str(&format!("{s};  -- after the commit\n"));
        }
        out.push_str(&format!("SELECT pg_advisory_unlock({ADVISORY_LOCK_KEY});\n"));
        out
    }
}

/// Reads the live database and the optional traffic, and plans.
pub async fn plan(client: &Client, req: PlanRequest<'_>) -> Result<Plan, ContractError> {
    let desired = Desired::from_manifest(req.manifest, req.today)?;
    let live = Live::load(client, &desired, false).await?;
    let mut changes = diff(&desired, &live);
    changes.retain(|c| req.stage.includes(c));
    let mut kept = Vec::new();
    let mut preview = None;
    if let Some(audit) = &req.audit {
        let outcome = deed_audit::run(audit).await?;
        kept = keep_read_views(&mut changes, &outcome.catalogue);
        // Publishing takes nothing away, so it breaks nothing.
        if req.stage == Stage::Enforce {
            preview =
                Some(impact(client, &outcome.catalogue, req.manifest, &desired, &live).await?);
        }
    }
    Ok(Plan {
        changes,
        impact: preview,
        kept,
        exceptions: desired.exceptions,
        expired: desired.expired,
        unproven: Vec::new(),
    })
}

/// A contract version is dropped only when no observed traffic reads it.
fn keep_read_views(changes: &mut Vec<Change>, catalogue: &Catalogue) -> Vec<KeptView> {
    let mut kept = Vec::new();
    changes.retain(|c| {
        if c.kind != "drop-view" {
            return true;
        }
        // What administrators (and deed itself) read keeps nothing.
        let readers: Vec<(String, u64)> = catalogue
            .accesses
            .iter()
            .filter(|a| !deed_audit::is_admin(&a.service))
            .filter(|a| a.relation.to_string() == c.object)
            .map(|a| (a.service.clone(), a.calls))
            .collect();
        if readers.is_empty() {
            return true;
        }
        if let Ok(view) = QualifiedName::parse_sql(&c.object) {
            kept.push(KeptView { view, readers });
        }
        false
    });
    kept
}

/// The statements of `changes` that apply runs inside its transaction or
/// after it: not warnings, blockers, or slots made before it.
pub(crate) fn applied_statements(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .filter(|c| !matches!(c.phase, Phase::Warning | Phase::Blocker | Phase::Slots))
        .flat_map(|c| c.sql.iter().cloned())
        .collect()
}
