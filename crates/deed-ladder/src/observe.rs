//! What the ladder reads from each consumer's own database: projection
//! progress and compare verdicts, one connection per database.

use deed_compare::verdict::{self, Verdict};
use deed_manifest::Manifest;
use deed_project::ProjectionSpec;
use deed_project::health::ProjectionHealth;

use crate::error::LadderError;

/// Every declared projection's health and latest compare.
pub async fn consumers(
    manifest: &Manifest,
    shared_url: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<ProjectionHealth>, Vec<Verdict>), LadderError> {
    let mut by_database: Vec<(String, Vec<ProjectionSpec>)> = Vec::new();
    for s in manifest.services.iter().filter(|s| !s.projections.is_empty()) {
        let url = manifest
            .service_database_url(s, lookup)
            .map_err(|e| LadderError::Manifest(e.to_string()))?
            .unwrap_or_else(|| shared_url.to_string());
        let specs = deed_project::projections(manifest, &s.name)?;
        match by_database.iter_mut().find(|(u, _)| *u == url) {
            Some((_, all)) => all.extend(specs),
            None => by_database.push((url, specs)),
        }
    }
    let mut health = Vec::new();
    let mut verdicts = Vec::new();
    for (url, specs) in by_database {
        let client = deed_pg::connect(&url).await?;
        health.extend(deed_project::health::projection_health(&client, &specs).await?);
        for spec in &specs {
            if let Some(v) = verdict::latest(&client, &spec.service, &spec.name).await? {
                verdicts.push(v);
            }
        }
    }
    Ok((health, verdicts))
}

/// What waits for each projection on `bus` (`deed status --bus`), as the
/// bus counts it: JetStream's consumers, Kafka's consumer groups.
pub async fn on_bus(
    manifest: &Manifest,
    backlog: &deed_project::source::Backlog,
    health: &mut [ProjectionHealth],
) -> Result<(), LadderError> {
    let mut specs = Vec::new();
    for s in manifest.services.iter().filter(|s| !s.projections.is_empty()) {
        specs.extend(deed_project::projections(manifest, &s.name)?);
    }
    deed_project::health::count_on_bus(health, &specs, backlog).await;
    Ok(())
}
