//! `deed split S --status`: where a split stands, from the record and from
//! what the two databases show (who may write, which way replication
//! runs, how far behind it is).

use deed_events::SplitDirection;
use serde::Serialize;

use crate::error::SplitError;
use crate::phases::Split;
use crate::replicate::{self, Sync};
use crate::state::{Phase, Recorded};
use crate::switch::writable;

#[derive(Debug, Clone, Serialize)]
pub struct SplitStatus {
    pub service: String,
    pub recorded: Option<Recorded>,
    /// `source`, `target`, `both` (an interrupted switch) or `none`.
    pub writes_on: String,
    /// `forward`, `back`, `both` or `none`.
    pub replicating: String,
    pub copy: Sync,
    pub lag_bytes: Option<i64>,
    /// What to run next.
    pub next: String,
}

pub async fn status(split: &Split) -> Result<SplitStatus, SplitError> {
    let name = split.service.name.clone();
    let first = &split
        .found
        .tables
        .first()
        .ok_or_else(|| SplitError::Setup(format!("{name} owns no table")))?
        .name;
    let on_source = writable(&split.shared, &name, first).await?;
    let on_target = writable(&split.target, &name, first).await?;
    let forward =
        replicate::subscription_exists(&split.target, &name, SplitDirection::Forward).await?;
    let back = replicate::subscription_exists(&split.shared, &name, SplitDirection::Back).await?;
    let copy = if forward {
        replicate::sync_state(&split.target, &name, SplitDirection::Forward).await?
    } else {
        Sync::default()
    };
    let lag_bytes = if back {
        replicate::lag_bytes(&split.target, &name, SplitDirection::Back).await?
    } else if forward {
        replicate::lag_bytes(&split.shared, &name, SplitDirection::Forward).await?
    } else {
        None
    };
    let writes_on = match (on_source, on_target) {
        (true, true) => "both",
        (true, false) => "source",
        (false, true) => "target",
        (false, false) => "none",
    }
    .to_string();
    let replicating = match (forward, back) {
        (true, true) => "both",
        (true, false) => "forward",
        (false, true) => "back",
        (false, false) => "none",
    }
    .to_string();
    let phase = split.recorded.as_ref().map(|r| r.phase);
    let next = next_step(&name, phase, &writes_on, forward || back);
    Ok(SplitStatus {
        service: name,
        recorded: split.recorded.clone(),
        writes_on,
        replicating,
        copy,
        lag_bytes,
        next,
    })
}

/// What to run next, from the recorded phase, where the writes are, and
/// whether replication runs either way.
fn next_step(name: &str, phase: Option<Phase>, writes_on: &str, replicating: bool) -> String {
    match (phase, writes_on) {
        (Some(_), "none" | "both") if replicating => {
            format!(
                "a switch was interrupted: run `deed split {name} --cutover` or `--rollback` again"
            )
        }
        (None, _) => format!("`deed split {name} --to URL --prepare`"),
        (Some(Phase::Prepared), _) => format!("`deed split {name} --to URL --copy`"),
        (Some(Phase::Following), _) => format!("`deed split {name} --to URL --prove`"),
        (Some(Phase::Proven), _) => format!("`deed split {name} --to URL --cutover`"),
        (Some(Phase::CutOver), _) => format!(
            "`deed split {name} --finish` once no service reads {name}'s contracts in the shared database (or `--rollback`)"
        ),
        (Some(Phase::Finished), _) => "nothing: the split is finished".to_string(),
    }
}

pub fn table(s: &SplitStatus) -> String {
    let mut out = format!("deed split {}\n", s.service);
    let phase = s.recorded.as_ref().map_or("not started", |r| r.phase.as_str());
    out.push_str(&format!("  phase        {phase}\n"));
    if let Some(r) = &s.recorded {
        out.push_str(&format!("  target       {}\n", r.target));
    }
    out.push_str(&format!("  writes on    {}\n", s.writes_on));
    out.push_str(&format!("  replication  {}", s.replicating));
    if s.copy.tables > 0 {
        out.push_str(&format!(" ({} of {} tables copied)", s.copy.ready, s.copy.tables));
    }
    if let Some(lag) = s.lag_bytes {
        out.push_str(&format!(", {lag} bytes behind"));
    }
    out.push('\n');
    if let Some(r) = &s.recorded {
        if let Some(p) = &r.proof {
            let equal = p.get("equal").and_then(|v| v.as_bool()).unwrap_or(false);
            out.push_str(&format!(
                "  proof        {} ({})\n",
                if equal { "equal" } else { "DIFFERENCES" },
                r.proven_at.as_deref().unwrap_or("not clean")
            ));
        }
        if let Some(ms) = r.fence_ms {
            out.push_str(&format!(
                "  last fence   {ms:.0} ms at {} (epoch {})\n",
                r.switched_at.as_deref().unwrap_or("?"),
                r.epoch
            ));
        }
    }
    out.push_str(&format!("  next         {}\n", s.next));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(phase: Phase) -> Recorded {
        Recorded {
            service: "catalog".into(),
            target: "postgres://catalog-db.internal/catalog".into(),
            phase,
            live: if phase >= Phase::CutOver { "target" } else { "source" }.into(),
            epoch: 1,
            prepared_at: Some("2026-11-21 10:00:00+00".into()),
            copied_at: None,
            proven_at: (phase >= Phase::Proven).then(|| "2026-11-21 10:05:00+00".into()),
            proof: (phase >= Phase::Proven).then(|| serde_json::json!({"equal": true})),
            fence_lsn: None,
            switched_at: (phase >= Phase::CutOver).then(|| "2026-11-21 10:06:00+00".into()),
            fence_ms: (phase >= Phase::CutOver).then_some(41.7),
            previous_database: None,
        }
    }

    fn status(phase: Option<Phase>, writes_on: &str, replicating: &str) -> SplitStatus {
        SplitStatus {
            service: "catalog".into(),
            recorded: phase.map(recorded),
            writes_on: writes_on.into(),
            replicating: replicating.into(),
            // The copy's progress is read from the forward subscription.
            copy: if replicating.contains("forward") || replicating == "both" {
                Sync { ready: 2, tables: 3 }
            } else {
                Sync::default()
            },
            lag_bytes: (replicating != "none").then_some(4096),
            next: next_step("catalog", phase, writes_on, replicating != "none"),
        }
    }

    #[test]
    fn every_stage_of_a_split_as_status_shows_it() {
        for (name, s) in [
            ("not_started", status(None, "source", "none")),
            ("following", status(Some(Phase::Following), "source", "forward")),
            ("proven", status(Some(Phase::Proven), "source", "forward")),
            ("cut_over", status(Some(Phase::CutOver), "target", "back")),
            ("interrupted", status(Some(Phase::Proven), "none", "forward")),
            ("finished", status(Some(Phase::Finished), "target", "none")),
        ] {
            insta::assert_snapshot!(name, table(&s));
            insta::assert_json_snapshot!(format!("{name}_json"), s);
        }
    }
}
