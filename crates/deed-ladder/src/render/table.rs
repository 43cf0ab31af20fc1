//! `deed status` as a table, as Markdown, or as JSON.

use super::facts::{Facts, Health, facts};
use crate::flow::Status;

pub fn table(s: &Status) -> String {
    let f = facts(s);
    let mut out = format!("deed status: {}\n\n", f.heading);
    let head = ["flow".to_string(), "rung".into(), "reads".into(), "next".into()];
    let widths: Vec<usize> = (0..3)
        .map(|i| {
            f.flows
                .iter()
                .chain(std::iter::once(&head))
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in std::iter::once(&head).chain(f.flows.iter()) {
        out.push_str(&format!(
            "  {:<w0$}   {:<w1$}   {:<w2$}   {}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        ));
    }
    for c in &f.compares {
        out.push_str(&format!("  {c}\n"));
    }
    for why in &f.stalled {
        out.push_str(&format!("  STALLED {why}\n"));
    }
    if !f.exceptions.is_empty() {
        out.push_str("\nTransitional exceptions\n");
        for (_, e) in &f.exceptions {
            out.push_str(&format!("  {e}\n"));
        }
    }
    if let Some(d) = &f.drift {
        out.push_str(&format!("\nDrift: {}\n", d.summary()));
        for line in &d.shown {
            out.push_str(&format!("  - {line}\n"));
        }
    }
    text_health(&mut out, "Capture (rung 2)", &f.capture);
    text_health(&mut out, "Projections (rung 2)", &f.projections);
    out
}

fn text_health(out: &mut String, title: &str, items: &[Health]) {
    if items.is_empty() {
        return;
    }
    out.push_str(&format!("\n{title}\n"));
    for h in items {
        out.push_str(&format!("  {}\n", h.line));
        for p in &h.problems {
            out.push_str(&format!("    PROBLEM: {p}\n"));
        }
        for w in &h.warnings {
            out.push_str(&format!("    warning: {w}\n"));
        }
    }
}

/// Markdown for a pull request or a wiki: a table cell holds no `|`, no
/// tag and no line break of its own.
fn cell(text: &str) -> String {
    deed_text::escape_markdown(text)
}

pub fn markdown(s: &Status) -> String {
    let f: Facts = facts(s);
    let mut out = format!(
        "### deed status\n\n{}\n\n| flow | rung | reads | next |\n|---|---|---|---|\n",
        f.heading
    );
    for r in &f.flows {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cell(&r[0]),
            cell(&r[1]),
            cell(&r[2]),
            cell(&r[3])
        ));
    }
    let list = |out: &mut String, title: &str, items: Vec<String>| {
        if !items.is_empty() {
            out.push_str(&format!("\n#### {title}\n\n"));
            for i in items {
                out.push_str(&format!("- {}\n", cell(&i)));
            }
        }
    };
    list(&mut out, "Compares", f.compares.clone());
    list(&mut out, "Stalled", f.stalled.iter().map(|w| format!("**stalled** {w}")).collect());
    list(
        &mut out,
        "Transitional exceptions",
        f.exceptions
            .iter()
            .map(|(expired, e)| if *expired { format!("**{e}**") } else { e.clone() })
            .collect(),
    );
    if let Some(d) = &f.drift {
        out.push_str(&format!("\n#### Drift\n\n{}\n", d.summary()));
        if !d.shown.is_empty() {
            out.push('\n');
        }
        for line in &d.shown {
            out.push_str(&format!("- {}\n", cell(line)));
        }
    }
    for (title, items) in
        [("Capture (rung 2)", &f.capture), ("Projections (rung 2)", &f.projections)]
    {
        let lines = items
            .iter()
            .flat_map(|h| {
                std::iter::once(h.line.clone())
                    .chain(h.problems.iter().map(|p| format!("**PROBLEM** {p}")))
                    .chain(h.warnings.iter().map(|w| format!("warning: {w}")))
            })
            .collect();
        list(&mut out, title, lines);
    }
    out
}

pub fn json(s: &Status) -> String {
    deed_contracts::report::to_json(&serde_json::json!({
        "format_version": deed_contracts::report::JSON_FORMAT_VERSION,
        "command": "status",
        "flows": s.flows,
        "exceptions": s.exceptions,
        "drift": s.drift,
        "capture": s.capture,
        "projections": s.projections,
    }))
}
