use std::collections::BTreeSet;
use std::path::PathBuf;

use deed_audit::{AuditRequest, Catalogue};
use deed_contracts::{CONTRACT_MARKER, Desired};
use deed_ident::QualifiedName;
use deed_manifest::{ContractRef, Date, Manifest};
use deed_pg::session::execute_one;
use deed_pg::{Client, PgError};
use deed_sql::OfflineLookup;
use serde::Serialize;

use crate::error::CheckError;
use crate::finding::{BreakKind, Finding};
use crate::judge::{definition_problem, safe_route};
use crate::migration::{self, Statement};
use crate::scratch::Scratch;
use crate::session::MigrationSession;
use crate::signature::{Exposed, signatures};
use crate::tracked::{Tracked, exposed_all};

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
                    message: format!("{problem}; {} is read by {}", v.contract, deed_text::and_list(&readers)),
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
            said.push(format!("{} is read by {}", t.contract, deed_text::and_list(readers)));
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
