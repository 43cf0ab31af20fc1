use std::collections::BTreeMap;

use super::AuditReport;
use super::matrix::Matrix;
use super::text::{one_line, plural, thousands, wrap};
use crate::rules::Rule;

const WIDTH: usize = 100;

pub(crate) fn render(r: &AuditReport<'_>) -> String {
    let c = r.catalogue;
    let m = Matrix::build(r);
    let mut out = String::new();
    out.push_str(&header(r, &m));
    out.push('\n');
    if m.rows.is_empty() {
        out.push_str("\nNo statement touched a user relation.\n");
    } else {
        out.push('\n');
        out.push_str(&matrix(&m));
        out.push_str("\nR read · W write · * SELECT * · ! breaks a rule · numbers are calls\n");
    }
    out.push('\n');
    out.push_str(&findings(r));
    if !r.excepted.is_empty() {
        out.push_str(&format!("\nExcused by transitional exceptions ({})\n", r.excepted.len()));
        for x in r.excepted {
            let e = &x.exception;
            let until = e.expires.map(|d| format!(" until {d}")).unwrap_or_default();
            out.push_str(&format!(
                "  {} {} → {}{until}: {} ({})\n",
                x.finding.rule, x.finding.service, x.finding.relation, e.reason, e.location
            ));
        }
    }
    let warnings: Vec<&String> = c.sources.iter().flat_map(|s| s.warnings.iter()).collect();
    if !warnings.is_empty() {
        out.push_str(&format!("\nWarnings ({}: skipped, the rest audited)\n", warnings.len()));
        for w in warnings.iter().take(20) {
            out.push_str(&format!("  {w}\n"));
        }
        if warnings.len() > 20 {
            out.push_str(&format!(
                "  and {} more (--format json lists all)\n",
                warnings.len() - 20
            ));
        }
    }
    let mut notes: Vec<String> = c.sources.iter().flat_map(|s| s.notes.iter().cloned()).collect();
    if !c.unparsed.is_empty() {
        let calls: u64 = c.unparsed.iter().map(|u| u.calls).sum();
        notes.push(format!(
            "{} ({}) did not parse and {} not in the catalogue, e.g. {}: {}",
            plural(c.unparsed.len(), "statement", "statements"),
            plural(calls as usize, "call", "calls"),
            if c.unparsed.len() == 1 { "is" } else { "are" },
            one_line(&c.unparsed[0].example, 40),
            c.unparsed[0].error
        ));
    }
    for o in c.opaque.iter().take(5) {
        notes.push(format!(
            "{} ran code deed cannot see into ({}): {}",
            o.service,
            o.reason,
            one_line(&o.example, 80)
        ));
    }
    notes.extend(admin_notes(c));
    if r.manifest.is_none() {
        notes.push("no manifest: every relation is unowned; propose one with `deed init`".into());
    }
    if !notes.is_empty() {
        out.push_str("\nNotes\n");
        for n in notes {
            let lines = wrap(&n, WIDTH - 4);
            for (i, l) in lines.iter().enumerate() {
                out.push_str(if i == 0 { "  - " } else { "    " });
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

fn header(r: &AuditReport<'_>, m: &Matrix) -> String {
    let c = r.catalogue;
    let sources: Vec<String> =
        c.sources.iter().map(|s| format!("{} {}", s.kind, s.detail)).collect();
    let admins = if c.admin_calls > 0 {
        format!(" ({} by administrators)", c.admin_calls)
    } else {
        String::new()
    };
    format!(
        "deed audit: {} of {} from {}{admins}\n{}, {}, {}",
        plural(c.calls as usize, "call", "calls"),
        plural(c.distinct_statements, "distinct statement", "distinct statements"),
        if sources.is_empty() { "no source".to_string() } else { sources.join(", ") },
        plural(m.services.len(), "service", "services"),
        plural(m.rows.len(), "relation", "relations"),
        plural(r.findings.len(), "finding", "findings"),
    )
}

fn matrix(m: &Matrix) -> String {
    let mut grid: Vec<Vec<String>> = Vec::new();
    let mut head = vec!["relation".to_string()];
    head.extend(m.services.iter().cloned());
    grid.push(head);
    let mut group: Option<Option<String>> = None;
    let mut group_rows = Vec::new();
    for row in &m.rows {
        if group.as_ref() != Some(&row.owner) {
            group = Some(row.owner.clone());
            group_rows.push(grid.len());
            let title = match &row.owner {
                Some(o) => format!("owned by {o}"),
                None => "no owner".to_string(),
            };
            let mut line = vec![title];
            line.extend(m.services.iter().map(|_| String::new()));
            grid.push(line);
        }
        let mut line = vec![format!("  {}", row.relation)];
        for cell in &row.cells {
            line.push(if cell.is_empty() {
                "·".to_string()
            } else {
                let mark = if cell.rules.is_empty() { "" } else { " !" };
                format!("{} {}{mark}", cell.code(), thousands(cell.calls))
            });
        }
        grid.push(line);
    }
    let widths: Vec<usize> = (0..grid[0].len())
        .map(|i| grid.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, line) in grid.iter().enumerate() {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i == 0 || group_rows.contains(&n) {
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            } else {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            }
            text.push_str("   ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

fn findings(r: &AuditReport<'_>) -> String {
    if r.findings.is_empty() {
        return "No findings: every access stays inside its owner or goes through a declared contract.\n".into();
    }
    let mut by_rule: BTreeMap<Rule, usize> = BTreeMap::new();
    for f in r.findings {
        *by_rule.entry(f.rule).or_default() += 1;
    }
    let counts: Vec<String> = by_rule.iter().map(|(rule, n)| format!("{rule} {n}")).collect();
    let mut out = format!("Findings ({}): {}\n", r.findings.len(), counts.join(", "));
    let mut current = None;
    for f in r.findings {
        if current != Some(f.rule) {
            current = Some(f.rule);
            out.push_str(&format!("\n{}\n", f.rule));
        }
        out.push_str(&format!("  {} → {}\n", f.service, f.relation));
        for line in wrap(&f.message, WIDTH - 4) {
            out.push_str(&format!("    {line}\n"));
        }
        if let Some(e) = &f.example {
            out.push_str(&format!("    e.g. {}\n", one_line(e, WIDTH - 9)));
        }
    }
    out
}

/// One line per administrator: what it did, which is no service's access.
pub(crate) fn admin_notes(c: &crate::Catalogue) -> Vec<String> {
    let mut by: std::collections::BTreeMap<&str, (u64, std::collections::BTreeSet<String>)> =
        Default::default();
    for a in c.accesses.iter().filter(|a| crate::attribution::is_admin(&a.service)) {
        let e = by.entry(a.service.as_str()).or_default();
        e.0 += a.calls;
        e.1.insert(a.relation.to_string());
    }
    by.into_iter()
        .map(|(admin, (calls, relations))| {
            format!(
                "{admin} (an administrator: setup, migrations, deed itself) made {} on {}; not findings",
                plural(calls as usize, "call", "calls"),
                plural(relations.len(), "relation", "relations")
            )
        })
        .collect()
}
