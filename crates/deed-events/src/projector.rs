//! What a consumer keeps beside its projections, in its own database:
//! each projection's progress and the events it could not apply.

/// One row per projection: how far it has applied, and its backfill.
/// `position` is the last event applied (or skipped as already in the
/// backfill); it only moves forward, in the same transaction as the
/// effects, which is what makes them exactly-once.
pub const PROGRESS_DDL: &str = "
CREATE SCHEMA IF NOT EXISTS deed;
CREATE TABLE IF NOT EXISTS deed.projections (
    service         text NOT NULL,
    name            text NOT NULL,
    event           text NOT NULL,
    definition      text NOT NULL,
    position        text NOT NULL DEFAULT '',
    phase           text NOT NULL CHECK (phase IN ('backfill', 'live')),
    backfill_fence  text,
    backfill_after  jsonb,
    backfill_rows   bigint NOT NULL DEFAULT 0,
    applied         bigint NOT NULL DEFAULT 0,
    last_committed_at timestamptz,
    defined_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (service, name)
);
-- Where a projection reading a RabbitMQ stream starts next: a hint.
-- Added to a table an earlier deed made, only when missing (an ALTER
-- would lock the table and need its owner on every start).
DO $deed$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                  WHERE attrelid = 'deed.projections'::regclass AND attname = 'source_offset'
                    AND NOT attisdropped) THEN
    ALTER TABLE deed.projections ADD COLUMN source_offset bigint;
  END IF;
END $deed$;";

/// Events a projection could not apply, and the later events of the same
/// key that wait behind them (`waiting_behind`). Rows leave this table
/// only when `deed project --retry-dead` applies them.
pub const DEAD_LETTERS_DDL: &str = "
CREATE SCHEMA IF NOT EXISTS deed;
CREATE TABLE IF NOT EXISTS deed.dead_letters (
    service        text NOT NULL,
    projection     text NOT NULL,
    event_id       text NOT NULL,
    key            text NOT NULL,
    position       text NOT NULL,
    envelope       jsonb NOT NULL,
    error          text NOT NULL,
    sqlstate       text,
    waiting_behind text,
    attempts       integer NOT NULL DEFAULT 1,
    failed_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (service, projection, event_id)
);
CREATE INDEX IF NOT EXISTS dead_letters_key ON deed.dead_letters (service, projection, key, position);";

/// The durable JetStream consumer of one projection:
/// `deed_<service>_<projection>`.
pub fn consumer_name(service: &str, projection: &str) -> String {
    format!("deed_{service}_{projection}")
}

/// One row per `deed compare` of a projection: when, at which fence, and
/// the verdict. `deed cutover` requires a recent clean one, taken after
/// the projection's definition last changed (`fenced_at` > the
/// projection's `defined_at`, both this database's clock).
pub const COMPARES_DDL: &str = "
CREATE SCHEMA IF NOT EXISTS deed;
CREATE TABLE IF NOT EXISTS deed.compares (
    service      text NOT NULL,
    projection   text NOT NULL,
    compared_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    fenced_at    timestamptz NOT NULL,
    fence        text,
    definition   text NOT NULL,
    source       text NOT NULL,
    equal        boolean NOT NULL,
    source_rows  bigint NOT NULL,
    target_rows  bigint NOT NULL,
    missing      bigint NOT NULL,
    extra        bigint NOT NULL,
    different    bigint NOT NULL,
    in_flight    bigint NOT NULL,
    seconds      float8 NOT NULL,
    PRIMARY KEY (service, projection, compared_at)
);";

/// Which capture epoch a service's events are in, in the database that
/// captures them: `deed split` starts a new epoch on the side that takes
/// the service's writes, from the WAL position it did so. Positions carry
/// the epoch, so events keep sorting in commit order across servers.
pub const EPOCHS_DDL: &str = "\
CREATE SCHEMA IF NOT EXISTS deed;
CREATE TABLE IF NOT EXISTS deed.capture_epochs (
    service    text NOT NULL,
    epoch      integer NOT NULL,
    since_lsn  text NOT NULL,
    PRIMARY KEY (service, epoch)
);";

/// The services `deed split` moved out of a shared database (their writes
/// and capture are in their own database): capture setup and the relay
/// leave them alone there. Run only where `deed.splits` exists.
pub const MOVED_SERVICES_SQL: &str =
    "SELECT service FROM deed.splits WHERE live = 'target' OR phase = 'finished'";
