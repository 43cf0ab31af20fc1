//! The inbox: the table in a consumer's database that the relay's
//! PostgreSQL sink fills and a consumer reads, idempotent on `event_id`.
//! `envelope` holds the event exactly as JetStream would carry it (type
//! `json` keeps the bytes); the other columns are there to query by.

/// Creates the inbox if missing, and adds `envelope` to an older one.
pub const INBOX_DDL: &str = "
CREATE SCHEMA IF NOT EXISTS deed;
CREATE TABLE IF NOT EXISTS deed.inbox (
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
    received_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    envelope     json
);
ALTER TABLE deed.inbox ADD COLUMN IF NOT EXISTS envelope json;
CREATE INDEX IF NOT EXISTS inbox_type_position ON deed.inbox (type, position);";
