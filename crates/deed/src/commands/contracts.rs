//! plan, apply, drift and status: rung 1, contracts enforced by roles.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Result, bail};
use deed_contracts::{ApplyOptions, ApplyOutcome, ContractError, Stage, report};
use deed_manifest::{Date, Manifest};

use super::audit::request;
use super::saved_plan;
use crate::cli::{ApplyArgs, Cli, Format, PlanArgs, Sources, StatusArgs};
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
    let env = |name: &str| std::env::var(name).ok();
    let client = deed_pg::connect(url).await?;
    Ok(deed_ladder::gather::plan(&client, manifest, url, audit, stage, &env).await?)
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

/// Shows the plan; with `out`, also saves it for `deed apply FILE`.
pub async fn plan(
    cli: &Cli,
    sources: &Sources,
    stage: Stage,
    out: Option<&Path>,
) -> Result<Outcome> {
    let manifest = context::required_manifest(cli)?;
    let url = context::required_url(cli, Some(&manifest))?;
    let plan = make_plan(&manifest, &url, sources, stage).await?;
    context::emit(None, &colour(&render_plan(cli, &plan, &manifest)?, cli))?;
    if let Some(out) = out {
        let text = std::fs::read_to_string(context::manifest_path(cli))?;
        saved_plan::save(out, &text, stage, &plan)?;
        eprintln!(
            "deed plan: saved to {}; `deed apply {}` applies exactly this",
            out.display(),
            out.display()
        );
    }
    Ok(plan_outcome(&plan))
}

pub async fn plan_command(cli: &Cli, args: &PlanArgs) -> Result<Outcome> {
    plan(cli, &args.sources, Stage::from(args.stage), args.out.as_deref()).await
}

pub async fn apply(cli: &Cli, args: &ApplyArgs) -> Result<Outcome> {
    let manifest = context::required_manifest(cli)?;
    let url = context::required_url(cli, Some(&manifest))?;
    let stage = Stage::from(args.stage);
    if let Some(file) = &args.plan {
        return apply_saved(cli, &manifest, &url, file).await;
    }
    if args.dry_run {
        return plan(cli, &args.sources, stage, None).await;
    }
    // Apply does exactly what the plan shows: the views traffic still reads
    // are kept, whether or not the plan breaks something else
    // (--allow-breaking allows that, never a drop). A plan that breaks
    // consumers (observed traffic, a consumed event's contract) is refused.
    let interactive =
        !args.yes && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let preview = make_plan(&manifest, &url, &args.sources, stage).await?;
    if preview.is_breaking() && !args.allow_breaking {
        context::emit(None, &colour(&render_plan(cli, &preview, &manifest)?, cli))?;
        eprintln!(
            "deed apply: refused, the plan breaks consumers (observed traffic, a consumed event's contract, or a cutover no compare proves); nothing was changed (--allow-breaking overrides)"
        );
        return Ok(Outcome::Findings);
    }
    if interactive {
        if preview.is_empty() {
            context::emit(
                None,
                "deed apply: nothing to do; the database already matches the manifest.\n",
            )?;
            return Ok(Outcome::Clean);
        }
        context::emit(None, &colour(&report::plan_table(&preview, &manifest), cli))?;
        if !confirm()? {
            eprintln!("deed apply: cancelled; nothing was changed");
            return Ok(Outcome::Findings);
        }
    }
    let keep: Vec<_> = preview.kept.iter().map(|k| k.view.clone()).collect();
    // What was shown is what runs: a change in between refuses it.
    let expected = interactive.then(|| preview.expected());
    let options = ApplyOptions { keep: &keep, stage, expect: expected.as_deref() };
    finish_apply(cli, &manifest, &url, &options).await
}

/// `deed apply FILE`: the saved plan, exactly, or nothing.
async fn apply_saved(cli: &Cli, manifest: &Manifest, url: &str, file: &Path) -> Result<Outcome> {
    let saved = saved_plan::load(file)?;
    let now = std::fs::read_to_string(context::manifest_path(cli))?;
    if now != saved.manifest {
        eprintln!(
            "deed apply: refused, {} changed since {} was saved; nothing was changed (run deed plan -o again)",
            context::manifest_path(cli).display(),
            file.display()
        );
        return Ok(Outcome::Findings);
    }
    let options =
        ApplyOptions { keep: &saved.keep, stage: saved.stage, expect: Some(&saved.statements) };
    finish_apply(cli, manifest, url, &options).await
}

