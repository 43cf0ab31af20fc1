//! The projector's figures, on a private cluster:
//!
//! 1. Drain: a backlog of single-row UPDATE transactions (480,000 by
//!    default) applied to a table projection by `deed project`, beside
//!    PostgreSQL's own logical replication applying the same transactions
//!    to a subscriber table (a publication with the same column list).
//!    Both start from the same rows; both end equal to the source.
//! 2. Backfill: a new projection of a large table (2,000,000 rows) while
//!    a paced writer commits updates, inserts and deletes (5,000 commits/s)
//!    and a relay delivers them; afterwards the copy must equal the source.

use crate::pgbench::{self, Script, Until};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use deed_cluster::{ClusterOptions, EmbeddedCluster};
use deed_manifest::{Date, Manifest};
use deed_pg::Client;
use deed_project::ProjectOptions;
use deed_relay::RelayOptions;

pub struct Shape {
    pub events: u64,
    pub keys: i64,
    pub rows: i64,
    pub rate: u64,
    pub batch: usize,
    pub chunk: usize,
    pub skip_drain: bool,
    pub skip_backfill: bool,
}

fn manifest(table: &str, consumer_url: &str) -> anyhow::Result<Manifest> {
    let text = format!(
        r#"version = 1
[services.owner]
owns = ["public.{table}"]
[[services.owner.contracts]]
name = "{table}"
version = 1
from = "public.{table}"
columns = ["id", "version", "note"]
[[services.owner.events]]
name = "changed"
from = "public.{table}"
key = ["id"]
contract = "{table}.v1"
[services.reader]
logins = ["bench_reader"]
reads = ["owner.{table}.v1"]
consumes = ["owner.changed"]
database = "{consumer_url}"
[[services.reader.projections]]
name = "copy"
event = "owner.changed"
into = "public.{table}_copy"
"#
    );
    Ok(Manifest::parse(Path::new("deed.toml"), &text, &|_| None)?)
}

