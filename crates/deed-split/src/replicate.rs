//! PostgreSQL's own logical replication between the two databases: a
//! publication of the service's tables (and its fence rows) on the side
//! that takes the writes, a subscription on the other. Forward copies and
//! follows; after the cutover, back runs the other way without a copy.

use std::time::{Duration, Instant};

use deed_events::{SplitDirection, split_publication, split_subscription};
use deed_ident::{QualifiedName, quote_literal};
use deed_pg::Client;

use crate::error::{SplitError, query};

/// Creates, or sets to exactly these tables, the split's publication.
pub async fn publish(
    publisher: &Client,
    service: &str,
    tables: &[QualifiedName],
) -> Result<(), SplitError> {
    let name = split_publication(service);
    let mut list: Vec<String> = tables.iter().map(QualifiedName::quoted).collect();
    list.push(format!("deed.split_fences WHERE (service = {})", quote_literal(service)));
    let exists: bool = publisher
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)",
            &[&name.as_str()],
        )
        .await
        .map_err(query("looking for the split's publication"))?
        .get(0);
    let sql = if exists {
        format!("ALTER PUBLICATION {} SET TABLE {}", name.quoted(), list.join(", "))
    } else {
        format!("CREATE PUBLICATION {} FOR TABLE {}", name.quoted(), list.join(", "))
    };
    publisher.batch_execute(&sql).await.map_err(query("publishing the service's tables"))
}

pub async fn subscription_exists(
    subscriber: &Client,
    service: &str,
    direction: SplitDirection,
) -> Result<bool, SplitError> {
    let name = split_subscription(service, direction);
    Ok(subscriber
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_subscription WHERE subname = $1
                              AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()))",
            &[&name.as_str()],
        )
        .await
        .map_err(query("looking for the split's subscription"))?
        .get(0))
}

/// Creates the subscription of one direction, on a slot deed makes on
/// the publisher just before (so it starts at this moment; see
/// [`crate::slot`] for why deed makes it), waiting at most `timeout` for
/// the publisher's open transactions; `copy` copies the tables' rows
/// first. A slot of that name left by an interrupted run is dropped
/// first: nothing was subscribed to it.
pub async fn subscribe(
    subscriber: &Client,
    publisher: &Client,
    publisher_conninfo: &str,
    service: &str,
    direction: SplitDirection,
    copy: bool,
    timeout: Duration,
) -> Result<(), SplitError> {
    if subscription_exists(subscriber, service, direction).await? {
        return Ok(());
    }
    let name = split_subscription(service, direction);
    crate::slot::drop(publisher, name.as_str()).await?;
    let side = if direction == SplitDirection::Forward { "shared database" } else { "target" };
    crate::slot::create(publisher, name.as_str(), side, timeout).await?;
    // From PostgreSQL 16 a subscription applies changes as each table's
    // owner, who on the side that is not live may not write (that is the
    // fence): it applies as its own owner, deed's role, instead.
    let version: i32 = subscriber
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(query("reading the subscriber's version"))?
        .get(0);
    let run_as_owner = if version >= 160000 { ", run_as_owner = true" } else { "" };
    let sql = format!(
        "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (copy_data = {copy}, slot_name = {}, create_slot = false{run_as_owner})",
        name.quoted(),
        quote_literal(publisher_conninfo),
        split_publication(service).quoted(),
        quote_literal(name.as_str()),
    );
    let created = subscriber.batch_execute(&sql).await;
    if let Err(e) = created {
        // No slot left retaining the publisher's WAL for nobody.
        let _ = crate::slot::drop(publisher, name.as_str()).await;
        // The statement holds the connection string: never show it.
        return Err(SplitError::Database(deed_pg::PgError::query(
            format!(
                "creating subscription {name} (the subscriber connects to the publisher with the URL deed was given)"
            ),
            e,
        )));
    }
    Ok(())
}

/// Drops one direction's subscription, and with it its slot on the
/// publisher.
pub async fn unsubscribe(
    subscriber: &Client,
    publisher: &Client,
    service: &str,
    direction: SplitDirection,
) -> Result<(), SplitError> {
    let name = split_subscription(service, direction);
    if subscription_exists(subscriber, service, direction).await? {
        subscriber
            .batch_execute(&format!("DROP SUBSCRIPTION {}", name.quoted()))
            .await
            .map_err(query("dropping the split's subscription"))?;
    }
    crate::slot::drop(publisher, name.as_str()).await
}

