use deed_manifest::Manifest;
use serde_json::json;

use super::{JSON_FORMAT_VERSION, exception_line, to_json};
use crate::impact::Break;
use crate::plan::Plan;
use deed_change::{Change, Phase};

fn sign(c: &Change) -> &'static str {
    match c.kind {
        "revoke" | "revoke-columns" | "revoke-membership" | "revoke-execute" | "drop-view"
        | "revoke-default" => "-",
        "create-role" | "grant-membership" | "create-schema" | "create-view" | "grant" => "+",
        _ if matches!(c.phase, Phase::Blocker | Phase::Warning) => "!",
        _ => "~",
    }
}

/// The observed statements a revoke would break: same relation, a lost
/// privilege, run by the grantee (or by anyone, for PUBLIC).
fn breaks_of<'a>(c: &Change, plan: &'a Plan, manifest: &Manifest) -> Vec<&'a Break> {
    let (Some(r), Some(impact)) = (&c.revokes, &plan.impact) else { return Vec::new() };
    let mut seen = std::collections::BTreeSet::new();
    impact
        .breaks
        .iter()
        .filter(|b| b.relation == r.relation && r.privileges.contains(&b.privilege))
        .filter(|b| match &r.grantee {
            None => true,
            Some(g) => {
                b.service.strip_prefix("unknown:") == Some(g.as_str())
                    || manifest.service(&b.service).is_some_and(|s| {
                        s.logins.iter().any(|l| l.as_str() == g)
                            || crate::naming::owner_role(&s.name).as_str() == g
                    })
            }
        })
        // One line per statement, even when it loses several privileges.
        .filter(|b| seen.insert((b.service.clone(), b.queries[0].fingerprint.clone())))
        .collect()
}

use deed_text::one_line;

pub fn plan_table(plan: &Plan, manifest: &Manifest) -> String {
    plan_table_with(plan, manifest, true)
}

