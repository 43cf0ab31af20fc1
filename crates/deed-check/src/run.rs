use std::collections::BTreeSet;
use std::path::PathBuf;

use deed_audit::{AuditRequest, Catalogue};
use deed_contracts::{CONTRACT_MARKER, Desired};
use deed_ident::QualifiedName;
use deed_manifest::{ContractRef, ContractShape, Date, Manifest};
use deed_pg::session::execute_one;
use deed_pg::{Client, PgError};
use deed_sql::OfflineLookup;
use serde::Serialize;

use crate::error::CheckError;
use crate::finding::{BreakKind, Finding};
use crate::migration::{self, Statement};
use crate::scratch::Scratch;
use crate::session::MigrationSession;
use crate::signature::{Exposed, Signature, signatures};

pub struct CheckRequest {
    pub manifest: Manifest,
    /// The live database whose schema the migrations run against.
    pub database_url: String,
    /// Where to create the scratch database, if not on the live server.
    pub scratch_url: Option<String>,
    /// Migration files, applied in this order.
    pub migrations: Vec<PathBuf>,
    /// Observed traffic, to name readers the manifest does not.
    pub audit: Option<AuditRequest>,
    pub today: Date,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    /// Breaking changes to versions some service reads.
    pub findings: Vec<Finding>,
    /// Changes to versions nobody reads, and other things worth knowing.
    pub notes: Vec<String>,
    pub files: usize,
    pub statements: usize,
    /// Contract versions checked, and how many of them have readers.
    pub contracts: usize,
    pub read_contracts: usize,
}