/// How far the initial copy is: tables ready and in all.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Sync {
    pub ready: i64,
    pub tables: i64,
}

pub async fn sync_state(
    subscriber: &Client,
    service: &str,
    direction: SplitDirection,
) -> Result<Sync, SplitError> {
    let name = split_subscription(service, direction);
    let row = subscriber
        .query_one(
            "SELECT count(*) FILTER (WHERE r.srsubstate = 'r'), count(*)
               FROM pg_subscription s JOIN pg_subscription_rel r ON r.srsubid = s.oid
              WHERE s.subname = $1",
            &[&name.as_str()],
        )
        .await
        .map_err(query("reading the copy's progress"))?;
    Ok(Sync { ready: row.get(0), tables: row.get(1) })
}

/// Errors the subscription's workers met so far: (table sync, apply),
/// from `pg_stat_subscription_stats` (PostgreSQL 15 and later; `None`
/// before). The messages themselves are only in the subscriber's log.
pub async fn worker_errors(
    subscriber: &Client,
    service: &str,
    direction: SplitDirection,
) -> Result<Option<(i64, i64)>, SplitError> {
    let name = split_subscription(service, direction);
    let has_view: bool = subscriber
        .query_one("SELECT to_regclass('pg_catalog.pg_stat_subscription_stats') IS NOT NULL", &[])
        .await
        .map_err(query("looking for pg_stat_subscription_stats"))?
        .get(0);
    if !has_view {
        return Ok(None);
    }
    let row = subscriber
        .query_opt(
            "SELECT sync_error_count, apply_error_count FROM pg_stat_subscription_stats WHERE subname = $1",
            &[&name.as_str()],
        )
        .await
        .map_err(query("reading the subscription's errors"))?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Bytes of the publisher's WAL the subscriber has not confirmed.
pub async fn lag_bytes(
    publisher: &Client,
    service: &str,
    direction: SplitDirection,
) -> Result<Option<i64>, SplitError> {
    let name = split_subscription(service, direction);
    let row = publisher
        .query_opt(
            "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::int8 FROM pg_replication_slots
              WHERE slot_name = $1",
            &[&name.as_str()],
        )
        .await
        .map_err(query("reading the replication lag"))?;
    Ok(row.and_then(|r| r.get(0)))
}

/// The next fence row of a service (`$1`), returning its number; its
/// transaction's commit is flushed whatever the server's default
/// (replication sends only flushed WAL, and the other side waits for it).
pub const FENCE_SQL: &str = "WITH flush AS (SELECT set_config('synchronous_commit', 'on', true))
     INSERT INTO deed.split_fences (service, fence)
     SELECT $1, coalesce(max(fence), 0) + 1 FROM deed.split_fences, flush WHERE service = $1
     RETURNING fence";

/// Inserts a fence row on the publisher; returns its number and the LSN
/// the publisher's WAL had reached when it committed.
pub async fn fence(publisher: &Client, service: &str) -> Result<(i64, u64), SplitError> {
    let row =
        publisher.query_one(FENCE_SQL, &[&service]).await.map_err(query("writing a fence"))?;
    let lsn = current_lsn(publisher).await?;
    Ok((row.get(0), lsn))
}

/// The name of the service's capture slot in this database: the current
/// name, or the one an earlier deed gave it (see
/// [`deed_events::capture_slot`]).
pub async fn capture_slot(client: &Client, service: &str) -> Result<String, SplitError> {
    deed_events::capture_slot(client, service).await.map_err(query("looking for the capture slot"))
}

pub async fn current_lsn(client: &Client) -> Result<u64, SplitError> {
    let text: String = client
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .await
        .map_err(query("reading the WAL position"))?
        .get(0);
    deed_events::parse_lsn(&text).ok_or_else(|| SplitError::Setup(format!("unexpected LSN {text}")))
}

/// Waits until the fence row has been applied on the subscriber: every
/// change committed on the publisher before it has been too.
pub async fn wait_fence(
    subscriber: &Client,
    service: &str,
    fence: i64,
    timeout: Duration,
) -> Result<Duration, SplitError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let arrived: bool = subscriber
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM deed.split_fences WHERE service = $1 AND fence >= $2)",
                &[&service, &fence],
            )
            .await
            .map_err(query("waiting for the fence"))?
            .get(0);
        if arrived {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            return Err(SplitError::Setup(format!(
                "fence {fence} of {service} has not arrived after {} s: is the subscription running? \
                 (see the subscriber's server log)",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}
