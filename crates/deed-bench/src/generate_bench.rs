//! `deed generate` for many contracts: S services owning one table each
//! per contract, C contract versions in all (every fourth a hand-written
//! query with a LEFT JOIN, so nullability is derived through a parsed
//! view, the rest listed columns) and one event per service. Times, each
//! the median of several runs and side by side in one run:
//! - the floor: one catalog query reading every column of every contract
//!   view with its type and NOT NULL flag (what any generator must read);
//! - `pg_dump --schema-only` of the api schemas (a tool reading the same
//!   views' definitions);
//! - deed's observe (the catalog, each view's definition parsed), then
//!   rendering and writing each language.

use crate::stats::{median, ms};
use std::path::Path;
use std::time::Instant;

use deed_generate::{Lang, choose, files, observe, render_files};
use deed_manifest::{Date, Manifest};

pub struct Shape {
    pub services: usize,
    pub contracts: usize,
    pub runs: usize,
}

pub async fn run(shape: &Shape, database_url: Option<String>) -> anyhow::Result<()> {
    let scratch = crate::scratch::Scratch::new("deed_bench_generate", database_url).await?;
    let url = scratch.url.clone();
    let per_service = shape.contracts.div_ceil(shape.services);
    let mut ddl =
        String::from("CREATE TABLE vendors (id int PRIMARY KEY, vendor_name text NOT NULL);\n");
    for s in 0..shape.services {
        ddl += &format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gen_s{s}') THEN CREATE ROLE gen_s{s} LOGIN; END IF; END $$;\n"
        );
        for t in 0..per_service {
            ddl += &format!(
                "CREATE TABLE s{s}_t{t} (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL, \
                 note text, tags text[], created_at timestamptz NOT NULL DEFAULT now(), data jsonb, vendor_id int);\n"
            );
        }
    }
    deed_pg::connect_plain(&url).await?.batch_execute(&ddl).await?;
    let text = manifest(shape, per_service);
    let manifest = Manifest::parse(Path::new("deed.toml"), &text, &|_| None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let db = deed_pg::connect(&url).await?;
    let started = Instant::now();
    deed_contracts::apply(&db, &manifest, Date::today(), &[]).await?;
    let contracts = manifest.contract_views().count();
    let events: usize = manifest.services.iter().map(|s| s.events.len()).sum();
    println!(
        "{contracts} contract versions ({} of them queries with a LEFT JOIN) and {events} events of {} services; deed apply {:.1} s",
        contracts.div_ceil(4),
        shape.services,
        started.elapsed().as_secs_f64()
    );

    let mut floor = Vec::new();
    let mut dump = Vec::new();
    let mut observed = Vec::new();
    let mut model = None;
    let choice = choose(&manifest, None)?;
    let schemas: Vec<String> = manifest.services.iter().map(|s| s.api_schema.to_string()).collect();
    for _ in 0..shape.runs {
        let t = Instant::now();
        let rows = db
            .query(
                "SELECT c.oid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
                 WHERE c.relkind = 'v' AND n.nspname = ANY($1) ORDER BY c.oid, a.attnum",
                &[&schemas],
            )
            .await?;
        floor.push(t.elapsed());
        anyhow::ensure!(!rows.is_empty(), "no contract views were read");

        let t = Instant::now();
        let mut cmd = std::process::Command::new(deed_cluster::tool("pg_dump"));
        cmd.args(["--schema-only", "--no-owner", "-d", &url]);
        for s in &schemas {
            cmd.args(["-n", s]);
        }
        let out = cmd.output()?;
        anyhow::ensure!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
        dump.push(t.elapsed());

        let t = Instant::now();
        model = Some(observe(&db, &manifest, &choice).await?);
        observed.push(t.elapsed());
    }
    let model = model.expect("at least one run");
    println!(
        "{:<44} {:>9.1} ms",
        "floor: one catalog query of every view column",
        ms(median(&floor))
    );
    println!("{:<44} {:>9.1} ms", "pg_dump --schema-only of the api schemas", ms(median(&dump)));
    println!(
        "{:<44} {:>9.1} ms",
        "deed generate: observe (catalog, views parsed)",
        ms(median(&observed))
    );
    let out = std::env::temp_dir().join(format!("deed-bench-generate-{}", std::process::id()));
    for (lang, name) in [
        (Lang::Python, "python"),
        (Lang::TypeScript, "typescript"),
        (Lang::Rust, "rust"),
        (Lang::Go, "go"),
        (Lang::JsonSchema, "jsonschema"),
        (Lang::AsyncApi, "asyncapi"),
    ] {
        let mut rendered = Vec::new();
        let mut written = Vec::new();
        let (mut count, mut bytes) = (0, 0);
        for _ in 0..shape.runs {
            let _ = std::fs::remove_dir_all(&out);
            let t = Instant::now();
            let generated = render_files(&model, lang, None);
            rendered.push(t.elapsed());
            let t = Instant::now();
            files::write(&out, &generated)?;
            written.push(t.elapsed());
            count = generated.len();
            bytes = generated.values().map(String::len).sum::<usize>();
        }
        println!(
            "{:<44} {:>9.1} ms render, {:>6.1} ms write ({count} files, {:.1} MB)",
            format!("deed generate --lang {name}"),
            ms(median(&rendered)),
            ms(median(&written)),
            bytes as f64 / 1e6
        );
    }
    let _ = std::fs::remove_dir_all(&out);
    drop(db);
    let roles: Vec<String> = (0..shape.services)
        .map(|s| format!("gen_s{s}, deed_gen_s{s}_owner, deed_gen_s{s}_relay"))
        .collect();
    scratch.drop(&roles).await
}

