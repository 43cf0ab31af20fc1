//! The tables deed keeps in its own schema, `deed`, and in which database
//! each lives.

use std::fmt;

/// One of deed's own tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// A consumer's database: each projection's progress and backfill.
    Projections,
    /// A consumer's database: events a projection could not apply, and
    /// the later events of the same key waiting behind them.
    DeadLetters,
    /// A consumer's database: each `deed compare` of a projection.
    Compares,
    /// A consumer's database: the events the relay's PostgreSQL sink
    /// delivers, idempotent on `event_id`.
    Inbox,
    /// Where a service's changes are captured: the capture epoch each
    /// side of a split is in.
    CaptureEpochs,
    /// The shared database: where each `deed split` stands.
    Splits,
    /// Both sides of a split: the fences that prove replication caught up.
    SplitFences,
}

impl Table {
    pub const ALL: [Table; 7] = [
        Table::Projections,
        Table::DeadLetters,
        Table::Compares,
        Table::Inbox,
        Table::CaptureEpochs,
        Table::Splits,
        Table::SplitFences,
    ];

    /// The table's name in schema `deed`.
    pub fn name(self) -> &'static str {
        match self {
            Table::Projections => "projections",
            Table::DeadLetters => "dead_letters",
            Table::Compares => "compares",
            Table::Inbox => "inbox",
            Table::CaptureEpochs => "capture_epochs",
            Table::Splits => "splits",
            Table::SplitFences => "split_fences",
        }
    }

    /// What a consumer's database holds for `deed project`.
    pub const CONSUMER: [Table; 3] = [Table::Projections, Table::DeadLetters, Table::Inbox];
}

/// Whether `table` exists in this database (a read of the catalog, which
/// every role may make). A reader that finds nothing where deed never ran
/// asks this first, rather than reading the server's error.
pub async fn exists(
    client: &impl tokio_postgres::GenericClient,
    table: Table,
) -> Result<bool, deed_pg::PgError> {
    all_exist(client, &[table]).await
}

/// Whether every one of `tables` exists, in one read of the catalog.
pub async fn all_exist(
    client: &impl tokio_postgres::GenericClient,
    tables: &[Table],
) -> Result<bool, deed_pg::PgError> {
    let names: Vec<String> = tables.iter().map(Table::to_string).collect();
    Ok(client
        .query_one(
            "SELECT coalesce(bool_and(to_regclass(t) IS NOT NULL), true) FROM unnest($1::text[]) t",
            &[&names],
        )
        .await
        .map_err(|e| deed_pg::PgError::query(format!("looking for {}", names.join(", ")), e))?
        .get(0))
}

impl fmt::Display for Table {
    /// `deed.projections`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deed.{}", self.name())
    }
}
