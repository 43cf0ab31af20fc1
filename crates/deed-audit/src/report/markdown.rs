use super::AuditReport;
use super::matrix::Matrix;
use super::text::{one_line, plural, thousands};

/// Markdown for a pull-request comment: a summary line, the matrix, and
/// the findings in a collapsible list.
pub(crate) fn render(r: &AuditReport<'_>) -> String {
    let c = r.catalogue;
    let m = Matrix::build(r);
    let mut out = String::from("### deed audit\n\n");
    let verdict = if r.findings.is_empty() {
        "✅ **no findings**".to_string()
    } else {
        format!("❌ **{}**", plural(r.findings.len(), "finding", "findings"))
    };
    let sources: Vec<String> =
        c.sources.iter().map(|s| format!("{} `{}`", s.kind, escape(&s.detail))).collect();
    out.push_str(&format!(
        "{verdict} · {} · {} · {} from {}\n\n",
        plural(m.services.len(), "service", "services"),
        plural(m.rows.len(), "relation", "relations"),
        plural(c.calls as usize, "call", "calls"),
        sources.join(", ")
    ));
    if !m.rows.is_empty() {
        out.push_str("| relation | owner |");
        for s in &m.services {
            out.push_str(&format!(" {} |", escape(s)));
        }
        out.push_str("\n|---|---|");
        out.push_str(&"---:|".repeat(m.services.len()));
        out.push('\n');
        for row in &m.rows {
            out.push_str(&format!(
                "| `{}` | {} |",
                escape(&row.relation.to_string()),
                row.owner.as_deref().map_or("*none*".to_string(), escape)
            ));
            for cell in &row.cells {
                if cell.is_empty() {
                    out.push_str(" · |");
                } else {
                    let text =
                        format!("{} {}", cell.code().replace('*', "\\*"), thousands(cell.calls));
                    if cell.rules.is_empty() {
                        out.push_str(&format!(" {text} |"));
                    } else {
                        out.push_str(&format!(" **{text}** ⚠️ |"));
                    }
                }
            }
            out.push('\n');
        }
        out.push_str(
            "\nR read · W write · \\* SELECT \\* · ⚠️ breaks a rule · numbers are calls\n",
        );
    }
    if !r.findings.is_empty() {
        out.push_str(&format!(
            "\n<details open><summary>{}</summary>\n\n",
            plural(r.findings.len(), "finding", "findings")
        ));
        for f in r.findings {
            out.push_str(&format!(
                "- **{}** `{}` → `{}`: {}\n",
                f.rule,
                escape(&f.service),
                escape(&f.relation.to_string()),
                escape(&f.message)
            ));
            if let Some(e) = &f.example {
                out.push_str(&format!("  <br>e.g. `{}`\n", one_line(e, 160).replace('`', "'")));
            }
        }
        out.push_str("\n</details>\n");
    }
    if !r.excepted.is_empty() {
        out.push_str(&format!(
            "\n**Excused by transitional exceptions ({}):**\n\n",
            r.excepted.len()
        ));
        for x in r.excepted {
            let until = x.exception.expires.map(|d| format!(" until {d}")).unwrap_or_default();
            out.push_str(&format!(
                "- {} `{}` → `{}`{until}: {}\n",
                x.finding.rule,
                escape(&x.finding.service),
                escape(&x.finding.relation.to_string()),
                escape(&x.exception.reason)
            ));
        }
    }
    let warnings: Vec<&String> =
        r.catalogue.sources.iter().flat_map(|s| s.warnings.iter()).collect();
    if !warnings.is_empty() {
        out.push_str(&format!("\n**Skipped ({}), the rest audited:**\n\n", warnings.len()));
        for w in warnings.iter().take(20) {
            out.push_str(&format!("- {}\n", escape(w)));
        }
    }
    out
}

/// Escapes what would break a table cell or start markup.
fn escape(s: &str) -> String {
    deed_text::escape_markdown(s)
}
