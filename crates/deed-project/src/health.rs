//! Where each projection stands, read from the consumer's database, for
//! `deed status`: started or not, backfilling, how many events wait, and
//! dead letters (which are a problem until retried).

use deed_pg::Client;
use serde::Serialize;

use crate::error::{ProjectError, query};
use crate::spec::ProjectionSpec;

#[derive(Debug, Clone, Serialize)]
pub struct ProjectionHealth {
    pub service: String,
    pub name: String,
    pub event: String,
    /// `not started`, `backfill` or `live`.
    pub phase: String,
    pub position: Option<String>,
    pub applied: i64,
    pub backfill_rows: i64,
    /// Events in the inbox after the projection's position (when the
    /// projection reads the inbox).
    pub waiting_events: i64,
    /// Seconds since the last applied event was committed by the owner,
    /// while events wait; 0 when caught up.
    pub lag_seconds: f64,
    pub dead_letters: i64,
    /// What waits on the bus the projection reads (`deed status --bus`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_bus: Option<OnBus>,
    pub problems: Vec<String>,
}

/// A projection's events waiting on a bus, as the bus counts them.
#[derive(Debug, Clone, Serialize)]
pub struct OnBus {
    /// The bus, without credentials.
    pub bus: String,
    /// Events not yet applied: JetStream's unacknowledged messages of the
    /// projection's consumer, Kafka's group lag. `None`: nothing of the
    /// projection is on this bus (no stream, consumer or topic).
    pub pending: Option<u64>,
    /// Why it could not be counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Counts what waits for each projection on the bus `backlog` reads.
/// A bus that does not answer is a problem of each projection.
pub async fn count_on_bus(
    health: &mut [ProjectionHealth],
    specs: &[ProjectionSpec],
    backlog: &crate::source::Backlog,
) {
    let shown = &backlog.shown;
    for h in health {
        let Some(spec) = specs.iter().find(|s| s.service == h.service && s.name == h.name) else {
            continue;
        };
        let on_bus = match backlog.pending(spec).await {
            Ok(pending) => OnBus { bus: shown.to_string(), pending, error: None },
            Err(e) => {
                h.problems.push(format!("cannot count its events on {shown}: {e}"));
                OnBus { bus: shown.to_string(), pending: None, error: Some(e.to_string()) }
            }
        };
        h.on_bus = Some(on_bus);
    }
}

/// The state of the given projections, all in the same consumer database.
pub async fn projection_health(
    client: &Client,
    specs: &[ProjectionSpec],
) -> Result<Vec<ProjectionHealth>, ProjectError> {
    let has_tables = deed_state::all_exist(client, &deed_state::Table::CONSUMER).await?;
    let mut out = Vec::new();
    for spec in specs {
        let mut h = ProjectionHealth {
            service: spec.service.clone(),
            name: spec.name.clone(),
            event: spec.event.clone(),
            phase: "not started".into(),
            position: None,
            applied: 0,
            backfill_rows: 0,
            waiting_events: 0,
            lag_seconds: 0.0,
            dead_letters: 0,
            on_bus: None,
            problems: Vec::new(),
        };
        if has_tables {
            read(client, spec, &mut h).await?;
        }
        if h.phase == "not started" {
            h.problems.push(format!("not started: run `deed project --service {}`", spec.service));
        }
        if h.dead_letters > 0 {
            let n =
                deed_text::plural(h.dead_letters as u64, "dead letter waits", "dead letters wait");
            h.problems.push(format!(
                "{n} in deed.dead_letters: fix the cause, then `deed project --service {} --retry-dead`",
                spec.service
            ));
        }
        out.push(h);
    }
    Ok(out)
}

async fn read(
    client: &Client,
    spec: &ProjectionSpec,
    h: &mut ProjectionHealth,
) -> Result<(), ProjectError> {
    let row = client
        .query_opt(
            "SELECT p.phase, p.position, p.applied, p.backfill_rows,
                    (SELECT count(*) FROM deed.inbox i WHERE i.type = p.event AND i.position > p.position),
                    coalesce(extract(epoch FROM clock_timestamp() - p.last_committed_at)::float8, 0),
                    (SELECT count(*) FROM deed.dead_letters d WHERE d.service = p.service AND d.projection = p.name)
               FROM deed.projections p WHERE p.service = $1 AND p.name = $2",
            &[&spec.service, &spec.name],
        )
        .await
        .map_err(query("reading deed.projections"))?;
    if let Some(r) = row {
        h.phase = r.get(0);
        h.position = Some(r.get(1));
        h.applied = r.get(2);
        h.backfill_rows = r.get(3);
        h.waiting_events = r.get(4);
        h.lag_seconds = if h.waiting_events > 0 { r.get(5) } else { 0.0 };
        h.dead_letters = r.get(6);
    }
    Ok(())
}

pub fn render(health: &[ProjectionHealth]) -> String {
    if health.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nProjections (rung 2)\n");
    for h in health {
        out.push_str(&format!("  {}\n", state_line(h)));
        for p in &h.problems {
            out.push_str(&format!("    PROBLEM: {p}\n"));
        }
    }
    out
}

/// One projection in a sentence: its phase, what it applied, what waits.
pub fn state_line(h: &ProjectionHealth) -> String {
    // What waits: on the bus given (`deed status --bus`), else in the inbox.
    let waiting = match &h.on_bus {
        Some(OnBus { bus, pending: Some(n), .. }) => format!("{n} waiting on {bus}"),
        Some(OnBus { bus, pending: None, error: None }) => format!("nothing of it on {bus}"),
        Some(OnBus { error: Some(_), .. }) | None if h.lag_seconds > 0.0 => {
            format!("{} waiting (lag {:.1} s)", h.waiting_events, h.lag_seconds)
        }
        Some(OnBus { error: Some(_), .. }) | None => format!("{} waiting", h.waiting_events),
    };
    let state = match h.phase.as_str() {
        "live" => {
            format!("live, {} applied, {waiting}, {} dead letters", h.applied, h.dead_letters)
        }
        "backfill" => format!("backfilling, {} rows copied", h.backfill_rows),
        other if h.on_bus.is_some() => format!("{other}; {waiting}"),
        other => other.to_string(),
    };
    format!("{}.{} <- {}: {state}", h.service, h.name, h.event)
}
