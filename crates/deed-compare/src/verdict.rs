//! Compare verdicts, kept in the consumer's database beside its
//! projections: what `deed cutover`, `deed plan` and `deed status` judge by.

use deed_pg::Client;
use serde::Serialize;

use crate::error::{CompareError, query};

/// A recorded compare of one projection.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub service: String,
    pub projection: String,
    pub compared_at: String,
    pub fence: Option<String>,
    pub definition: String,
    pub source: String,
    pub equal: bool,
    pub source_rows: i64,
    pub target_rows: i64,
    pub missing: i64,
    pub extra: i64,
    pub different: i64,
    pub in_flight: i64,
    pub seconds: f64,
    /// Seconds since the compare, by the database's clock.
    pub age_seconds: f64,
    /// Whether its fence came after the projection's definition last
    /// changed: a compare of an older definition proves nothing now.
    pub current: bool,
}

impl Verdict {
    /// Whether it proves the projection as defined now: equal, of this
    /// definition, fenced after it last changed, and at most `max_age` old.
    pub fn proves(&self, definition: &str, max_age_seconds: f64) -> bool {
        self.equal
            && self.current
            && self.definition == definition
            && self.age_seconds <= max_age_seconds
    }
}

pub async fn ensure(client: &Client) -> Result<(), CompareError> {
    deed_state::ensure(client, &[deed_state::Table::Compares]).await?;
    Ok(())
}

/// What a compare records.
pub struct Record<'a> {
    pub service: &'a str,
    pub projection: &'a str,
    /// `clock_timestamp()` text of the consumer's database before the fence.
    pub fenced_at: &'a str,
    pub fence: Option<String>,
    pub definition: &'a str,
    pub source: &'a str,
    pub equal: bool,
    /// source rows, target rows, missing, extra, different, in flight.
    pub counts: [i64; 6],
    pub seconds: f64,
}

pub async fn record(client: &Client, r: &Record<'_>) -> Result<(), CompareError> {
    let c = &r.counts;
    client
        .execute(
            "INSERT INTO deed.compares (service, projection, fenced_at, fence, definition, source, equal,
                                        source_rows, target_rows, missing, extra, different, in_flight, seconds)
             VALUES ($1, $2, $3::text::timestamptz, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            &[
                &r.service, &r.projection, &r.fenced_at, &r.fence, &r.definition, &r.source, &r.equal,
                &c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &r.seconds,
            ],
        )
        .await
        .map_err(query("recording the compare in deed.compares"))?;
    Ok(())
}

/// The latest compare of a projection, if any was recorded.
pub async fn latest(
    client: &Client,
    service: &str,
    projection: &str,
) -> Result<Option<Verdict>, CompareError> {
    if !deed_state::exists(client, deed_state::Table::Compares).await? {
        return Ok(None);
    }
    let row = client
        .query_opt(
            "SELECT c.service, c.projection, c.compared_at::text, c.fence, c.definition, c.source, c.equal,
                    c.source_rows, c.target_rows, c.missing, c.extra, c.different, c.in_flight, c.seconds,
                    extract(epoch FROM clock_timestamp() - c.compared_at)::float8,
                    coalesce(c.fenced_at > (SELECT p.defined_at FROM deed.projections p
                                             WHERE p.service = c.service AND p.name = c.projection), false)
               FROM deed.compares c WHERE c.service = $1 AND c.projection = $2
              ORDER BY c.compared_at DESC LIMIT 1",
            &[&service, &projection],
        )
        .await
        .map_err(query("reading deed.compares"))?;
    Ok(row.map(|r| Verdict {
        service: r.get(0),
        projection: r.get(1),
        compared_at: r.get(2),
        fence: r.get(3),
        definition: r.get(4),
        source: r.get(5),
        equal: r.get(6),
        source_rows: r.get(7),
        target_rows: r.get(8),
        missing: r.get(9),
        extra: r.get(10),
        different: r.get(11),
        in_flight: r.get(12),
        seconds: r.get(13),
        age_seconds: r.get(14),
        current: r.get(15),
    }))
}
