use deed_ident::QualifiedName;
use deed_manifest::{Date, Manifest};
use deed_pg::session::execute_one;
use deed_pg::{Client, PgError};

use crate::desired::Desired;
use crate::diff::diff;
use crate::error::ContractError;
use crate::live::Live;
use crate::naming::ADVISORY_LOCK_KEY;
use crate::plan::applied_statements;
use deed_change::{Change, Phase, Stage};

pub enum ApplyOutcome {
    /// The database already matched the manifest.
    NothingToDo,
    Applied(Vec<Change>),
}

fn failed(sql: &str, e: tokio_postgres::Error) -> ContractError {
    let e = PgError::query("", e);
    // Refused for want of a privilege: say where to find which.
    let next = if e.is_refusal() {
        "\nthe role deed runs as may not do this: `deed doctor` proves each step apply takes and says what to ask for (docs/managed-postgres.md)"
    } else {
        ""
    };
    let sqlstate = e.code().map(|c| format!(" (SQLSTATE {})", c.code())).unwrap_or_default();
    ContractError::Failed(format!(
        "{sql}\nfailed: {}{sqlstate}\nnothing was changed (the transaction was rolled back){next}",
        e.to_string().trim_start_matches(": ")
    ))
}

/// Applies the manifest in one transaction, under deed's advisory lock so
/// only one apply runs on a database at a time. The live state is re-read
/// inside the transaction so no concurrent change is missed. Any error
/// rolls everything back.
///
/// Replication slots are the exception PostgreSQL imposes: one cannot be
/// created in a transaction that has written, so missing slots are created
/// just before (and dropped again if the transaction fails), and slots the
/// manifest no longer wants are dropped just after the commit. The lock is
/// a session lock, held from before the first slot is created until after
/// the last is dropped, so two applies never race on a slot.
/// `keep`: contract views the manifest dropped but observed traffic still
/// reads (a plan's `kept`); apply leaves them, exactly as the plan said.
pub async fn apply(
    client: &Client,
    manifest: &Manifest,
    today: Date,
    keep: &[QualifiedName],
) -> Result<ApplyOutcome, ContractError> {
    apply_with(client, manifest, today, &ApplyOptions { keep, ..ApplyOptions::default() }).await
}

/// What to apply of the plan, and what it must be.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions<'a> {
    /// Contract views to keep although the manifest dropped them (traffic
    /// still reads them), as the plan showed.
    pub keep: &'a [QualifiedName],
    pub stage: Stage,
    /// The statements of a plan the user saw or saved: apply runs exactly
    /// these or refuses, changing nothing, if the database or manifest now
    /// asks for something else.
    pub expect: Option<&'a [String]>,
}

/// [`apply`] with [`ApplyOptions`].
pub async fn apply_with(
    client: &Client,
    manifest: &Manifest,
    today: Date,
    options: &ApplyOptions<'_>,
) -> Result<ApplyOutcome, ContractError> {
    let desired = Desired::from_manifest(manifest, today)?;
    lock(client).await?;
    let result = locked(client, &desired, options).await;
    let _ = client.query("SELECT pg_advisory_unlock($1)", &[&ADVISORY_LOCK_KEY]).await;
    result
}

/// Waits up to five seconds for the apply lock. Polling with the `try`
/// form leaves the session's `lock_timeout` alone, and a deed killed while
/// waiting holds nothing.
async fn lock(client: &Client) -> Result<(), ContractError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&ADVISORY_LOCK_KEY])
            .await
            .map_err(|e| PgError::query("taking the apply lock", e))?
            .get(0);
        if got {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(ContractError::Failed(
                "another deed apply holds the lock on this database; try again when it is done"
                    .into(),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn locked(
    client: &Client,
    desired: &Desired,
    options: &ApplyOptions<'_>,
) -> Result<ApplyOutcome, ContractError> {
    let created = create_slots(client, desired).await?;
    let result = async {
        client
            .batch_execute("BEGIN; SET LOCAL lock_timeout = '5s'")
            .await
            .map_err(|e| PgError::query("starting the apply transaction", e))?;
        match run(client, desired, options).await {
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
            execute_one(client, sql).await.map_err(|e| {
                ContractError::Failed(format!(
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
            if let Err(e) = execute_one(client, sql).await {
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

/// Inside the transaction: the live state, the changes. Returns
/// what was done and the slot drops to run after the commit.
async fn run(
    client: &Client,
    desired: &Desired,
    options: &ApplyOptions<'_>,
) -> Result<(Vec<Change>, Vec<Change>), ContractError> {
    let live = Live::load(client, desired, true).await?;
    let mut changes = diff(desired, &live);
    changes.retain(|c| options.stage.includes(c));
    changes.retain(|c| {
        !(c.kind == "drop-view" && options.keep.iter().any(|k| k.to_string() == c.object))
    });
    if let Some(expected) = options.expect {
        if applied_statements(&changes) != expected {
            return Err(ContractError::PlanChanged);
        }
    }
    let blockers: Vec<&Change> = changes.iter().filter(|c| c.phase == Phase::Blocker).collect();
    if !blockers.is_empty() {
        return Err(ContractError::Blocked(blockers.iter().map(|c| c.summary.clone()).collect()));
    }
    // Warnings name what deed leaves to its owner; they change nothing.
    let (drops, changes): (Vec<Change>, Vec<Change>) = changes
        .into_iter()
        .filter(|c| c.phase != Phase::Warning)
        .partition(|c| c.phase == Phase::DropSlots);
    for change in &changes {
        for sql in &change.sql {
            execute_one(client, sql).await.map_err(|e| failed(sql, e))?;
        }
    }
    crate::not_null::verify(client, &desired.views).await?;
    Ok((changes, drops))
}
