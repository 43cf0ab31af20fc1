//! `deed compare` and `deed cutover`: rung 3.

use anyhow::{Result, bail};
use deed_compare::cutover::{self, Conditions};
use deed_compare::{CompareOptions, CompareReport};
use deed_manifest::Manifest;
use deed_manifest::edit::write_atomically;

use super::audit::request;
use crate::cli::{Cli, CompareArgs, CutoverArgs, Format};
use crate::context;
use crate::exit::Outcome;

/// The owner's and the consumer's databases of a projection.
fn databases(cli: &Cli, manifest: &Manifest, reference: &str) -> Result<(String, String)> {
    let shared = context::required_url(cli, Some(manifest))?;
    let env = |name: &str| std::env::var(name).ok();
    let (service, name) = reference.split_once('.').unwrap_or((reference, ""));
    let url_of = |name: &str| -> Result<String> {
        let Some(s) = manifest.service(name) else {
            bail!("the manifest has no service {name:?}");
        };
        Ok(manifest.service_database_url(s, &env)?.unwrap_or_else(|| shared.clone()))
    };
    let Some(projection) = manifest.service(service).and_then(|s| s.projection(name)) else {
        bail!("the manifest has no projection {reference:?} (write <service>.<projection>)");
    };
    Ok((url_of(&projection.event.service)?, url_of(service)?))
}

pub fn render(cli: &Cli, report: &CompareReport) -> Result<String> {
    Ok(match cli.format {
        Format::Table => report.table(),
        Format::Json => report.json(),
        Format::Markdown => report.markdown(),
        Format::Html => bail!(
            "--format html is available for `deed audit` and `deed status`; use table, json or markdown here"
        ),
    })
}

/// A producer `deed split` moved keeps its contract views in the shared
/// database (fed back by reverse replication) while its events come from
/// its own: a compare has no single consistent point there yet.
async fn refuse_moved_producer(
    cli: &Cli,
    manifest: &Manifest,
    target: &deed_compare::Target,
) -> Result<()> {
    let shared = deed_pg::connect(&context::required_url(cli, Some(manifest))?).await?;
    let producer = &target.spec.producer;
    if deed_state::splits::moved(&shared).await?.contains(producer) {
        bail!(
            "{producer}'s tables were moved to its own database by `deed split`: comparing a projection of them after the move is not supported yet (its contract views stay in the shared database, its events come from its own); compare before the split, or roll it back"
        );
    }
    Ok(())
}

pub async fn compare(cli: &Cli, args: &CompareArgs) -> Result<Outcome> {
    let manifest = context::required_manifest(cli)?;
    let target = deed_compare::target(&manifest, &args.projection)?;
    refuse_moved_producer(cli, &manifest, &target).await?;
    let (source_url, target_url) = databases(cli, &manifest, &args.projection)?;
    let opts = CompareOptions {
        nats: args.events_from.clone(),
        nats_auth: args.nats.auth(),
        wait: args.wait.get(),
        ..CompareOptions::default()
    };
    let source = deed_pg::connect(&source_url).await?;
    let consumer = deed_pg::connect(&target_url).await?;
    let report = deed_compare::compare(target, &source, &consumer, &opts).await?;
    context::emit(None, &render(cli, &report)?)?;
    Ok(if report.equal { Outcome::Clean } else { Outcome::Findings })
}

pub async fn cutover(cli: &Cli, args: &CutoverArgs) -> Result<Outcome> {
    let manifest = context::required_manifest(cli)?;
    let c = cutover::resolve(&manifest, &args.projection)?;
    let verb = if args.rollback { "rollback" } else { "cutover" };
    if c.reading == args.rollback {
        let state = if c.reading { "still reads" } else { "no longer reads" };
        context::emit(
            None,
            &format!("deed {verb}: {} {state} {}; nothing to do\n", c.service, c.replaces),
        )?;
        return Ok(Outcome::Clean);
    }
    let (source_url, target_url) = databases(cli, &manifest, &args.projection)?;
    if !args.rollback {
        let traffic = if args.sources.is_empty() {
            None
        } else {
            let outcome = deed_audit::run(&request(
                &args.sources,
                Some(manifest.clone()),
                Some(source_url.clone()),
            )?)
            .await?;
            let calls = outcome
                .catalogue
                .accesses
                .iter()
                .filter(|a| a.service == c.service && a.relation == c.view)
                .map(|a| a.calls)
                .sum();
            Some((calls, "the traffic given".to_string()))
        };
        let conditions = Conditions {
            max_age_seconds: args.max_age.seconds(),
            max_lag_seconds: args.max_lag.seconds(),
            traffic,
        };
        let spec = deed_compare::target(&manifest, &args.projection)?.spec;
        let consumer = deed_pg::connect(&target_url).await?;
        let refusals = cutover::check(&consumer, &spec, &c, &conditions).await?;
        if !refusals.is_empty() {
            let mut text =
                format!("deed cutover {}: refused, nothing was changed\n", args.projection);
            for r in &refusals {
                text.push_str(&format!("  - {r}\n"));
            }
            context::emit(None, &text)?;
            return Ok(Outcome::Findings);
        }
    }
    let path = context::manifest_path(cli);
    let old = manifest.source.text().to_string();
    let edited = cutover::edited(&manifest, &c, args.rollback, &|name| std::env::var(name).ok())?;
    let (new, check) = (edited.text, edited.manifest);
    // The edit must say exactly what the cutover (or rollback) means.
    let now_reads = check.service(&c.service).is_some_and(|s| s.reads.contains(&c.replaces));
    if now_reads != args.rollback {
        bail!("the edited manifest does not say what the {verb} means; nothing was changed");
    }
    let statements = cutover::statements(&c, &check, args.rollback)?;
    let mut owner = deed_pg::connect(&source_url).await?;
    cutover::execute(
        &mut owner,
        &statements,
        || write_atomically(&path, &new),
        || write_atomically(&path, &old),
    )
    .await?;
    let done = if args.rollback {
        format!(
            "{} reads {} again ({}); deed.toml lists it in reads again\n",
            c.service, c.view, c.replaces
        )
    } else {
        format!(
            "{} no longer reads {} ({}): it reads its projection {}; deed.toml no longer lists the read\n",
            c.service, c.view, c.replaces, args.projection
        )
    };
    let script: String = statements.iter().map(|s| format!("{s};\n")).collect();
    context::emit(None, &format!("{script}{done}"))?;
    Ok(Outcome::Clean)
}
