//! `deed status` as a table or Markdown.

use deed_contracts::report::exception_line;

use crate::flow::{Flow, Status};

fn contracts(f: &Flow) -> String {
    let mut parts: Vec<String> = f.contracts.iter().map(|c| c.to_string()).collect();
    parts.extend(f.projections.iter().map(|p| format!("{} (projection)", p.event)));
    if parts.is_empty() { "-".into() } else { parts.join(", ") }
}

fn rung(f: &Flow) -> String {
    format!("{} {}", f.rung.number(), f.rung_name)
}

pub fn table(s: &Status) -> String {
    let mut out =
        format!("deed status: {}\n\n", deed_text::plural(s.flows.len() as u64, "flow", "flows"));
    let rows: Vec<[String; 4]> = s
        .flows
        .iter()
        .map(|f| {
            [
                format!("{} ← {}: {}", f.consumer, f.owner, f.subject),
                rung(f),
                contracts(f),
                f.next.clone(),
            ]
        })
        .collect();
    let head = ["flow".to_string(), "rung".into(), "reads".into(), "next".into()];
    let widths: Vec<usize> = (0..3)
        .map(|i| {
            rows.iter()
                .chain(std::iter::once(&head))
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in std::iter::once(&head).chain(rows.iter()) {
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
    for f in &s.flows {
        for p in &f.projections {
            if let Some(v) = &p.compare {
                out.push_str(&format!(
                    "  {}.{}: last compare {} ago, {}{}\n",
                    f.consumer,
                    p.name,
                    deed_text::duration(v.age_seconds),
                    if v.equal {
                        "equal".to_string()
                    } else {
                        format!(
                            "{} missing, {} extra, {} different",
                            v.missing, v.extra, v.different
                        )
                    },
                    if p.cut_over { "; cut over" } else { "" }
                ));
            }
        }
        for why in &f.stalled {
            out.push_str(&format!("  STALLED {} ← {}: {why}\n", f.consumer, f.owner));
        }
    }
    if !s.exceptions.is_empty() {
        out.push_str("\nTransitional exceptions\n");
        for e in &s.exceptions {
            let when = match (e.active, e.days_left) {
                (false, _) => "EXPIRED: ".to_string(),
                (true, Some(d)) => format!("{d} days left: "),
                (true, None) => String::new(),
            };
            out.push_str(&format!("  {when}{}\n", exception_line(&e.exception)));
        }
    }
    match &s.drift {
        None => {}
        Some(d) if d.is_empty() => {
            out.push_str("\nDrift: none; the database matches the manifest.\n")
        }
        Some(d) => {
            out.push_str(&format!(
                "\nDrift: {} (deed drift lists them):\n",
                deed_text::plural(d.len() as u64, "difference", "differences")
            ));
            for line in d.iter().take(10) {
                out.push_str(&format!("  - {line}\n"));
            }
        }
    }
    out + &deed_relay::health::render(&s.capture) + &deed_project::health::render(&s.projections)
}

pub fn markdown(s: &Status) -> String {
    let mut out =
        String::from("### deed status\n\n| flow | rung | reads | next |\n|---|---|---|---|\n");
    for f in &s.flows {
        out.push_str(&format!(
            "| {} ← {}: {} | {} | {} | {} |\n",
            f.consumer,
            f.owner,
            f.subject,
            rung(f),
            contracts(f),
            f.next.replace('|', "\\|")
        ));
    }
    for f in &s.flows {
        for why in &f.stalled {
            out.push_str(&format!("\n- **stalled** {} ← {}: {why}", f.consumer, f.owner));
        }
    }
    for e in &s.exceptions {
        out.push_str(&format!(
            "\n- {}{}",
            if e.active { "" } else { "**expired** " },
            exception_line(&e.exception)
        ));
    }
    out.push('\n');
    out + &deed_relay::health::render(&s.capture) + &deed_project::health::render(&s.projections)
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
