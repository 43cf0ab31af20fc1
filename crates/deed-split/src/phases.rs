//! The phases of a split, each safe to run again: prepare, copy (and
//! follow), prove, cutover, rollback, finish. Each takes the two sessions
//! and what was read of the service once ([`Split`]).

use std::time::{Duration, Instant};

use deed_events::SplitDirection;
use deed_manifest::{Manifest, Service};
use deed_pg::Client;
use serde::Serialize;

use crate::error::{SplitError, query};
use crate::inspect::{Inspected, inspect};
use crate::pgbouncer::PgBouncer;
use crate::prove::{Proof, prove};
use crate::refuse::source_refusals;
use crate::roles::Statement;
use crate::state::{self, FENCES_DDL, Phase, Recorded};
use crate::switch::{Capture, Side, Switched, make_live};
use crate::{replicate, roles, schema, target};

/// A split in hand: the service, both sessions, what it owns.
pub struct Split {
    pub service: Service,
    pub shared: Client,
    pub target: Client,
    /// How the target's server reaches the shared database (libpq URL).
    pub shared_conninfo: String,
    /// How the shared server reaches the target (libpq URL).
    pub target_conninfo: String,
    /// The target's URL without its password, as recorded.
    pub target_shown: String,
    pub found: Inspected,
    pub capture: Capture,
    /// All of what the service captures, as `deed apply` installs it.
    pub capture_desired: Option<deed_contracts::capture::ServiceCapture>,
    pub recorded: Option<Recorded>,
}

impl Split {
    /// Reads the service's relations and the recorded state.
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        manifest: &Manifest,
        service: &str,
        shared: Client,
        target: Client,
        shared_conninfo: String,
        target_conninfo: String,
    ) -> Result<Split, SplitError> {
        let s = manifest
            .service(service)
            .ok_or_else(|| SplitError::Setup(format!("the manifest has no service {service:?}")))?
            .clone();
        if s.owns.is_empty() {
            return Err(SplitError::Setup(format!(
                "{}: service {service} owns no tables: nothing to move",
                s.location
            )));
        }
        let found = inspect(&shared, &s.owns).await?;
        let capture_desired = deed_contracts::capture::CaptureDesired::from_manifest(manifest)
            .services
            .into_iter()
            .find(|c| c.service == service);
        let capture = Capture {
            tables: capture_desired.as_ref().map(|c| c.tables.clone()).unwrap_or_default(),
            domain: capture_desired.as_ref().is_some_and(|c| !c.domain_events.is_empty()),
        };
        let recorded = state::load(&shared, service).await?;
        let target_shown = deed_pg::redact_url(&target_conninfo);
        Ok(Split {
            service: s,
            shared,
            target,
            shared_conninfo,
            target_conninfo,
            target_shown,
            found,
            capture,
            capture_desired,
            recorded,
        })
    }

    fn name(&self) -> &str {
        &self.service.name
    }

    fn phase(&self) -> Option<Phase> {
        self.recorded.as_ref().map(|r| r.phase)
    }

    fn live_on_target(&self) -> bool {
        self.recorded.as_ref().is_some_and(|r| r.live == "target")
    }

    async fn reload(&mut self) -> Result<(), SplitError> {
        self.recorded = state::load(&self.shared, &self.service.name).await?;
        Ok(())
    }
}

/// What prepare did (or would do).
#[derive(Debug, Clone, Serialize)]
pub struct Prepared {
    /// The statements run on the target, as shown (no password).
    pub statements: Vec<String>,
    /// Statements left for after the copy (indexes, constraints).
    pub after_copy: Vec<String>,
    pub notes: Vec<String>,
    pub applied: bool,
}

