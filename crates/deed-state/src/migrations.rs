//! Every change to deed's own tables, in order. A table's schema version
//! is the number of its migrations applied; it is kept in the table's
//! comment (`deed schema version 2`), which only its owner can write, so
//! recording a version needs no privilege beyond what the change needs.
//!
//! Rules for adding one: append, never edit or reorder (databases an older
//! deed set up run exactly the steps they lack); every statement must be
//! safe to run again, because a table an older deed made carries no
//! version and runs all of its migrations (`IF NOT EXISTS`, and an
//! `ALTER` only inside a check that the change is missing, so a role that
//! does not own the table is not refused when there is nothing to do).

use crate::Table;

/// One step of one table's schema.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub table: Table,
    /// 1 for the table's creation, then 2, 3… in order.
    pub version: u32,
    /// What the step does, for plans and logs.
    pub what: &'static str,
    /// Its statements, each one whole (no statement separator needed).
    pub statements: &'static [&'static str],
}

/// All of them: for each table, in version order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        table: Table::Projections,
        version: 1,
        what: "create deed.projections",
        statements: &["CREATE TABLE IF NOT EXISTS deed.projections (
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
)"],
    },
    Migration {
        table: Table::Projections,
        version: 2,
        what: "add deed.projections.source_offset, where a projection reading a RabbitMQ stream starts next",
        statements: &["DO $deed$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                  WHERE attrelid = 'deed.projections'::regclass AND attname = 'source_offset'
                    AND NOT attisdropped) THEN
    ALTER TABLE deed.projections ADD COLUMN source_offset bigint;
  END IF;
END $deed$"],
    },
    Migration {
        table: Table::DeadLetters,
        version: 1,
        what: "create deed.dead_letters",
        statements: &[
            "CREATE TABLE IF NOT EXISTS deed.dead_letters (
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
)",
            "CREATE INDEX IF NOT EXISTS dead_letters_key ON deed.dead_letters (service, projection, key, position)",
        ],
    },
    Migration {
        table: Table::Compares,
        version: 1,
        what: "create deed.compares",
        statements: &["CREATE TABLE IF NOT EXISTS deed.compares (
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
)"],
    },
    Migration {
        table: Table::Inbox,
        version: 1,
        what: "create deed.inbox",
        statements: &[
            "CREATE TABLE IF NOT EXISTS deed.inbox (
    event_id     text PRIMARY KEY,
    type         text NOT NULL,
    contract     text,
    key          jsonb NOT NULL,
    op           text NOT NULL,
    position     text NOT NULL,
    lsn          pg_lsn NOT NULL,
    committed_at timestamptz NOT NULL,
    payload      jsonb,
    tombstone    boolean NOT NULL DEFAULT false,
    received_at  timestamptz NOT NULL DEFAULT clock_timestamp()
)",
            "CREATE INDEX IF NOT EXISTS inbox_type_position ON deed.inbox (type, position)",
        ],
    },
    Migration {
        table: Table::Inbox,
        version: 2,
        what: "add deed.inbox.envelope, the event exactly as a bus would carry it",
        statements: &["DO $deed$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                  WHERE attrelid = 'deed.inbox'::regclass AND attname = 'envelope'
                    AND NOT attisdropped) THEN
    ALTER TABLE deed.inbox ADD COLUMN envelope json;
  END IF;
END $deed$"],
    },
    Migration {
        table: Table::CaptureEpochs,
        version: 1,
        what: "create deed.capture_epochs, where deed split records a move for the relay",
        statements: &["CREATE TABLE IF NOT EXISTS deed.capture_epochs (
    service    text NOT NULL,
    epoch      integer NOT NULL,
    since_lsn  text NOT NULL,
    PRIMARY KEY (service, epoch)
)"],
    },
    Migration {
        table: Table::Splits,
        version: 1,
        what: "create deed.splits",
        statements: &["CREATE TABLE IF NOT EXISTS deed.splits (
    service      text PRIMARY KEY,
    target       text NOT NULL,
    phase        text NOT NULL,
    live         text NOT NULL DEFAULT 'source',
    epoch        integer NOT NULL DEFAULT 0,
    prepared_at  timestamptz,
    copied_at    timestamptz,
    proven_at    timestamptz,
    proof        jsonb,
    fence_lsn    text,
    switched_at  timestamptz,
    fence_ms     double precision,
    -- The service's `database` as deed.toml had it before the cutover
    -- (NULL: it had none), put back by a rollback.
    previous_database text,
    -- The target as given to --to when it holds no password (a `${VAR}`
    -- reference, or a URL without one), so a relay can still reach it
    -- after a rollback took it out of deed.toml.
    target_written text,
    updated_at   timestamptz NOT NULL DEFAULT now()
)"],
    },
    Migration {
        table: Table::SplitFences,
        version: 1,
        what: "create deed.split_fences",
        statements: &["CREATE TABLE IF NOT EXISTS deed.split_fences (
    service  text NOT NULL,
    fence    bigint NOT NULL,
    at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (service, fence)
)"],
    },
];

/// The version a table is at once every migration of it is applied.
pub fn latest(table: Table) -> u32 {
    MIGRATIONS.iter().filter(|m| m.table == table).map(|m| m.version).max().unwrap_or(0)
}

/// The comment that records `table` at `version`.
pub(crate) const VERSION_PREFIX: &str = "deed schema version ";

/// Records `table` at `version`, when the role running it owns the table
/// (only an owner may comment on it; another role leaves it unrecorded,
/// and its owner's next run records it).
pub(crate) fn mark(table: Table, version: u32) -> String {
    format!(
        "DO $deed$ BEGIN
  IF pg_catalog.pg_has_role((SELECT relowner FROM pg_catalog.pg_class WHERE oid = '{table}'::regclass), 'USAGE') THEN
    COMMENT ON TABLE {table} IS '{VERSION_PREFIX}{version}';
  END IF;
END $deed$"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_run_from_one_without_gaps_and_every_table_has_its_creation() {
        for table in Table::ALL {
            let versions: Vec<u32> =
                MIGRATIONS.iter().filter(|m| m.table == table).map(|m| m.version).collect();
            assert_eq!(versions, (1..=latest(table)).collect::<Vec<_>>(), "{table}");
            let first = MIGRATIONS.iter().find(|m| m.table == table).expect("created");
            assert!(
                first.statements[0].starts_with(&format!("CREATE TABLE IF NOT EXISTS {table} (")),
                "{table}"
            );
        }
        for m in MIGRATIONS {
            for s in m.statements {
                assert!(!s.trim_end().ends_with(';'), "one whole statement each: {s}");
                // An ALTER only inside a check that it is missing.
                if s.contains("ALTER TABLE") {
                    assert!(s.starts_with("DO $deed$") && s.contains("IF NOT EXISTS"), "{s}");
                }
            }
        }
    }
}
