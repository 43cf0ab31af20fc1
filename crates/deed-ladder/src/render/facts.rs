//! What `deed status` says, once, as sentences: every format (table,
//! Markdown, HTML) lays out these same facts, so none says less than
//! another. JSON carries the structures they come from.

use deed_contracts::report::exception_line;

use crate::flow::{Flow, Status};

/// The most drift lines shown; `deed drift` lists them all.
const MAX_DRIFT: usize = 10;

pub(crate) struct Facts {
    /// `6 flows`.
    pub heading: String,
    /// flow, rung, reads, next (which may hold `code`).
    pub flows: Vec<[String; 4]>,
    /// The last compare of each projection that has one.
    pub compares: Vec<String>,
    /// What needs someone now, flow by flow.
    pub stalled: Vec<String>,
    /// `(expired, line)`.
    pub exceptions: Vec<(bool, String)>,
    pub drift: Option<Drift>,
    pub capture: Vec<Health>,
    pub projections: Vec<Health>,
}

pub(crate) struct Drift {
    pub total: usize,
    pub shown: Vec<String>,
}

impl Drift {
    pub fn summary(&self) -> String {
        if self.total == 0 {
            "none; the database matches the manifest.".into()
        } else {
            format!(
                "{} (`deed drift` lists them){}",
                deed_text::plural(self.total as u64, "difference", "differences"),
                if self.total > self.shown.len() {
                    format!(", the first {}:", self.shown.len())
                } else {
                    ":".into()
                }
            )
        }
    }
}

/// One service's capture or one projection: a sentence, and what is wrong.
pub(crate) struct Health {
    pub line: String,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

fn reads(f: &Flow) -> String {
    let mut parts: Vec<String> = f.contracts.iter().map(|c| c.to_string()).collect();
    parts.extend(f.projections.iter().map(|p| format!("{} (projection)", p.event)));
    if parts.is_empty() { "-".into() } else { parts.join(", ") }
}

pub(crate) fn facts(s: &Status) -> Facts {
    let flows = s
        .flows
        .iter()
        .map(|f| {
            [
                format!("{} ← {}: {}", f.consumer, f.owner, f.subject),
                format!("{} {}", f.rung.number(), f.rung_name),
                reads(f),
                f.next.clone(),
            ]
        })
        .collect();
    let mut compares = Vec::new();
    let mut stalled = Vec::new();
    for f in &s.flows {
        for p in &f.projections {
            if let Some(v) = &p.compare {
                compares.push(format!(
                    "{}.{}: last compare {} ago, {}{}",
                    f.consumer,
                    p.name,
                    deed_text::duration(v.age_seconds),
                    if v.equal {
                        "equal".to_string()
                    } else {
                        format!(
                            "{} missing, {} extra, {} different",
                            v.missing, v.extra, v.different
                        )
                    },
                    if p.cut_over { "; cut over" } else { "" }
                ));
            }
        }
        for why in &f.stalled {
            stalled.push(format!("{} ← {}: {why}", f.consumer, f.owner));
        }
    }
    let exceptions = s
        .exceptions
        .iter()
        .map(|e| {
            let when = match (e.active, e.days_left) {
                (false, _) => "EXPIRED: ".to_string(),
                (true, Some(d)) => format!("{d} days left: "),
                (true, None) => String::new(),
            };
            (!e.active, format!("{when}{}", exception_line(&e.exception)))
        })
        .collect();
    let drift = s
        .drift
        .as_ref()
        .map(|d| Drift { total: d.len(), shown: d.iter().take(MAX_DRIFT).cloned().collect() });
    let capture = s
        .capture
        .iter()
        .map(|h| Health {
            line: deed_relay::health::state_line(h),
            problems: h.problems.clone(),
            warnings: h.warnings.clone(),
        })
        .collect();
    let projections = s
        .projections
        .iter()
        .map(|h| Health {
            line: deed_project::health::state_line(h),
            problems: h.problems.clone(),
            warnings: Vec::new(),
        })
        .collect();
    Facts {
        heading: deed_text::plural(s.flows.len() as u64, "flow", "flows"),
        flows,
        compares,
        stalled,
        exceptions,
        drift,
        capture,
        projections,
    }
}
