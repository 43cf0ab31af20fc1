//! `deed compare S.P`: a table projection against the contract version it
//! replaces (or its event's contract), at a consistent point, recorded.

use std::time::{Duration, Instant};

use deed_ident::{Ident, QualifiedName};
use deed_manifest::{ContractShape, Manifest};
use deed_pg::Client;
use deed_project::ProjectionSpec;
use deed_project::source::nats::NatsSource;
use serde_json::Value as Json;

use crate::error::{CompareError, query};
use crate::follow::{EventsFrom, Fence, Follow};
use crate::report::{CompareReport, DifferentRow};
use crate::scan::{Scan, Tuning, scan};
use crate::settle::{Settled, Sides, settle};
use crate::shape::{Pair, SESSION, sides};
use crate::verdict::{self, Record};

#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The projector reads JetStream here (else the inbox): one server or
    /// a cluster's, comma-separated.
    pub nats: Option<String>,
    /// How to sign in to NATS.
    pub nats_auth: deed_bus::NatsAuth,
    /// How long to wait for the projection to reach a fence.
    pub wait: Duration,
    /// Looks at differing keys after the first pass, at most.
    pub rechecks: u32,
    pub tuning: Tuning,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            nats: None,
            nats_auth: deed_bus::NatsAuth::default(),
            wait: Duration::from_secs(120),
            rechecks: 8,
            tuning: Tuning::default(),
        }
    }
}

/// A projection and what it is compared with.
pub struct Target {
    pub spec: ProjectionSpec,
    pub pair: Pair,
    pub uncovered: Vec<String>,
}

/// Resolves `service.projection` from the manifest.
pub fn target(manifest: &Manifest, reference: &str) -> Result<Target, CompareError> {
    let (service, name) = reference.split_once('.').ok_or_else(|| {
        CompareError::Setup(format!(
            "{reference:?}: write <service>.<projection>, e.g. orders.products"
        ))
    })?;
    let spec = deed_project::projections(manifest, service)?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| {
        CompareError::Setup(format!("service {service} has no projection {name:?}"))
    })?;
    let table = spec.table().ok_or_else(|| {
        CompareError::Setup(format!(
            "{}: projection {reference} runs a handler; only a table projection can be compared with its source",
            spec.location
        ))
    })?;
    let replaces =
        manifest.service(service).and_then(|s| s.projection(name)).and_then(|p| p.replaces.clone());
    let (source, source_columns): (QualifiedName, Vec<Ident>) = match &replaces {
        Some(r) => {
            let (owner, contract) =
                manifest.contract(r).expect("the manifest checks what a projection replaces");
            let ContractShape::Columns(cols) = &contract.shape else {
                return Err(CompareError::Setup(format!(
                    "{}: {r} is not a column contract; compare needs columns",
                    spec.location
                )));
            };
            (contract.view_name(&owner.api_schema), cols.clone())
        }
        None => (table.view.clone(), table.columns.clone()),
    };
    for k in &table.key {
        if !source_columns.contains(k) {
            return Err(CompareError::Setup(format!(
                "{}: {source} has no column {k}, part of the event's key; rows cannot be matched",
                spec.location
            )));
        }
    }
    let columns: Vec<Ident> =
        source_columns.iter().filter(|c| table.columns.contains(c)).cloned().collect();
    let uncovered = source_columns
        .iter()
        .filter(|c| !table.columns.contains(c))
        .map(|c| c.as_str().to_string())
        .collect();
    let pair = Pair { source, target: table.table.clone(), key: table.key.clone(), columns };
    Ok(Target { spec, pair, uncovered })
}

/// Compares, records the verdict in the consumer's database, and reports.
pub async fn compare(
    target_def: Target,
    source: &Client,
    target: &Client,
    opts: &CompareOptions,
) -> Result<CompareReport, CompareError> {
    let started = Instant::now();
    let Target { spec, pair, uncovered } = target_def;
    tokio::try_join!(source.batch_execute(SESSION), target.batch_execute(SESSION))
        .map_err(query("setting the compare's session"))?;
    verdict::ensure(target).await?;
    let fenced_at: String = target
        .query_one("SELECT clock_timestamp()::text", &[])
        .await
        .map_err(query("reading the consumer's clock"))?
        .get(0);
    let events = match &opts.nats {
        Some(url) => match deed_bus::Bus::parse(url)? {
            deed_bus::Bus::Nats(servers) => {
                Some(EventsFrom::Nats(NatsSource::connect(&servers, &opts.nats_auth).await?))
            }
            deed_bus::Bus::Amqp(url) => Some(EventsFrom::Amqp(url)),
            deed_bus::Bus::Kafka(url) => Some(EventsFrom::Kafka(url)),
            deed_bus::Bus::Webhook(url) => return Err(url.not_a_source().into()),
            // The inbox is what the compare reads without --events-from.
            deed_bus::Bus::Inbox(_) => None,
        },
        None => None,
    };
    let mut follow = Follow::new(spec.clone(), events, opts.wait);
    let first = follow.catch_up(source, target).await?;
    let (found, settled) = diff(source, target, &pair, Some(&mut follow), opts).await?;
    let fence = deed_events::lsn_text(settled.fence.unwrap_or(first));
    let equal = settled.missing.is_empty()
        && settled.extra.is_empty()
        && settled.different.is_empty()
        && uncovered.is_empty();
    let report = CompareReport {
        projection: format!("{}.{}", spec.service, spec.name),
        source: pair.source.to_string(),
        target: pair.target.to_string(),
        equal,
        source_rows: found.source_rows,
        target_rows: found.target_rows,
        missing: settled.missing.iter().map(|k| key(k)).collect(),
        extra: settled.extra.iter().map(|k| key(k)).collect(),
        different: settled
            .different
            .iter()
            .map(|(k, columns)| DifferentRow { key: key(k), columns: columns.clone() })
            .collect(),
        in_flight: settled.in_flight.iter().map(|k| key(k)).collect(),
        uncovered_columns: uncovered,
        fence: Some(fence.clone()),
        seconds: started.elapsed().as_secs_f64(),
        ranges: found.ranges,
        rows_read: found.rows_read,
        rechecks: settled.rechecks,
    };
    let len = |n: usize| n as i64;
    verdict::record(
        target,
        &Record {
            service: &spec.service,
            projection: &spec.name,
            fenced_at: &fenced_at,
            fence: Some(fence),
            definition: &spec.definition(),
            source: &report.source,
            equal,
            counts: [
                report.source_rows,
                report.target_rows,
                len(report.missing.len()),
                len(report.extra.len()),
                len(report.different.len()),
                len(report.in_flight.len()),
            ],
            seconds: report.seconds,
        },
    )
    .await?;
    Ok(report)
}

/// The two passes over a pair of relations: checksummed ranges, then
/// re-checks of the differing keys (after waiting for `follow`, if any).
/// Sessions must already have [`SESSION`] set.
pub async fn diff<F: Fence>(
    source: &Client,
    target: &Client,
    pair: &Pair,
    follow: Option<&mut F>,
    opts: &CompareOptions,
) -> Result<(Scan, Settled), CompareError> {
    let (s, t) = sides(source, target, pair).await?;
    let mut found = scan(source, target, &s, &t, opts.tuning).await?;
    let sides = Sides { source, target, s: &s, t: &t, columns: &pair.columns };
    let candidates = std::mem::take(&mut found.candidates);
    let settled = settle(&sides, candidates, follow, opts.rechecks).await?;
    Ok((found, settled))
}

fn key(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.to_string()))
}
