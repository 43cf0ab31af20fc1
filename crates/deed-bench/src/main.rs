//! Benchmark tooling. Each subcommand prepares or measures one figure the
//! README reports; the scripts in `bench/` run them side by side with the
//! baseline they are compared against.

mod check_bench;
mod compare_bench;
mod gen_log;
mod generate_bench;
mod manifest_bench;
mod pgbench;
mod plan_bench;
mod project_bench;
mod relay_bench;
mod relay_drain;
mod relay_latency;
mod rng;
mod scratch;
mod split_bench;
mod stats;
mod unchanged_bench;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "deed-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a PostgreSQL 15 csvlog with a realistic mix of statement shapes.
    GenLog {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Approximate size, e.g. 1G, 100M.
        #[arg(long, default_value = "1G")]
        size: deed_text::ByteSize,
        /// Distinct statement shapes (before literals vary).
        #[arg(long, default_value_t = 320)]
        shapes: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Time `deed check` of a migration on a schema with many contracts.
    Check {
        #[arg(long, default_value_t = 200)]
        tables: usize,
        #[arg(long, default_value_t = 50)]
        contracts: usize,
        #[arg(long, default_value_t = 10)]
        services: usize,
        #[arg(long, default_value_t = 20)]
        statements: usize,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Writer overhead of capture, relay throughput and latency to JetStream
    /// (a private cluster and a private nats-server).
    Relay {
        /// Seconds per pgbench run.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, default_value_t = 8)]
        clients: usize,
        #[arg(long, default_value_t = 100_000)]
        rows: i64,
        /// fsync and synchronous_commit on, as on a production server.
        #[arg(long)]
        durable: bool,
        /// Seconds of paced writes for the latency figure.
        #[arg(long, default_value_t = 20)]
        latency_seconds: u64,
        /// Events the relay hands to the sink at a time.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Rounds of all configurations, interleaved; medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Measure only the latency, at this many commits per second.
        #[arg(long, value_name = "RATE")]
        latency_only: Option<f64>,
        /// Transactions in the backlog drained beside pg_recvlogical (0: skip).
        #[arg(long, default_value_t = 200_000)]
        drain: u64,
        /// Only the drain comparison.
        #[arg(long)]
        drain_only: bool,
    },
    /// `deed project`: draining a backlog into a table projection beside
    /// native logical replication, and a backfill beside paced writers
    /// (a private cluster).
    Project {
        /// Single-row UPDATE transactions in the backlog.
        #[arg(long, default_value_t = 480_000)]
        events: u64,
        /// Keys the backlog's updates spread over.
        #[arg(long, default_value_t = 100_000)]
        keys: i64,
        /// Rows of the table the backfill copies.
        #[arg(long, default_value_t = 2_000_000)]
        rows: i64,
        /// Commits per second beside the backfill.
        #[arg(long, default_value_t = 5000)]
        rate: u64,
        #[arg(long, default_value_t = 5000)]
        batch: usize,
        #[arg(long, default_value_t = 10_000)]
        chunk: usize,
        #[arg(long)]
        skip_drain: bool,
        #[arg(long)]
        skip_backfill: bool,
    },
    /// `deed compare` beside reladiff and one hash pass per side (the
    /// floor), on two databases of a private cluster.
    Compare {
        #[arg(long, default_value_t = 2_000_000)]
        rows: i64,
        /// Differences of the second measurement.
        #[arg(long, default_value_t = 10_000)]
        many: i64,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long)]
        skip_reladiff: bool,
        /// Rows per key range of the first pass.
        #[arg(long, default_value_t = 32)]
        per_bucket: i64,
    },
    /// The relay's CPU per event for skipping no-op updates from memory
    /// (tables that do not log old rows).
    Unchanged {
        #[arg(long, default_value_t = 2_000_000)]
        events: u64,
        #[arg(long, default_value_t = 100_000)]
        keys: u64,
    },
    /// `deed generate` for many contracts, beside one catalog query of
    /// every view column and pg_dump --schema-only (a private cluster).
    Generate {
        #[arg(long, default_value_t = 1000)]
        contracts: usize,
        #[arg(long, default_value_t = 10)]
        services: usize,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// A superuser URL of an existing server.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Time the validation of a manifest with many services.
    Manifest {
        #[arg(long, default_value_t = 10_000)]
        services: usize,
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// `deed split` beside `pg_dump | psql`, then cutover/rollback cycles
    /// while writers commit through PgBouncer (two private clusters and a
    /// private PgBouncer).
    Split {
        /// Rows in all, spread over the tables.
        #[arg(long, default_value_t = 2_000_000)]
        rows: i64,
        #[arg(long, default_value_t = 5)]
        tables: usize,
        /// Commits per second asked of the writers, in all.
        #[arg(long, default_value_t = 5000)]
        rate: u64,
        #[arg(long, default_value_t = 8)]
        writers: usize,
        /// Cutover/rollback cycles.
        #[arg(long, default_value_t = 20)]
        cycles: usize,
        /// Seconds between two switches.
        #[arg(long, default_value_t = 1.0)]
        hold: f64,
    },
    /// Time `deed plan` on a large schema (a private cluster unless --database-url).
    Plan {
        #[arg(long, default_value_t = 20)]
        services: usize,
        #[arg(long, default_value_t = 1000)]
        tables: usize,
        #[arg(long, default_value_t = 100)]
        contracts: usize,
        #[arg(long, default_value_t = 7)]
        runs: usize,
        /// A superuser URL of an existing server.
        #[arg(long)]
        database_url: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Check { tables, contracts, services, statements, runs, database_url } => {
            let shape = check_bench::Shape { tables, contracts, services, statements, runs };
            runtime()?.block_on(check_bench::run(&shape, database_url))
        }
        Command::Manifest { services, runs } => manifest_bench::run(services, runs),
        Command::Split { rows, tables, rate, writers, cycles, hold } => {
            runtime()?.block_on(split_bench::run(&split_bench::Shape {
                rows,
                tables,
                rate,
                writers,
                cycles,
                hold: std::time::Duration::from_secs_f64(hold),
            }))
        }
        Command::Unchanged { events, keys } => unchanged_bench::run(events, keys),
        Command::Compare { rows, many, rounds, skip_reladiff, per_bucket } => {
            runtime()?.block_on(compare_bench::run(&compare_bench::Shape {
                rows,
                many,
                rounds,
                skip_reladiff,
                per_bucket,
            }))
        }
        Command::Project { events, keys, rows, rate, batch, chunk, skip_drain, skip_backfill } => {
            let shape = project_bench::Shape {
                events,
                keys,
                rows,
                rate,
                batch,
                chunk,
                skip_drain,
                skip_backfill,
            };
            runtime()?.block_on(project_bench::run(&shape))
        }
        Command::Generate { contracts, services, runs, database_url } => {
            let shape = generate_bench::Shape { services, contracts, runs };
            runtime()?.block_on(generate_bench::run(&shape, database_url))
        }
        Command::Plan { services, tables, contracts, runs, database_url } => {
            let shape = plan_bench::Shape { services, tables, contracts, runs };
            runtime()?.block_on(plan_bench::run(&shape, database_url))
        }
        Command::Relay {
            seconds,
            clients,
            rows,
            durable,
            latency_seconds,
            batch,
            rounds,
            latency_only,
            drain,
            drain_only,
        } => {
            let shape = relay_bench::Shape {
                seconds,
                clients,
                rows,
                durable,
                latency_seconds,
                batch,
                rounds: rounds.max(1),
                latency_only,
                drain,
                drain_only,
            };
            runtime()?.block_on(relay_bench::run(&shape))
        }
        Command::GenLog { out, size, shapes, seed } => {
            let bytes = size.0;
            let stats = gen_log::generate(&out, bytes, shapes, seed)?;
            println!(
                "wrote {} ({} bytes): {} log entries, {} statements, {} shapes",
                out.display(),
                stats.bytes,
                stats.entries,
                stats.statements,
                stats.shapes
            );
            Ok(())
        }
    }
}

/// Two workers: the machines these figures come from have two cores.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
}
