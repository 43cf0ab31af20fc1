use serde_json::json;

use super::{JSON_FORMAT_VERSION, exception_line, to_json};
use crate::status::Status;

fn contracts(f: &crate::status::Flow) -> String {
    if f.contracts.is_empty() {
        "-".into()
    } else {
        f.contracts.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
    }
}

pub fn status_table(s: &Status) -> String {
    let mut out = format!(
        "deed status: {} flow{}\n\n",
        s.flows.len(),
        if s.flows.len() == 1 { "" } else { "s" }
    );
    let rows: Vec<[String; 4]> = s
        .flows
        .iter()
        .map(|f| {
            [
                format!("{} ← {}", f.consumer, f.owner),
                format!("{} {}", f.rung, f.rung_name),
                contracts(f),
                f.next.clone(),
            ]
        })
        .collect();
    let head = ["flow".to_string(), "rung".into(), "contracts".into(), "next".into()];
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
                "\nDrift: {} difference{} (deed drift lists them):\n",
                d.len(),
                if d.len() == 1 { "" } else { "s" }
            ));
            for line in d.iter().take(10) {
                out.push_str(&format!("  - {line}\n"));
            }
        }
    }
    out
}

pub fn status_json(s: &Status) -> String {
    to_json(
        &json!({"format_version": JSON_FORMAT_VERSION, "command": "status", "flows": s.flows, "exceptions": s.exceptions, "drift": s.drift}),
    )
}

pub fn status_markdown(s: &Status) -> String {
    let mut out =
        String::from("### deed status\n\n| flow | rung | contracts | next |\n|---|---|---|---|\n");
    for f in &s.flows {
        out.push_str(&format!(
            "| {} ← {} | {} {} | {} | {} |\n",
            f.consumer,
            f.owner,
            f.rung,
            f.rung_name,
            contracts(f),
            f.next
        ));
    }
    for e in &s.exceptions {
        out.push_str(&format!(
            "\n- {}{}",
            if e.active { "" } else { "**expired** " },
            exception_line(&e.exception)
        ));
    }
    out.push('\n');
    out
}
