use anyhow::{Result, bail};
use deed_check::{CheckRequest, report};
use deed_manifest::Date;

use crate::cli::{CheckArgs, Cli, ContractCommand, Format, Sources};
use crate::context;
use crate::exit::Outcome;

fn github() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Prints a report, with GitHub annotations when running in GitHub
/// Actions (on stderr for JSON, so stdout stays valid JSON).
fn emit_with_annotations(cli: &Cli, text: String, annotations: String) -> Result<()> {
    if github() && !annotations.is_empty() {
        if cli.format == Format::Json {
            eprint!("{annotations}");
        } else {
            context::emit(None, &annotations)?;
        }
    }
    context::emit(None, &text)
}

pub async fn run(cli: &Cli, args: &CheckArgs) -> Result<Outcome> {
    let manifest = context::required_manifest(cli)?;
    if let (Some(consumer), Some(dir)) = (&args.consumer, &args.from_sql) {
        if !args.migrations.is_empty() {
            bail!("--consumer checks a consumer's SQL; check migrations in a separate run");
        }
        let outcome =
            deed_check::check_consumer(&manifest, consumer, dir, args.placeholders.into())?;
        let text = match cli.format {
            Format::Json => report::consumer_json(&outcome),
            Format::Table | Format::Markdown => report::consumer_table(&outcome),
            Format::Html => {
                bail!("--format html is available for `deed audit`; use table or json here")
            }
        };
        emit_with_annotations(cli, text, report::consumer_github(&outcome))?;
        return Ok(if outcome.violations.is_empty() { Outcome::Clean } else { Outcome::Findings });
    }
    let migrations = match &args.since {
        Some(reference) => {
            let files = super::since::changed_since(reference, &args.migrations)?;
            if files.is_empty() {
                eprintln!("deed check: no migration file added or changed since {reference}");
                return Ok(Outcome::Clean);
            }
            files
        }
        None => args.migrations.clone(),
    };
    let url = context::required_url(cli, Some(&manifest))?;
    let sources =
        Sources { from: args.from.clone(), from_log: args.from_log.clone(), ..Sources::default() };
    let audit = if sources.is_empty() {
        None
    } else {
        Some(super::audit::request(&sources, Some(manifest.clone()), Some(url.clone()))?)
    };
    let request = CheckRequest {
        manifest,
        database_url: url,
        scratch_url: args.scratch_url.clone(),
        migrations,
        audit,
        today: Date::today(),
    };
    let outcome = deed_check::check(&request).await?;
    let text = match cli.format {
        Format::Json => report::json(&outcome),
        Format::Table | Format::Markdown => report::table(&outcome),
        Format::Html => {
            bail!("--format html is available for `deed audit`; use table or json here")
        }
    };
    emit_with_annotations(cli, text, report::github(&outcome))?;
    Ok(if outcome.findings.is_empty() { Outcome::Clean } else { Outcome::Findings })
}

pub fn contract(cli: &Cli, command: &ContractCommand) -> Result<Outcome> {
    match command {
        ContractCommand::Bump { contract } => {
            let path = context::manifest_path(cli);
            let reference = deed_check::bump_file(&path, contract)?;
            context::emit(
                None,
                &format!(
                    "added {reference} to {}, copied from the latest version: edit its columns, `deed apply`, move its readers, then retire the old version\n",
                    path.display()
                ),
            )?;
            Ok(Outcome::Clean)
        }
    }
}