/// Phase 1: refuses what cannot cross; creates roles and tables on the
/// target in one transaction.
pub async fn prepare(
    split: &mut Split,
    manifest: &Manifest,
    dry_run: bool,
) -> Result<Prepared, SplitError> {
    let mut refusals =
        source_refusals(&split.shared, manifest, &split.service, &split.found).await?;
    let live = target::observe(&split.target, &split.found, split.name()).await?;
    refusals.extend(target::refusals(&split.found, &live, &split.target_shown));
    if !refusals.is_empty() {
        return Err(SplitError::Refused { service: split.name().to_string(), refusals });
    }
    let (role_statements, notes) =
        roles::statements(&split.shared, &split.target, &split.service).await?;
    let script = schema::script(split.name(), &split.found, &live);
    let mut statements: Vec<Statement> = role_statements;
    statements.push(Statement::plain(FENCES_DDL.to_string()));
    statements.extend(script.before_copy.iter().cloned().map(Statement::plain));
    statements.extend(capture_publication(split, &split.target).await?);
    let shown = statements.iter().map(|s| s.shown.clone()).collect();
    if dry_run {
        return Ok(Prepared {
            statements: shown,
            after_copy: script.after_copy,
            notes,
            applied: false,
        });
    }
    state::ensure(&split.shared).await?;
    let tx = split.target.transaction().await.map_err(query("starting prepare"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&deed_contracts::ADVISORY_LOCK_KEY])
        .await
        .map_err(query("taking deed's lock on the target"))?;
    for s in &statements {
        tx.batch_execute(&s.sql).await.map_err(|e| {
            SplitError::Database(deed_pg::PgError::query(format!("on the target: {}", s.shown), e))
        })?;
    }
    crate::crash::point("prepare:before-commit");
    tx.commit().await.map_err(query("committing prepare"))?;
    crate::crash::point("prepare:committed");
    // The reverse direction's publication, ready for the cutover.
    let tables: Vec<_> = split.found.tables.iter().map(|t| t.name.clone()).collect();
    replicate::publish(&split.target, split.name(), &tables).await?;
    if split.phase().is_none() {
        state::record_phase(&split.shared, split.name(), &split.target_shown, Phase::Prepared)
            .await?;
    }
    split.reload().await?;
    Ok(Prepared { statements: shown, after_copy: script.after_copy, notes, applied: true })
}

/// The service's capture publication on the target, with no table yet:
/// the tables join it at the cutover, in the fence's transaction.
async fn capture_publication(split: &Split, target: &Client) -> Result<Vec<Statement>, SplitError> {
    if split.capture.tables.is_empty() && split.capture_desired.is_none() {
        return Ok(Vec::new());
    }
    let name = deed_events::publication_name(split.name());
    let exists: bool = target
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)",
            &[&name.as_str()],
        )
        .await
        .map_err(query("looking for the capture publication"))?
        .get(0);
    let mut out = Vec::new();
    if !exists {
        out.push(Statement::plain(format!(
            "CREATE PUBLICATION {} WITH ({})",
            name.quoted(),
            deed_contracts::capture::PUBLISH
        )));
    }
    out.push(Statement::plain(deed_events::EPOCHS_DDL.to_string()));
    // Domain events: `deed.emit` and their registration, as `deed apply`
    // installs them; not the slot, which the cutover creates.
    if let Some(c) = split.capture_desired.clone() {
        if !c.domain_events.is_empty() {
            let desired = deed_contracts::capture::CaptureDesired { services: vec![c] };
            let live = deed_contracts::capture::CaptureLive::load(target, &[])
                .await
                .map_err(|e| SplitError::Setup(format!("reading the target's capture: {e}")))?;
            let mut changes = Vec::new();
            deed_contracts::capture::diff_capture(&desired, &live, &mut changes);
            const EMIT: &[&str] =
                &["create-schema", "create-function", "domain-event", "grant", "revoke"];
            out.extend(
                changes
                    .into_iter()
                    .filter(|c| EMIT.contains(&c.kind))
                    .flat_map(|c| c.sql)
                    .map(Statement::plain),
            );
        }
    }
    Ok(out)
}

/// How the copy went.
#[derive(Debug, Clone, Serialize)]
pub struct Copied {
    pub tables: i64,
    pub seconds: f64,
    pub after_copy: usize,
    pub lag_bytes: Option<i64>,
    pub already: bool,
}

