use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use deed_text::{ByteSize, HumanDuration};

/// Every table has an owner.
///
/// deed catalogues which service reads and writes what in a shared
/// PostgreSQL database and flags every access that crosses an ownership
/// line. Exit codes: 0 all is well, 1 findings, 2 deed could not do its job.
#[derive(Parser, Debug)]
#[command(name = "deed", version, about, long_about)]
pub struct Cli {
    /// The manifest [default: ./deed.toml].
    #[arg(long, global = true, value_name = "PATH")]
    pub manifest: Option<PathBuf>,
    /// Database URL; overrides [database] url in the manifest and DATABASE_URL.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Output format of reports.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Markdown,
    Html,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Catalogue who reads and writes what, and flag accesses that cross an
    /// ownership line (foreign-write, foreign-read, select-star, unowned,
    /// multiple-writers).
    Audit(AuditArgs),
    /// Propose a deed.toml from observed traffic and print it.
    Init(InitArgs),
    /// Show the changes that make the database match the manifest (roles,
    /// ownership, contract views, grants) and their SQL; with a source,
    /// also the observed statements they would break.
    Plan(PlanArgs),
    /// Apply the plan in one transaction under an advisory lock.
    Apply(ApplyArgs),
    /// List how the live database differs from the manifest (exit 1 if it does).
    Drift,
    /// Every data flow between services, its rung, and what blocks the next one.
    Status(StatusArgs),
    /// Check migrations against the published contracts (exit 1 if one
    /// breaks a version a service reads), or a consumer's SQL against the
    /// contracts it reads (--consumer).
    Check(CheckArgs),
    /// Manage contract versions in deed.toml.
    #[command(subcommand)]
    Contract(ContractCommand),
    /// Write typed, read-only models of the contracts a service reads and
    /// the events it consumes, from the live catalog (--check: exit 1 when
    /// the files in --out are not what would be written now).
    Generate(GenerateArgs),
    /// Deliver a service's events, in commit order, to NATS JetStream,
    /// Kafka, RabbitMQ, a webhook or a PostgreSQL inbox.
    Relay(RelayArgs),
    /// Keep a service's projections from the events it consumes, exactly
    /// once: tables from state events, handlers per event.
    Project(ProjectArgs),
    /// Prove a projection equal to its source contract, row by row, at a
    /// consistent point (exit 1 if they differ); the verdict is recorded.
    Compare(CompareArgs),
    /// After a clean compare, revoke the read a projection replaces and take
    /// it out of deed.toml, in one step (exit 1 if refused); --rollback
    /// restores both.
    Cutover(CutoverArgs),
    /// Move a service's tables to its own instance: prepare, copy and
    /// follow, prove, cut over with a write fence of about a second (exit 1
    /// if refused or not proven); --rollback and --finish.
    Split(SplitArgs),
    /// Print a service's events from the bus (or an inbox).
    Tail(TailArgs),
    /// Build an example shop, run its services' workload, and walk the ladder.
    Demo(DemoArgs),
    /// Check every prerequisite of every rung against the manifest and the
    /// server, and say what to change (exit 1 if one the manifest needs fails).
    Doctor(DoctorArgs),
    /// Write deed's man pages (deed.1, deed-split.1, …) into a directory.
    Man(ManArgs),
    /// Print a shell's completion script for deed.
    Completions(CompletionsArgs),
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// The directory to write into (created if missing), e.g.
    /// ~/.local/share/man/man1.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Where statements come from; several sources may be combined.
#[derive(Args, Debug, Clone, Default)]
pub struct Sources {
    /// A live source: `pg_stat_statements` of the database.
    #[arg(long = "from", value_enum, value_name = "SOURCE")]
    pub from: Vec<LiveSource>,
    /// A PostgreSQL log file (csvlog, jsonlog or stderr), optionally gzip-compressed; `-` reads stdin.
    #[arg(long = "from-log", value_name = "FILE")]
    pub from_log: Vec<PathBuf>,
    /// Only log entries of this database [default: the connected database].
    #[arg(long, value_name = "NAME")]
    pub log_database: Option<String>,
    /// Read --from-log as PostgreSQL's plain stderr format with this
    /// log_line_prefix [default: detected; the server's prefix, or '%m [%p] '].
    #[arg(long, value_name = "PREFIX")]
    pub log_line_prefix: Option<String>,
    /// A directory of .sql files and sqlx offline query files (.sqlx/query-*.json) that a service ships.
    #[arg(long = "from-sql", value_name = "DIR", requires = "service")]
    pub from_sql: Vec<PathBuf>,
    /// The service that ships the SQL of the matching --from-sql (in order).
    #[arg(long = "service", value_name = "NAME")]
    pub service: Vec<String>,
    /// The placeholders a --from-sql's driver writes: once for all, or
    /// once per --from-sql in order. `auto` reads %(name)s, %s and :name;
    /// `qmark` also reads ? (which is otherwise a jsonb operator).
    #[arg(long = "placeholders", value_enum, value_name = "STYLE")]
    pub placeholders: Vec<PlaceholderStyle>,
    /// Schemas that unqualified names resolve through, comma-separated [default: the manifest's, or public].
    #[arg(long, value_name = "SCHEMAS", value_delimiter = ',')]
    pub search_path: Option<Vec<String>>,
    /// Longest log line read [default: 64MB].
    #[arg(long, value_name = "SIZE")]
    pub max_line_bytes: Option<ByteSize>,
    /// Longest statement analysed; longer ones are counted, not parsed [default: 1MB].
    #[arg(long, value_name = "SIZE")]
    pub max_statement_bytes: Option<ByteSize>,
    /// Largest log read, after decompression [default: 64GB].
    #[arg(long, value_name = "SIZE")]
    pub max_input_bytes: Option<ByteSize>,
    /// Largest SQL file read (each is read whole) [default: 256MB].
    #[arg(long, value_name = "SIZE")]
    pub max_file_bytes: Option<ByteSize>,
}

impl Sources {
    pub fn is_empty(&self) -> bool {
        self.from.is_empty() && self.from_log.is_empty() && self.from_sql.is_empty()
    }
}

/// How a driver writes query parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum PlaceholderStyle {
    /// %(name)s, %s and :name.
    #[default]
    Auto,
    /// Only PostgreSQL's own $1.
    Dollar,
    /// %(name)s and %s (psycopg, SQLAlchemy).
    Pyformat,
    /// :name (SQLAlchemy text(), psql variables).
    Named,
    /// ? (JDBC, Go's database/sql drivers).
    Qmark,
}

