//! Phases 4 and 6: the fence that moves the writes (and PgBouncer), its
//! record, and its undo when it fails.

use super::*;

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
        return Err(SplitError::NotNow(format!(
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
            return Err(SplitError::NotNow(format!(
                "{name} has no clean proof from the last {}: run `deed split {name} --to URL --prove` first",
                deed_text::duration(max_proof_age.as_secs_f64())
            )));
        }
    }
    if rec.phase == Phase::Finished {
        return Err(SplitError::NotNow(format!(
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
    // Writes move into `into` from `from`; an undo moves them back.
    let (into, from) =
        if to_target { (&mut target, &mut source) } else { (&mut source, &mut target) };
    let result = make_live(into, from, &name, &split.found, &split.capture, epoch, timeout).await;
    // A failed switch puts the writes back where they were, the same way.
    let result = match result {
        Ok(s) => Ok(s),
        Err(e) => {
            let undo =
                make_live(from, into, &name, &split.found, &split.capture, epoch, timeout).await;
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
