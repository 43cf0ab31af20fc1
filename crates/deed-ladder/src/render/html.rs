//! `deed status --format html`: one self-contained page that draws the
//! ladder (a row per flow with its rungs climbed, what it reads, what
//! comes next), then the same facts as the table: compares, what is
//! stalled, exceptions, drift, capture and projections.

use deed_text::{escape_html as esc, html_with_code as text};

use super::facts::{Facts, Health, facts};
use crate::flow::Status;

const RUNGS: [&str; 5] = ["0 shared", "1 contract", "2 events", "3 proven", "4 split"];

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:.4em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.r{width:5.5em;text-align:center;color:#999;border-left:1px solid #eee}.on{background:#2e7d32;color:#fff}
.stalled,.problem{color:#b71c1c;font-weight:600}.warning{color:#8a6d00}.next{max-width:40em}
code{background:#f3f3f3;padding:0 .2em;border-radius:3px}ul{padding-left:1.4em}li{margin:.2em 0}";

pub fn html(s: &Status) -> String {
    let f = facts(s);
    let mut out = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>deed status</title><style>{STYLE}</style></head><body>\n<h1>deed status</h1>\n<p>{}</p>\n",
        esc(&f.heading)
    );
    flows(&mut out, s, &f);
    list(&mut out, "Compares", f.compares.iter().map(|c| ("", text(c))));
    list(
        &mut out,
        "Stalled",
        f.stalled.iter().map(|w| ("stalled", format!("stalled: {}", text(w)))),
    );
    list(
        &mut out,
        "Transitional exceptions",
        f.exceptions.iter().map(|(expired, e)| (if *expired { "problem" } else { "" }, text(e))),
    );
    if let Some(d) = &f.drift {
        out.push_str(&format!("<h2>Drift</h2>\n<p>{}</p>\n", text(&d.summary())));
        if !d.shown.is_empty() {
            out.push_str("<ul>\n");
            for line in &d.shown {
                out.push_str(&format!("<li>{}</li>\n", text(line)));
            }
            out.push_str("</ul>\n");
        }
    }
    health(&mut out, "Capture (rung 2)", &f.capture);
    health(&mut out, "Projections (rung 2)", &f.projections);
    out.push_str("</body></html>\n");
    out
}

fn flows(out: &mut String, s: &Status, f: &Facts) {
    out.push_str("<table>\n<tr><th>consumer ← owner: what</th>");
    for r in RUNGS {
        out.push_str(&format!("<th class=\"r\">{r}</th>"));
    }
    out.push_str("<th>reads</th><th>next</th></tr>\n");
    for (flow, row) in s.flows.iter().zip(&f.flows) {
        out.push_str(&format!("<tr><td>{}</td>", esc(&row[0])));
        for n in 0..RUNGS.len() as u8 {
            let on = n <= flow.rung.number();
            let mark = if n == flow.rung.number() { esc(flow.rung_name) } else { String::new() };
            out.push_str(&format!("<td class=\"r{}\">{mark}</td>", if on { " on" } else { "" }));
        }
        out.push_str(&format!("<td>{}</td><td class=\"next\">{}", esc(&row[2]), text(&row[3])));
        for why in &flow.stalled {
            out.push_str(&format!("<div class=\"stalled\">stalled: {}</div>", text(why)));
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</table>\n");
}

/// A titled list of already-escaped items, each with an optional class.
fn list<'a>(out: &mut String, title: &str, items: impl Iterator<Item = (&'a str, String)>) {
    let items: Vec<(&str, String)> = items.collect();
    if items.is_empty() {
        return;
    }
    out.push_str(&format!("<h2>{}</h2>\n<ul>\n", esc(title)));
    for (class, item) in items {
        if class.is_empty() {
            out.push_str(&format!("<li>{item}</li>\n"));
        } else {
            out.push_str(&format!("<li class=\"{class}\">{item}</li>\n"));
        }
    }
    out.push_str("</ul>\n");
}

fn health(out: &mut String, title: &str, items: &[Health]) {
    if items.is_empty() {
        return;
    }
    out.push_str(&format!("<h2>{}</h2>\n<ul>\n", esc(title)));
    for h in items {
        out.push_str(&format!("<li>{}", text(&h.line)));
        if !h.problems.is_empty() || !h.warnings.is_empty() {
            out.push_str("<ul>");
            for p in &h.problems {
                out.push_str(&format!("<li class=\"problem\">PROBLEM: {}</li>", text(p)));
            }
            for w in &h.warnings {
                out.push_str(&format!("<li class=\"warning\">warning: {}</li>", text(w)));
            }
            out.push_str("</ul>");
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ul>\n");
}