/// Statements that change rows, not schema.
pub(crate) const DATA_COMMANDS: &[&str] =
    &["SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "TRANSACTION", "SET", "SHOW"];

/// DDL whose whole effect is on the relations it names, so it cannot touch
/// a contract view that does not depend on one of them.
pub(crate) const RELATION_DDL: &[&str] =
    &["CREATE TABLE", "CREATE TABLE AS", "ALTER TABLE", "CREATE INDEX", "DROP", "ALTER ... RENAME"];

/// One contract version followed through the migrations.
pub(crate) struct Tracked {
    contract: ContractRef,
    pub(crate) view: QualifiedName,
    /// The relations its definition reads.
    reads: Vec<QualifiedName>,
    definition: deed_contracts::ContractView,
    consumers: Vec<String>,
    /// The consumed events whose payload this version is.
    pub(crate) events: Vec<crate::events::EventUse>,
    next_version: u32,
    pub(crate) exposed: Vec<Exposed>,
}

/// Checks the migrations; interrupted (SIGINT, SIGTERM), it drops its
/// scratch database and says so.
pub async fn check(req: &CheckRequest) -> Result<CheckOutcome, CheckError> {
    let stopped = crate::interrupt::stopped();
    tokio::pin!(stopped);
    tokio::select! {
        r = check_inner(req) => {
            // Dropping the scratch database ends the check's sessions, so
            // the check may finish (with that error) first: the signal
            // still decides, once the drop is done.
            if crate::interrupt::signalled() {
                return Err(CheckError::Interrupted(stopped.await));
            }
            r
        }
        signal = &mut stopped => Err(CheckError::Interrupted(signal)),
    }
}

async fn check_inner(req: &CheckRequest) -> Result<CheckOutcome, CheckError> {
    if req.migrations.is_empty() {
        return Err(CheckError::Usage(
            "give the migration files to check, in the order they run".into(),
        ));
    }
    let lookup = OfflineLookup { search_path: req.manifest.database.search_path.clone() };
    let migrations = migration::load(&req.migrations, &lookup)?;
    let desired = Desired::from_manifest(&req.manifest, req.today)?;
    let catalogue = match &req.audit {
        Some(a) => Some(deed_audit::run(a).await?.catalogue),
        None => None,
    };
    let server = req.scratch_url.clone().unwrap_or_else(|| req.database_url.clone());
    let scratch = Scratch::create(&req.database_url, &server).await?;
    let result = run_in(&scratch, req, &desired, &migrations, catalogue.as_ref()).await;
    let skipped = scratch.skipped_extensions.clone();
    scratch.drop().await;
    let mut outcome = result?;
    for ext in skipped {
        outcome.notes.push(format!(
            "extension {ext} is not in the scratch database: the role deed runs as may not create it (PostgreSQL: only a superuser may create an untrusted extension); migrations that use it are checked without it"
        ));
    }
    if let Some(c) = &catalogue {
        outcome.notes.extend(leaving_versions(req, c).await?);
    }
    Ok(outcome)
}

async fn run_in(
    scratch: &Scratch,
    req: &CheckRequest,
    desired: &Desired,
    migrations: &[migration::Migration],
    catalogue: Option<&Catalogue>,
) -> Result<CheckOutcome, CheckError> {
    // One session: the migrations resolve names as the application's
    // search path does, deed inspects with its own, and both see what an
    // open transaction of the migration has done.
    let path = req.manifest.database.search_path.iter().map(|s| s.quoted()).collect::<Vec<_>>();
    let session = MigrationSession::open(&scratch.url, path.join(", ")).await?;
    let client = session.client();
    let names: Vec<String> = desired.views.iter().map(|v| v.view.quoted()).collect();
    let missing: Vec<String> = client
        .query("SELECT x FROM unnest($1::text[]) x WHERE to_regclass(x) IS NULL", &[&names])
        .await
        .map_err(|e| PgError::query("looking for contract views", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Versions not yet published (not applied, or new in this change) are
    // not followed through the migrations; whether they can be published
    // afterwards is checked at the end.
    let (pending, published): (Vec<_>, Vec<_>) =
        desired.views.iter().partition(|v| missing.contains(&v.view.quoted()));
    let mut tracked = Vec::new();
    for v in published {
        let mut consumers: BTreeSet<String> = req
            .manifest
            .services
            .iter()
            .filter(|s| s.reads.contains(&v.contract))
            .map(|s| s.name.clone())
            .collect();
        if let Some(c) = catalogue {
            consumers.extend(
                c.accesses.iter().filter(|a| a.relation == v.view).map(|a| a.service.clone()),
            );
        }
        let newest = req
            .manifest
            .service(&v.contract.service)
            .map(|s| {
                s.contracts
                    .iter()
                    .filter(|c| c.name == v.contract.contract)
                    .map(|c| c.version)
                    .max()
                    .unwrap_or(1)
            })
            .unwrap_or(1);
        let lookup = OfflineLookup { search_path: req.manifest.database.search_path.clone() };
        let reads = deed_sql::analyze(&v.select, &lookup)
            .map(|a| a.combined().into_iter().map(|x| x.relation).collect())
            .unwrap_or_default();
        tracked.push(Tracked {
            events: crate::events::uses(&req.manifest, &v.contract),
            contract: v.contract.clone(),
            view: v.view.clone(),
            reads,
            definition: v.clone(),
            consumers: consumers.into_iter().collect(),
            next_version: newest + 1,
            exposed: Vec::new(),
        });
    }
    let pairs: Vec<(ContractRef, QualifiedName)> =
        tracked.iter().map(|t| (t.contract.clone(), t.view.clone())).collect();
    for (t, e) in tracked.iter_mut().zip(exposed_all(client, &req.manifest, &pairs).await?) {
        t.exposed = e;
    }
    let views: Vec<QualifiedName> = tracked.iter().map(|t| t.view.clone()).collect();
    let pending_count = pending.len();
    let exposed: Vec<Vec<Exposed>> = tracked.iter().map(|t| t.exposed.clone()).collect();
    let initial = signatures(client, &views, &exposed).await?;
    let flat: Vec<&Statement> = migrations.iter().flat_map(|m| &m.statements).collect();
    let followed = crate::follow::follow(&session, &tracked, &flat, &initial).await?;
    let crate::follow::Followed {
        mut raw,
        statements,
        last_ddl,
        written,
        current,
        retired,
        stopped,
    } = followed;
    // What the manifest itself would now publish, as PostgreSQL renders it.
    {
        for (i, t) in tracked.iter().enumerate() {
            let already = raw.iter().any(|(j, ..)| *j == i) || retired.contains(&i);
            // Only a contract over something the migrations altered can
            // have had its definition change beneath it.
            let touched = t.reads.iter().any(|r| written.contains(r)) || written.contains(&t.view);
            if !current[i].exists || already || !touched {
                continue;
            }
            if let Some(message) = definition_problem(client, t, &initial[i]).await? {
                if let Some(st) = last_ddl {
                    raw.push((i, st, BreakKind::DefinitionBroken, message));
                }
            }
        }
    }
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    if let Some((st, error)) = &stopped {
        notes.push(format!(
            "{}:{}:{}: still fails with the contracts out of the way ({error}); the statements after it were not checked",
            st.file, st.line, st.column
        ));
    }
    {
        for v in &pending {
            let Err(e) = create_view(client, v).await else { continue };
            let readers: Vec<String> = req
                .manifest
                .services
                .iter()
                .filter(|s| s.reads.contains(&v.contract))
                .map(|s| s.name.clone())
                .collect();
            let problem = format!("{} cannot be published after these migrations: {e}", v.contract);
            match (readers.is_empty(), last_ddl) {
                (false, Some(st)) => findings.push(Finding {
                    kind: BreakKind::DefinitionBroken,
                    file: st.file.clone(),
                    line: st.line,
                    column: st.column,
                    statement: st.text.clone(),
                    contract: v.contract.clone(),
                    view: v.view.clone(),
                    message: format!("{problem}; {} is read by {}", v.contract, and_list(&readers)),
                    safe_route: format!(
                        "fix the contract in deed.toml ({}) or the migration, so the version can be created",
                        v.location
                    ),
                    consumers: readers,
                }),
                _ => notes.push(format!("{problem} (no service reads it yet)")),
            }
        }
    }
    for (i, st, kind, message) in raw {
        let t = &tracked[i];
        // A gained NOT NULL breaks no reader of the view, only events.
        let readers: &[String] = if kind == BreakKind::NotNullAdded { &[] } else { &t.consumers };
        let events = crate::events::broken(kind, &t.events);
        if readers.is_empty() && events.is_empty() {
            notes.push(format!(
                "{}:{}:{}: {} {message}; no service reads {} or consumes an event it breaks, so nothing breaks",
                st.file, st.line, st.column, t.contract, t.contract
            ));
            continue;
        }
        let mut consumers: BTreeSet<String> = readers.iter().cloned().collect();
        consumers.extend(events.iter().flat_map(|u| u.consumers.iter().cloned()));
        let mut said = Vec::new();
        if !readers.is_empty() {
            said.push(format!("{} is read by {}", t.contract, and_list(readers)));
        }
        if !events.is_empty() {
            said.push(crate::events::describe(&events));
        }
        findings.push(Finding {
            kind,
            file: st.file.clone(),
            line: st.line,
            column: st.column,
            statement: st.text.clone(),
            contract: t.contract.clone(),
            view: t.view.clone(),
            consumers: consumers.into_iter().collect(),
            message: format!("{message}; {}", said.join("; ")),
            safe_route: safe_route(kind, t),
        });
    }
    Ok(CheckOutcome {
        findings,
        notes,
        files: migrations.len(),
        statements,
        contracts: tracked.len() + pending_count,
        read_contracts: tracked.iter().filter(|t| !t.consumers.is_empty()).count(),
    })
}

/// Creates a not-yet-published contract view in the scratch database, to
/// see whether it could be published after the migrations.
async fn create_view(client: &Client, v: &deed_contracts::ContractView) -> Result<(), CheckError> {
    let mut statements = vec![
        "BEGIN".to_string(),
        format!("CREATE SCHEMA IF NOT EXISTS {}", v.view.schema.quoted()),
    ];
    statements.extend(
        v.create_statements(&format!("CREATE VIEW {} WITH (security_barrier)", v.view.quoted())),
    );
    statements.push("COMMIT".into());
    for sql in &statements {
        if let Err(e) = execute_one(client, sql).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(CheckError::Scratch(
                PgError::query("", e).to_string().trim_start_matches(": ").to_string(),
            ));
        }
    }
    Ok(())
}

/// Every relation the contract views depend on, through any number of
/// views, and the views themselves.
pub(crate) async fn dependency_closure(
    client: &Client,
    views: &[QualifiedName],
) -> Result<BTreeSet<QualifiedName>, CheckError> {
    let names: Vec<String> = views.iter().map(QualifiedName::quoted).collect();
    let rows = client
        .query(
            "WITH RECURSIVE needs(oid) AS (
                 SELECT to_regclass(x) FROM unnest($1::text[]) x WHERE to_regclass(x) IS NOT NULL
                 UNION
                 SELECT d.refobjid FROM needs n
                   JOIN pg_rewrite r ON r.ev_class = n.oid
                   JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                                   AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> n.oid)
             SELECT ns.nspname::text, c.relname::text
               FROM needs JOIN pg_class c ON c.oid = needs.oid JOIN pg_namespace ns ON ns.oid = c.relnamespace",
            &[&names],
        )
        .await
        .map_err(|e| PgError::query("reading what the contract views depend on", e))?;
    Ok(rows.iter().filter_map(|r| QualifiedName::from_catalog(r.get(0), r.get(1)).ok()).collect())
}

/// The relations whose columns a contract's output columns come from: the
/// contract's `from` for a column list; for a query, the owned relations it
/// reads (an output column maps to the one of them with that column name).
fn sources(m: &Manifest, r: &ContractRef) -> Vec<QualifiedName> {
    let Some((service, contract)) = m.contract(r) else { return Vec::new() };
    match &contract.shape {
        ContractShape::Columns(_) => vec![contract.from.clone()],
        ContractShape::Query(q) => {
            let lookup = OfflineLookup { search_path: m.database.search_path.clone() };
            deed_sql::analyze(q, &lookup)
                .map(|a| {
                    a.combined()
                        .into_iter()
                        .map(|x| x.relation)
                        .filter(|rel| service.owns(rel))
                        .collect()
                })
                .unwrap_or_default()
        }
    }
}

/// The table columns beneath every contract's columns, by identity, in one
/// query. A view column found in several source relations is ambiguous and
/// not followed.
async fn exposed_all(
    client: &Client,
    m: &Manifest,
    views: &[(ContractRef, QualifiedName)],
) -> Result<Vec<Vec<Exposed>>, CheckError> {
    let (mut idx, mut view, mut table) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (r, v)) in views.iter().enumerate() {
        for t in sources(m, r) {
            idx.push(i as i32);
            view.push(v.quoted());
            table.push(t.quoted());
        }
    }
    let rows = client
        .query(
            "SELECT x.idx, v.attname::text, t.attrelid, t.attnum
               FROM unnest($1::int[], $2::text[], $3::text[]) AS x(idx, vname, tname)
               JOIN pg_attribute v ON v.attrelid = to_regclass(x.vname) AND v.attnum > 0 AND NOT v.attisdropped
               JOIN pg_attribute t ON t.attrelid = to_regclass(x.tname) AND t.attname = v.attname
                                  AND t.attnum > 0 AND NOT t.attisdropped
              ORDER BY x.idx, v.attnum",
            &[&idx, &view, &table],
        )
        .await
        .map_err(|e| PgError::query("reading the columns beneath contract views", e))?;
    let mut out: Vec<Vec<Exposed>> = vec![Vec::new(); views.len()];
    let mut ambiguous: BTreeSet<(usize, String)> = BTreeSet::new();
    for row in rows {
        let i = row.get::<_, i32>(0) as usize;
        let column: String = row.get(1);
        if out[i].iter().any(|e| e.view_column == column) {
            ambiguous.insert((i, column));
            continue;
        }
        out[i].push(Exposed { view_column: column, table: row.get(2), attnum: row.get(3) });
    }
    for (i, list) in out.iter_mut().enumerate() {
        list.retain(|e| !ambiguous.contains(&(i, e.view_column.clone())));
    }
    Ok(out)
}

