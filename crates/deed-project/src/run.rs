//! `deed project`: runs every projection of one service until idle or
//! until asked to stop (SIGTERM finishes the transaction in progress).

use std::sync::Arc;
use std::time::{Duration, Instant};

use deed_manifest::Manifest;
use deed_pg::Client;
use tokio::sync::watch;

use crate::apply::Applier;
use crate::error::{ProjectError, query};
use crate::metrics::Metrics;
use crate::source::Source;
use crate::spec::{self, ProjectionSpec, SpecKind};
use crate::store::{self, Phase, Progress};
use crate::{backfill, deadletter, table};

#[derive(Clone)]
pub struct ProjectOptions {
    pub manifest: Manifest,
    pub service: String,
    /// The shared (owner's) database: contract views, the backfill.
    pub shared_url: String,
    /// The service's own database: projections, the inbox, bookkeeping.
    pub target_url: String,
    /// `None`: the inbox; a bus URL (`nats://a,nats://b`: JetStream).
    pub from: Option<String>,
    /// How to sign in to NATS.
    pub auth: deed_bus::NatsAuth,
    pub until_idle: bool,
    pub batch: usize,
    pub chunk: usize,
    /// Projections to backfill again from scratch.
    pub backfill: Vec<String>,
    pub retry_dead: bool,
    pub shutdown: watch::Receiver<bool>,
    pub metrics: Arc<Metrics>,
}

impl ProjectOptions {
    pub fn new(
        manifest: Manifest,
        service: &str,
        shared_url: &str,
        target_url: &str,
    ) -> ProjectOptions {
        ProjectOptions {
            manifest,
            service: service.to_string(),
            shared_url: shared_url.to_string(),
            target_url: target_url.to_string(),
            from: None,
            auth: deed_bus::NatsAuth::default(),
            until_idle: false,
            batch: 5000,
            chunk: 10_000,
            backfill: Vec::new(),
            retry_dead: false,
            shutdown: watch::channel(false).1,
            metrics: Arc::new(Metrics::default()),
        }
    }
}

/// What one projection did in this run, and where it stands.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProjectionReport {
    pub name: String,
    pub event: String,
    pub applied: u64,
    pub skipped: u64,
    pub dead_letters: u64,
    pub backfilled_rows: u64,
    /// Wall time of this run's backfill.
    pub backfill_seconds: f64,
    pub created_table: bool,
    pub retried: u64,
    pub position: String,
    /// Dead letters waiting in the table at the end of the run.
    pub dead_letters_waiting: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ProjectReport {
    pub service: String,
    pub projections: Vec<ProjectionReport>,
}

/// Only one projector per service and database moves its projections.
const LOCK_CLASS: i32 = 0x6465_6470; // "dedp"

