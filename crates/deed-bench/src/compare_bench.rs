//! `deed compare`'s engine beside reladiff and the floor, on a private
//! cluster: the same two tables (2,000,000 rows of int, text, numeric,
//! timestamptz and jsonb) in two databases, with 4 differences and then
//! with 10,000. The floor is one `hash_record_extended` pass over each
//! side, both at once. Rounds are interleaved; medians are reported.

use crate::stats::median;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use deed_cluster::{ClusterOptions, EmbeddedCluster};
use deed_compare::scan::Tuning;
use deed_compare::{CompareOptions, Pair, SESSION};
use deed_ident::{Ident, QualifiedName};
use deed_pg::Client;

pub struct Shape {
    pub rows: i64,
    pub many: i64,
    pub rounds: usize,
    pub skip_reladiff: bool,
    pub per_bucket: i64,
}

const TABLE: &str = "CREATE TABLE t (id bigint PRIMARY KEY, name text, amount numeric, at timestamptz, doc jsonb, qty int);
INSERT INTO t SELECT g, 'name ' || g, round((g % 100000) / 7.0, 2), timestamptz '2024-01-01' + g * interval '1 minute',
                     jsonb_build_object('k', g, 'tag', 'x' || (g % 13)), g % 100
  FROM generate_series(1, $ROWS) g;";

const COLUMNS: [&str; 6] = ["id", "name", "amount", "at", "doc", "qty"];

pub async fn run(shape: &Shape) -> anyhow::Result<()> {
    let cluster =
        tokio::task::spawn_blocking(|| EmbeddedCluster::start(&ClusterOptions::default()))
            .await??;
    let admin = deed_pg::connect_plain(&cluster.url("postgres")).await?;
    admin.batch_execute("CREATE DATABASE bench_a").await?;
    admin.batch_execute("CREATE DATABASE bench_b").await?;
    let (a_url, b_url) = (cluster.url("bench_a"), cluster.url("bench_b"));
    // reladiff knows the scheme by its long name.
    let long = |u: &str| u.replacen("postgres://", "postgresql://", 1);
    let a = deed_pg::connect_plain(&a_url).await?;
    let b = deed_pg::connect_plain(&b_url).await?;
    let fill = TABLE.replace("$ROWS", &shape.rows.to_string());
    eprintln!("filling two tables of {} rows…", shape.rows);
    tokio::try_join!(a.batch_execute(&fill), b.batch_execute(&fill))?;
    // 4 differences: changed, missing, extra, a jsonb value.
    b.batch_execute(&format!(
        "UPDATE t SET name = 'changed' WHERE id = {};
         DELETE FROM t WHERE id = {};
         INSERT INTO t VALUES (-1, 'extra', 1, now(), '{{}}', 1);
         UPDATE t SET doc = doc || '{{\"k\": 0}}' WHERE id = {};",
        shape.rows / 4,
        shape.rows / 2,
        shape.rows * 3 / 4
    ))
    .await?;
    tokio::try_join!(a.batch_execute("VACUUM ANALYZE t"), b.batch_execute("VACUUM ANALYZE t"))?;
    let reladiff = !shape.skip_reladiff && which("reladiff");
    if !shape.skip_reladiff && !reladiff {
        eprintln!(
            "reladiff is not installed (pip install reladiff psycopg2-binary): it is left out"
        );
    }
    let mut floor = Vec::new();
    let mut deed = Vec::new();
    let mut rela = Vec::new();
    for round in 0..shape.rounds {
        floor.push(floor_pass(&a, &b).await?);
        deed.push(deed_pass(&a_url, &b_url, 4, shape.per_bucket).await?);
        if reladiff {
            rela.push(reladiff_pass(&long(&a_url), &long(&b_url), 4)?);
        }
        eprintln!("round {}: floor {:.2} s, deed {:.2} s", round + 1, floor[round], deed[round]);
    }
    // Many differences: updates spread over the whole key range.
    b.batch_execute(&format!(
        "UPDATE t SET qty = qty + 1 WHERE id IN (SELECT (g * {step})::bigint FROM generate_series(1, {many}) g)",
        step = shape.rows / (shape.many + 1),
        many = shape.many
    ))
    .await?;
    b.batch_execute("VACUUM ANALYZE t").await?;
    let differences: i64 = b
        .query_one(
            "SELECT count(*) FROM t WHERE qty <> id % 100 AND id > 0 AND id <> $1 AND id <> $2",
            &[&(shape.rows / 4), &(shape.rows * 3 / 4)],
        )
        .await?
        .get(0);
    let mut deed_many = Vec::new();
    for _ in 0..shape.rounds {
        deed_many.push(deed_pass(&a_url, &b_url, differences + 4, shape.per_bucket).await?);
    }
    let (f, d, dm) = (median(&floor), median(&deed), median(&deed_many));
    println!(
        "compare, {} rows x 6 columns, two databases of one private cluster (medians of {} rounds)",
        shape.rows, shape.rounds
    );
    println!("  floor: one hash_record_extended pass per side, in parallel  {f:>7.2} s");
    println!(
        "  deed compare, 4 differences                                 {d:>7.2} s  ({:.2}x the floor)",
        d / f
    );
    if reladiff {
        let r = median(&rela);
        println!(
            "  reladiff 0.6, 4 differences                                 {r:>7.2} s  (deed is {:.1}x faster)",
            r / d
        );
    }
    println!(
        "  deed compare, {} differences                            {dm:>7.2} s  ({:.2}x the 4-difference time)",
        differences + 4,
        dm / d
    );
    drop((a, b, admin));
    tokio::task::spawn_blocking(move || cluster.stop()).await?;
    Ok(())
}

