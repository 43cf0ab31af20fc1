//! The service → relation graph: services on the left, relations on the
//! right grouped in their owner's box, one curve per use. Uses that break
//! a rule are red and thick enough to find at a glance; a service's use of
//! its own relations is drawn faintly, because it is fine.

use std::fmt::Write;

use super::matrix::{Cell, Matrix};
use crate::attribution::is_unknown;

const PALETTE: [&str; 8] =
    ["#2563eb", "#7c3aed", "#0891b2", "#c026d3", "#65a30d", "#d97706", "#db2777", "#0d9488"];
const UNKNOWN: &str = "#6b7280";
const READ: &str = "#60a5fa";
const WRITE: &str = "#fb923c";
const BAD: &str = "#dc2626";
const CONTRACT: &str = "#16a34a";

const SERVICE_X: f64 = 24.0;
const SERVICE_W: f64 = 210.0;
const SERVICE_H: f64 = 40.0;
const SERVICE_GAP: f64 = 18.0;
const GROUP_X: f64 = 560.0;
const GROUP_W: f64 = 380.0;
const GROUP_HEAD: f64 = 30.0;
const ROW_H: f64 = 26.0;
const GROUP_GAP: f64 = 18.0;
const WIDTH: f64 = 964.0;

/// The colour of a service, shared by the graph and the rest of the page.
pub(crate) fn service_color(services: &[String], service: &str) -> &'static str {
    if is_unknown(service) {
        return UNKNOWN;
    }
    let known: Vec<&String> = services.iter().filter(|s| !is_unknown(s)).collect();
    known.iter().position(|s| *s == service).map_or(UNKNOWN, |i| PALETTE[i % PALETTE.len()])
}

pub(crate) fn esc(s: &str) -> String {
    deed_text::escape_html(s)
}