/// Phase 2: publishes the tables on the shared database, subscribes the
/// target with a copy, waits until every table is copied and following,
/// then builds the remaining indexes and constraints.
pub async fn copy(
    split: &mut Split,
    timeout: Duration,
    progress: &mut dyn FnMut(replicate::Sync),
) -> Result<Copied, SplitError> {
    lock(&split.shared).await?;
    let result = copy_locked(split, timeout, progress).await;
    unlock(&split.shared).await;
    result
}

/// deed's advisory lock on the shared database, for a whole phase: one
/// deed at a time, and a relay retiring a slot waits for it.
async fn lock(shared: &Client) -> Result<(), SplitError> {
    shared
        .execute("SELECT pg_advisory_lock($1)", &[&deed_contracts::ADVISORY_LOCK_KEY])
        .await
        .map_err(query("taking deed's lock"))?;
    Ok(())
}

async fn unlock(shared: &Client) {
    let _ = shared
        .execute("SELECT pg_advisory_unlock($1)", &[&deed_contracts::ADVISORY_LOCK_KEY])
        .await;
}

async fn copy_locked(
    split: &mut Split,
    timeout: Duration,
    progress: &mut dyn FnMut(replicate::Sync),
) -> Result<Copied, SplitError> {
    let Some(phase) = split.phase() else {
        return Err(SplitError::Setup(format!(
            "{} is not prepared: run `deed split {} --to URL --prepare` first",
            split.name(),
            split.name()
        )));
    };
    let name = split.name().to_string();
    if split.live_on_target() {
        return Err(SplitError::Setup(format!(
            "{name} is cut over: its writes are on the target; `--rollback` first to copy again"
        )));
    }
    let started = Instant::now();
    let subscribed =
        replicate::subscription_exists(&split.target, &name, SplitDirection::Forward).await?;
    let already = subscribed && phase >= Phase::Following;
    let first = &split.found.tables[0].name;
    if crate::switch::writable(&split.target, &name, first).await? {
        return Err(SplitError::Setup(format!(
            "{name}'s owner may write on the target: a cutover was interrupted; run `--cutover` or `--rollback` again to finish it"
        )));
    }
    if !subscribed {
        let tables: Vec<_> = split.found.tables.iter().map(|t| t.name.clone()).collect();
        state::ensure(&split.shared).await?;
        replicate::publish(&split.shared, &name, &tables).await?;
        // Rows a killed copy left: deed's own, copied again from the start.
        let list = tables.iter().map(|t| t.quoted()).collect::<Vec<_>>().join(", ");
        split
            .target
            .batch_execute(&format!("TRUNCATE {list}"))
            .await
            .map_err(query("emptying the target's tables before the copy"))?;
        split
            .target
            .execute("DELETE FROM deed.split_fences WHERE service = $1", &[&name])
            .await
            .map_err(query("clearing the target's fences"))?;
        replicate::subscribe(
            &split.target,
            &split.shared,
            &split.shared_conninfo,
            &name,
            SplitDirection::Forward,
            true,
        )
        .await?;
        crate::crash::point("copy:subscribed");
    }
    let mut last = None;
    loop {
        let sync = replicate::sync_state(&split.target, &name, SplitDirection::Forward).await?;
        if last.is_none_or(|l: replicate::Sync| l.ready != sync.ready) {
            progress(sync);
            last = Some(sync);
        }
        if sync.tables > 0 && sync.ready == sync.tables {
            break;
        }
        if started.elapsed() > timeout {
            return Err(SplitError::Setup(format!(
                "the copy of {name} is not done after {} s ({} of {} tables): it goes on in the background; run this again to wait (see the target's server log)",
                timeout.as_secs(),
                sync.ready,
                sync.tables
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let live = target::observe(&split.target, &split.found, &name).await?;
    let script = schema::script(&name, &split.found, &live);
    if !script.after_copy.is_empty() {
        let tx = split.target.transaction().await.map_err(query("starting the indexes"))?;
        for s in &script.after_copy {
            tx.batch_execute(s).await.map_err(|e| {
                SplitError::Database(deed_pg::PgError::query(format!("on the target: {s}"), e))
            })?;
        }
        crate::crash::point("copy:indexes");
        tx.commit().await.map_err(query("committing the indexes"))?;
    }
    if phase < Phase::Following {
        state::record_phase(&split.shared, &name, &split.target_shown, Phase::Following).await?;
    }
    let lag = replicate::lag_bytes(&split.shared, &name, SplitDirection::Forward).await?;
    split.reload().await?;
    Ok(Copied {
        // The service's tables, not deed's fence table beside them.
        tables: last.map_or(0, |l| l.tables - 1),
        seconds: started.elapsed().as_secs_f64(),
        after_copy: script.after_copy.len(),
        lag_bytes: lag,
        already,
    })
}

/// Phase 3: every table compared with its copy at fences. A clean proof is
/// recorded; the cutover needs one.
pub async fn prove_phase(split: &mut Split, timeout: Duration) -> Result<Proof, SplitError> {
    let name = split.name().to_string();
    if split.live_on_target() {
        return Err(SplitError::Setup(format!(
            "{name} is cut over: nothing to prove until a rollback"
        )));
    }
    if !replicate::subscription_exists(&split.target, &name, SplitDirection::Forward).await?
        || split.phase().is_none_or(|p| p < Phase::Following)
    {
        return Err(SplitError::Setup(format!(
            "{name} is not copied yet: run `deed split {name} --to URL --copy` first"
        )));
    }
    let proof = prove(&split.shared, &split.target, &name, &split.found, timeout).await?;
    let json = serde_json::to_string(&proof).expect("a proof serialises");
    if proof.equal {
        state::record_phase(&split.shared, &name, &split.target_shown, Phase::Proven).await?;
    }
    split
        .shared
        .execute(
            "UPDATE deed.splits SET proof = $2::text::jsonb, updated_at = now() WHERE service = $1",
            &[&name, &json],
        )
        .await
        .map_err(query("recording the proof"))?;
    split.reload().await?;
    Ok(proof)
}

/// Phase 4 (and 6): the fence, moving the writes to the target or back.
pub async fn switch(
    split: &mut Split,
    to_target: bool,
    max_proof_age: Duration,
    timeout: Duration,
    traffic: Option<&PgBouncer>,
) -> Result<Switched, SplitError> {
    let name = split.name().to_string();
    let Some(rec) = split.recorded.clone() else {
        return Err(SplitError::Setup(format!(
            "{name} is not prepared: run `deed split {name} --to URL` first"
        )));
    };
    if to_target && rec.live != "target" {
        let fresh = split
            .shared
            .query_one(
                "SELECT proven_at IS NOT NULL AND proven_at > now() - make_interval(secs => $2)
                        AND (proof->>'equal')::bool
                   FROM deed.splits WHERE service = $1",
                &[&name, &max_proof_age.as_secs_f64()],
            )
            .await
            .map_err(query("reading the proof"))?
            .get::<_, Option<bool>>(0)
            .unwrap_or(false);
        if !fresh && rec.phase < Phase::CutOver {
            return Err(SplitError::Setup(format!(
                "{name} has no clean proof from the last {}: run `deed split {name} --to URL --prove` first",
                deed_text::duration(max_proof_age.as_secs_f64())
            )));
        }
    }
    if rec.phase == Phase::Finished {
        return Err(SplitError::Setup(format!(
            "{name}'s split is finished: the reverse replication is gone, so it cannot switch any more"
        )));
    }
    let epoch = rec.epoch + 1;
    // Held for the whole switch and its record: a relay retiring a drained
    // slot reads where the writes are under the same lock.
    lock(&split.shared).await?;
    let result = match switch_locked(split, to_target, epoch, timeout, traffic).await {
        Ok(s) if !s.already => record_switch(split, to_target, epoch, &s).await.map(|()| s),
        other => other,
    };
    unlock(&split.shared).await;
    let switched = result?;
    split.reload().await?;
    Ok(switched)
}

async fn record_switch(
    split: &Split,
    to_target: bool,
    epoch: i32,
    s: &Switched,
) -> Result<(), SplitError> {
    let (phase, live) =
        if to_target { (Phase::CutOver, "target") } else { (Phase::Proven, "source") };
    split
        .shared
        .execute(
            "UPDATE deed.splits SET phase = $2, live = $3, epoch = $4, fence_lsn = $5,
                    switched_at = now(), fence_ms = $6, updated_at = now()
              WHERE service = $1",
            &[&split.service.name, &phase.as_str(), &live, &epoch, &s.fence_lsn, &s.fence_ms],
        )
        .await
        .map_err(query("recording the switch"))?;
    Ok(())
}

async fn switch_locked(
    split: &mut Split,
    to_target: bool,
    epoch: i32,
    timeout: Duration,
    traffic: Option<&PgBouncer>,
) -> Result<Switched, SplitError> {
    let name = split.service.name.clone();
    let (shared_info, target_info) = (split.shared_conninfo.clone(), split.target_conninfo.clone());
    // Catch up first, outside the fence: what the fence then waits for is
    // only what was written in the last moment.
    let (live, other) =
        if to_target { (&split.shared, &split.target) } else { (&split.target, &split.shared) };
    let into_other = if to_target { SplitDirection::Forward } else { SplitDirection::Back };
    if replicate::subscription_exists(other, &name, into_other).await? {
        // Until a fence arrives quickly: a subscription created a moment
        // ago (its worker starts within wal_retrieve_retry_interval) is
        // still working through what was written meanwhile.
        let deadline = Instant::now() + timeout.max(Duration::from_secs(60));
        loop {
            let (n, _) = replicate::fence(live, &name).await?;
            let took = replicate::wait_fence(other, &name, n, timeout.max(Duration::from_secs(60)))
                .await?;
            if took < Duration::from_millis(50) || Instant::now() > deadline {
                break;
            }
        }
    }
    let started = Instant::now();
    if let Some(p) = traffic {
        p.pause().await?;
    }
    let paused_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut source = Side { client: &mut split.shared, conninfo: &shared_info, label: "source" };
    let mut target = Side { client: &mut split.target, conninfo: &target_info, label: "target" };
    let result = if to_target {
        make_live(&mut target, &mut source, &name, &split.found, &split.capture, epoch, timeout)
            .await
    } else {
        make_live(&mut source, &mut target, &name, &split.found, &split.capture, epoch, timeout)
            .await
    };
    // A failed switch puts the writes back where they were, the same way.
    let result = match result {
        Ok(s) => Ok(s),
        Err(e) => {
            let undo = if to_target {
                make_live(
                    &mut source,
                    &mut target,
                    &name,
                    &split.found,
                    &split.capture,
                    epoch,
                    timeout,
                )
                .await
            } else {
                make_live(
                    &mut target,
                    &mut source,
                    &name,
                    &split.found,
                    &split.capture,
                    epoch,
                    timeout,
                )
                .await
            };
            let was = if to_target { "source" } else { "target" };
            Err(match undo {
                Ok(u) => {
                    if !u.already {
                        // The undo began an epoch on the side it reopened.
                        split
                            .shared
                            .execute(
                                "UPDATE deed.splits SET epoch = $2 WHERE service = $1",
                                &[&name, &epoch],
                            )
                            .await
                            .map_err(query("recording the epoch"))?;
                    }
                    SplitError::Setup(format!(
                        "the switch failed: {e}; nothing moved: the writes are on the {was} as before"
                    ))
                }
                Err(u) => SplitError::Setup(format!(
                    "the switch failed: {e}; putting the writes back on the {was} failed too: {u}; run the same command again, or `--rollback`"
                )),
            })
        }
    };
    let switched = match (result, traffic) {
        (Ok(s), None) => s,
        (Ok(mut s), Some(p)) => {
            let live = if to_target { &target_info } else { &shared_info };
            let e = deed_pg::endpoint(live)?;
            p.repoint(&e.host, e.port, &e.database).await?;
            p.resume().await?;
            s.steps.insert(0, ("PgBouncer: paused".to_string(), paused_ms));
            s.steps.push(("PgBouncer: repointed and resumed".to_string(), 0.0));
            if !s.already {
                s.fence_ms = started.elapsed().as_secs_f64() * 1000.0;
            }
            s
        }
        (Err(e), Some(p)) => {
            // Clients go on waiting on the side that still has the writes.
            let _ = p.resume().await;
            return Err(e);
        }
        (Err(e), None) => return Err(e),
    };
    Ok(switched)
}

/// What finish did.
#[derive(Debug, Clone, Serialize)]
pub struct Finished {
    pub dropped: Vec<String>,
}

/// Phase 7: the reverse replication ends for good; with `drop_source`, the
/// shared database's copies of the tables go too.
pub async fn finish(
    split: &mut Split,
    manifest: &Manifest,
    drop_source: bool,
) -> Result<Finished, SplitError> {
    lock(&split.shared).await?;
    let result = finish_locked(split, manifest, drop_source).await;
    unlock(&split.shared).await;
    result
}

async fn finish_locked(
    split: &mut Split,
    manifest: &Manifest,
    drop_source: bool,
) -> Result<Finished, SplitError> {
    let name = split.name().to_string();
    if !split.live_on_target() {
        return Err(SplitError::Setup(format!(
            "{name} is not cut over: `deed split {name} --to URL` first"
        )));
    }
    let readers: Vec<String> = manifest
        .services
        .iter()
        .filter(|r| r.reads.iter().any(|c| c.service == name))
        .map(|r| format!("{} ({})", r.name, r.location))
        .collect();
    if !readers.is_empty() {
        return Err(SplitError::Setup(format!(
            "these services still read {name}'s contract views in the shared database, which only the reverse replication keeps current: {}; move them to projections (`deed cutover`) first",
            readers.join(", ")
        )));
    }
    let mut dropped = Vec::new();
    replicate::unsubscribe(&split.shared, &split.target, &name, SplitDirection::Back).await?;
    dropped.push(format!(
        "subscription {} (and its slot on the target)",
        deed_events::split_subscription(&name, SplitDirection::Back)
    ));
    let publication = deed_events::split_publication(&name);
    for (side, client) in [("target", &split.target), ("source", &split.shared)] {
        client
            .batch_execute(&format!("DROP PUBLICATION IF EXISTS {}", publication.quoted()))
            .await
            .map_err(query("dropping the split's publication"))?;
        dropped.push(format!("publication {publication} on the {side}"));
    }
    // The service's capture slot on the shared database, once the relay
    // has delivered everything before the move (it drops it itself then).
    let fence = split.recorded.as_ref().and_then(|r| r.fence_lsn.clone()).unwrap_or_default();
    if split.capture.any() && !fence.is_empty() {
        let oid: u32 = split
            .shared
            .query_one("SELECT oid FROM pg_database WHERE datname = current_database()", &[])
            .await
            .map_err(query("reading the database's oid"))?
            .get(0);
        let slot = deed_events::slot_name(&name, oid);
        let gone = split
            .shared
            .query(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                  WHERE slot_name = $1 AND NOT active AND confirmed_flush_lsn >= $2::text::pg_lsn",
                &[&slot, &fence],
            )
            .await
            .map_err(query("dropping the drained capture slot"))?;
        if !gone.is_empty() {
            dropped.push(format!("capture slot {slot} on the source (drained)"));
        }
    }
    if drop_source {
        let list =
            split.found.tables.iter().map(|t| t.name.quoted()).collect::<Vec<_>>().join(", ");
        split
            .shared
            .batch_execute(&format!("DROP TABLE IF EXISTS {list}"))
            .await
            .map_err(query("dropping the source's tables (a view still reads them: drop the contracts with `deed apply` first)"))?;
        dropped.push(format!("tables {list} in the shared database"));
    }
    state::record_phase(&split.shared, &name, &split.target_shown, Phase::Finished).await?;
    split.reload().await?;
    Ok(Finished { dropped })
}
