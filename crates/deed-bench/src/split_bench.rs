//! `deed-bench split`: a service owning five tables moved to a second
//! private cluster, timed beside `pg_dump | psql` of the same tables; then
//! cutover/rollback cycles while writers commit through PgBouncer at a
//! fixed rate, measured from the client side (the longest gap between two
//! commits, the longest commit) and checked by a ledger of acknowledged
//! inserts and by the compare engine.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use deed_cluster::{ClusterOptions, EmbeddedCluster, EmbeddedPgBouncer};
use deed_manifest::{Date, Manifest};
use deed_split::pgbouncer::PgBouncer;
use deed_split::{Split, phases};
use tokio::sync::Mutex;

pub struct Shape {
    pub rows: i64,
    pub tables: usize,
    pub rate: u64,
    pub writers: usize,
    pub cycles: usize,
    pub hold: Duration,
}

fn table_sql(i: usize, rows: i64) -> String {
    format!(
        "CREATE TABLE t{i} (id bigserial PRIMARY KEY, name text NOT NULL, amount numeric(12,2), at timestamptz NOT NULL DEFAULT now(), qty int);
         INSERT INTO t{i} (name, amount, qty) SELECT 'row ' || g, g / 7.0, g % 100 FROM generate_series(1, {rows}) g;
         CREATE INDEX t{i}_name ON t{i} (name);"
    )
}

/// What the writers saw.
#[derive(Default)]
struct Seen {
    /// (table, id) of every acknowledged insert.
    acked: Vec<(usize, i64)>,
    latencies: Vec<Duration>,
    errors: Vec<String>,
}

struct Clock {
    start: Instant,
    /// Nanoseconds since `start` of the last successful commit.
    last: AtomicU64,
    longest_gap: AtomicU64,
}

impl Clock {
    fn committed(&self) {
        let now = self.start.elapsed().as_nanos() as u64;
        let before = self.last.swap(now, Ordering::Relaxed);
        if before > 0 {
            self.longest_gap.fetch_max(now.saturating_sub(before), Ordering::Relaxed);
        }
    }
}

async fn writer(
    url: String,
    n: usize,
    shape_rate: f64,
    tables: usize,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    clock: Arc<Clock>,
) {
    let client = match deed_pg::connect_plain(&url).await {
        Ok(c) => c,
        Err(e) => {
            seen.lock().await.errors.push(e.to_string());
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / shape_rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut i: u64 = 0;
    let mut local = Seen::default();
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        i += 1;
        let t = 1 + (i as usize + n) % tables;
        let insert = i % 2 == 0;
        let sql = if insert {
            format!("INSERT INTO t{t} (name, amount, qty) VALUES ('w{n}-{i}', 1, 1) RETURNING id")
        } else {
            format!("UPDATE t{t} SET qty = qty + 1 WHERE id = {}", 1 + (i * 7919 + n as u64) % 1000)
        };
        let started = Instant::now();
        match client.simple_query(&sql).await {
            Ok(msgs) => {
                clock.committed();
                local.latencies.push(started.elapsed());
                for m in msgs {
                    if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                        local.acked.push((t, r.get(0).and_then(|v| v.parse().ok()).unwrap_or(-1)));
                    }
                }
            }
            Err(e) => local.errors.push(format!("{e:?}")),
        }
    }
    let mut s = seen.lock().await;
    s.acked.extend(local.acked);
    s.latencies.extend(local.latencies);
    s.errors.extend(local.errors);
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let i = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[i]
}

/// `pg_dump -t … | psql` of the same tables into a fresh database on the
/// second cluster.
fn pg_dump_psql(source: &str, target: &str, tables: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut dump = Command::new(deed_cluster::tool("pg_dump"));
    dump.arg("--no-owner").arg("--no-privileges").arg("-d").arg(source);
    for i in 1..=tables {
        dump.arg("-t").arg(format!("public.t{i}"));
    }
    let mut dump = dump.stdout(Stdio::piped()).spawn().context("running pg_dump")?;
    let out = dump.stdout.take().expect("piped");
    let psql = Command::new(deed_cluster::tool("psql"))
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", target])
        .stdin(out)
        .stdout(Stdio::null())
        .status()
        .context("running psql")?;
    let dumped = dump.wait()?;
    if !psql.success() || !dumped.success() {
        bail!("pg_dump | psql failed");
    }
    Ok(started.elapsed().as_secs_f64())
}

