//! `deed status --format html`: one self-contained page that draws the
//! ladder, a row per flow with its rungs climbed, and what comes next.

use crate::flow::Status;

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const RUNGS: [&str; 5] = ["0 shared", "1 contract", "2 events", "3 proven", "4 split"];

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:.4em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.r{width:5.5em;text-align:center;color:#999;border-left:1px solid #eee}.on{background:#2e7d32;color:#fff}
.stalled{color:#b71c1c;font-weight:600}.next{max-width:40em}";

pub fn html(s: &Status) -> String {
    let mut out = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>deed status</title><style>{STYLE}</style></head><body>\n<h1>deed status</h1>\n<p>{}</p>\n<table>\n<tr><th>consumer ← owner: what</th>",
        esc(&deed_text::plural(s.flows.len() as u64, "flow", "flows"))
    );
    for r in RUNGS {
        out.push_str(&format!("<th class=\"r\">{r}</th>"));
    }
    out.push_str("<th>next</th></tr>\n");
    for f in &s.flows {
        out.push_str(&format!(
            "<tr><td>{} ← {}: {}</td>",
            esc(&f.consumer),
            esc(&f.owner),
            esc(&f.subject)
        ));
        for n in 0..RUNGS.len() as u8 {
            let on = n <= f.rung.number();
            let mark = if n == f.rung.number() { esc(f.rung_name) } else { String::new() };
            out.push_str(&format!("<td class=\"r{}\">{mark}</td>", if on { " on" } else { "" }));
        }
        out.push_str(&format!("<td class=\"next\">{}", esc(&f.next)));
        for why in &f.stalled {
            out.push_str(&format!("<div class=\"stalled\">stalled: {}</div>", esc(why)));
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</table>\n");
    if !s.capture.is_empty() || !s.projections.is_empty() {
        out.push_str("<h2>Capture and projections</h2>\n<pre>");
        out.push_str(&esc(&(deed_relay::health::render(&s.capture)
            + &deed_project::health::render(&s.projections))));
        out.push_str("</pre>\n");
    }
    out.push_str("</body></html>\n");
    out
}