fn which(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

async fn floor_pass(a: &Client, b: &Client) -> anyhow::Result<f64> {
    let sql = "SELECT count(*), pg_catalog.bit_xor(pg_catalog.hash_record_extended(ROW(id, name, amount, at, doc, qty), 0)) FROM t";
    let started = Instant::now();
    tokio::try_join!(a.query_one(sql, &[]), b.query_one(sql, &[]))?;
    Ok(started.elapsed().as_secs_f64())
}

async fn deed_pass(
    a_url: &str,
    b_url: &str,
    expected: i64,
    per_bucket: i64,
) -> anyhow::Result<f64> {
    let names = |n: &[&str]| n.iter().map(|c| Ident::new(*c).unwrap()).collect::<Vec<_>>();
    let pair = Pair {
        source: QualifiedName::parse_sql("public.t")?,
        target: QualifiedName::parse_sql("public.t")?,
        key: names(&["id"]),
        columns: names(&COLUMNS),
    };
    let started = Instant::now();
    let (a, b) = tokio::try_join!(deed_pg::connect(a_url), deed_pg::connect(b_url))?;
    tokio::try_join!(a.batch_execute(SESSION), b.batch_execute(SESSION))?;
    let opts = CompareOptions {
        tuning: Tuning { per_bucket, ..Tuning::default() },
        ..CompareOptions::default()
    };
    let (_, settled) =
        deed_compare::diff(&a, &b, &pair, None::<&mut deed_compare::follow::Follow>, &opts).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let found = (settled.missing.len() + settled.extra.len() + settled.different.len()) as i64;
    if found != expected {
        bail!("deed compare found {found} differences, expected {expected}");
    }
    Ok(elapsed)
}

fn reladiff_pass(a_url: &str, b_url: &str, expected: usize) -> anyhow::Result<f64> {
    let mut cmd = Command::new("reladiff");
    cmd.args([a_url, "t", b_url, "t", "-k", "id"]);
    for c in &COLUMNS[1..] {
        cmd.args(["-c", c]);
    }
    let started = Instant::now();
    let out = cmd.output().context("running reladiff")?;
    let elapsed = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("reladiff failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    // One line per side of a difference: `-` and `+`.
    let lines =
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with(['-', '+'])).count();
    if lines < expected {
        bail!("reladiff reported {lines} lines, expected at least {expected}");
    }
    Ok(elapsed)
}