async fn finish_apply(
    cli: &Cli,
    manifest: &Manifest,
    url: &str,
    options: &ApplyOptions<'_>,
) -> Result<Outcome> {
    let client = deed_pg::connect(url).await?;
    let outcome = match deed_contracts::apply_with(&client, manifest, Date::today(), options).await
    {
        Err(e @ (ContractError::PlanChanged | ContractError::Blocked(_))) => {
            eprintln!("deed apply: refused: {}", deed_text::terminal_safe(&e.to_string()));
            return Ok(Outcome::Findings);
        }
        other => other?,
    };
    match outcome {
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
                if options.stage == Stage::Publish {
                    " (publish stage: nothing was taken away; `deed apply` enforces the rest)"
                } else {
                    ""
                }
            );
            for c in &changes {
                text.push_str(&format!("  {}\n", past_tense(&c.summary)));
            }
            context::emit(None, &colour(&text, cli))?;
        }
    }
    Ok(Outcome::Clean)
}

/// Asks on the terminal; only `yes` applies, as terraform does.
fn confirm() -> Result<bool> {
    use std::io::Write;
    print!("\nApply these changes? Only 'yes' applies: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// "create role x" → "created role x": what apply did, not what it will do.
fn past_tense(summary: &str) -> String {
    const VERBS: &[(&str, &str)] = &[
        ("create", "created"),
        ("grant", "granted"),
        ("revoke", "revoked"),
        ("drop", "dropped"),
        ("make", "made"),
        ("set", "set"),
        ("take", "took"),
        ("give", "gave"),
        ("install", "installed"),
        ("register", "registered"),
        ("unregister", "unregistered"),
        ("remove", "removed"),
        ("restore", "restored"),
        ("record", "recorded"),
        ("add", "added"),
        ("alter", "altered"),
        ("change", "changed"),
    ];
    let (first, rest) = summary.split_once(' ').unwrap_or((summary, ""));
    match VERBS.iter().find(|(now, _)| *now == first) {
        Some((_, done)) if rest.is_empty() => done.to_string(),
        Some((_, done)) => format!("{done} {rest}"),
        None => summary.to_string(),
    }
}

/// Colour for a person at a terminal: added lines green, removed red,
/// changed yellow, breaks and blockers red; none when piped, with
/// `NO_COLOR`, or for machine formats.
fn colour(text: &str, cli: &Cli) -> String {
    if cli.format != Format::Table
        || !std::io::stdout().is_terminal()
        || std::env::var_os("NO_COLOR").is_some()
    {
        return text.to_string();
    }
    text.lines()
        .map(|line| {
            let t = line.trim_start();
            let code = if t.starts_with("+ ") {
                "32"
            } else if t.starts_with("- ") || t.starts_with("breaks ") || t.starts_with("! ") {
                "31"
            } else if t.starts_with("~ ") {
                "33"
            } else {
                return line.to_string();
            };
            format!("\x1b[{code}m{line}\x1b[0m")
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if text.ends_with('\n') { "\n" } else { "" }
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
    context::emit(None, &colour(&text, cli))?;
    Ok(if plan.is_empty() { Outcome::Clean } else { Outcome::Findings })
}

pub async fn status(cli: &Cli, args: &StatusArgs) -> Result<Outcome> {
    let sources = &args.sources;
    let manifest = context::required_manifest(cli)?;
    let url = context::database_url(cli, Some(&manifest))?;
    let max_retained = i64::try_from(args.max_retained_wal.0).unwrap_or(i64::MAX);
    let bounds = deed_ladder::Bounds {
        max_lag_seconds: args.max_lag.seconds(),
        max_compare_age_seconds: args.max_compare_age.seconds(),
    };
    // A bus that cannot be named is bad input, found before anything else.
    let backlog = match &args.bus {
        Some(b) => {
            let bus = deed_bus::Bus::parse(b).map_err(|e| anyhow::anyhow!("--bus {e}"))?;
            Some(deed_project::source::Backlog::open(&bus, &args.nats.auth()).await?)
        }
        None => None,
    };
    let catalogue = if sources.is_empty() {
        None
    } else {
        Some(
            deed_audit::run(&request(sources, Some(manifest.clone()), url.clone())?)
                .await?
                .catalogue,
        )
    };
    let mut observed = match &url {
        Some(url) => {
            let env = |name: &str| std::env::var(name).ok();
            let reach = deed_ladder::gather::Reach {
                max_retained_bytes: max_retained,
                backlog: backlog.as_ref(),
            };
            deed_ladder::gather::observe(&manifest, url, &reach, &env).await?
        }
        None => deed_ladder::Observed::default(),
    };
    observed.catalogue = catalogue.as_ref();
    let status = deed_ladder::status(&manifest, observed, Date::today(), bounds);
    let text = match cli.format {
        Format::Table => deed_ladder::render::table(&status),
        Format::Markdown => deed_ladder::render::markdown(&status),
        Format::Json => deed_ladder::render::json(&status),
        Format::Html => deed_ladder::render::html(&status),
    };
    context::emit(None, &text)?;
    // A slot in danger of filling the disk, a projection far behind or
    // dead letters waiting need someone now: fail the check that runs this.
    Ok(if status.stalled() { Outcome::Findings } else { Outcome::Clean })
}
