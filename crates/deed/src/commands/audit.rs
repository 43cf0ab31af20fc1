use anyhow::{Result, bail};
use deed_audit::AuditRequest;
use deed_audit::report::AuditReport;
use deed_ident::Ident;
use deed_manifest::Manifest;

use crate::cli::{AuditArgs, Cli, Format, LiveSource, Sources};
use crate::context;
use crate::exit::Outcome;

pub async fn run(cli: &Cli, args: &AuditArgs) -> Result<Outcome> {
    let manifest = context::manifest(cli)?;
    let url = context::database_url(cli, manifest.as_ref())?;
    let request = request(&args.sources, manifest, url)?;
    let outcome = deed_audit::run(&request).await?;
    let report = AuditReport {
        catalogue: &outcome.catalogue,
        findings: &outcome.findings,
        excepted: &outcome.excepted,
        manifest: request.manifest.as_ref(),
    };
    let text = match cli.format {
        Format::Table => report.table(),
        Format::Json => report.json(),
        Format::Markdown => report.markdown(),
        Format::Html => report.html(),
    };
    context::emit(args.output.as_deref(), &text)?;
    Ok(if outcome.findings.is_empty() { Outcome::Clean } else { Outcome::Findings })
}

/// Turns command-line sources into an audit request.
pub fn request(
    sources: &Sources,
    manifest: Option<Manifest>,
    url: Option<String>,
) -> Result<AuditRequest> {
    if sources.from_sql.len() != sources.service.len() {
        bail!(
            "give one --service per --from-sql ({} --from-sql, {} --service)",
            sources.from_sql.len(),
            sources.service.len()
        );
    }
    let search_path = match &sources.search_path {
        Some(list) => Some(
            list.iter()
                .map(|s| {
                    Ident::parse_sql(s.trim()).map_err(|e| anyhow::anyhow!("--search-path: {e}"))
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        None => None,
    };
    Ok(AuditRequest {
        manifest,
        database_url: url,
        pg_stat_statements: sources.from.contains(&LiveSource::PgStatStatements),
        logs: sources.from_log.clone(),
        log_database: sources.log_database.clone(),
        sql: sources.from_sql.iter().cloned().zip(sources.service.iter().cloned()).collect(),
        search_path,
    })
}
