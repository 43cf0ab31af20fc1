//! plan, apply, drift and status: rung 1, contracts enforced by roles.

use anyhow::{Result, bail};
use deed_contracts::{ApplyOutcome, PlanRequest, Stage, report};
use deed_manifest::{Date, Manifest};

use super::audit::request;
use crate::cli::{ApplyArgs, Cli, Format, Sources, StatusArgs};
use crate::context;
use crate::exit::Outcome;

async fn make_plan(
    manifest: &Manifest,
    url: &str,
    sources: &Sources,
    stage: Stage,
) -> Result<deed_contracts::Plan> {
    let audit = if sources.is_empty() {
        None
    } else {
        Some(request(sources, Some(manifest.clone()), Some(url.to_string()))?)
    };
    let client = deed_pg::connect(url).await?;
    Ok(deed_contracts::plan(&client, PlanRequest { manifest, audit, today: Date::today(), stage })
        .await?)
}

fn render_plan(cli: &Cli, plan: &deed_contracts::Plan, manifest: &Manifest) -> Result<String> {
    Ok(match cli.format {
        Format::Table => report::plan_table(plan, manifest),
        Format::Json => report::plan_json(plan),
        Format::Markdown => report::plan_markdown(plan, manifest),
        Format::Html => {
            bail!("--format html is available for `deed audit`; use table, json or markdown here")
        }
    })
}

fn plan_outcome(plan: &deed_contracts::Plan) -> Outcome {
    if plan.is_breaking() || plan.blockers().next().is_some() {
        Outcome::Findings
    } else {
        Outcome::Clean
    }
}

pub async fn plan(cli: &Cli, sources: &Sources, stage: Stage) -> Result<Outcome> {
    let manifest = context::required_manifest(cli)?;
    let url = context::required_url(cli, Some(&manifest))?;
    let plan = make_plan(&manifest, &url, sources, stage).await?;
    context::emit(None, &render_plan(cli, &plan, &manifest)?)?;
    Ok(plan_outcome(&plan))
}

pub async fn apply(cli: &Cli, args: &ApplyArgs) -> Result<Outcome> {
    let manifest = context::required_manifest(cli)?;
    let url = context::required_url(cli, Some(&manifest))?;
    let stage = Stage::from(args.stage);
    if args.dry_run {
        return plan(cli, &args.sources, stage).await;
    }
    // With observed traffic, apply does exactly what the plan shows: the
    // views traffic still reads are kept, whether or not the plan breaks
    // something else (--allow-breaking allows that, never a drop).
    let mut keep = Vec::new();
    if !args.sources.is_empty() {
        let preview = make_plan(&manifest, &url, &args.sources, stage).await?;
        if preview.is_breaking() && !args.allow_breaking {
            context::emit(None, &render_plan(cli, &preview, &manifest)?)?;
            eprintln!(
                "deed apply: refused, the plan breaks observed traffic; nothing was changed (--allow-breaking overrides)"
            );
            return Ok(Outcome::Findings);
        }
        keep = preview.kept.iter().map(|k| k.view.clone()).collect();
    }
    let client = deed_pg::connect(&url).await?;
    match deed_contracts::apply_stage(&client, &manifest, Date::today(), &keep, stage).await? {
        ApplyOutcome::NothingToDo => {
            context::emit(
                None,
                "deed apply: nothing to do; the database already matches the manifest.\n",
            )?;
        }
        ApplyOutcome::Applied(changes) => {
            let mut text = format!(
                "deed apply: applied {} in one transaction{}\n",
                deed_text::plural(changes.len() as u64, "change", "changes"),
                if stage == Stage::Publish {
                    " (publish stage: nothing was taken away; `deed apply` enforces the rest)"
                } else {
                    ""
                }
            );
            for c in &changes {
                text.push_str(&format!("  {}\n", c.summary));
            }
            context::emit(None, &text)?;
        }
    }
    Ok(Outcome::Clean)
}

pub async fn drift(cli: &Cli) -> Result<Outcome> {
    let manifest = context::required_manifest(cli)?;
    let url = context::required_url(cli, Some(&manifest))?;
    let plan = make_plan(&manifest, &url, &Sources::default(), Stage::Enforce).await?;
    let text = match cli.format {
        Format::Table => report::drift_table(&plan),
        Format::Json => report::drift_json(&plan),
        Format::Markdown => report::drift_markdown(&plan),
        Format::Html => {
            bail!("--format html is available for `deed audit`; use table, json or markdown here")
        }
    };
    context::emit(None, &text)?;
    Ok(if plan.is_empty() { Outcome::Clean } else { Outcome::Findings })
}

pub async fn status(cli: &Cli, args: &StatusArgs) -> Result<Outcome> {
    let sources = &args.sources;
    let manifest = context::required_manifest(cli)?;
    let url = context::database_url(cli, Some(&manifest))?;
    let Some(max_retained) = deed_relay::health::parse_bytes(&args.max_retained_wal) else {
        bail!("--max-retained-wal {:?}: write a size such as 512MB or 2GB", args.max_retained_wal);
    };
    let mut capture = Vec::new();
    let (catalogue, drift) = match &url {
        Some(url) => {
            let client = deed_pg::connect(url).await?;
            capture = deed_relay::health::capture_health(&client, &manifest, max_retained).await?;
            let plan = make_plan(&manifest, url, &Sources::default(), Stage::Enforce).await?;
            let drift: Vec<String> = plan.changes.iter().map(|c| c.drift.clone()).collect();
            let catalogue = if sources.is_empty() {
                None
            } else {
                Some(
                    deed_audit::run(&request(sources, Some(manifest.clone()), Some(url.clone()))?)
                        .await?
                        .catalogue,
                )
            };
            (catalogue, Some(drift))
        }
        None if !sources.is_empty() => {
            let outcome = deed_audit::run(&request(sources, Some(manifest.clone()), None)?).await?;
            (Some(outcome.catalogue), None)
        }
        None => (None, None),
    };
    let status = deed_contracts::status(&manifest, catalogue.as_ref(), drift, Date::today());
    let text = match cli.format {
        Format::Table | Format::Markdown => {
            let base = if cli.format == Format::Table {
                report::status_table(&status)
            } else {
                report::status_markdown(&status)
            };
            base + &deed_relay::health::render(&capture)
        }
        Format::Json => {
            let mut v: serde_json::Value = serde_json::from_str(&report::status_json(&status))?;
            v["capture"] = serde_json::to_value(&capture)?;
            serde_json::to_string_pretty(&v)? + "\n"
        }
        Format::Html => {
            bail!("--format html is available for `deed audit`; use table, json or markdown here")
        }
    };
    context::emit(None, &text)?;
    // A slot in danger of filling the disk, or one that lost WAL, needs
    // someone now: fail the check that runs this.
    Ok(if capture.iter().any(|h| !h.problems.is_empty()) {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}
