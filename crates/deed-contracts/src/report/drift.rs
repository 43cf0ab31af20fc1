use serde_json::json;

use super::{JSON_FORMAT_VERSION, to_json};
use crate::plan::Plan;

pub fn drift_table(plan: &Plan) -> String {
    if plan.is_empty() {
        return "deed drift: none; the database matches the manifest.\n".into();
    }
    let mut out = format!(
        "deed drift: {} difference{} between the database and the manifest\n",
        plan.changes.len(),
        if plan.changes.len() == 1 { "" } else { "s" }
    );
    for c in &plan.changes {
        out.push_str(&format!("  - {}\n", c.drift));
    }
    out.push_str(
        "\n`deed plan` shows the SQL that restores the manifest's state; `deed apply` runs it.\n",
    );
    out
}

pub fn drift_json(plan: &Plan) -> String {
    let items: Vec<serde_json::Value> = plan
        .changes
        .iter()
        .map(|c| json!({"kind": c.kind, "object": c.object, "message": c.drift, "fix": c.sql}))
        .collect();
    to_json(&json!({"format_version": JSON_FORMAT_VERSION, "command": "drift", "drift": items}))
}

pub fn drift_markdown(plan: &Plan) -> String {
    if plan.is_empty() {
        return "### deed drift\n\n✅ None: the database matches the manifest.\n".into();
    }
    let mut out = format!(
        "### deed drift\n\n❌ **{}**\n\n",
        deed_text::plural(plan.changes.len() as u64, "difference", "differences")
    );
    for c in &plan.changes {
        out.push_str(&format!("- {}\n", c.drift));
    }
    out
}
