//! `deed split`: rung 4.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use deed_manifest::Manifest;
use deed_split::pgbouncer::PgBouncer;
use deed_split::{Phase, Split, SplitError, phases, status};

use crate::cli::{Cli, Format, SplitArgs};
use crate::context;
use crate::exit::Outcome;
use deed_manifest::edit::{Edit, write_atomically};

fn say(cli: &Cli, text: &str) -> Result<()> {
    if cli.format == Format::Table || cli.format == Format::Markdown {
        context::emit(None, text)?;
    }
    Ok(())
}

/// The target's URL as written (kept in deed.toml) and resolved.
fn target(manifest: &Manifest, args: &SplitArgs) -> Result<(String, String)> {
    let env = |name: &str| std::env::var(name).ok();
    if let Some(to) = &args.to {
        let url = deed_manifest::resolve_references(to, &env)
            .map_err(|e| anyhow::anyhow!("--to: {e}"))?;
        return Ok((to.clone(), url));
    }
    let s = manifest.service(&args.service).expect("checked by the caller");
    match (s.database_written(), manifest.service_database_url(s, &env)?) {
        (Some((written, _)), Some(url)) => Ok((written.to_string(), url)),
        _ => bail!(
            "--to URL: where should {}'s tables go? (its own database, on another server)",
            args.service
        ),
    }
}

/// `deed split`; every refusal, wherever it comes from, is exit 1 with its
/// reasons (JSON with `--format json`).
pub async fn run(cli: &Cli, args: &SplitArgs) -> Result<Outcome> {
    match phase(cli, args).await {
        Err(e) => match e.downcast::<SplitError>() {
            Ok(SplitError::Refused { service, refusals }) => {
                let mut text = format!("deed split {service}: refused, nothing was changed\n");
                for r in &refusals {
                    text.push_str(&format!("  - {r}\n"));
                }
                if cli.format == Format::Json {
                    text = serde_json::to_string_pretty(&serde_json::json!({"refused": refusals}))?
                        + "\n";
                }
                context::emit(None, &text)?;
                Ok(Outcome::Findings)
            }
            // Not now (a phase out of order, no fresh proof): a refusal too.
            Ok(SplitError::NotNow(why)) => {
                let text = match cli.format {
                    Format::Json => {
                        let refused = serde_json::json!([{"at": args.service, "reason": why}]);
                        serde_json::to_string_pretty(&serde_json::json!({ "refused": refused }))?
                            + "\n"
                    }
                    _ => format!(
                        "deed split {}: refused, nothing was changed\n  - {why}\n",
                        args.service
                    ),
                };
                context::emit(None, &text)?;
                Ok(Outcome::Findings)
            }
            Ok(other) => Err(other.into()),
            Err(e) => Err(e),
        },
        ok => ok,
    }
}

async fn phase(cli: &Cli, args: &SplitArgs) -> Result<Outcome> {
    let manifest = context::required_manifest(cli)?;
    let shared_url = context::required_url(cli, Some(&manifest))?;
    if manifest.service(&args.service).is_none() {
        bail!("the manifest has no service {:?}", args.service);
    }
    let (written, target_url) = target(&manifest, args)?;
    if deed_pg::endpoint(&target_url)?.to_string() == deed_pg::endpoint(&shared_url)?.to_string() {
        bail!("--to is the shared database itself: give the service's own database");
    }
    let shared = deed_pg::connect(&shared_url).await?;
    let target_db = deed_pg::connect(&target_url).await?;
    let conninfo = args.source_conninfo.clone().unwrap_or_else(|| shared_url.clone());
    let mut split =
        Split::open(&manifest, &args.service, shared, target_db, conninfo, target_url).await?;
    let max_age = args.max_age.get();
    let fence = args.fence_timeout.get();
    let copy_wait = args.copy_timeout.get();
    let traffic = match &args.pgbouncer {
        Some(v) => Some(PgBouncer::connect(&v[0], &v[1]).await?),
        None => None,
    };
    if args.status {
        let s = status::status(&split).await?;
        let text = match cli.format {
            Format::Json => serde_json::to_string_pretty(&s)? + "\n",
            _ => status::table(&s),
        };
        context::emit(None, &text)?;
        return Ok(Outcome::Clean);
    }
    if args.rollback {
        rollback(cli, &manifest, &mut split, fence, traffic.as_ref()).await
    } else if args.finish {
        finish(cli, args, &manifest, &mut split).await
    } else {
        forward(
            cli,
            &manifest,
            args,
            &mut split,
            &written,
            (max_age, fence, copy_wait),
            traffic.as_ref(),
        )
        .await
    }
}