pub async fn run(shape: &Shape) -> anyhow::Result<()> {
    let settings = vec![
        ("max_wal_size".to_string(), "8GB".to_string()),
        ("max_logical_replication_workers".to_string(), "4".to_string()),
    ];
    let cluster =
        tokio::task::spawn_blocking(move || EmbeddedCluster::start(&ClusterOptions { settings }))
            .await??;
    let admin = deed_pg::connect_plain(&cluster.url("postgres")).await?;
    admin.batch_execute("CREATE ROLE bench_reader LOGIN").await?;
    let result = async {
        if !shape.skip_drain {
            drain(&cluster, &admin, shape).await?;
        }
        if !shape.skip_backfill {
            backfill(&cluster, &admin, shape).await?;
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    drop(admin);
    tokio::task::spawn_blocking(move || cluster.stop()).await?;
    result
}

/// CPU seconds this process has used (user + system).
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

async fn create_source(c: &Client, table: &str, rows: i64) -> anyhow::Result<()> {
    c.batch_execute(&format!(
        "CREATE TABLE {table} (id int PRIMARY KEY, version int NOT NULL, note text NOT NULL);
         INSERT INTO {table} SELECT g, 0, 'seed' FROM generate_series(1, {rows}) g;"
    ))
    .await?;
    c.batch_execute(&format!("VACUUM ANALYZE {table}")).await?;
    Ok(())
}

/// count and a digest of (id, version, note), to compare two copies.
async fn digest(c: &Client, table: &str) -> anyhow::Result<(i64, String)> {
    let row = c
        .query_one(
            &format!(
                "SELECT count(*), coalesce(sum(hashtext(id || ':' || version || ':' || note)::numeric), 0)::text FROM {table}"
            ),
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

async fn commits(c: &Client) -> anyhow::Result<i64> {
    Ok(c.query_one(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
        &[],
    )
    .await?
    .get(0))
}

async fn drain(cluster: &EmbeddedCluster, admin: &Client, shape: &Shape) -> anyhow::Result<()> {
    for db in ["bench_src", "bench_dst", "bench_sub"] {
        admin.batch_execute(&format!("CREATE DATABASE {db}")).await?;
    }
    let (src_url, dst_url, sub_url) =
        (cluster.url("bench_src"), cluster.url("bench_dst"), cluster.url("bench_sub"));
    let src = deed_pg::connect_plain(&src_url).await?;
    create_source(&src, "items", shape.keys).await?;
    let m = manifest("items", &dst_url)?;
    deed_contracts::apply(&deed_pg::connect(&src_url).await?, &m, Date::today(), &[]).await?;
    // The native baseline: a publication of the contract's columns (the
    // table's three: deed logs old rows of a table with a text column, and
    // PostgreSQL 15 allows no column list with replica identity full), a
    // slot made now (so it sees the same transactions), and a disabled
    // subscription whose table starts with the same rows.
    src.batch_execute("CREATE PUBLICATION native_pub FOR TABLE items").await?;
    src.batch_execute("SELECT pg_create_logical_replication_slot('native_slot', 'pgoutput')")
        .await?;
    let sub = deed_pg::connect_plain(&sub_url).await?;
    sub.batch_execute(&format!(
        "CREATE TABLE items (id int PRIMARY KEY, version int NOT NULL, note text NOT NULL);
         INSERT INTO items SELECT g, 0, 'seed' FROM generate_series(1, {}) g;",
        shape.keys
    ))
    .await?;
    // CREATE SUBSCRIPTION runs alone, outside a transaction block.
    sub.batch_execute(&format!(
        "CREATE SUBSCRIPTION native_sub CONNECTION '{src_url}' PUBLICATION native_pub
           WITH (create_slot = false, slot_name = 'native_slot', enabled = false, copy_data = false)"
    ))
    .await?;
    let mut opts = ProjectOptions::new(m.clone(), "reader", &src_url, &dst_url);
    opts.until_idle = true;
    let r = deed_project::run(opts).await?;
    println!(
        "drain: {} single-row UPDATE transactions on {} keys, applied to a table projection",
        shape.events, shape.keys
    );
    println!("  projection created and backfilled: {} rows", r.projections[0].backfilled_rows);

    let script = Script::new(
        "drain",
        &format!(
            "\\set id random(1, {})\nUPDATE items SET version = version + 1, note = 'v' || (version + 1) WHERE id = :id;\n",
            shape.keys
        ),
    )?;
    let clients = 8u64;
    let per = shape.events.div_ceil(clients);
    let started = Instant::now();
    pgbench::run(&src_url, script.path(), clients as usize, Until::Transactions(per))?;
    let events = per * clients;
    println!(
        "  backlog: {events} transactions committed in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let mut relay = RelayOptions::new(m.clone(), "owner", &src_url, &dst_url);
    relay.until_idle = true;
    let delivered = deed_relay::run(relay).await?;
    println!(
        "  deed relay to the inbox:               {:>6.1} s ({} events)",
        started.elapsed().as_secs_f64(),
        delivered.events
    );

    let cpu = cpu_seconds();
    let started = Instant::now();
    let mut opts = ProjectOptions::new(m.clone(), "reader", &src_url, &dst_url);
    opts.until_idle = true;
    opts.batch = shape.batch;
    let r = deed_project::run(opts).await?;
    let deed_secs = started.elapsed().as_secs_f64();
    let deed_cpu = cpu_seconds() - cpu;
    let applied = r.projections[0].applied;

    let expected = digest(&src, "items").await?;
    let started = Instant::now();
    sub.batch_execute("ALTER SUBSCRIPTION native_sub ENABLE").await?;
    loop {
        if digest(&sub, "items").await? == expected {
            break;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("native replication did not catch up within 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let native_secs = started.elapsed().as_secs_f64();
    let dst = deed_pg::connect_plain(&dst_url).await?;
    let copy = digest(&dst, "items_copy").await?;
    println!(
        "  deed project (inbox → projection):     {deed_secs:>6.1} s  {:>8.0} events/s  {:.2} µs CPU/event in deed  ({applied} applied, {} skipped)",
        applied as f64 / deed_secs,
        deed_cpu * 1e6 / applied.max(1) as f64,
        r.projections[0].skipped
    );
    println!(
        "  native logical replication (apply):    {native_secs:>6.1} s  {:>8.0} transactions/s",
        events as f64 / native_secs
    );
    println!(
        "  deed / native: {:.2}×; copy equals source: {}, subscriber equals source: yes",
        deed_secs / native_secs,
        if copy == expected { "yes" } else { "NO" }
    );
    for sql in [
        "ALTER SUBSCRIPTION native_sub DISABLE",
        "ALTER SUBSCRIPTION native_sub SET (slot_name = NONE)",
        "DROP SUBSCRIPTION native_sub",
    ] {
        sub.batch_execute(sql).await?;
    }
    src.batch_execute("SELECT pg_drop_replication_slot('native_slot')").await?;
    if copy != expected {
        bail!("the projection differs from the source: {copy:?} vs {expected:?}");
    }
    Ok(())
}

async fn backfill(cluster: &EmbeddedCluster, admin: &Client, shape: &Shape) -> anyhow::Result<()> {
    for db in ["bench_bsrc", "bench_bdst"] {
        admin.batch_execute(&format!("CREATE DATABASE {db}")).await?;
    }
    let (src_url, dst_url) = (cluster.url("bench_bsrc"), cluster.url("bench_bdst"));
    let src = deed_pg::connect_plain(&src_url).await?;
    create_source(&src, "big", shape.rows).await?;
    let m = manifest("big", &dst_url)?;
    deed_contracts::apply(&deed_pg::connect(&src_url).await?, &m, Date::today(), &[]).await?;
    println!(
        "backfill: a new projection of {} rows while a writer commits {} transactions/s (updates, inserts, deletes) and a relay delivers them",
        shape.rows, shape.rate
    );
    let keys = shape.rows + shape.rows / 10;
    let script = Script::new(
        "backfill",
        &format!(
            "\\set id random(1, {keys})\n\\set r random(1, 10)\n\
             \\if :r = 1\nDELETE FROM big WHERE id = :id;\n\
             \\elif :r = 2\nINSERT INTO big (id, version, note) VALUES (:id, 0, 'new') ON CONFLICT (id) DO NOTHING;\n\
             \\else\nUPDATE big SET version = version + 1, note = 'v' || (version + 1) WHERE id = :id;\n\\endif\n"
        ),
    )?;
    let before = commits(&src).await?;
    let mut writer =
        pgbench::spawn(&src_url, script.path(), 4, &["-R", &shape.rate.to_string(), "-T", "3600"])?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut relay = RelayOptions::new(m.clone(), "owner", &src_url, &dst_url);
    relay.shutdown = stop_rx;
    let relay = tokio::spawn(deed_relay::run(relay));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut opts = ProjectOptions::new(m.clone(), "reader", &src_url, &dst_url);
    opts.until_idle = true;
    opts.chunk = shape.chunk;
    let started = Instant::now();
    let r = deed_project::run(opts).await?;
    let whole = started.elapsed().as_secs_f64();
    let p = &r.projections[0];
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = writer.kill();
    let _ = writer.wait();
    let committed = commits(&src).await? - before;
    let _ = stop_tx.send(true);
    relay.await??;
    let mut last = RelayOptions::new(m.clone(), "owner", &src_url, &dst_url);
    last.until_idle = true;
    deed_relay::run(last).await?;
    let mut opts = ProjectOptions::new(m.clone(), "reader", &src_url, &dst_url);
    opts.until_idle = true;
    let tail = deed_project::run(opts).await?;
    let expected = digest(&src, "big").await?;
    let copy = digest(&deed_pg::connect_plain(&dst_url).await?, "big_copy").await?;
    println!(
        "  backfill: {} rows in {:.1} s ({:.0} rows/s); the run, with the events after the fence: {:.1} s",
        p.backfilled_rows,
        p.backfill_seconds,
        p.backfilled_rows as f64 / p.backfill_seconds,
        whole
    );
    println!(
        "  writer: {committed} commits during the run ({:.0}/s); events applied after the fence: {}",
        committed as f64 / (whole + 4.0),
        p.applied + tail.projections[0].applied
    );
    println!(
        "  copy equals source: {} ({} rows)",
        if copy == expected { "yes" } else { "NO" },
        expected.0
    );
    if copy != expected {
        bail!("the projection differs from the source: {copy:?} vs {expected:?}");
    }
    Ok(())
}
