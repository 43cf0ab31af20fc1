use std::path::PathBuf;

use deed_ident::Ident;
use deed_manifest::Manifest;
use deed_pg::Catalog;
use deed_sql::{OfflineLookup, SchemaLookup};

use crate::attribution::Attribution;
use crate::catalogue::Catalogue;
use crate::collector::Collector;
use crate::error::AuditError;
use crate::rules::{Excepted, Finding, apply_exceptions, evaluate};
use crate::source::{LogOptions, read_log, read_pg_stat_statements, read_static_sql};

/// What to audit and where the statements come from.
#[derive(Debug, Clone, Default)]
pub struct AuditRequest {
    pub manifest: Option<Manifest>,
    /// A database to read pg_stat_statements and the live catalog from.
    pub database_url: Option<String>,
    pub pg_stat_statements: bool,
    /// Functions, procedures, triggers, rules and policies stored in the
    /// database.
    pub database_code: bool,
    pub logs: Vec<PathBuf>,
    /// Only log entries of this database; defaults to the connected one.
    pub log_database: Option<String>,
    /// `log_line_prefix` of stderr-format logs; defaults to the connected
    /// server's, else PostgreSQL's default.
    pub log_line_prefix: Option<String>,
    /// Shipped SQL: directory, service, and the placeholders its driver
    /// writes.
    pub sql: Vec<(PathBuf, String, deed_sql::Placeholders)>,
    /// Overrides the manifest's search path.
    pub search_path: Option<Vec<Ident>>,
    /// How much of any one input is read.
    pub limits: crate::Limits,
}

pub struct AuditOutcome {
    pub catalogue: Catalogue,
    /// Violations: the findings no transitional exception excuses.
    pub findings: Vec<Finding>,
    /// Findings an exception in force excuses, shown but not failing.
    pub excepted: Vec<Excepted>,
}

/// Reads every source, builds the catalogue and applies the rules.
pub async fn run(req: &AuditRequest) -> Result<AuditOutcome, AuditError> {
    if !req.pg_stat_statements && !req.database_code && req.logs.is_empty() && req.sql.is_empty() {
        return Err(AuditError::Usage(
            "choose at least one source: --from pg_stat_statements, --from-log FILE, or --from-sql DIR --service NAME".into(),
        ));
    }
    let manifest = req.manifest.as_ref();
    let search_path = req
        .search_path
        .clone()
        .or_else(|| manifest.map(|m| m.database.search_path.clone()))
        .unwrap_or_else(|| OfflineLookup::default().search_path);
    for (_, service, _) in &req.sql {
        if manifest.is_some_and(|m| m.service(service).is_none()) {
            return Err(AuditError::Usage(format!(
                "--service {service}: the manifest has no such service"
            )));
        }
    }
    let client = match &req.database_url {
        Some(url) => Some(deed_pg::connect(url).await?),
        None if req.pg_stat_statements || req.database_code => {
            return Err(AuditError::Usage(
                "--from pg_stat_statements needs a database: pass --database-url, set [database] url in deed.toml, or set DATABASE_URL".into(),
            ));
        }
        None => None,
    };
    let catalog = match &client {
        Some(c) => Some(Catalog::load(c, &search_path).await?),
        None => None,
    };
    let offline = OfflineLookup { search_path };
    let lookup: &dyn SchemaLookup = match &catalog {
        Some(c) => c,
        None => &offline,
    };
    let mut attribution = Attribution::new(manifest);
    if let Some(c) = &client {
        // Superusers, and the role deed itself runs as, administer.
        let rows = c
            .query(
                "SELECT rolname::text FROM pg_roles WHERE rolsuper OR rolname = current_user",
                &[],
            )
            .await
            .map_err(|e| deed_pg::PgError::query("reading the administrator roles", e))?;
        attribution = attribution.with_admins(rows.iter().map(|r| r.get::<_, String>(0)));
    }
    let mut collector = Collector::new(lookup).with_statement_limit(req.limits.statement_bytes);
    let mut sources = Vec::new();
    if let (true, Some(c)) = (req.pg_stat_statements, &client) {
        sources.push(read_pg_stat_statements(c, &attribution, &mut collector).await?);
    }
    if let (true, Some(c)) = (req.database_code, &client) {
        sources.push(
            crate::source::read_database_code(c, manifest, &attribution, &mut collector).await?,
        );
    }
    let log_database = match (&req.log_database, &client) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(c)) => Some(
            c.query_one("SELECT current_database()::text", &[])
                .await
                .map_err(|e| deed_pg::PgError::query("reading the database name", e))?
                .get(0),
        ),
        (None, None) => None,
    };
    let server_prefix = match (&req.log_line_prefix, &client, req.logs.is_empty()) {
        (None, Some(c), false) => c
            .query_one("SELECT current_setting('log_line_prefix')", &[])
            .await
            .ok()
            .map(|r| r.get::<_, String>(0)),
        _ => None,
    };
    let options = LogOptions {
        database: log_database,
        limits: req.limits,
        line_prefix_given: req.log_line_prefix.is_some(),
        line_prefix: req.log_line_prefix.clone().or(server_prefix),
    };
    for path in &req.logs {
        sources.push(read_log(path, &options, &attribution, &mut collector)?);
    }
    for (dir, service, placeholders) in &req.sql {
        sources.push(read_static_sql(dir, service, *placeholders, &req.limits, &mut collector)?);
    }
    let catalogue = Catalogue::build(&collector, manifest, catalog.as_ref(), sources);
    let (findings, excepted) =
        apply_exceptions(evaluate(&catalogue, manifest), manifest, deed_manifest::Date::today());
    Ok(AuditOutcome { catalogue, findings, excepted })
}