/// The contract views a failed statement could not get past: those its
/// error names ("view catalog_api.products_v1 depends on column ..."), or,
/// since PostgreSQL names only the first dependent, every contract view that
/// depends (through any number of views) on a relation the statement alters.
pub(crate) async fn blocked_by(
    client: &Client,
    e: &tokio_postgres::Error,
    st: &Statement,
    tracked: &[Tracked],
) -> Result<Vec<usize>, CheckError> {
    use tokio_postgres::error::SqlState;
    let Some(db) = e.as_db_error() else { return Ok(Vec::new()) };
    let dependency = *db.code() == SqlState::DEPENDENT_OBJECTS_STILL_EXIST
        || (*db.code() == SqlState::FEATURE_NOT_SUPPORTED
            && db.message().contains("used by a view or rule"));
    if !dependency {
        return Ok(Vec::new());
    }
    let text = format!("{}\n{}", db.message(), db.detail().unwrap_or(""));
    let names = |needle: &str| {
        text.match_indices(needle).any(|(at, _)| {
            text[at + needle.len()..]
                .chars()
                .next()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'))
        })
    };
    let written: Vec<String> = st.writes.iter().map(QualifiedName::quoted).collect();
    let rows = client
        .query(
            "WITH RECURSIVE dependents(oid) AS (
                 SELECT r.ev_class FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
                  WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
                    AND d.refobjid IN (SELECT to_regclass(x) FROM unnest($1::text[]) x) AND r.ev_class <> d.refobjid
                 UNION
                 SELECT r.ev_class FROM dependents p
                   JOIN pg_depend d ON d.refobjid = p.oid AND d.classid = 'pg_rewrite'::regclass
                                   AND d.refclassid = 'pg_class'::regclass
                   JOIN pg_rewrite r ON r.oid = d.objid
                  WHERE r.ev_class <> p.oid)
             SELECT n.nspname::text, c.relname::text
               FROM dependents JOIN pg_class c ON c.oid = dependents.oid JOIN pg_namespace n ON n.oid = c.relnamespace",
            &[&written],
        )
        .await
        .map_err(|e| PgError::query("finding the views that depend on a migration's target", e))?;
    let dependents: Vec<QualifiedName> =
        rows.iter().filter_map(|r| QualifiedName::from_catalog(r.get(0), r.get(1)).ok()).collect();
    Ok(tracked
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            names(&format!("view {}", t.view))
                || names(&format!("view {}", t.view.name))
                || dependents.contains(&t.view)
        })
        .map(|(i, _)| i)
        .collect())
}