async fn finish(
    cli: &Cli,
    args: &SplitArgs,
    manifest: &Manifest,
    split: &mut Split,
) -> Result<Outcome> {
    let done = phases::finish(split, manifest, args.drop_source).await?;
    say(
        cli,
        &format!("deed split {}: finished; dropped {}\n", args.service, done.dropped.join(", ")),
    )?;
    json(cli, &done)?;
    Ok(Outcome::Clean)
}

fn json<T: serde::Serialize>(cli: &Cli, value: &T) -> Result<()> {
    if cli.format == Format::Json {
        context::emit(None, &(serde_json::to_string_pretty(value)? + "\n"))?;
    }
    Ok(())
}

async fn forward(
    cli: &Cli,
    manifest: &Manifest,
    args: &SplitArgs,
    split: &mut Split,
    written: &str,
    (max_age, fence, copy_wait): (Duration, Duration, Duration),
    traffic: Option<&PgBouncer>,
) -> Result<Outcome> {
    let all = !(args.prepare || args.copy || args.prove || args.cutover);
    let phase = split.recorded.as_ref().map(|r| r.phase);
    let name = args.service.clone();
    let mut report = serde_json::Map::new();
    if args.prepare || args.dry_run || (all && phase.is_none()) {
        let p = phases::prepare(split, manifest, args.dry_run).await?;
        let verb = if p.applied {
            "ran on the target, in one transaction"
        } else {
            "would run on the target (dry run)"
        };
        let mut text = format!("deed split {name}: prepare {verb}:\n");
        for s in &p.statements {
            text.push_str(&format!("{s};\n"));
        }
        if !p.after_copy.is_empty() {
            text.push_str(&format!(
                "-- after the copy: {} indexes and constraints\n",
                p.after_copy.len()
            ));
        }
        for n in &p.notes {
            text.push_str(&format!("note: {n}\n"));
        }
        say(cli, &text)?;
        report.insert("prepare".into(), serde_json::to_value(&p)?);
        if args.dry_run {
            json(cli, &report)?;
            return Ok(Outcome::Clean);
        }
    }
    let phase = split.recorded.as_ref().map(|r| r.phase);
    let on_target = split.recorded.as_ref().is_some_and(|r| r.live == "target");
    if args.copy || (all && !on_target && phase.is_some_and(|p| p < Phase::Following)) {
        let quiet = !std::io::IsTerminal::is_terminal(&std::io::stderr());
        let c = phases::copy(split, copy_wait, &mut |s| {
            if !quiet {
                eprintln!("  copied {} of {} tables", s.ready, s.tables);
            }
        })
        .await?;
        say(
            cli,
            &format!(
                "deed split {name}: {} tables copied and following ({:.1} s; {} indexes and constraints built after the copy; {} bytes behind)\n",
                c.tables,
                c.seconds,
                c.after_copy,
                c.lag_bytes.unwrap_or(0)
            ),
        )?;
        report.insert("copy".into(), serde_json::to_value(&c)?);
    }
    let fresh = split.recorded.as_ref().is_some_and(|r| r.phase >= Phase::Proven);
    let on_target = split.recorded.as_ref().is_some_and(|r| r.live == "target");
    if args.prove || (all && !on_target && !fresh) {
        let p = phases::prove_phase(split, fence.max(Duration::from_secs(60))).await?;
        let mut text = format!(
            "deed split {name}: {} at fence {}\n",
            if p.equal { "every table equal to its copy" } else { "DIFFERENCES" },
            p.fence_lsn
        );
        for t in &p.tables {
            text.push_str(&format!(
                "  {:<32} {:>10} rows  {:>8} ms  {}\n",
                t.table,
                t.source_rows,
                t.millis,
                if t.equal() {
                    "equal".to_string()
                } else {
                    format!(
                        "{} missing, {} extra, {} different, {} in flight",
                        t.missing.len(),
                        t.extra.len(),
                        t.different.len(),
                        t.in_flight.len()
                    )
                }
            ));
        }
        say(cli, &text)?;
        report.insert("prove".into(), serde_json::to_value(&p)?);
        if !p.equal {
            json(cli, &report)?;
            return Ok(Outcome::Findings);
        }
    }
    if args.cutover || all {
        if !on_target {
            remember_database(split, manifest).await?;
        }
        let s = phases::switch(split, true, max_age, fence, traffic).await?;
        let mut text = if s.already {
            format!("deed split {name}: already cut over; its writes are on the target\n")
        } else {
            format!("deed split {name}: cut over; writes were fenced for {:.0} ms\n", s.fence_ms)
        };
        for (step, ms) in &s.steps {
            text.push_str(&format!("  {ms:>7.1} ms  {step}\n"));
        }
        deed_split::crash::point("cutover:recorded");
        let path = context::manifest_path(cli);
        let service = manifest.service(&name).expect("checked");
        if service.database_written().map(|(w, _)| w) != Some(written) {
            moved_database(manifest, &name, Some(written)).and_then(|new| Ok(write_atomically(&path, &new)?)).with_context(|| {
                format!("the writes moved, but {} could not be written: set `database = \"{}\"` under [services.{name}] by hand", path.display(), deed_pg::redact_url(written))
            })?;
            // As written, a password hidden.
            text.push_str(&format!(
                "deed.toml: [services.{name}] database = {:?}\n",
                deed_pg::redact_url(written)
            ));
        }
        if traffic.is_none() && !s.already {
            text.push_str(&format!(
                "now: point {name}'s connections at its own database (its writes there are allowed from now on; the shared database refuses them)\n"
            ));
        }
        say(cli, &text)?;
        report.insert("cutover".into(), serde_json::to_value(&s)?);
    }
    json(cli, &report)?;
    Ok(Outcome::Clean)
}

