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
    pub logs: Vec<PathBuf>,
    /// Only log entries of this database; defaults to the connected one.
    pub log_database: Option<String>,
    /// `(directory, service)` pairs of shipped SQL.
    pub sql: Vec<(PathBuf, String)>,
    /// Overrides the manifest's search path.
    pub search_path: Option<Vec<Ident>>,
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
    if !req.pg_stat_statements && req.logs.is_empty() && req.sql.is_empty() {
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
    for (_, service) in &req.sql {
        if manifest.is_some_and(|m| m.service(service).is_none()) {
            return Err(AuditError::Usage(format!(
                "--service {service}: the manifest has no such service"
            )));
        }
    }
    let client = match &req.database_url {
        Some(url) => Some(deed_pg::connect(url).await?),
        None if req.pg_stat_statements => {
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
    let attribution = Attribution::new(manifest);
    let mut collector = Collector::new(lookup);
    let mut sources = Vec::new();
    if let (true, Some(c)) = (req.pg_stat_statements, &client) {
        sources.push(read_pg_stat_statements(c, &attribution, &mut collector).await?);
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
    let options = LogOptions { database: log_database };
    for path in &req.logs {
        sources.push(read_log(path, &options, &attribution, &mut collector)?);
    }
    for (dir, service) in &req.sql {
        sources.push(read_static_sql(dir, service, &mut collector)?);
    }
    let catalogue = Catalogue::build(&collector, manifest, catalog.as_ref(), sources);
    let (findings, excepted) =
        apply_exceptions(evaluate(&catalogue, manifest), manifest, deed_manifest::Date::today());
    Ok(AuditOutcome { catalogue, findings, excepted })
}