pub(crate) fn compare(
    t: &Tracked,
    before: &Signature,
    after: &Signature,
    st: &Statement,
) -> Vec<(BreakKind, String)> {
    let mut out = Vec::new();
    if !before.exists {
        return out;
    }
    if !after.exists {
        let how = if st.text.to_ascii_uppercase().contains("CASCADE") {
            " (through CASCADE)"
        } else {
            ""
        };
        out.push((BreakKind::Dropped, format!("drops {}{how}", t.view)));
        return out;
    }
    if before.columns != after.columns {
        out.push((
            BreakKind::ColumnsChanged,
            format!(
                "changes the columns of {}: {}",
                t.view,
                describe(&before.columns, &after.columns)
            ),
        ));
    } else if before.viewdef != after.viewdef && st.creates_views.contains(&t.view) {
        out.push((
            BreakKind::Redefined,
            format!("redefines the published {} (CREATE OR REPLACE VIEW)", t.view),
        ));
    }
    let mut table_renamed = false;
    for (j, (b, a)) in before.underlying.iter().zip(&after.underlying).enumerate() {
        let exposed = &t.exposed[j].view_column;
        if a.dropped || a.name.is_none() {
            continue;
        }
        if b.name != a.name {
            out.push((
                BreakKind::Renamed,
                format!(
                    "renames {}.{} to {}, which {} exposes as {exposed}; the view keeps working, but the manifest's definition no longer resolves",
                    b.table.as_deref().unwrap_or("?"),
                    b.name.as_deref().unwrap_or("?"),
                    a.name.as_deref().unwrap_or("?"),
                    t.view
                ),
            ));
        } else if b.table != a.table && !table_renamed {
            table_renamed = true;
            out.push((
                BreakKind::Renamed,
                format!(
                    "renames table {} to {}, which {} reads; the manifest's definition no longer names it",
                    b.table.as_deref().unwrap_or("?"),
                    a.table.as_deref().unwrap_or("?"),
                    t.view
                ),
            ));
        }
        if !b.not_null && a.not_null && !t.events.is_empty() {
            out.push((
                BreakKind::NotNullAdded,
                format!(
                    "sets NOT NULL on {}.{}, which {} carries as {exposed} in its events: the new payload requires it, but events already published may have it NULL",
                    a.table.as_deref().unwrap_or("?"),
                    a.name.as_deref().unwrap_or("?"),
                    t.contract
                ),
            ));
        }
        if b.not_null && !a.not_null {
            out.push((
                BreakKind::NotNullDropped,
                format!(
                    "drops NOT NULL from {}.{}, which {} exposes as {exposed}: its readers may now get NULL",
                    a.table.as_deref().unwrap_or("?"),
                    a.name.as_deref().unwrap_or("?"),
                    t.view
                ),
            ));
        }
    }
    out
}

