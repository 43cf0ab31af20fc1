use anyhow::{Result, bail};
use deed_audit::AuditRequest;
use deed_audit::report::AuditReport;
use deed_ident::Ident;
use deed_manifest::Manifest;
use deed_text::ByteSize;

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
    let warnings: usize = outcome.catalogue.sources.iter().map(|s| s.warnings.len()).sum();
    if args.strict && warnings > 0 {
        bail!(
            "--strict: {warnings} statement{} could not be read (listed with the report)",
            if warnings == 1 { "" } else { "s" }
        );
    }
    Ok(if outcome.findings.is_empty() { Outcome::Clean } else { Outcome::Findings })
}

/// Turns command-line sources into an audit request.
pub fn request(
    sources: &Sources,
    manifest: Option<Manifest>,
    url: Option<String>,
) -> Result<AuditRequest> {
    if sources.placeholders.len() > 1 && sources.placeholders.len() != sources.from_sql.len() {
        bail!(
            "give --placeholders once for every --from-sql, or once for all ({} --from-sql, {} --placeholders)",
            sources.from_sql.len(),
            sources.placeholders.len()
        );
    }
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
        database_code: sources.from.contains(&LiveSource::Functions),
        logs: sources.from_log.clone(),
        log_database: sources.log_database.clone(),
        log_line_prefix: sources.log_line_prefix.clone(),
        sql: sources
            .from_sql
            .iter()
            .cloned()
            .zip(sources.service.iter().cloned())
            .enumerate()
            .map(|(i, (dir, service))| {
                let style = sources.placeholders.get(i).or(sources.placeholders.last());
                (dir, service, style.copied().unwrap_or_default().into())
            })
            .collect(),
        search_path,
        limits: limits(sources)?,
    })
}

fn limits(sources: &Sources) -> Result<deed_audit::Limits> {
    let size = |flag: &str, value: &Option<ByteSize>, default: u64| -> Result<u64> {
        match value {
            None => Ok(default),
            Some(ByteSize(0)) => Err(anyhow::anyhow!("{flag} 0: give a size above zero")),
            Some(ByteSize(n)) => Ok(*n),
        }
    };
    let d = deed_audit::Limits::default();
    Ok(deed_audit::Limits {
        line_bytes: size("--max-line-bytes", &sources.max_line_bytes, d.line_bytes)?,
        statement_bytes: size(
            "--max-statement-bytes",
            &sources.max_statement_bytes,
            d.statement_bytes as u64,
        )? as usize,
        input_bytes: size("--max-input-bytes", &sources.max_input_bytes, d.input_bytes)?,
        file_bytes: size("--max-file-bytes", &sources.max_file_bytes, d.file_bytes)?,
    })
}
