//! What must hold before a read is revoked: the projection runs and is
//! caught up, and a recent clean compare of its current definition is
//! recorded; with traffic given, the consumer no longer reads the view.

use deed_pg::Client;
use deed_project::ProjectionSpec;

use super::Cutover;
use crate::error::CompareError;
use crate::verdict;

#[derive(Debug, Clone)]
pub struct Conditions {
    pub max_age_seconds: f64,
    pub max_lag_seconds: f64,
    /// Calls of the service on the replaced view in observed traffic, and
    /// where the traffic came from; `None` when no source was given.
    pub traffic: Option<(u64, String)>,
}

/// Every reason to refuse; empty when the cutover may go ahead.
pub async fn check(
    target: &Client,
    spec: &ProjectionSpec,
    c: &Cutover,
    cond: &Conditions,
) -> Result<Vec<String>, CompareError> {
    let mut refusals = Vec::new();
    let name = format!("{}.{}", c.service, c.projection);
    let health =
        deed_project::health::projection_health(target, std::slice::from_ref(spec)).await?;
    let h = &health[0];
    if h.phase != "live" {
        refusals.push(format!(
            "projection {name} is {}: run `deed project --service {}` until it is live",
            h.phase, c.service
        ));
    }
    if h.lag_seconds > cond.max_lag_seconds {
        refusals.push(format!(
            "projection {name} is {:.0} s behind ({} events waiting), over --max-lag {:.0} s",
            h.lag_seconds, h.waiting_events, cond.max_lag_seconds
        ));
    }
    if h.dead_letters > 0 {
        refusals.push(format!(
            "{} in deed.dead_letters: fix the cause, then `deed project --service {} --retry-dead`",
            deed_text::plural(h.dead_letters as u64, "dead letter waits", "dead letters wait"),
            c.service
        ));
    }
    let again = format!("run `deed compare {name}`");
    match verdict::latest(target, &c.service, &c.projection).await? {
        None => refusals.push(format!("no compare of {name} is recorded: {again}")),
        Some(v) if !v.equal => refusals.push(format!(
            "the last compare of {name} ({}) found {} missing, {} extra and {} different rows: fix them, then {again}",
            v.compared_at, v.missing, v.extra, v.different
        )),
        Some(v) if !v.current || v.definition != spec.definition() => refusals.push(format!(
            "projection {name} changed after its last compare ({}): {again}",
            v.compared_at
        )),
        Some(v) if v.age_seconds > cond.max_age_seconds => refusals.push(format!(
            "the last clean compare of {name} is {} old, over --max-age {}: {again}",
            deed_text::duration(v.age_seconds),
            deed_text::duration(cond.max_age_seconds)
        )),
        Some(_) => {}
    }
    if let Some((calls, source)) = &cond.traffic {
        if *calls > 0 {
            refusals.push(format!(
                "{} still reads {} ({}): {} in {source}; make it read its projection {} first",
                c.service,
                c.view,
                c.replaces,
                deed_text::plural(*calls, "call", "calls"),
                spec.table().map(|t| t.table.to_string()).unwrap_or_default()
            ));
        }
    }
    Ok(refusals)
}