/// Removed, added, retyped and reordered columns, in words.
fn describe(before: &[(String, String)], after: &[(String, String)]) -> String {
    let mut parts = Vec::new();
    let removed: Vec<&str> = before
        .iter()
        .filter(|(n, _)| !after.iter().any(|(m, _)| m == n))
        .map(|(n, _)| n.as_str())
        .collect();
    let added: Vec<&str> = after
        .iter()
        .filter(|(n, _)| !before.iter().any(|(m, _)| m == n))
        .map(|(n, _)| n.as_str())
        .collect();
    if !removed.is_empty() {
        parts.push(format!("removes {}", removed.join(", ")));
    }
    if !added.is_empty() {
        parts.push(format!("adds {}", added.join(", ")));
    }
    for (n, t) in before {
        if let Some((_, t2)) = after.iter().find(|(m, _)| m == n) {
            if t != t2 {
                parts.push(format!("retypes {n} from {t} to {t2}"));
            }
        }
    }
    let order_before: Vec<&String> =
        before.iter().map(|(n, _)| n).filter(|n| after.iter().any(|(m, _)| m == *n)).collect();
    let order_after: Vec<&String> =
        after.iter().map(|(n, _)| n).filter(|n| before.iter().any(|(m, _)| m == *n)).collect();
    if order_before != order_after {
        parts.push("reorders columns".into());
    }
    if parts.is_empty() {
        parts.push("changes its columns".into());
    }
    parts.join("; ")
}

