use deed_pg::{Client, PgError};

use super::SourceSummary;
use crate::attribution::Attribution;
use crate::collector::Collector;
use crate::error::AuditError;

/// Feeds this database's rows of `pg_stat_statements` into the collector,
/// attributing each to a service through the role that ran it.
pub async fn read_pg_stat_statements(
    client: &Client,
    attribution: &Attribution<'_>,
    collector: &mut Collector<'_>,
) -> Result<SourceSummary, AuditError> {
    // deed's sessions search only pg_catalog; the view lives in the schema
    // the extension was created in.
    let schema: Option<String> = client
        .query_opt(
            "SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
              WHERE e.extname = 'pg_stat_statements'",
            &[],
        )
        .await
        .map_err(|e| PgError::query("looking for pg_stat_statements", e))?
        .map(|r| r.get(0));
    let Some(schema) = schema else {
        return Err(AuditError::Database(PgError::Query {
            context: "reading pg_stat_statements".into(),
            reason: "the extension pg_stat_statements is not installed in this database; enable it with CREATE EXTENSION pg_stat_statements (it must also be in shared_preload_libraries)".into(),
            source: None,
        }));
    };
    let view = deed_ident::Ident::new(schema)
        .map(|s| format!("{}.pg_stat_statements", s.quoted()))
        .map_err(|e| AuditError::Usage(e.to_string()))?;
    let rows = client
        .query(
            &format!(
                "SELECT coalesce(r.rolname::text, 'oid ' || s.userid::text), s.query, s.calls::bigint
                   FROM {view} s
                   LEFT JOIN pg_roles r ON r.oid = s.userid
                  WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            &[],
        )
        .await
        .map_err(|e| AuditError::Database(hint(PgError::query("reading pg_stat_statements", e))))?;
    let db: String = client
        .query_one("SELECT current_database()::text", &[])
        .await
        .map_err(|e| PgError::query("reading the database name", e))?
        .get(0);
    let before = collector.statements();
    let mut hidden = 0u64;
    let mut internal = 0u64;
    for row in rows {
        let role: String = row.get(0);
        let query: Option<String> = row.get(1);
        let calls: i64 = row.get(2);
        match query.as_deref() {
            None | Some("<insufficient privilege>") => hidden += 1,
            Some(text) if is_referential_check(text) => internal += 1,
            Some(text) => {
                let service = attribution.service(Some(&role), None);
                collector.add(&service, text, calls.max(0) as u64);
            }
        }
    }
    let mut notes = Vec::new();
    if internal > 0 {
        notes.push(format!(
            "{} the server ran on its own left out (they run as the table owner, not as a service)",
            deed_text::plural(internal, "foreign-key check", "foreign-key checks")
        ));
    }
    if hidden > 0 {
        notes.push(format!(
            "{hidden} statements of other roles are hidden from this role: GRANT pg_read_all_stats to the role deed connects as"
        ));
    }
    Ok(SourceSummary {
        kind: "pg_stat_statements".into(),
        detail: db,
        statements: collector.statements() - before,
        notes,
        warnings: Vec::new(),
    })
}

/// Foreign-key enforcement runs its own queries as the table's owner, and
/// with `pg_stat_statements.track = all` they are recorded like any other.
/// They are written by the server (ri_triggers.c), always on `ONLY` a table
/// and with schema-qualified operators, which no application writes.
fn is_referential_check(query: &str) -> bool {
    query.contains("OPERATOR(pg_catalog.")
        && (query.contains(" FROM ONLY ")
            || query.starts_with("UPDATE ONLY ")
            || query.starts_with("DELETE FROM ONLY "))
}

/// Adds the fix for the two usual reasons the view is unavailable.
fn hint(e: PgError) -> PgError {
    let PgError::Query { context, reason, source } = e else { return e };
    let fix = if reason.contains("does not exist") {
        "; enable it with CREATE EXTENSION pg_stat_statements (it must also be in shared_preload_libraries)"
    } else if reason.contains("shared_preload_libraries") {
        "; add pg_stat_statements to shared_preload_libraries in postgresql.conf and restart the server"
    } else {
        ""
    };
    PgError::Query { context, reason: format!("{reason}{fix}"), source }
}
