//! Where a split stands, kept in the shared database (`deed.splits`), and
//! the fence table both databases have (`deed.split_fences`): a row
//! inserted on the side that takes the writes and replicated to the other
//! is the proof that everything committed before it has arrived.

use deed_pg::Client;
use serde::Serialize;

use crate::error::{SplitError, query};

/// The phases, in order; a rollback returns to `proven`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Prepared,
    Following,
    Proven,
    CutOver,
    Finished,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Prepared => "prepared",
            Phase::Following => "following",
            Phase::Proven => "proven",
            Phase::CutOver => "cut_over",
            Phase::Finished => "finished",
        }
    }

    fn parse(text: &str) -> Phase {
        match text {
            "following" => Phase::Following,
            "proven" => Phase::Proven,
            "cut_over" => Phase::CutOver,
            "finished" => Phase::Finished,
            _ => Phase::Prepared,
        }
    }
}

/// One service's split, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub service: String,
    /// The target's URL without its password.
    pub target: String,
    pub phase: Phase,
    /// `source` or `target`: which side takes the service's writes.
    pub live: String,
    pub epoch: i32,
    pub prepared_at: Option<String>,
    pub copied_at: Option<String>,
    pub proven_at: Option<String>,
    pub proof: Option<serde_json::Value>,
    pub fence_lsn: Option<String>,
    pub switched_at: Option<String>,
    pub fence_ms: Option<f64>,
    #[serde(skip)]
    pub previous_database: Option<String>,
}

pub async fn ensure(shared: &Client) -> Result<(), SplitError> {
    deed_state::ensure(shared, &[deed_state::Table::Splits, deed_state::Table::SplitFences])
        .await?;
    Ok(())
}

/// Keeps `service`'s `database` as deed.toml has it before the cutover
/// (None: it has none), for a rollback to put back.
pub async fn remember_database(
    shared: &Client,
    service: &str,
    previous: Option<&str>,
) -> Result<(), SplitError> {
    shared
        .execute(
            "UPDATE deed.splits SET previous_database = $2 WHERE service = $1 AND live = 'source'",
            &[&service, &previous],
        )
        .await
        .map_err(query("recording the service's database before the cutover"))?;
    Ok(())
}

pub async fn load(shared: &Client, service: &str) -> Result<Option<Recorded>, SplitError> {
    // No split was ever recorded here.
    if !deed_state::exists(shared, deed_state::Table::Splits).await? {
        return Ok(None);
    }
    let row = shared
        .query_opt(
            "SELECT service, target, phase, live, epoch, prepared_at::text, copied_at::text,
                    proven_at::text, proof::text, fence_lsn, switched_at::text, fence_ms,
                    previous_database
               FROM deed.splits WHERE service = $1",
            &[&service],
        )
        .await
        .map_err(query("reading deed.splits"))?;
    Ok(row.map(|r| Recorded {
        service: r.get(0),
        target: r.get(1),
        phase: Phase::parse(r.get(2)),
        live: r.get(3),
        epoch: r.get(4),
        prepared_at: r.get(5),
        copied_at: r.get(6),
        proven_at: r.get(7),
        proof: r.get::<_, Option<String>>(8).and_then(|t| serde_json::from_str(&t).ok()),
        fence_lsn: r.get(9),
        switched_at: r.get(10),
        fence_ms: r.get(11),
        previous_database: r.get(12),
    }))
}

/// Every recorded split, for `deed status`.
pub async fn load_all(shared: &Client) -> Result<Vec<Recorded>, SplitError> {
    // No split was ever recorded here.
    if !deed_state::exists(shared, deed_state::Table::Splits).await? {
        return Ok(Vec::new());
    }
    let services: Vec<String> = shared
        .query("SELECT service FROM deed.splits ORDER BY service", &[])
        .await
        .map_err(query("reading deed.splits"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for s in services {
        out.extend(load(shared, &s).await?);
    }
    Ok(out)
}

/// Records that `phase` is reached, stamping its time column.
pub async fn record_phase(
    shared: &Client,
    service: &str,
    target: &str,
    phase: Phase,
) -> Result<(), SplitError> {
    let stamp = match phase {
        Phase::Prepared => ", prepared_at = now(), proven_at = NULL, proof = NULL",
        Phase::Following => ", copied_at = coalesce(s.copied_at, now())",
        Phase::Proven => ", proven_at = now()",
        Phase::CutOver | Phase::Finished => "",
    };
    shared
        .execute(
            &format!(
                "INSERT INTO deed.splits AS s (service, target, phase, prepared_at)
                 VALUES ($1, $2, $3, now())
                 ON CONFLICT (service) DO UPDATE SET target = $2, phase = $3,
                        updated_at = now(){stamp}"
            ),
            &[&service, &target, &phase.as_str()],
        )
        .await
        .map_err(query("recording the split's phase"))?;
    Ok(())
}
