use std::fmt::Write;

use super::AuditReport;
use super::matrix::Matrix;
use super::svg::{self, esc, service_color};
use super::text::{one_line, plural, thousands};

const STYLE: &str = r#"
:root{--bad:#dc2626;--ok:#16a34a;--ink:#111827;--muted:#6b7280;--line:#e5e7eb}
*{box-sizing:border-box}
body{margin:0;background:#f8fafc;color:var(--ink);font:15px/1.5 system-ui,-apple-system,Segoe UI,sans-serif}
main{max-width:1040px;margin:0 auto;padding:32px 24px 64px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:18px;margin:36px 0 12px}
.sub{color:var(--muted);margin:0 0 20px}
.chips{display:flex;gap:10px;flex-wrap:wrap;margin-bottom:24px}
.chip{background:#fff;border:1px solid var(--line);border-radius:999px;padding:6px 14px;font-weight:600}
.chip.bad{background:#fef2f2;border-color:#fecaca;color:var(--bad)}
.chip.ok{background:#f0fdf4;border-color:#bbf7d0;color:var(--ok)}
.card{background:#fff;border:1px solid var(--line);border-radius:14px;padding:18px;box-shadow:0 1px 2px rgba(0,0,0,.04)}
.legend{display:flex;gap:18px;flex-wrap:wrap;color:var(--muted);font-size:13px;margin-top:10px}
.legend i{display:inline-block;width:22px;height:0;border-top:3px solid;vertical-align:middle;margin-right:6px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{padding:7px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}
td.rel{font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
td.dot{color:#cbd5e1}
td.bad{background:#fef2f2;color:var(--bad);font-weight:700}
td.contract{background:#f0fdf4;color:var(--ok)}
th .sw{display:inline-block;width:10px;height:10px;border-radius:3px;margin-right:6px}
.finding{border-left:4px solid var(--bad);margin:0 0 12px}
.rule{display:inline-block;background:#fef2f2;color:var(--bad);border-radius:6px;padding:1px 8px;font:600 12px ui-monospace,monospace;margin-right:8px}
.who{font-weight:600}
.msg{margin:6px 0 0}
pre{background:#f1f5f9;border-radius:8px;padding:8px 10px;margin:8px 0 0;white-space:pre-wrap;font-size:12.5px}
.notes li{color:var(--muted)}
footer{color:var(--muted);font-size:13px;margin-top:40px}
"#;

pub(crate) fn render(r: &AuditReport<'_>) -> String {
    let c = r.catalogue;
    let m = Matrix::build(r);
    let mut body = String::new();
    let sources: Vec<String> =
        c.sources.iter().map(|s| format!("{} {}", s.kind, s.detail)).collect();
    let _ = write!(
        body,
        "<h1>deed audit</h1><p class=\"sub\">Who reads and writes what, and which uses cross an ownership line. {} of {} from {}.</p>",
        plural(c.calls as usize, "call", "calls"),
        plural(c.distinct_statements, "distinct statement", "distinct statements"),
        esc(&sources.join(", "))
    );
    let verdict = if r.findings.is_empty() {
        "<span class=\"chip ok\">no findings</span>".to_string()
    } else {
        format!(
            "<span class=\"chip bad\">{}</span>",
            plural(r.findings.len(), "finding", "findings")
        )
    };
    let _ = write!(
        body,
        "<div class=\"chips\">{verdict}<span class=\"chip\">{}</span><span class=\"chip\">{}</span></div>",
        plural(m.services.len(), "service", "services"),
        plural(m.rows.len(), "relation", "relations"),
    );
    if !m.rows.is_empty() {
        let _ = write!(
            body,
            "<div class=\"card\">{}<div class=\"legend\"><span><i style=\"border-color:#60a5fa\"></i>reads</span>\
             <span><i style=\"border-color:#fb923c\"></i>writes</span><span><i style=\"border-color:#16a34a\"></i>reads a declared contract</span>\
             <span><i style=\"border-color:#dc2626\"></i>breaks a rule</span><span><i style=\"border-color:#6b7280;border-top-style:dashed\"></i>SELECT *</span>\
             <span>thicker = more calls; faint = a service using its own data</span></div></div>",
            svg::render(&m)
        );
        body.push_str(
            "<h2>Matrix</h2><div class=\"card\"><table><thead><tr><th>relation</th><th>owner</th>",
        );
        for s in &m.services {
            let _ = write!(
                body,
                "<th><span class=\"sw\" style=\"background:{}\"></span>{}</th>",
                service_color(&m.services, s),
                esc(s)
            );
        }
        body.push_str("</tr></thead><tbody>");
        for row in &m.rows {
            let _ = write!(
                body,
                "<tr><td class=\"rel\">{}</td><td>{}</td>",
                esc(&row.relation.to_string()),
                row.owner.as_deref().map_or("<em>none</em>".to_string(), esc)
            );
            for cell in &row.cells {
                if cell.is_empty() {
                    body.push_str("<td class=\"dot\">·</td>");
                    continue;
                }
                let class = if !cell.rules.is_empty() {
                    " class=\"bad\""
                } else if cell.contract {
                    " class=\"contract\""
                } else {
                    ""
                };
                let title: Vec<&str> = cell.rules.iter().map(|r| r.name()).collect();
                let _ = write!(
                    body,
                    "<td{class} title=\"{}\">{} {}</td>",
                    esc(&title.join(", ")),
                    esc(&cell.code()),
                    thousands(cell.calls)
                );
            }
            body.push_str("</tr>");
        }
        body.push_str("</tbody></table><div class=\"legend\">R read · W write · * SELECT * · numbers are calls</div></div>");
    }
    if !r.findings.is_empty() {
        let _ = write!(body, "<h2>Findings</h2>");
        for f in r.findings {
            let _ = write!(
                body,
                "<div class=\"card finding\"><span class=\"rule\">{}</span><span class=\"who\">{} → {}</span><p class=\"msg\">{}</p>",
                f.rule,
                esc(&f.service),
                esc(&f.relation.to_string()),
                esc(&f.message)
            );
            if let Some(e) = &f.example {
                let _ = write!(body, "<pre>{}</pre>", esc(&one_line(e, 300)));
            }
            body.push_str("</div>");
        }
    }
    if !r.excepted.is_empty() {
        body.push_str("<h2>Excused by transitional exceptions</h2><ul class=\"notes\">");
        for x in r.excepted {
            let until = x.exception.expires.map(|d| format!(" until {d}")).unwrap_or_default();
            let _ = write!(
                body,
                "<li><span class=\"rule\">{}</span>{} → {}{until}: {}</li>",
                x.finding.rule,
                esc(&x.finding.service),
                esc(&x.finding.relation.to_string()),
                esc(&x.exception.reason)
            );
        }
        body.push_str("</ul>");
    }
    let mut notes: Vec<String> = c.sources.iter().flat_map(|s| s.notes.iter().cloned()).collect();
    for u in c.unparsed.iter().take(5) {
        notes.push(format!(
            "{} ran a statement that did not parse ({}): {}",
            u.service,
            u.error,
            one_line(&u.example, 120)
        ));
    }
    for o in c.opaque.iter().take(5) {
        notes.push(format!("{} ran code deed cannot see into ({})", o.service, o.reason));
    }
    if !notes.is_empty() {
        body.push_str("<h2>Notes</h2><ul class=\"notes\">");
        for n in notes {
            let _ = write!(body, "<li>{}</li>", esc(&n));
        }
        body.push_str("</ul>");
    }
    body.push_str("<footer>Generated by deed audit. Rules: foreign-write, foreign-read, select-star, unowned, multiple-writers.</footer>");
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>deed audit</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>\n"
    )
}
