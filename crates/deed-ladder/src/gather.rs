//! Everything `deed status` reads, in one place: from the shared
//! database (capture health, splits, drift), from the own database of each
//! service a split moved (its capture), from each consumer's database
//! (projections, compares) and, when given, from the bus (what waits
//! there). The command line only parses its arguments and renders.

use std::collections::HashSet;

use deed_audit::AuditRequest;
use deed_contracts::{Plan, PlanRequest, Stage};
use deed_manifest::{Date, Manifest};
use deed_project::source::Backlog;

use crate::Observed;
use crate::error::LadderError;

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// How far `deed status` looks: the WAL a slot may keep before it is a
/// problem, and the bus whose backlog it shows.
pub struct Reach<'a> {
    pub max_retained_bytes: i64,
    pub backlog: Option<&'a Backlog>,
}

/// What the databases (and the bus) say, for [`crate::status`]; the
/// caller adds the audit's catalogue, which it may have read already.
pub async fn observe(
    manifest: &Manifest,
    shared_url: &str,
    reach: &Reach<'_>,
    env: Env<'_>,
) -> Result<Observed<'static>, LadderError> {
    let mut observed = Observed::default();
    let client = deed_pg::connect(shared_url).await?;
    observed.capture =
        deed_relay::health::capture_health(&client, manifest, reach.max_retained_bytes).await?;
    for split in deed_split::state::load_all(&client).await? {
        // A moved service's capture is in its own database.
        if split.live == "target" {
            if let Some(s) = manifest.service(&split.service) {
                let own = manifest
                    .service_database_url(s, env)
                    .map_err(|e| LadderError::Manifest(e.to_string()))?;
                if let Some(own) = own {
                    let own = deed_pg::connect(&own).await?;
                    observed.capture.extend(
                        deed_relay::health::capture_health_of(
                            &own,
                            manifest,
                            reach.max_retained_bytes,
                            std::slice::from_ref(&split.service),
                        )
                        .await?,
                    );
                }
            }
        }
        observed.splits.insert(split.service.clone(), split.phase.as_str().to_string());
    }
    let plan = plan(&client, manifest, shared_url, None, Stage::Enforce, env).await?;
    observed.drift = Some(plan.changes.iter().map(|c| c.drift.clone()).collect());
    (observed.projections, observed.verdicts) =
        crate::observe::consumers(manifest, shared_url, env).await?;
    if let Some(backlog) = reach.backlog {
        crate::observe::on_bus(manifest, backlog, &mut observed.projections).await?;
    }
    Ok(observed)
}

/// `deed plan`'s plan of the database `client` is connected to (at
/// `url`), with a cutover already proven (its projection's clean compare
/// is recent and of its current definition) shown as such.
pub async fn plan(
    client: &deed_pg::Client,
    manifest: &Manifest,
    url: &str,
    audit: Option<AuditRequest>,
    stage: Stage,
    env: Env<'_>,
) -> Result<Plan, LadderError> {
    let mut plan =
        deed_contracts::plan(client, PlanRequest { manifest, audit, today: Date::today(), stage })
            .await?;
    let proven = proven_projections(manifest, url, env).await?;
    plan.guard_cutovers(manifest, &|s, p| proven.contains(&(s.to_string(), p.to_string())));
    Ok(plan)
}

/// Projections whose replaced read the manifest no longer lists and that
/// a clean compare, under an hour old and of their current definition,
/// proves: revoking their read is a cutover already proven.
pub async fn proven_projections(
    manifest: &Manifest,
    shared: &str,
    env: Env<'_>,
) -> Result<HashSet<(String, String)>, LadderError> {
    let mut out = HashSet::new();
    for s in &manifest.services {
        let dropped: Vec<_> = s
            .projections
            .iter()
            .filter(|p| p.replaces.as_ref().is_some_and(|r| !s.reads.contains(r)))
            .collect();
        if dropped.is_empty() {
            continue;
        }
        let url = manifest
            .service_database_url(s, env)
            .map_err(|e| LadderError::Manifest(e.to_string()))?
            .unwrap_or_else(|| shared.to_string());
        let client = deed_pg::connect(&url).await?;
        let specs = deed_project::projections(manifest, &s.name)?;
        for p in dropped {
            let Some(v) = deed_compare::verdict::latest(&client, &s.name, &p.name).await? else {
                continue;
            };
            let definition = specs.iter().find(|x| x.name == p.name).map(|x| x.definition());
            if definition.is_some_and(|d| v.proves(&d, 3600.0)) {
                out.insert((s.name.clone(), p.name.clone()));
            }
        }
    }
    Ok(out)
}