/// The plan without its SQL listing, for narration.
pub fn plan_table_with(plan: &Plan, manifest: &Manifest, show_sql: bool) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        out.push_str("deed plan: nothing to do; the database matches the manifest.\n");
    } else {
        let n = plan
            .changes
            .iter()
            .filter(|c| !matches!(c.phase, Phase::Blocker | Phase::Warning))
            .count();
        out.push_str(&format!(
            "deed plan: {n} change{} to make the database match the manifest\n",
            if n == 1 { "" } else { "s" }
        ));
    }
    let mut phase = None;
    for c in &plan.changes {
        if phase != Some(c.phase) {
            phase = Some(c.phase);
            out.push_str(&format!("\n{}\n", c.phase.title()));
        }
        out.push_str(&format!("  {} {}\n", sign(c), c.summary));
        for b in breaks_of(c, plan, manifest) {
            let q = &b.queries[0];
            out.push_str(&format!(
                "      breaks {}: {} ({}{})\n",
                b.service,
                one_line(&q.example, 70),
                deed_text::plural(q.calls, "call", "calls"),
                if b.queries.len() > 1 {
                    format!(", and {} more statements", b.queries.len() - 1)
                } else {
                    String::new()
                }
            ));
        }
    }
    for k in &plan.kept {
        let readers: Vec<String> =
            k.readers.iter().map(|(s, c)| format!("{s} ({c} calls)")).collect();
        out.push_str(&format!(
            "\n  = keeping {}: the manifest dropped it, but traffic still reads it: {}\n",
            k.view,
            readers.join(", ")
        ));
    }
    if !plan.exceptions.is_empty() || !plan.expired.is_empty() {
        out.push_str("\nTransitional exceptions\n");
        for e in &plan.exceptions {
            out.push_str(&format!("  {}\n", exception_line(e)));
        }
        for e in &plan.expired {
            out.push_str(&format!("  expired, so revoked: {}\n", exception_line(e)));
        }
    }
    out.push_str(&impact_section(plan));
    for u in &plan.unproven {
        out.push_str(&format!(
            "\n  ! revokes {}'s read of {} ({}), which projection {}.{} replaces, with no clean compare of it: run `deed compare {}.{}`, then `deed cutover {}.{}`\n",
            u.service, u.view, u.read, u.service, u.projection, u.service, u.projection, u.service, u.projection
        ));
    }
    out.push_str(&verdict(plan));
    if !show_sql {
        out.push_str(&format!(
            "\n({} SQL statements, shown by deed plan, run by deed apply in one transaction)\n",
            plan.statements().len()
        ));
    } else if !plan.statements().is_empty() {
        out.push_str("\nSQL (deed apply runs it in one transaction):\n");
        for line in plan.script().lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

pub fn plan_json(plan: &Plan) -> String {
    to_json(&json!({
        "format_version": JSON_FORMAT_VERSION,
        "command": "plan",
        "changes": plan.changes,
        "blockers": plan.blockers().count(),
        "sql": if plan.statements().is_empty() { serde_json::Value::Null } else { plan.script().into() },
        "impact": plan.impact,
        "breaking": plan.is_breaking(),
        "unproven_cutovers": plan.unproven,
        "kept": plan.kept,
        "exceptions": plan.exceptions,
        "expired": plan.expired,
    }))
}

pub fn plan_markdown(plan: &Plan, manifest: &Manifest) -> String {
    let mut out = String::from("### deed plan\n\n");
    if plan.is_empty() {
        out.push_str("✅ Nothing to do: the database matches the manifest.\n");
        return out;
    }
    if plan.is_breaking() {
        out.push_str("❌ **This plan breaks consumers** (observed traffic, a consumed event's contract, or a cutover no compare proves).\n\n");
    }
    out.push_str("| | change |\n|---|---|\n");
    for c in &plan.changes {
        out.push_str(&format!("| {} | {} |\n", sign(c), deed_text::escape_markdown(&c.summary)));
        for b in breaks_of(c, plan, manifest) {
            out.push_str(&format!(
                "| | ⚠️ breaks {} ({}) |\n",
                b.service,
                deed_text::plural(b.calls, "call", "calls")
            ));
        }
    }
    if !plan.statements().is_empty() {
        out.push_str(&format!(
            "\n<details><summary>SQL</summary>\n\n```sql\n{}```\n\n</details>\n",
            plan.script()
        ));
    }
    out
}

/// The impact preview: observed statements the plan would break.
fn impact_section(plan: &Plan) -> String {
    let mut out = String::new();
    if let Some(impact) = &plan.impact {
        let by = impact.by_service();
        out.push_str(&format!("\nImpact on observed traffic ({})\n", impact.sources.join(", ")));
        if by.is_empty() {
            out.push_str("  nothing observed would break\n");
        }
        for (service, (calls, breaks)) in by {
            out.push_str(&format!("  {service} would break ({calls} calls):\n"));
            for b in breaks {
                for q in b.queries.iter().take(3) {
                    out.push_str(&format!(
                        "    needs {} on {}: {} ({})\n",
                        b.privilege,
                        b.relation,
                        one_line(&q.example, 60),
                        deed_text::plural(q.calls, "call", "calls")
                    ));
                }
            }
        }
    }
    out
}

/// What stops an apply, if anything.
fn verdict(plan: &Plan) -> String {
    let mut out = String::new();
    let blockers = plan.blockers().count();
    if blockers > 0 {
        out.push_str(&format!("\n{blockers} blocking problem{} must be fixed first; deed apply changes nothing until then.\n", if blockers == 1 { "" } else { "s" }));
    }
    if plan.is_breaking() {
        out.push_str("\nThis plan breaks consumers (observed traffic, a consumed event's contract, or a cutover no compare proves): deed apply refuses it unless given --allow-breaking.\n");
    }
    out
}

/// The plan in a few lines, for narration: how many changes of each kind,
/// the impact preview, and what stops an apply.
pub fn plan_summary(plan: &Plan) -> String {
    let mut out = String::new();
    let mut counts: Vec<(Phase, usize)> = Vec::new();
    for c in &plan.changes {
        match counts.last_mut() {
            Some((p, n)) if *p == c.phase => *n += 1,
            _ => counts.push((c.phase, 1)),
        }
    }
    let total: usize = counts
        .iter()
        .filter(|(p, _)| !matches!(p, Phase::Blocker | Phase::Warning))
        .map(|(_, n)| n)
        .sum();
    out.push_str(&format!(
        "deed plan: {} to make the database match the manifest\n",
        deed_text::plural(total as u64, "change", "changes")
    ));
    for (phase, n) in counts {
        out.push_str(&format!("  {:<52} {n}\n", phase.title()));
    }
    out.push_str(&impact_section(plan));
    out.push_str(&verdict(plan));
    out
}