pub async fn run(shape: &Shape) -> anyhow::Result<()> {
    let start =
        || tokio::task::spawn_blocking(|| EmbeddedCluster::start(&ClusterOptions::default()));
    let (a, b) = (start().await??, start().await??);
    deed_pg::connect_plain(&a.url("postgres")).await?.batch_execute("CREATE DATABASE shop").await?;
    let admin_b = deed_pg::connect_plain(&b.url("postgres")).await?;
    admin_b.batch_execute("CREATE DATABASE own").await?;
    admin_b.batch_execute("CREATE DATABASE baseline").await?;
    let (shared_url, own_url) = (a.url("shop"), b.url("own"));
    let shared = deed_pg::connect_plain(&shared_url).await?;
    let per = shape.rows / shape.tables as i64;
    eprintln!("filling {} tables of {per} rows…", shape.tables);
    shared.batch_execute("CREATE ROLE bench_svc LOGIN").await?;
    for i in 1..=shape.tables {
        shared.batch_execute(&table_sql(i, per)).await?;
    }
    shared.batch_execute("VACUUM ANALYZE").await?;
    let owns: Vec<String> = (1..=shape.tables).map(|i| format!("\"public.t{i}\"")).collect();
    let text = format!(
        "version = 1\n[services.bench]\nowns = [{}]\nlogins = [\"bench_svc\"]\n",
        owns.join(", ")
    );
    let manifest = Manifest::parse(Path::new("deed.toml"), &text, &|_| None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    deed_contracts::apply(&deed_pg::connect(&shared_url).await?, &manifest, Date::today(), &[])
        .await?;

    eprintln!("pg_dump | psql…");
    let baseline = pg_dump_psql(&shared_url, &b.url("baseline"), shape.tables)?;
    eprintln!("deed split --prepare --copy…");
    let mut split = Split::open(
        &manifest,
        "bench",
        deed_pg::connect(&shared_url).await?,
        deed_pg::connect(&own_url).await?,
        shared_url.clone(),
        own_url.clone(),
    )
    .await?;
    let started = Instant::now();
    phases::prepare(&mut split, &manifest, false).await?;
    phases::copy(&mut split, Duration::from_secs(3600), &mut |_| {}).await?;
    let copy = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let proof = phases::prove_phase(&mut split, Duration::from_secs(120)).await?;
    let prove = started.elapsed().as_secs_f64();
    if !proof.equal {
        bail!("the copy is not equal to its source: {proof:?}");
    }

    let bouncer = EmbeddedPgBouncer::start(&[("shop", &shared_url)], &["bench_svc"])?;
    let traffic = PgBouncer::connect(&bouncer.admin_url(), "shop").await?;
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let clock = Arc::new(Clock {
        start: Instant::now(),
        last: AtomicU64::new(0),
        longest_gap: AtomicU64::new(0),
    });
    let per_writer = shape.rate as f64 / shape.writers as f64;
    let url = bouncer.url("shop", "bench_svc");
    let writers: Vec<_> = (0..shape.writers)
        .map(|n| {
            tokio::spawn(writer(
                url.clone(),
                n,
                per_writer,
                shape.tables,
                stop.clone(),
                seen.clone(),
                clock.clone(),
            ))
        })
        .collect();
    let load_started = Instant::now();
    let mut cutovers = Vec::new();
    let mut rollbacks = Vec::new();
    for cycle in 1..=shape.cycles {
        tokio::time::sleep(shape.hold).await;
        if std::env::var_os("DEED_BENCH_PROBE").is_some() {
            for _ in 0..3 {
                let t0 = Instant::now();
                let (n, _) = deed_split::replicate::fence(&split.shared, "bench").await?;
                deed_split::replicate::wait_fence(
                    &split.target,
                    "bench",
                    n,
                    Duration::from_secs(10),
                )
                .await?;
                eprintln!(
                    "  forward fence round trip {:.0} ms",
                    t0.elapsed().as_secs_f64() * 1000.0
                );
            }
        }
        let c = phases::switch(
            &mut split,
            true,
            Duration::from_secs(86_400),
            Duration::from_secs(10),
            Some(&traffic),
        )
        .await?;
        cutovers.push(c.fence_ms);
        tokio::time::sleep(shape.hold).await;
        let r = phases::switch(
            &mut split,
            false,
            Duration::from_secs(86_400),
            Duration::from_secs(10),
            Some(&traffic),
        )
        .await?;
        rollbacks.push(r.fence_ms);
        eprintln!("cycle {cycle}: cutover {:.0} ms, rollback {:.0} ms", c.fence_ms, r.fence_ms);
        for (what, s) in [("cutover", &c), ("rollback", &r)] {
            if s.fence_ms > 200.0 {
                let steps: Vec<String> =
                    s.steps.iter().map(|(n, ms)| format!("{n} {ms:.0} ms")).collect();
                eprintln!("  {what}: {}", steps.join("; "));
            }
        }
    }
    tokio::time::sleep(shape.hold).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await?;
    }
    let load_seconds = load_started.elapsed().as_secs_f64();
    let seen = seen.lock().await;
    // The ledger: every acknowledged insert is there, once, and nothing else.
    let mut lost = 0usize;
    let mut extra = 0i64;
    let check = deed_pg::connect_plain(&shared_url).await?;
    for t in 1..=shape.tables {
        let acked: Vec<i64> =
            seen.acked.iter().filter(|(tt, _)| *tt == t).map(|(_, id)| *id).collect();
        let present: i64 = check
            .query_one(&format!("SELECT count(*) FROM t{t} WHERE id = ANY($1)"), &[&acked])
            .await?
            .get(0);
        lost += acked.len() - present as usize;
        let written: i64 = check
            .query_one(&format!("SELECT count(*) FROM t{t} WHERE name LIKE 'w%'"), &[])
            .await?
            .get(0);
        extra += written - present;
    }
    let final_proof = phases::prove_phase(&mut split, Duration::from_secs(120)).await?;
    let mut lat: Vec<f64> = seen.latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let commits = lat.len();
    let p99_latency = percentile(&mut lat, 0.99);
    let max_latency = lat.last().copied().unwrap_or(0.0);
    let mut cut = cutovers.clone();
    let mut all: Vec<f64> = cutovers.iter().chain(&rollbacks).copied().collect();
    println!(
        "deed-bench split: {} rows in {} tables; two private clusters (fsync off, synchronous_commit off)",
        shape.rows, shape.tables
    );
    println!("  copy     pg_dump | psql            {baseline:>8.2} s");
    println!(
        "           deed split prepare + copy {copy:>8.2} s  ({:.2}× pg_dump | psql; the copy then follows)",
        copy / baseline
    );
    println!(
        "  prove    compare of every table    {prove:>8.2} s  ({})",
        if proof.equal { "equal" } else { "DIFFERENT" }
    );
    println!(
        "  load     {commits} commits in {load_seconds:.1} s through PgBouncer = {:.0}/s (asked {}/s, {} writers)",
        commits as f64 / load_seconds,
        shape.rate,
        shape.writers
    );
    println!(
        "  fence    {} cutovers: max {:.0} ms, p99 {:.0} ms, median {:.0} ms; with the {} rollbacks: max {:.0} ms",
        cut.len(),
        cut.iter().copied().fold(0.0, f64::max),
        percentile(&mut cut, 0.99),
        percentile(&mut cut, 0.5),
        rollbacks.len(),
        percentile(&mut all, 1.0)
    );
    println!(
        "  client   longest gap between two commits {:.0} ms; longest commit {max_latency:.0} ms; p99 commit {p99_latency:.1} ms",
        clock.longest_gap.load(Ordering::Relaxed) as f64 / 1e6
    );
    println!(
        "  ledger   {} inserts acknowledged: {lost} lost, {extra} not acknowledged or duplicated; {} client errors",
        seen.acked.len(),
        seen.errors.len()
    );
    println!(
        "  compare  after the last rollback: {}",
        if final_proof.equal { "every table equal" } else { "DIFFERENT" }
    );
    for e in seen.errors.iter().take(3) {
        println!("  error: {e}");
    }
    drop(bouncer);
    a.stop();
    b.stop();
    if lost > 0 || extra != 0 || !final_proof.equal || !seen.errors.is_empty() {
        bail!("the split lost, duplicated or refused writes");
    }
    Ok(())
}
