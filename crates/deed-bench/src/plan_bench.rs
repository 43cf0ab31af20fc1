//! `deed plan` on a large schema: N services owning M tables in all, with
//! C contracts read by other services. Times the plan against the fresh
//! database (every change pending) and again after apply (a no-op plan,
//! the state CI sees), each the median of several runs.

use crate::stats::ms;
use std::path::Path;
use std::time::Instant;

use deed_contracts::{ApplyOutcome, PlanRequest};
use deed_manifest::{Date, Manifest};

pub struct Shape {
    pub services: usize,
    pub tables: usize,
    pub contracts: usize,
    pub runs: usize,
}

pub async fn run(shape: &Shape, database_url: Option<String>) -> anyhow::Result<()> {
    let scratch = crate::scratch::Scratch::new("deed_bench_plan", database_url).await?;
    let url = scratch.url.clone();
    let db = deed_pg::connect(&url).await?;
    let per_service = shape.tables / shape.services;
    let mut ddl = String::new();
    for s in 0..shape.services {
        ddl.push_str(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_s{s}') THEN CREATE ROLE bench_s{s} LOGIN; END IF; END $$;\n"
        ));
        for t in 0..per_service {
            ddl.push_str(&format!(
                "CREATE TABLE s{s}_t{t} (id bigint PRIMARY KEY, name text, amount_cents int, status text, created_at timestamptz, secret text);\n"
            ));
        }
    }
    // The schema is the application's: created in a plain session, not one
    // of deed's (which resolves unqualified names in pg_catalog only).
    deed_pg::connect_plain(&url).await?.batch_execute(&ddl).await?;
    let grants: Vec<String> = (0..shape.services).map(|s| format!("bench_s{s}")).collect();
    deed_pg::connect_plain(&url)
        .await?
        .batch_execute(&format!(
            "GRANT ALL ON ALL TABLES IN SCHEMA public TO {}",
            grants.join(", ")
        ))
        .await?;

    let manifest_text = manifest(shape, per_service);
    let manifest = Manifest::parse(Path::new("deed.toml"), &manifest_text, &|_| None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let today = Date::today();
    let (db, manifest) = (&db, &manifest);
    let time = |label: &'static str| async move {
        let mut samples = Vec::new();
        let mut changes = 0;
        for _ in 0..shape.runs {
            let started = Instant::now();
            let plan = deed_contracts::plan(
                db,
                PlanRequest { manifest, audit: None, today, stage: Default::default() },
            )
            .await?;
            samples.push(started.elapsed());
            changes = plan.changes.len();
        }
        samples.sort();
        let median = samples[samples.len() / 2];
        println!(
            "deed plan, {label:<28} {:>8.1} ms median of {} runs ({} changes; min {:.1} ms, max {:.1} ms)",
            ms(median),
            shape.runs,
            changes,
            ms(samples[0]),
            ms(*samples.last().expect("runs"))
        );
        anyhow::Ok(median)
    };
    println!(
        "schema: {} services, {} tables, {} contracts ({} tables per service)",
        shape.services,
        per_service * shape.services,
        shape.contracts,
        per_service
    );
    time("fresh database (all pending)").await?;
    let started = Instant::now();
    let applied = match deed_contracts::apply(db, manifest, today, &[]).await? {
        ApplyOutcome::Applied(c) => c.len(),
        ApplyOutcome::NothingToDo => 0,
    };
    println!("deed apply, {applied} changes in one transaction: {:.1} ms", ms(started.elapsed()));
    time("after apply (no-op)").await?;
    let roles: Vec<String> =
        (0..shape.services).map(|s| format!("bench_s{s}, deed_bench_s{s}_owner")).collect();
    scratch.drop(&roles).await
}

/// Each service owns its tables and publishes contracts over the first
/// few; the next service in the ring reads them.
fn manifest(shape: &Shape, per_service: usize) -> String {
    let per_contracts = shape.contracts / shape.services;
    let mut out = String::from("version = 1\n");
    for s in 0..shape.services {
        let owns: Vec<String> = (0..per_service).map(|t| format!("\"public.s{s}_t{t}\"")).collect();
        let upstream = (s + shape.services - 1) % shape.services;
        let reads: Vec<String> =
            (0..per_contracts).map(|c| format!("\"bench_s{upstream}.t{c}.v1\"")).collect();
        out.push_str(&format!(
            "[services.bench_s{s}]\nowns = [{}]\nlogins = [\"bench_s{s}\"]\nreads = [{}]\n",
            owns.join(", "),
            reads.join(", ")
        ));
        for c in 0..per_contracts {
            out.push_str(&format!(
                "[[services.bench_s{s}.contracts]]\nname = \"t{c}\"\nversion = 1\nfrom = \"public.s{s}_t{c}\"\ncolumns = [\"id\", \"name\", \"amount_cents\", \"status\"]\n"
            ));
        }
    }
    out
}
