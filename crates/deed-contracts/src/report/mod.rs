//! Rendering plans, drift and status as a table, JSON or Markdown.

mod drift;
mod plan;

pub use drift::{drift_json, drift_markdown, drift_table};
pub use plan::{plan_json, plan_markdown, plan_summary, plan_table, plan_table_with};

use deed_manifest::Exception;

/// Bumped only when a field is removed or changes meaning.
pub const JSON_FORMAT_VERSION: u32 = 1;

pub fn exception_line(e: &Exception) -> String {
    let privs: Vec<&str> = e.privileges.iter().map(|p| p.as_sql()).collect();
    let until =
        e.expires.map(|d| format!(" until {d}")).unwrap_or_else(|| " with no expiry".into());
    format!(
        "{} keeps {} on {}{until}: {} ({})",
        e.service,
        privs.join(", "),
        e.relation,
        e.reason,
        e.location
    )
}

pub fn to_json(value: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("serialisable");
    s.push('\n');
    s
}
