//! Every moved table compared with its copy by the compare engine of rung
//! 3, at fences: a fence row written on the source and waited for on the
//! target is the consistent point, and rows still travelling are looked at
//! again after another fence, never reported as differences.

use std::time::{Duration, Instant};

use deed_compare::follow::Fence;
use deed_compare::{CompareError, CompareOptions, Pair};
use deed_pg::Client;
use serde::Serialize;

use crate::error::SplitError;
use crate::inspect::Inspected;
use crate::replicate;

/// A fence between the split's two databases.
pub struct SplitFence {
    pub service: String,
    pub timeout: Duration,
}

impl Fence for SplitFence {
    async fn catch_up(&mut self, source: &Client, target: &Client) -> Result<u64, CompareError> {
        let (n, lsn) = replicate::fence(source, &self.service).await.map_err(setup)?;
        replicate::wait_fence(target, &self.service, n, self.timeout).await.map_err(setup)?;
        Ok(lsn)
    }
}

fn setup(e: SplitError) -> CompareError {
    CompareError::Setup(e.to_string())
}

/// One table's result.
#[derive(Debug, Clone, Serialize)]
pub struct TableProof {
    pub table: String,
    pub source_rows: i64,
    pub target_rows: i64,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub different: Vec<String>,
    pub in_flight: Vec<String>,
    pub millis: u64,
}

impl TableProof {
    pub fn equal(&self) -> bool {
        self.missing.is_empty()
            && self.extra.is_empty()
            && self.different.is_empty()
            && self.in_flight.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Proof {
    pub equal: bool,
    pub tables: Vec<TableProof>,
    pub fence_lsn: String,
}

pub async fn prove(
    source: &Client,
    target: &Client,
    service: &str,
    found: &Inspected,
    timeout: Duration,
) -> Result<Proof, SplitError> {
    tokio::try_join!(
        source.batch_execute(deed_compare::SESSION),
        target.batch_execute(deed_compare::SESSION)
    )
    .map_err(crate::error::query("setting the compare's session"))?;
    let mut fence = SplitFence { service: service.to_string(), timeout };
    let first = fence.catch_up(source, target).await?;
    let opts = CompareOptions::default();
    let mut tables = Vec::new();
    for t in &found.tables {
        let started = Instant::now();
        let pair = Pair {
            source: t.name.clone(),
            target: t.name.clone(),
            key: t.key.clone(),
            columns: t.columns.iter().map(|c| c.name.clone()).collect(),
        };
        let (scan, settled) =
            deed_compare::diff(source, target, &pair, Some(&mut fence), &opts).await?;
        tables.push(TableProof {
            table: t.name.to_string(),
            source_rows: scan.source_rows,
            target_rows: scan.target_rows,
            missing: settled.missing,
            extra: settled.extra,
            different: settled.different.into_iter().map(|(k, _)| k).collect(),
            in_flight: settled.in_flight,
            millis: started.elapsed().as_millis() as u64,
        });
    }
    Ok(Proof {
        equal: tables.iter().all(TableProof::equal),
        tables,
        fence_lsn: deed_events::lsn_text(first),
    })
}
