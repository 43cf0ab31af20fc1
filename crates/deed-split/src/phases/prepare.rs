//! Phase 1: what cannot cross is refused; the target gets the service's
//! roles and tables in one transaction.

use super::*;

/// What prepare did (or would do).
#[derive(Debug, Clone, Serialize)]
pub struct Prepared {
    /// The statements run on the target, as shown (no password).
    pub statements: Vec<String>,
    /// Statements left for after the copy (indexes, constraints).
    pub after_copy: Vec<String>,
    pub notes: Vec<String>,
    pub applied: bool,
}

/// Phase 1: refuses what cannot cross; creates roles and tables on the
/// target in one transaction.
pub async fn prepare(
    split: &mut Split,
    manifest: &Manifest,
    dry_run: bool,
) -> Result<Prepared, SplitError> {
    let mut refusals =
        source_refusals(&split.shared, manifest, &split.service, &split.found).await?;
    let live = target::observe(&split.target, &split.found, split.name()).await?;
    refusals.extend(target::refusals(&split.found, &live, &split.target_shown));
    refusals
        .extend(crate::privilege::refusals(&split.target, "target", &split.target_shown).await?);
    refusals.extend(
        crate::privilege::refusals(&split.shared, "shared database", "the shared database").await?,
    );
    if !refusals.is_empty() {
        return Err(SplitError::Refused { service: split.name().to_string(), refusals });
    }
    let (role_statements, notes) =
        roles::statements(&split.shared, &split.target, &split.service).await?;
    let script = schema::script(split.name(), &split.found, &live);
    let mut statements: Vec<Statement> = role_statements;
    statements.extend(
        deed_state::statements(&[deed_state::Table::SplitFences]).into_iter().map(Statement::plain),
    );
    statements.extend(script.before_copy.iter().cloned().map(Statement::plain));
    statements.extend(capture_publication(split, &split.target).await?);
    let shown = statements.iter().map(|s| s.shown.clone()).collect();
    if dry_run {
        return Ok(Prepared {
            statements: shown,
            after_copy: script.after_copy,
            notes,
            applied: false,
        });
    }
    state::ensure(&split.shared).await?;
    let tx = split.target.transaction().await.map_err(query("starting prepare"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&deed_contracts::ADVISORY_LOCK_KEY])
        .await
        .map_err(query("taking deed's lock on the target"))?;
    for s in &statements {
        tx.batch_execute(&s.sql).await.map_err(|e| {
            SplitError::Database(deed_pg::PgError::query(format!("on the target: {}", s.shown), e))
        })?;
    }
    crate::crash::point("prepare:before-commit");
    tx.commit().await.map_err(query("committing prepare"))?;
    crate::crash::point("prepare:committed");
    // The reverse direction's publication, ready for the cutover.
    let tables: Vec<_> = split.found.tables.iter().map(|t| t.name.clone()).collect();
    replicate::publish(&split.target, split.name(), &tables).await?;
    if split.phase().is_none() {
        state::record_phase(&split.shared, split.name(), &split.target_shown, Phase::Prepared)
            .await?;
    }
    split.reload().await?;
    Ok(Prepared { statements: shown, after_copy: script.after_copy, notes, applied: true })
}

/// The service's capture publication on the target, with no table yet:
/// the tables join it at the cutover, in the fence's transaction.
async fn capture_publication(split: &Split, target: &Client) -> Result<Vec<Statement>, SplitError> {
    if split.capture.tables.is_empty() && split.capture_desired.is_none() {
        return Ok(Vec::new());
    }
    let name = deed_events::publication_name(split.name());
    let exists: bool = target
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)",
            &[&name.as_str()],
        )
        .await
        .map_err(query("looking for the capture publication"))?
        .get(0);
    let mut out = Vec::new();
    if !exists {
        out.push(Statement::plain(format!(
            "CREATE PUBLICATION {} WITH ({})",
            name.quoted(),
            deed_capture::PUBLISH
        )));
    }
    out.extend(
        deed_state::statements(&[deed_state::Table::CaptureEpochs])
            .into_iter()
            .map(Statement::plain),
    );
    // Domain events: `deed.emit` and their registration, as `deed apply`
    // installs them; not the slot, which the cutover creates.
    if let Some(c) = split.capture_desired.clone() {
        if !c.domain_events.is_empty() {
            let desired = deed_capture::CaptureDesired { services: vec![c] };
            let actor = deed_pg::Actor::load(target).await.map_err(SplitError::Database)?;
            let live = deed_capture::CaptureLive::load(target, &actor, &[])
                .await
                .map_err(|e| SplitError::Setup(format!("reading the target's capture: {e}")))?;
            let mut changes = Vec::new();
            deed_capture::diff_capture(&desired, &live, &mut changes);
            const EMIT: &[&str] =
                &["create-schema", "create-function", "domain-event", "grant", "revoke"];
            out.extend(
                changes
                    .into_iter()
                    .filter(|c| EMIT.contains(&c.kind))
                    .flat_map(|c| c.sql)
                    .map(Statement::plain),
            );
        }
    }
    Ok(out)
}