/// Each service owns its tables, publishes a contract over each, and an
/// event of its first; the next service in the ring reads them all.
fn manifest(shape: &Shape, per_service: usize) -> String {
    let mut out = String::from("version = 1\n");
    let mut left = shape.contracts;
    for s in 0..shape.services {
        let here = per_service.min(left);
        left -= here;
        let mut owns: Vec<String> =
            (0..per_service).map(|t| format!("\"public.s{s}_t{t}\"")).collect();
        if s == 0 {
            owns.push("\"public.vendors\"".into());
        }
        let upstream = (s + shape.services - 1) % shape.services;
        let upstream_count =
            per_service.min(shape.contracts.saturating_sub(upstream * per_service));
        let reads: Vec<String> =
            (0..upstream_count).map(|c| format!("\"gen_s{upstream}.t{c}.v1\"")).collect();
        let consumes = if upstream_count > 1 {
            format!("consumes = [\"gen_s{upstream}.changed\"]\n")
        } else {
            String::new()
        };
        out += &format!(
            "[services.gen_s{s}]\nowns = [{}]\nlogins = [\"gen_s{s}\"]\nreads = [{}]\n{consumes}",
            owns.join(", "),
            reads.join(", ")
        );
        for c in 0..here {
            out += &format!(
                "[[services.gen_s{s}.contracts]]\nname = \"t{c}\"\nversion = 1\nfrom = \"public.s{s}_t{c}\"\n"
            );
            let shape = if c % 4 == 0 && s == 0 {
                format!(
                    "query = \"SELECT t.id, t.name, t.price, v.vendor_name FROM public.s{s}_t{c} t LEFT JOIN public.vendors v ON v.id = t.vendor_id\"\n"
                )
            } else if c % 4 == 0 {
                // Other services do not own vendors: a join within the table.
                format!(
                    "query = \"SELECT t.id, t.name, t.price, o.name AS other_name FROM public.s{s}_t{c} t LEFT JOIN public.s{s}_t{c} o ON o.id = t.vendor_id\"\n"
                )
            } else {
                "columns = [\"id\", \"name\", \"price\", \"note\", \"tags\", \"created_at\", \"data\"]\n".to_string()
            };
            out += &shape;
        }
        if here > 1 {
            out += &format!(
                "[[services.gen_s{s}.events]]\nname = \"changed\"\nfrom = \"public.s{s}_t1\"\nkey = [\"id\"]\ncontract = \"t1.v1\"\n"
            );
        }
    }
    out
}