async fn take_lock(
    target: &Client,
    service: &str,
    wait: bool,
    shutdown: &watch::Receiver<bool>,
    liveness: &deed_events::Liveness,
) -> Result<bool, ProjectError> {
    // A projector that stopped (or was killed) a moment ago may hold the
    // lock until its server session notices: a few seconds of grace
    // before refusing.
    let grace = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got: bool = target
            .query_one(
                "SELECT pg_catalog.pg_try_advisory_lock($1, pg_catalog.hashtext($2))",
                &[&LOCK_CLASS, &service],
            )
            .await
            .map_err(query("taking the projector's lock"))?
            .get(0);
        if got {
            return Ok(true);
        }
        if !wait && std::time::Instant::now() < grace {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        if !wait {
            return Err(ProjectError::Setup(format!(
                "another `deed project --service {service}` is running against this database; one runs at a time"
            )));
        }
        if *shutdown.borrow() {
            return Ok(false);
        }
        tracing::info!(service, "another projector runs; standing by");
        liveness
            .standby("another projector of the service runs; this one takes over when it stops");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

struct Running {
    applier: Applier,
    /// A table projection's contract columns with their types.
    columns: Vec<table::Column>,
    progress: Progress,
    report: ProjectionReport,
}

/// Runs the service's projections: once with `until_idle`; otherwise as
/// a daemon that, when a database or the bus fails, waits and starts
/// again from what is committed (nothing is lost or applied twice by
/// starting over), until asked to stop.
pub async fn run(opts: ProjectOptions) -> Result<ProjectReport, ProjectError> {
    check_backfill_names(&opts)?;
    if opts.until_idle {
        return run_once(&opts).await;
    }
    let mut opts = opts;
    let mut wait = Duration::from_secs(1);
    loop {
        match run_once(&opts).await {
            Ok(report) => return Ok(report),
            Err(e @ ProjectError::Setup(_)) => return Err(e),
            // A privilege or a credential refused: retrying cannot fix it.
            Err(ProjectError::Database(e)) if e.is_refusal() => {
                return Err(ProjectError::Database(e));
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = wait.as_secs(), "projector failed; starting over");
                opts.metrics.liveness.retrying(&e.to_string());
                // What was asked once is done or will be redone from its
                // recorded progress; it is not asked again.
                opts.backfill.clear();
                opts.retry_dead = false;
                let mut stop = opts.shutdown.clone();
                if *stop.borrow() {
                    return Err(e);
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return Err(e),
                }
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// `--backfill` names table projections only.
fn check_backfill_names(opts: &ProjectOptions) -> Result<(), ProjectError> {
    let specs = spec::projections(&opts.manifest, &opts.service)?;
    for name in &opts.backfill {
        match specs.iter().find(|s| &s.name == name) {
            Some(s) if s.table().is_some() => {}
            Some(_) => {
                return Err(ProjectError::Setup(format!(
                    "--backfill {name}: a handler keeps no copy to backfill"
                )));
            }
            None => {
                return Err(ProjectError::Setup(format!(
                    "--backfill {name}: {} has no such projection",
                    opts.service
                )));
            }
        }
    }
    Ok(())
}

async fn run_once(opts: &ProjectOptions) -> Result<ProjectReport, ProjectError> {
    let specs = spec::projections(&opts.manifest, &opts.service)?;
    let mut target = deed_pg::connect_plain(&opts.target_url).await?;
    if !take_lock(&target, &opts.service, !opts.until_idle, &opts.shutdown, &opts.metrics.liveness)
        .await?
    {
        return Ok(ProjectReport { service: opts.service.clone(), projections: Vec::new() });
    }
    store::ensure_schema(&target).await?;
    let needs_source = specs.iter().any(|s| s.table().is_some());
    let source_db =
        if needs_source { Some(deed_pg::connect(&opts.shared_url).await?) } else { None };
    let logins = opts.manifest.service(&opts.service).map(|s| s.logins.clone()).unwrap_or_default();
    let mut running = Vec::new();
    for spec in specs {
        running.push(prepare(&mut target, source_db.as_ref(), spec, &logins, opts).await?);
    }
    let mut source = Source::open(opts.from.as_deref(), &opts.target_url, &opts.auth).await?;
    for r in &mut running {
        if r.progress.phase == Phase::Backfill {
            let db = source_db.as_ref().expect("table projections connect to the owner's database");
            run_backfill(db, &mut target, r, opts).await?;
        }
        if opts.retry_dead {
            let (applied, left) = r.applier.retry_dead(&mut target).await?;
            tracing::info!(projection = %r.report.name, applied, left, "retried dead letters");
            r.report.retried = applied;
        }
    }
    // The gauge starts from what waits in the table; follow adds new ones.
    let waiting = deadletter::counts(&target, &opts.service).await?;
    for r in &running {
        let n = waiting.iter().find(|(p, _)| *p == r.report.name).map_or(0, |(_, n)| *n);
        opts.metrics.update(&r.report.name, |m| m.dead_letters_waiting = n);
    }
    follow(&mut target, &mut source, &mut running, opts).await?;
    let counts = deadletter::counts(&target, &opts.service).await?;
    for r in &mut running {
        r.report.position = r.progress.position.clone();
        r.report.dead_letters_waiting =
            counts.iter().find(|(p, _)| *p == r.report.name).map_or(0, |(_, n)| *n);
    }
    Ok(ProjectReport {
        service: opts.service.clone(),
        projections: running.into_iter().map(|r| r.report).collect(),
    })
}

/// Checks or creates a projection's table, prepares its handler, and
/// decides where it starts.
async fn prepare(
    target: &mut Client,
    source_db: Option<&Client>,
    spec: ProjectionSpec,
    logins: &[deed_ident::Ident],
    opts: &ProjectOptions,
) -> Result<Running, ProjectError> {
    let mut created = false;
    let mut columns = Vec::new();
    if let (SpecKind::Table(t), Some(db)) = (&spec.kind, source_db) {
        let wanted = table::contract_columns(db, &spec, t).await?;
        columns = wanted.clone();
        created = table::ensure(target, &spec, t, &wanted, logins).await?;
        if created {
            tracing::info!(projection = %spec.name, table = %t.table, "created the projection table");
        }
    }
    let mut applier = Applier::new(spec.clone());
    applier.prepare(target).await?;
    let existing = store::load(target, &spec).await?;
    let again = opts.backfill.contains(&spec.name);
    let restart = match &existing {
        None => true,
        // A handler keeps its place: replaying history through a changed
        // statement could repeat effects the old one already had.
        Some(p) if p.definition != spec.definition() && spec.table().is_none() => {
            tracing::warn!(projection = %spec.name, "the handler changed: it goes on from its position");
            store::redefine(target, &spec).await?;
            false
        }
        Some(p) if p.definition != spec.definition() => {
            tracing::warn!(projection = %spec.name, "the projection's definition changed: it starts over");
            true
        }
        Some(_) => again || created,
    };
    if restart {
        match (&spec.kind, source_db) {
            (SpecKind::Table(_), Some(db)) => {
                let fence = backfill::fence(db).await?;
                store::start(target, &spec, &fence, true).await?;
            }
            // A handler starts with the oldest event the source still has.
            _ => store::start(target, &spec, "", false).await?,
        }
    }
    let progress = store::load(target, &spec).await?.expect("recorded above");
    let report = ProjectionReport {
        name: spec.name.clone(),
        event: spec.event.clone(),
        applied: 0,
        skipped: 0,
        dead_letters: 0,
        backfilled_rows: 0,
        backfill_seconds: 0.0,
        created_table: created,
        retried: 0,
        position: progress.position.clone(),
        dead_letters_waiting: 0,
    };
    Ok(Running { applier, columns, progress, report })
}

async fn run_backfill(
    db: &Client,
    target: &mut Client,
    r: &mut Running,
    opts: &ProjectOptions,
) -> Result<(), ProjectError> {
    let name = r.report.name.clone();
    let metrics = opts.metrics.clone();
    metrics.update(&name, |m| m.backfilling = 1);
    let started = Instant::now();
    let mut last_log = Instant::now();
    let mut copied = r.progress.rows;
    let job = backfill::Backfill {
        spec: &r.applier.spec,
        columns: &r.columns,
        chunk: opts.chunk,
        stop: &opts.shutdown,
    };
    let rows = backfill::run(&job, db, target, &r.progress, |n| {
        copied += n;
        metrics.update(&name, |m| m.backfill_rows += n as u64);
        metrics.liveness.working();
        if last_log.elapsed() > Duration::from_secs(2) {
            tracing::info!(projection = %name, rows = copied, "backfilling");
            last_log = Instant::now();
        }
    })
    .await?;
    metrics.update(&name, |m| m.backfilling = 0);
    tracing::info!(projection = %name, rows, seconds = started.elapsed().as_secs_f64(), "backfill done");
    r.report.backfilled_rows = rows as u64;
    r.report.backfill_seconds = started.elapsed().as_secs_f64();
    r.progress = store::load(target, &r.applier.spec).await?.expect("recorded");
    Ok(())
}

/// Batches one projection applies before the next gets its turn.
const BATCHES_IN_A_ROW: usize = 20;

/// Applies events batch by batch, round robin over the projections,
/// until the sources are idle (`--until-idle`) or a stop is asked for.
async fn follow(
    target: &mut Client,
    source: &mut Source,
    running: &mut [Running],
    opts: &ProjectOptions,
) -> Result<(), ProjectError> {
    let mut last_log = Instant::now();
    loop {
        opts.metrics.liveness.working();
        let mut busy = false;
        for r in running.iter_mut() {
            if *opts.shutdown.borrow() {
                return Ok(());
            }
            if r.progress.phase != Phase::Live {
                continue;
            }
            let mut batch = source.fetch(&r.applier.spec, &r.progress.position, opts.batch).await?;
            // A projection with a backlog gets a few batches in a row; from
            // the inbox, the next is read while this one is applied. A
            // batch read is always applied: a bus's reader has moved past
            // it, so the turn ends before reading, never after.
            for round in 1..=BATCHES_IN_A_ROW {
                if batch.is_empty() {
                    opts.metrics.update(&r.report.name, |m| m.lag_seconds = 0.0);
                    break;
                }
                busy = true;
                let full = batch.len() >= opts.batch;
                let another = full && round < BATCHES_IN_A_ROW;
                let last = batch.last().map(|e| e.position.clone()).unwrap_or_default();
                let (done, next) = match source.inbox() {
                    Some(inbox) if another && !last.is_empty() => {
                        let (done, next) = tokio::join!(
                            r.applier.apply(target, &r.progress.position, &batch),
                            inbox.fetch(&r.applier.spec.event, &last, opts.batch)
                        );
                        (done?, Some(next))
                    }
                    _ => (r.applier.apply(target, &r.progress.position, &batch).await?, None),
                };
                source.committed(&r.applier.spec).await?;
                r.progress.position = done.position.clone();
                r.report.applied += done.applied;
                r.report.skipped += done.skipped;
                r.report.dead_letters += done.dead_letters;
                let lag = if full { lag_seconds(done.last_committed_at.as_deref()) } else { 0.0 };
                opts.metrics.update(&r.report.name, |m| {
                    m.applied += done.applied;
                    m.skipped += done.skipped;
                    m.dead_letters += done.dead_letters;
                    m.dead_letters_waiting += done.dead_letters as i64;
                    m.lag_seconds = lag;
                });
                if !another || *opts.shutdown.borrow() {
                    break;
                }
                batch = match next {
                    // Read ahead from where this batch ended, which is
                    // where the projection now stands.
                    Some(next) if done.position == last => next?,
                    _ => source.fetch(&r.applier.spec, &r.progress.position, opts.batch).await?,
                };
            }
        }
        if last_log.elapsed() > Duration::from_secs(5) {
            for r in running.iter() {
                tracing::info!(projection = %r.report.name, applied = r.report.applied, position = %r.progress.position, "projecting");
            }
            last_log = Instant::now();
        }
        if busy {
            continue;
        }
        if opts.until_idle {
            return Ok(());
        }
        let mut stop = opts.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Seconds since an RFC 3339 UTC time (`2026-11-21T23:22:21.053574Z`).
fn lag_seconds(committed_at: Option<&str>) -> f64 {
    let Some(t) = committed_at.and_then(parse_utc) else { return 0.0 };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    (now - t).max(0.0)
}

fn parse_utc(t: &str) -> Option<f64> {
    let (date, time) = t.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut parts = time.split(':');
    let (h, mi) = (parts.next()?.parse::<i64>().ok()?, parts.next()?.parse::<i64>().ok()?);
    let s: f64 = parts.next()?.parse().ok()?;
    let (month, day) = (u32::try_from(m).ok()?, u32::try_from(day).ok()?);
    let days = deed_manifest::Date { year: i32::try_from(y).ok()?, month, day }.days();
    Some((days * 86_400 + h * 3600 + mi * 60) as f64 + s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_rfc3339_utc() {
        assert_eq!(super::parse_utc("1970-01-02T00:00:01.5Z"), Some(86_401.5));
        assert_eq!(super::parse_utc("2000-03-01T00:00:00Z"), Some(951_868_800.0));
    }
}
