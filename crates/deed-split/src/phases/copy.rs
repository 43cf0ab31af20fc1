//! Phase 2: logical replication copies the tables and follows them.

use super::*;

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

async fn copy_locked(
    split: &mut Split,
    timeout: Duration,
    progress: &mut dyn FnMut(replicate::Sync),
) -> Result<Copied, SplitError> {
    let Some(phase) = split.phase() else {
        return Err(SplitError::NotNow(format!(
            "{} is not prepared: run `deed split {} --to URL --prepare` first",
            split.name(),
            split.name()
        )));
    };
    let name = split.name().to_string();
    if split.live_on_target() {
        return Err(SplitError::NotNow(format!(
            "{name} is cut over: its writes are on the target; `--rollback` first to copy again"
        )));
    }
    let started = Instant::now();
    let subscribed =
        replicate::subscription_exists(&split.target, &name, SplitDirection::Forward).await?;
    let already = subscribed && phase >= Phase::Following;
    let first = &split.found.tables[0].name;
    if crate::switch::writable(&split.target, &name, first).await? {
        return Err(SplitError::NotNow(format!(
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
            timeout,
        )
        .await?;
        crate::crash::point("copy:subscribed");
    }
    let mut last = None;
    let mut last_check = std::time::Instant::now();
    let mut failing: Option<(i64, i64)> = None;
    loop {
        let sync = replicate::sync_state(&split.target, &name, SplitDirection::Forward).await?;
        if last.is_none_or(|l: replicate::Sync| l.ready != sync.ready) {
            progress(sync);
            last = Some(sync);
        }
        if sync.tables > 0 && sync.ready == sync.tables {
            break;
        }
        // Workers that keep failing (a permission, a constraint, a
        // missing column) are reported within seconds, not at the bound.
        if last_check.elapsed() >= Duration::from_secs(1) {
            last_check = std::time::Instant::now();
            let errors = replicate::worker_errors(&split.target, &name, SplitDirection::Forward)
                .await?
                .unwrap_or_default();
            // A failing worker retries every few seconds: the count going
            // up twice with no table further is a failure, not a hiccup
            // (a large table may take long to copy without any error).
            let total = errors.0 + errors.1;
            let (first, ready) = *failing.get_or_insert((total, sync.ready));
            if ready != sync.ready {
                failing = Some((total, sync.ready));
            } else if total >= first + 2 {
                // The server's own words, from a trial copy it rolls back.
                let why = match crate::diagnose::copy_error(
                    &mut split.target,
                    &split.shared,
                    &split.found,
                    &name,
                    SplitDirection::Forward,
                )
                .await
                {
                    Ok(Some(e)) => e,
                    Ok(None) => format!(
                        "the first {} rows of each table not yet copied copy without error; the target's server log has the server's message",
                        crate::diagnose::ROWS
                    ),
                    Err(e) => format!(
                        "deed's trial copy could not run ({e}); the target's server log has the server's message"
                    ),
                };
                return Err(SplitError::Setup(format!(
                    "the copy of {name} is failing: the subscription's workers met {} table-sync and {} apply error(s) (pg_stat_subscription_stats), and no table got further meanwhile ({} of {} tables ready); {why}. Fix the cause and run this again",
                    errors.0, errors.1, sync.ready, sync.tables
                )));
            }
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
