use deed_manifest::{Date, Manifest};
use deed_pg::{Client, PgError};

use crate::change::{Change, Phase};
use crate::desired::Desired;
use crate::diff::diff;
use crate::error::ContractError;
use crate::live::Live;
use crate::naming::ADVISORY_LOCK_KEY;

pub enum ApplyOutcome {
    /// The database already matched the manifest.
    NothingToDo,
    Applied(Vec<Change>),
}

fn failed(sql: &str, e: tokio_postgres::Error) -> ContractError {
    ContractError::Refused(format!(
        "{sql}\nfailed: {}\nnothing was changed (the transaction was rolled back)",
        PgError::query("", e).to_string().trim_start_matches(": ")
    ))
}

/// Applies the manifest in one transaction: takes the advisory lock (with
/// `lock_timeout`), re-reads the live state inside the transaction so no
/// concurrent change is missed, and runs every change. Any error rolls
/// everything back.
///
/// Replication slots are the exception PostgreSQL imposes: one cannot be
/// created in a transaction that has written, so missing slots are created
/// just before (and dropped again if the transaction fails), and slots the
/// manifest no longer wants are dropped just after the commit.
pub async fn apply(
    client: &Client,
    manifest: &Manifest,
    today: Date,
) -> Result<ApplyOutcome, ContractError> {
    let desired = Desired::from_manifest(manifest, today)?;
    let created = create_slots(client, &desired).await?;
    let result = async {
        client
            .batch_execute("BEGIN; SET LOCAL lock_timeout = '5s'")
            .await
            .map_err(|e| PgError::query("starting the apply transaction", e))?;
        match run(client, &desired).await {
            Ok(done) => {
                client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(|e| PgError::query("committing", e))?;
                Ok(done)
            }
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                Err(e)
            }
        }
    }
    .await;
    let (mut applied, drops) = match result {
        Ok(done) => done,
        Err(e) => {
            for slot in &created {
                let _ = client.query("SELECT pg_drop_replication_slot($1)", &[&slot.object]).await;
            }
            return Err(e);
        }
    };
    for c in &drops {
        for sql in &c.sql {
            client.batch_execute(sql).await.map_err(|e| {
                ContractError::Refused(format!(
                    "the changes were committed, but {sql} failed: {}",
                    PgError::query("", e).to_string().trim_start_matches(": ")
                ))
            })?;
        }
    }
    applied.extend(created);
    applied.extend(drops);
    applied.sort_by(|a, b| (a.phase, &a.object, a.kind).cmp(&(b.phase, &b.object, b.kind)));
    Ok(if applied.is_empty() { ApplyOutcome::NothingToDo } else { ApplyOutcome::Applied(applied) })
}

/// Creates the missing replication slots, outside any transaction.
async fn create_slots(client: &Client, desired: &Desired) -> Result<Vec<Change>, ContractError> {
    if desired.capture.is_empty() {
        return Ok(Vec::new());
    }
    let changes = diff(desired, &Live::load(client, desired, false).await?);
    if changes.iter().any(|c| c.phase == Phase::Blocker) {
        // The transaction will refuse with the full list of blockers.
        return Ok(Vec::new());
    }
    let mut created: Vec<Change> = Vec::new();
    for c in changes.into_iter().filter(|c| c.phase == Phase::Slots) {
        for sql in &c.sql {
            if let Err(e) = client.batch_execute(sql).await {
                for done in &created {
                    let _ =
                        client.query("SELECT pg_drop_replication_slot($1)", &[&done.object]).await;
                }
                return Err(failed(sql, e));
            }
        }
        created.push(c);
    }
    Ok(created)
}

/// Inside the transaction: the lock, the live state, the changes. Returns
/// what was done and the slot drops to run after the commit.
async fn run(
    client: &Client,
    desired: &Desired,
) -> Result<(Vec<Change>, Vec<Change>), ContractError> {
    client.query_one("SELECT pg_advisory_xact_lock($1)", &[&ADVISORY_LOCK_KEY]).await.map_err(
        |e| {
            let busy =
                e.code().is_some_and(|c| *c == tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE);
            if busy {
                ContractError::Refused(
                    "another deed apply holds the lock on this database; try again when it is done"
                        .into(),
                )
            } else {
                PgError::query("taking the apply lock", e).into()
            }
        },
    )?;
    let live = Live::load(client, desired, true).await?;
    let changes = diff(desired, &live);
    let blockers: Vec<&Change> = changes.iter().filter(|c| c.phase == Phase::Blocker).collect();
    if !blockers.is_empty() {
        let list: Vec<&str> = blockers.iter().map(|c| c.summary.as_str()).collect();
        return Err(ContractError::Refused(format!(
            "nothing was changed:\n  - {}",
            list.join("\n  - ")
        )));
    }
    let (drops, changes): (Vec<Change>, Vec<Change>) =
        changes.into_iter().partition(|c| c.phase == Phase::DropSlots);
    for change in &changes {
        for sql in &change.sql {
            client.batch_execute(sql).await.map_err(|e| failed(sql, e))?;
        }
    }
    Ok((changes, drops))
}