/// Whether the manifest's definition, rendered now, still has the
/// published columns. Run in a transaction that is rolled back.
async fn definition_problem(
    client: &Client,
    t: &Tracked,
    published: &Signature,
) -> Result<Option<String>, CheckError> {
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| PgError::query("checking a contract definition", e))?;
    let mut created = Ok(0);
    for sql in t.definition.create_statements("CREATE TEMP VIEW deed_check_definition") {
        created = execute_one(client, &sql).await;
        if created.is_err() {
            break;
        }
    }
    let result = match created {
        Err(e) => Some(format!(
            "leaves the manifest's definition of {} unresolvable: {}",
            t.contract,
            PgError::query("", e).to_string().trim_start_matches(": ")
        )),
        Ok(_) => {
            let rows = client
                .query(
                    "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                      WHERE a.attrelid = 'pg_temp.deed_check_definition'::regclass AND a.attnum > 0 ORDER BY a.attnum",
                    &[],
                )
                .await
                .map_err(|e| PgError::query("checking a contract definition", e))?;
            let now: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            (now != published.columns).then(|| {
                format!(
                    "changes what the manifest's definition of {} publishes: {}",
                    t.contract,
                    describe(&published.columns, &now)
                )
            })
        }
    };
    client
        .batch_execute("ROLLBACK")
        .await
        .map_err(|e| PgError::query("checking a contract definition", e))?;
    Ok(result)
}

fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn safe_route(kind: BreakKind, t: &Tracked) -> String {
    let r = &t.contract;
    let next = format!("{}.{}.v{}", r.service, r.contract, t.next_version);
    let bump = format!("`deed contract bump {}.{}`", r.service, r.contract);
    let readers = and_list(&t.consumers);
    match kind {
        BreakKind::Dropped => format!(
            "keep {} as long as {readers} {} {r}; once they moved to another version, remove {r} from deed.toml and deed apply drops the view",
            t.view,
            if t.consumers.len() == 1 { "reads" } else { "read" }
        ),
        BreakKind::ColumnsChanged | BreakKind::DefinitionBroken => format!(
            "publish {next} with the new shape ({bump}), move {readers} to it, and retire v{} once nobody reads it",
            r.version
        ),
        BreakKind::Redefined => format!(
            "a published version never changes: publish the new definition as {next} ({bump}) and move {readers} when they are ready"
        ),
        BreakKind::NotNullDropped => {
            let mut everyone: BTreeSet<String> = t.consumers.iter().cloned().collect();
            everyone.extend(t.events.iter().flat_map(|u| u.consumers.iter().cloned()));
            format!(
                "{} may rely on the column never being NULL in {r}: keep the NOT NULL, or publish {next} where it may be NULL ({bump}) and move them first",
                and_list(&everyone.into_iter().collect::<Vec<_>>())
            )
        }
        BreakKind::NotNullAdded => {
            let events: Vec<String> = t.events.iter().map(|u| u.event.clone()).collect();
            format!(
                "consumers of {} replay events in which the column may be NULL: publish {next} with the column NOT NULL ({bump}) and move the events to it once older events are gone from the bus, or set compatibility = \"forward\" (or \"none\") on the event if its consumers move after the owner",
                and_list(&events)
            )
        }
        BreakKind::Renamed | BreakKind::Blocked => format!(
            "expand, migrate, contract: add the new column beside the old one, publish {next} from it ({bump}), move {readers}, retire v{}, and only then drop or rename the old column",
            r.version
        ),
    }
}

/// Versions deed will drop (live contract views the manifest no longer
/// lists) that traffic still reads.
async fn leaving_versions(
    req: &CheckRequest,
    catalogue: &Catalogue,
) -> Result<Vec<String>, CheckError> {
    let client = deed_pg::connect(&req.database_url).await?;
    let rows = client
        .query(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname::text, c.relname::text
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind = 'v' AND starts_with(coalesce(obj_description(c.oid, 'pg_class'), ''), $1)",
            &[&CONTRACT_MARKER],
        )
        .await
        .map_err(|e| PgError::query("looking for contract views", e))?;
    let mut out = Vec::new();
    for row in rows {
        let Ok(view) = QualifiedName::from_catalog(row.get(1), row.get(2)) else { continue };
        if req.manifest.contract_for_view(&view).is_some() {
            continue;
        }
        let readers: Vec<String> = catalogue
            .accesses
            .iter()
            .filter(|a| a.relation == view)
            .map(|a| format!("{} ({})", a.service, deed_text::plural(a.calls, "call", "calls")))
            .collect();
        if !readers.is_empty() {
            out.push(format!(
                "{view} left the manifest and deed apply will drop it, but traffic still reads it: {}",
                readers.join(", ")
            ));
        }
    }
    Ok(out)
}
