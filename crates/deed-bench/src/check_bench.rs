//! `deed check` on a schema of many tables and contracts with a migration
//! of many statements: the whole run (pg_dump of the schema, the scratch
//! database, every statement with a signature comparison after it, the
//! definition checks, the drop), median of several runs.

use crate::stats::ms;
use std::path::Path;
use std::time::Instant;

use deed_check::CheckRequest;
use deed_manifest::{Date, Manifest};

pub struct Shape {
    pub tables: usize,
    pub contracts: usize,
    pub services: usize,
    pub statements: usize,
    pub runs: usize,
}

pub async fn run(shape: &Shape, database_url: Option<String>) -> anyhow::Result<()> {
    let scratch = crate::scratch::Scratch::new("deed_bench_check", database_url).await?;
    let url = scratch.url.clone();
    let db = deed_pg::connect(&url).await?;
    let per_service = shape.tables / shape.services;
    let mut ddl = String::new();
    for s in 0..shape.services {
        for t in 0..per_service {
            ddl.push_str(&format!(
                "CREATE TABLE s{s}_t{t} (id bigint PRIMARY KEY, name text NOT NULL, amount_cents int NOT NULL, status text, created_at timestamptz DEFAULT now(), note text);\n\
                 CREATE INDEX ON s{s}_t{t} (status);\n"
            ));
        }
    }
    // The schema is the application's: created in a plain session, not one
    // of deed's (which resolves unqualified names in pg_catalog only).
    deed_pg::connect_plain(&url).await?.batch_execute(&ddl).await?;
    let per_contracts = shape.contracts / shape.services;
    let mut manifest = String::from("version = 1\n");
    for s in 0..shape.services {
        let owns: Vec<String> = (0..per_service).map(|t| format!("\"public.s{s}_t{t}\"")).collect();
        let upstream = (s + shape.services - 1) % shape.services;
        let reads: Vec<String> =
            (0..per_contracts).map(|c| format!("\"svc{upstream}.t{c}.v1\"")).collect();
        manifest.push_str(&format!(
            "[services.svc{s}]\nowns = [{}]\nreads = [{}]\n",
            owns.join(", "),
            reads.join(", ")
        ));
        for c in 0..per_contracts {
            manifest.push_str(&format!(
                "[[services.svc{s}.contracts]]\nname = \"t{c}\"\nversion = 1\nfrom = \"public.s{s}_t{c}\"\ncolumns = [\"id\", \"name\", \"amount_cents\", \"status\"]\n"
            ));
        }
    }
    let manifest = Manifest::parse(Path::new("deed.toml"), &manifest, &|_| None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Apply once, so the contract views are live as in production.
    let applied = deed_contracts::apply(&db, &manifest, Date::today(), &[]).await?;
    drop(applied);
    let dir = std::env::temp_dir().join(format!("deed-bench-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let migration = dir.join("0001_bench.sql");
    let mut sql = String::new();
    for i in 0..shape.statements {
        let t = format!(
            "s{}_t{}",
            i % shape.services,
            per_contracts + i % (per_service - per_contracts).max(1)
        );
        sql.push_str(&match i % 5 {
            0 => format!("ALTER TABLE {t} ADD COLUMN extra_{i} text;\n"),
            1 => format!("CREATE INDEX idx_bench_{i} ON {t} (created_at);\n"),
            2 => format!("ALTER TABLE {t} ALTER COLUMN note TYPE varchar(500);\n"),
            3 => format!(
                "CREATE TABLE bench_new_{i} (id bigint PRIMARY KEY, ref bigint REFERENCES {t});\n"
            ),
            _ => format!("UPDATE {t} SET note = 'x' WHERE id < 0;\n"),
        });
    }
    std::fs::write(&migration, &sql)?;
    println!(
        "schema: {} tables, {} contracts (all read), {} services; migration: {} statements",
        per_service * shape.services,
        per_contracts * shape.services,
        shape.services,
        shape.statements
    );
    let mut samples = Vec::new();
    for _ in 0..shape.runs {
        let started = Instant::now();
        let outcome = deed_check::check(&CheckRequest {
            manifest: manifest.clone(),
            database_url: url.clone(),
            scratch_url: None,
            migrations: vec![migration.clone()],
            audit: None,
            today: Date::today(),
        })
        .await?;
        samples.push(started.elapsed());
        anyhow::ensure!(
            outcome.findings.is_empty(),
            "the benchmark migration is meant to be safe: {:?}",
            outcome.findings
        );
    }
    samples.sort();
    println!(
        "deed check: {:.0} ms median of {} runs (min {:.0} ms, max {:.0} ms)",
        ms(samples[samples.len() / 2]),
        shape.runs,
        ms(samples[0]),
        ms(*samples.last().expect("runs"))
    );
    std::fs::remove_dir_all(&dir)?;
    drop(db);
    let roles: Vec<String> = (0..shape.services).map(|s| format!("deed_svc{s}_owner")).collect();
    scratch.drop(&roles).await
}
