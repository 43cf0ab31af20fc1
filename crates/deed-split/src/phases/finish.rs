//! Phase 7: the reverse replication ends for good.

use super::*;

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
        return Err(SplitError::NotNow(format!(
            "{name} is not cut over: `deed split {name} --to URL` first"
        )));
    }
    // Every read of the owner's contract views, at its manifest entry.
    let owner = name.as_str();
    let refusals: Vec<Refusal> = manifest
        .services
        .iter()
        .flat_map(|r| {
            r.reads.iter().filter(move |c| c.service == owner).map(move |c| Refusal {
                at: r.locations.reads.get(c).unwrap_or(&r.location).to_string(),
                reason: format!(
                    "{} still reads {c}, a contract view in the shared database that only the reverse replication keeps current",
                    r.name
                ),
                fix: format!(
                    "move {} to a projection of {owner}'s events and run `deed cutover`, or drop the read",
                    r.name
                ),
            })
        })
        .collect();
    if !refusals.is_empty() {
        return Err(SplitError::Refused { service: name.clone(), refusals });
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
        let slot = replicate::capture_slot(&split.shared, &name).await?;
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