impl From<PlaceholderStyle> for deed_sql::Placeholders {
    fn from(p: PlaceholderStyle) -> Self {
        match p {
            PlaceholderStyle::Auto => deed_sql::Placeholders::Auto,
            PlaceholderStyle::Dollar => deed_sql::Placeholders::Dollar,
            PlaceholderStyle::Pyformat => deed_sql::Placeholders::Pyformat,
            PlaceholderStyle::Named => deed_sql::Placeholders::Named,
            PlaceholderStyle::Qmark => deed_sql::Placeholders::Qmark,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LiveSource {
    #[value(name = "pg_stat_statements")]
    PgStatStatements,
    /// Functions, procedures, triggers, rules and policies stored in the database.
    #[value(name = "functions")]
    Functions,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(flatten)]
    pub sources: Sources,
    /// Exit 2 when any input was skipped (a statement that does not
    /// parse), instead of warning and auditing the rest.
    #[arg(long)]
    pub strict: bool,
    /// Write the report to this file instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub sources: Sources,
    #[arg(long, value_enum, default_value_t = StageArg::Enforce)]
    pub stage: StageArg,
    /// Also save the plan here, for `deed apply FILE` (which applies it only
    /// while the manifest and the database are unchanged).
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Which part of the plan: `publish` adds roles, contract views, grants and
/// capture and takes nothing away, so consumers can move to the views
/// first; `enforce` is everything, the revokes included.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageArg {
    Publish,
    Enforce,
}

impl From<StageArg> for deed_contracts::Stage {
    fn from(s: StageArg) -> Self {
        match s {
            StageArg::Publish => deed_contracts::Stage::Publish,
            StageArg::Enforce => deed_contracts::Stage::Enforce,
        }
    }
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// A plan saved by `deed plan -o FILE`: applied exactly, or refused.
    #[arg(value_name = "PLAN_FILE")]
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub sources: Sources,
    /// Do not ask for confirmation on a terminal.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Only show the plan, like `deed plan`.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply even if the plan breaks consumers (observed traffic, or a consumed event's contract).
    #[arg(long)]
    pub allow_breaking: bool,
    /// `publish` first (nothing taken away), `enforce` once traffic moved.
    #[arg(long, value_enum, default_value_t = StageArg::Enforce)]
    pub stage: StageArg,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub sources: Sources,
    /// Exit 1 when a capture slot keeps more WAL than this (e.g. 512MB, 2GB).
    #[arg(long, value_name = "SIZE", default_value = "1GB")]
    pub max_retained_wal: ByteSize,
    /// Exit 1 when a projection is further behind than this.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub max_lag: HumanDuration,
    /// A compare older than this no longer proves a projection.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub max_compare_age: HumanDuration,
    /// The bus the projectors read (nats://… or kafka://…): also show how
    /// many of each projection's events wait there, as the bus counts them
    /// (JetStream's unacknowledged messages, Kafka's consumer group lag).
    #[arg(long = "bus", value_name = "URL")]
    pub bus: Option<String>,
    #[command(flatten)]
    pub nats: NatsArgs,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Migration files, applied in the order given (with --since: files or
    /// directories to look in).
    #[arg(value_name = "MIGRATION.sql")]
    pub migrations: Vec<PathBuf>,
    /// Only the .sql files added or changed since this git ref (e.g.
    /// origin/main), in name order: what a pull request brings.
    #[arg(long, value_name = "GIT_REF")]
    pub since: Option<String>,
    /// Create the scratch database on this server instead of the live one.
    #[arg(long, value_name = "URL")]
    pub scratch_url: Option<String>,
    /// Check this consumer's SQL (with --from-sql) instead of migrations.
    #[arg(long, value_name = "SERVICE", requires = "from_sql")]
    pub consumer: Option<String>,
    /// The consumer's .sql files and sqlx offline query files.
    #[arg(long = "from-sql", value_name = "DIR", requires = "consumer")]
    pub from_sql: Option<PathBuf>,
    /// The placeholders the consumer's driver writes.
    #[arg(long, value_enum, default_value_t = PlaceholderStyle::Auto)]
    pub placeholders: PlaceholderStyle,
    /// Observed traffic, to also name readers the manifest does not list.
    #[arg(long = "from", value_enum, value_name = "SOURCE")]
    pub from: Vec<LiveSource>,
    /// Observed traffic from a csvlog or jsonlog file.
    #[arg(long = "from-log", value_name = "FILE")]
    pub from_log: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RelayArgs {
    /// The owner service whose events to deliver.
    #[arg(long, value_name = "NAME")]
    pub service: String,
    /// The sink: nats://host:port (JetStream), kafka://host:9092 (Kafka),
    /// amqp://… (RabbitMQ), https://… (a webhook) or postgres://… (an
    /// inbox table).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Deliver everything committed so far, then exit 0.
    #[arg(long)]
    pub until_idle: bool,
    /// Serve Prometheus metrics on this address, e.g. 127.0.0.1:9187.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Events handed to the sink at a time: one inbox insert, or the
    /// JetStream publishes between two confirmations on the slot.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Log format [default: text on a terminal, json otherwise].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// JetStream: copies of the stream a cluster keeps, when deed creates
    /// it; Kafka: the replication factor of the topics deed creates.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub stream_replicas: usize,
    /// Kafka: partitions of each event topic deed creates (events are
    /// keyed by their key, so one key's events stay in one partition).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub partitions: usize,
    /// JetStream: `limits` (kept until the limits say) or `interest` (kept
    /// until every consumer has it).
    #[arg(long, value_name = "POLICY", value_enum, default_value_t = Retention::Limits)]
    pub stream_retention: Retention,
    /// JetStream: how long events are kept (0: no limit); Kafka: the
    /// topics' retention.ms; RabbitMQ: the stream queue's x-max-age.
    #[arg(long, value_name = "DURATION", default_value = "0")]
    pub stream_max_age: HumanDuration,
    /// JetStream: how long the stream recognises a redelivered event.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub duplicate_window: HumanDuration,
    /// Webhook: tries of a batch before it is a dead letter (or, without
    /// --webhook-dead-letters, the relay stops).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub webhook_attempts: u32,
    /// Webhook: how long one request may take.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub webhook_timeout: HumanDuration,
    /// Webhook: a file events the endpoint refuses or never takes are
    /// appended to (JSON lines, without payloads), so the rest go on.
    #[arg(long, value_name = "FILE")]
    pub webhook_dead_letters: Option<PathBuf>,
    /// Webhook: CA certificates (PEM) an https endpoint's certificate must
    /// chain to [default: the system's].
    #[arg(long, value_name = "FILE")]
    pub webhook_ca: Option<PathBuf>,
    #[command(flatten)]
    pub nats: NatsArgs,
}

/// Signing in to NATS. A user's password comes from `DEED_NATS_PASSWORD`
/// and a token from `DEED_NATS_TOKEN` (or either in the URL,
/// `nats://user:password@host`, `nats://token@host`), so no secret is on
/// the command line; several servers of a cluster are given comma-separated.
#[derive(Args, Debug, Default)]
pub struct NatsArgs {
    /// NATS: a user name (its password from DEED_NATS_PASSWORD).
    #[arg(long, value_name = "NAME")]
    pub nats_user: Option<String>,
    /// NATS: a file holding an nkey seed.
    #[arg(long, value_name = "FILE")]
    pub nats_nkey: Option<PathBuf>,
    /// NATS: a .creds file (a user JWT and its nkey seed).
    #[arg(long, value_name = "FILE")]
    pub nats_creds: Option<PathBuf>,
    /// NATS: CA certificates (PEM) the server's certificate must chain to.
    #[arg(long, value_name = "FILE")]
    pub nats_ca: Option<PathBuf>,
    /// NATS: a client certificate (PEM), for servers that verify clients.
    #[arg(long, value_name = "FILE", requires = "nats_key")]
    pub nats_cert: Option<PathBuf>,
    /// NATS: the client certificate's key (PEM).
    #[arg(long, value_name = "FILE", requires = "nats_cert")]
    pub nats_key: Option<PathBuf>,
    /// NATS: refuse a connection that is not TLS.
    #[arg(long)]
    pub nats_tls: bool,
}

impl NatsArgs {
    /// How to sign in to NATS, from these flags and the environment: the
    /// one reading for relay, project, tail and compare.
    pub fn auth(&self) -> deed_bus::NatsAuth {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        deed_bus::NatsAuth {
            user: self.nats_user.clone(),
            password: self.nats_user.as_ref().and_then(|_| env("DEED_NATS_PASSWORD")),
            token: env("DEED_NATS_TOKEN"),
            nkey_file: self.nats_nkey.clone(),
            creds_file: self.nats_creds.clone(),
            ca_file: self.nats_ca.clone(),
            client_cert: self.nats_cert.clone().zip(self.nats_key.clone()),
            require_tls: self.nats_tls,
        }
    }
}

#[derive(Args, Debug)]
pub struct ProjectArgs {
    /// The consuming service whose projections to run.
    #[arg(long, value_name = "NAME")]
    pub service: String,
    /// Where events come from: nats://host:port (JetStream, a durable
    /// consumer per projection; several servers of a cluster
    /// comma-separated) or postgres://… (an inbox) [default: the inbox in
    /// the service's database].
    #[arg(long, value_name = "SOURCE")]
    pub from: Option<String>,
    /// Apply everything available, then exit (0, or 1 if dead letters wait).
    #[arg(long)]
    pub until_idle: bool,
    /// Copy this projection from its contract view again, then follow the stream (repeatable).
    #[arg(long, value_name = "PROJECTION")]
    pub backfill: Vec<String>,
    /// Re-apply the dead letters (after fixing their cause) before following the stream.
    #[arg(long)]
    pub retry_dead: bool,
    /// Events per transaction.
    #[arg(long, default_value_t = 5000)]
    pub batch: usize,
    /// Rows per backfill chunk (a kill re-reads at most one).
    #[arg(long, default_value_t = 10_000)]
    pub chunk: usize,
    /// Serve Prometheus metrics on this address, e.g. 127.0.0.1:9188.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Log format [default: text on a terminal, json otherwise].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(flatten)]
    pub nats: NatsArgs,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// `<service>.<projection>`, e.g. orders.products.
    #[arg(value_name = "SERVICE.PROJECTION")]
    pub projection: String,
    /// Where the projector reads events, if JetStream: nats://host:port
    /// (several servers comma-separated) [default: the inbox in the
    /// service's database].
    #[arg(long = "events-from", value_name = "SOURCE")]
    pub events_from: Option<String>,
    /// How long to wait for the projection to reach a consistent point.
    #[arg(long, value_name = "DURATION", default_value = "2m")]
    pub wait: HumanDuration,
    #[command(flatten)]
    pub nats: NatsArgs,
}

/// JetStream's retention policy for the streams deed creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Retention {
    /// Kept until the stream's limits say.
    Limits,
    /// Kept until every consumer has it.
    Interest,
}

#[derive(Args, Debug)]
pub struct SplitArgs {
    /// The service whose tables move.
    pub service: String,
    /// The service's own database (another server), as a URL or a
    /// `${VAR}` reference (kept as written in deed.toml) [default: the
    /// service's `database` in deed.toml].
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Only check and create the roles and tables on the target.
    #[arg(long)]
    pub prepare: bool,
    /// Only copy the tables and follow their changes (after prepare).
    #[arg(long)]
    pub copy: bool,
    /// Only compare every table with its copy at a fence (after copy).
    #[arg(long)]
    pub prove: bool,
    /// Only move the writes (after a clean proof).
    #[arg(long)]
    pub cutover: bool,
    /// Move the writes back to the shared database.
    #[arg(long, conflicts_with_all = ["prepare", "copy", "prove", "cutover", "finish"])]
    pub rollback: bool,
    /// End the reverse replication for good (once no service reads the
    /// contract views in the shared database).
    #[arg(long, conflicts_with_all = ["prepare", "copy", "prove", "cutover"])]
    pub finish: bool,
    /// With --finish: drop the shared database's copies of the tables.
    #[arg(long, requires = "finish")]
    pub drop_source: bool,
    /// Where the split stands.
    #[arg(long, conflicts_with_all = ["prepare", "copy", "prove", "cutover", "rollback", "finish", "dry_run"])]
    pub status: bool,
    /// Show what prepare would run, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Switch traffic in PgBouncer: its admin console's URL and the
    /// database name the service connects to.
    #[arg(long, num_args = 2, value_names = ["ADMIN_URL", "DB_NAME"])]
    pub pgbouncer: Option<Vec<String>>,
    /// The clean proof must be at most this old.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub max_age: HumanDuration,
    /// How long the fence may wait for transactions in flight and for the
    /// other side to catch up before it gives up and changes nothing.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub fence_timeout: HumanDuration,
    /// How long to wait for the copy.
    #[arg(long, value_name = "DURATION", default_value = "6h")]
    pub copy_timeout: HumanDuration,
    /// How the target's server reaches the shared database [default: the
    /// shared database's URL].
    #[arg(long, value_name = "URL")]
    pub source_conninfo: Option<String>,
}

#[derive(Args, Debug)]
pub struct CutoverArgs {
    /// `<service>.<projection>`, e.g. orders.products.
    #[arg(value_name = "SERVICE.PROJECTION")]
    pub projection: String,
    /// Grant the read back and put it back in deed.toml.
    #[arg(long)]
    pub rollback: bool,
    /// The clean compare must be at most this old.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub max_age: HumanDuration,
    /// The projection may be at most this far behind.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub max_lag: HumanDuration,
    /// Observed traffic: refused while the service still reads the
    /// replaced contract view.
    #[command(flatten)]
    pub sources: Sources,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct TailArgs {
    /// `<service>.<event>`, or `<service>.*` for all of a service's events.
    pub event: String,
    /// Where to read: nats://… (default nats://127.0.0.1:4222) or the postgres://… inbox.
    #[arg(long, value_name = "URL", default_value = "nats://127.0.0.1:4222")]
    pub from: String,
    /// Only events published from now on (JetStream).
    #[arg(long)]
    pub new: bool,
    /// Stop after this many events.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Stop after this many seconds without an event.
    #[arg(long, value_name = "SECONDS")]
    pub idle: Option<f64>,
    #[command(flatten)]
    pub nats: NatsArgs,
}

#[derive(Subcommand, Debug)]
pub enum ContractCommand {
    /// Append the next version of a contract to deed.toml, copied from the latest.
    Bump {
        /// `<service>.<contract>`, e.g. catalog.products
        contract: String,
    },
}

#[derive(Args, Debug)]
pub struct InitArgs {
    #[command(flatten)]
    pub sources: Sources,
    /// Write the proposal to the manifest path instead of printing it.
    #[arg(long)]
    pub write: bool,
    /// With --write, replace an existing manifest.
    #[arg(long, requires = "write")]
    pub force: bool,
}

/// What `deed doctor` checks besides the database.
#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// A bus the relays deliver to or projectors read from (nats://…,
    /// amqp://…, kafka://…, https://…, or a postgres://… inbox): whether
    /// it answers, accepts deed's credentials and holds each capturing
    /// service's events. Repeat for several.
    #[arg(long = "bus", value_name = "URL")]
    pub buses: Vec<String>,
    #[command(flatten)]
    pub nats: NatsArgs,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// With --database-url: keep the demo database and its roles afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Also write the audit as a self-contained HTML page to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
    /// Rung 2's bus: inbox (the consumers' database), nats, rabbitmq or
    /// kafka (each on its usual local port: 4222; 5672 as guest; 9092), or
    /// a bus URL (nats://…, amqp://…, kafka://…).
    #[arg(long, value_name = "BUS", default_value = "inbox")]
    pub bus: String,
    /// The same as --bus with a NATS URL.
    #[arg(long, value_name = "URL", conflicts_with = "bus")]
    pub nats: Option<String>,
    /// Show rung 1's whole plan with its SQL, not a summary.
    #[arg(long)]
    pub full_plan: bool,
}

/// `deed generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// The service whose reads and consumed events to generate [default:
    /// every contract version and event in the manifest].
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// What to write.
    #[arg(long, value_enum)]
    pub lang: GenerateLang,
    /// The directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Write nothing; exit 1 when a file in --out is missing or differs.
    #[arg(long)]
    pub check: bool,
}

/// The languages and formats `deed generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenerateLang {
    /// An installable package: SQLAlchemy 2.0 models of the contract
    /// views, Pydantic 2 models of the events.
    Python,
    /// An npm package: types of the contract views' rows (as
    /// node-postgres returns them) and of the events, with a runtime
    /// validator per event.
    Typescript,
    /// A crate: sqlx `FromRow` structs of the contract views and serde
    /// types of the events.
    Rust,
    /// A Go module: structs of the contract views for pgx or
    /// database/sql (`db` and `json` tags, a Select query and scan
    /// targets) and of the events, with a parser that checks them.
    Go,
    /// JSON Schema (2020-12) of each event, one file per event.
    Jsonschema,
    /// An AsyncAPI 3.0 document per producing service: a channel per
    /// event (NATS subject, RabbitMQ routing key, Kafka topic) and its
    /// message's schema.
    Asyncapi,
}