/// The manifest's text with `service`'s `database` set to `value` as
/// written (or removed), validated.
fn moved_database(manifest: &Manifest, service: &str, value: Option<&str>) -> Result<String> {
    let mut edit = Edit::of(manifest)?;
    edit.set_database(service, value)?;
    Ok(edit.finish_with_env()?.text)
}

/// Keeps the service's `database` as written, for a rollback to put back.
async fn remember_database(split: &Split, manifest: &Manifest) -> Result<()> {
    let service = manifest.service(&split.service.name).expect("checked");
    let previous = service.database_written().map(|(w, _)| w.to_string());
    deed_split::state::remember_database(&split.shared, &split.service.name, previous.as_deref())
        .await?;
    Ok(())
}

async fn rollback(
    cli: &Cli,
    manifest: &Manifest,
    split: &mut Split,
    fence: Duration,
    traffic: Option<&PgBouncer>,
) -> Result<Outcome> {
    let name = split.service.name.clone();
    let previous = split.recorded.as_ref().and_then(|r| r.previous_database.clone());
    let s = phases::switch(split, false, Duration::MAX, fence, traffic).await?;
    let mut text = if s.already {
        format!("deed split {name}: its writes are already on the shared database\n")
    } else {
        format!("deed split {name}: rolled back; writes were fenced for {:.0} ms\n", s.fence_ms)
    };
    for (step, ms) in &s.steps {
        text.push_str(&format!("  {ms:>7.1} ms  {step}\n"));
    }
    let service = manifest.service(&name).expect("checked");
    let now = service.database_written().map(|(w, _)| w.to_string());
    if now != previous {
        let path = context::manifest_path(cli);
        moved_database(manifest, &name, previous.as_deref()).and_then(|new| Ok(write_atomically(&path, &new)?)).with_context(|| {
            format!("the writes moved back, but {} could not be written: restore {name}'s `database` by hand", path.display())
        })?;
        text.push_str(&format!(
            "deed.toml: [services.{name}] database = {}\n",
            previous.as_deref().map_or("(none: the shared database)".to_string(), |p| format!(
                "{:?}",
                deed_pg::redact_url(p)
            ))
        ));
    }
    say(cli, &text)?;
    json(cli, &s)?;
    Ok(Outcome::Clean)
}