pub(crate) fn render(m: &Matrix) -> String {
    // Lay out the right column: owner groups with their relation rows.
    let mut groups: Vec<(Option<String>, Vec<usize>)> = Vec::new();
    for (i, row) in m.rows.iter().enumerate() {
        match groups.last_mut() {
            Some((owner, rows)) if *owner == row.owner => rows.push(i),
            _ => groups.push((row.owner.clone(), vec![i])),
        }
    }
    let right_h: f64 =
        groups.iter().map(|(_, r)| GROUP_HEAD + r.len() as f64 * ROW_H + 8.0).sum::<f64>()
            + GROUP_GAP * groups.len().saturating_sub(1) as f64;
    let left_h = m.services.len() as f64 * (SERVICE_H + SERVICE_GAP) - SERVICE_GAP;
    let height = right_h.max(left_h) + 48.0;
    let left_top = 24.0 + (height - 48.0 - left_h) / 2.0;
    let right_top = 24.0 + (height - 48.0 - right_h) / 2.0;

    let mut row_y = vec![0.0; m.rows.len()];
    let mut boxes = String::new();
    let mut y = right_top;
    for (owner, rows) in &groups {
        let h = GROUP_HEAD + rows.len() as f64 * ROW_H + 8.0;
        let (color, title, dash) = match owner {
            Some(o) => (service_color(&m.services, o), format!("owned by {o}"), ""),
            None => (UNKNOWN, "no owner".to_string(), " stroke-dasharray=\"5 4\""),
        };
        let _ = write!(
            boxes,
            "<rect x=\"{GROUP_X}\" y=\"{y}\" width=\"{GROUP_W}\" height=\"{h}\" rx=\"10\" fill=\"{color}\" fill-opacity=\"0.06\" stroke=\"{color}\" stroke-opacity=\"0.55\"{dash}/>\
             <text x=\"{}\" y=\"{}\" class=\"group\" fill=\"{color}\">{}</text>",
            GROUP_X + 14.0,
            y + 20.0,
            esc(&title)
        );
        for (k, &i) in rows.iter().enumerate() {
            let ry = y + GROUP_HEAD + k as f64 * ROW_H + ROW_H / 2.0;
            row_y[i] = ry;
            let bad = m.rows[i].cells.iter().any(|c| !c.rules.is_empty());
            let _ = write!(
                boxes,
                "<circle cx=\"{GROUP_X}\" cy=\"{ry}\" r=\"4\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" class=\"rel{}\">{}</text>",
                if bad { BAD } else { color },
                GROUP_X + 14.0,
                ry + 4.5,
                if bad { " bad" } else { "" },
                esc(&m.rows[i].relation.to_string())
            );
        }
        y += h + GROUP_GAP;
    }

    let mut nodes = String::new();
    let mut service_y = Vec::new();
    for (i, s) in m.services.iter().enumerate() {
        let top = left_top + i as f64 * (SERVICE_H + SERVICE_GAP);
        service_y.push(top + SERVICE_H / 2.0);
        let color = service_color(&m.services, s);
        let _ = write!(
            nodes,
            "<g><rect x=\"{SERVICE_X}\" y=\"{top}\" width=\"{SERVICE_W}\" height=\"{SERVICE_H}\" rx=\"9\" fill=\"#fff\" stroke=\"{color}\" stroke-width=\"1.5\"/>\
             <rect x=\"{SERVICE_X}\" y=\"{top}\" width=\"7\" height=\"{SERVICE_H}\" rx=\"3\" fill=\"{color}\"/>\
             <text x=\"{}\" y=\"{}\" class=\"svc\">{}</text></g>",
            SERVICE_X + 18.0,
            top + SERVICE_H / 2.0 + 5.0,
            esc(s)
        );
    }

    // Faint edges first, so rule-breaking ones are drawn on top.
    let mut edges: Vec<(u8, String)> = Vec::new();
    for (ri, row) in m.rows.iter().enumerate() {
        for (si, cell) in row.cells.iter().enumerate() {
            if cell.is_empty() {
                continue;
            }
            let own = row.owner.as_deref() == Some(m.services[si].as_str());
            let (color, opacity, layer) = edge_style(cell, own);
            let width = 1.2 + (cell.calls as f64 + 1.0).log10() * 1.1;
            let (x1, y1, x2, y2) = (SERVICE_X + SERVICE_W, service_y[si], GROUP_X - 5.0, row_y[ri]);
            let mid = (x1 + x2) / 2.0;
            let dash = if cell.star { " stroke-dasharray=\"7 4\"" } else { "" };
            let mut tip = format!(
                "{} {} {} ({})",
                m.services[si],
                match (cell.read, cell.write) {
                    (true, true) => "reads and writes",
                    (false, true) => "writes",
                    _ => "reads",
                },
                row.relation,
                deed_text::plural(cell.calls, "call", "calls")
            );
            if !cell.rules.is_empty() {
                let rules: Vec<&str> = cell.rules.iter().map(|r| r.name()).collect();
                tip.push_str(&format!(": {}", rules.join(", ")));
            }
            edges.push((
                layer,
                format!(
                    "<path d=\"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}\" fill=\"none\" stroke=\"{color}\" stroke-opacity=\"{opacity}\" stroke-width=\"{width:.1}\" stroke-linecap=\"round\"{dash}><title>{}</title></path>",
                    esc(&tip)
                ),
            ));
        }
    }
    edges.sort_by_key(|(layer, _)| *layer);
    let edges: String = edges.into_iter().map(|(_, e)| e).collect();

    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" role=\"img\" aria-label=\"service to relation graph\">\
         <style>.svc{{font:600 14px system-ui,sans-serif;fill:#111827}}.group{{font:600 12px system-ui,sans-serif;letter-spacing:.04em;text-transform:uppercase}}\
         .rel{{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;fill:#1f2937}}.rel.bad{{fill:{BAD};font-weight:600}}</style>\
         {boxes}{edges}{nodes}</svg>"
    )
}

fn edge_style(cell: &Cell, own: bool) -> (&'static str, f64, u8) {
    if !cell.rules.is_empty() {
        (BAD, 0.85, 3)
    } else if cell.contract {
        (CONTRACT, 0.8, 2)
    } else if own {
        (if cell.write { WRITE } else { READ }, 0.35, 0)
    } else {
        (if cell.write { WRITE } else { READ }, 0.75, 1)
    }
}
