//! `deed check` output: for people, as JSON, and as GitHub annotations.

use serde_json::json;

use crate::consumer::ConsumerOutcome;
use crate::run::CheckOutcome;

pub const JSON_FORMAT_VERSION: u32 = 1;

fn one_line(sql: &str, max: usize) -> String {
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

pub fn table(o: &CheckOutcome) -> String {
    let mut out = format!(
        "deed check: {}, {}, {} ({} read by a service)\n",
        deed_text::plural(o.files as u64, "migration file", "migration files"),
        deed_text::plural(o.statements as u64, "statement", "statements"),
        deed_text::plural(o.contracts as u64, "contract version", "contract versions"),
        o.read_contracts
    );
    for f in &o.findings {
        out.push_str(&format!("\n{}: breaking: {}\n", f.location(), f.message));
        out.push_str(&format!("    {}\n", one_line(&f.statement, 100)));
        out.push_str(&format!("    safe route: {}\n", f.safe_route));
    }
    for n in &o.notes {
        out.push_str(&format!("\nnote: {n}\n"));
    }
    out.push('\n');
    match o.findings.len() {
        0 => out.push_str("Safe: no contract version a service reads changes.\n"),
        n => out.push_str(&format!(
            "{n} breaking change{}: the migrations would break published contracts.\n",
            if n == 1 { "" } else { "s" }
        )),
    }
    out
}

pub fn json(o: &CheckOutcome) -> String {
    let mut s = serde_json::to_string_pretty(&json!({
        "format_version": JSON_FORMAT_VERSION,
        "command": "check",
        "breaking": o.findings,
        "notes": o.notes,
        "files": o.files,
        "statements": o.statements,
        "contracts": o.contracts,
        "read_contracts": o.read_contracts,
    }))
    .expect("serialisable");
    s.push('\n');
    s
}

/// Escapes a value for a workflow command, as GitHub documents it.
fn gh(s: &str, property: bool) -> String {
    let s = s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    if property { s.replace(':', "%3A").replace(',', "%2C") } else { s }
}

/// `::error file=…,line=…,col=…::message` lines, one per breaking change.
pub fn github(o: &CheckOutcome) -> String {
    let mut out = String::new();
    for f in &o.findings {
        out.push_str(&format!(
            "::error file={},line={},col={},title={}::{}\n",
            gh(&f.file, true),
            f.line,
            f.column,
            gh(&format!("deed check: breaks {}", f.contract), true),
            gh(&format!("{} Safe route: {}", f.message, f.safe_route), false)
        ));
    }
    out
}

pub fn consumer_table(o: &ConsumerOutcome) -> String {
    let mut out = format!(
        "deed check --consumer {}: {} in {}\n",
        o.consumer,
        deed_text::plural(o.statements as u64, "statement", "statements"),
        deed_text::plural(o.files as u64, "file", "files")
    );
    for v in &o.violations {
        out.push_str(&format!(
            "\n{}: {}\n    {}\n",
            v.location,
            v.message,
            one_line(&v.statement, 100)
        ));
    }
    for n in &o.notes {
        out.push_str(&format!("\nnote: {n}\n"));
    }
    out.push('\n');
    if o.violations.is_empty() {
        out.push_str(&format!(
            "Every relation and column {} uses is its own or inside a contract it reads.\n",
            o.consumer
        ));
    } else {
        out.push_str(&format!(
            "{} statement{} reach outside the contracts {} reads.\n",
            o.violations.len(),
            if o.violations.len() == 1 { "" } else { "s" },
            o.consumer
        ));
    }
    out
}

pub fn consumer_json(o: &ConsumerOutcome) -> String {
    let mut s = serde_json::to_string_pretty(&json!({
        "format_version": JSON_FORMAT_VERSION,
        "command": "check --consumer",
        "consumer": o.consumer,
        "violations": o.violations,
        "notes": o.notes,
        "files": o.files,
        "statements": o.statements,
    }))
    .expect("serialisable");
    s.push('\n');
    s
}

pub fn consumer_github(o: &ConsumerOutcome) -> String {
    o.violations
        .iter()
        .map(|v| {
            format!(
                "::error file={},line={},col={},title=deed check: outside {}'s contracts::{}\n",
                gh(&v.file, true),
                v.line,
                v.column,
                gh(&o.consumer, true),
                gh(&v.message, false)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use deed_ident::QualifiedName;
    use deed_manifest::ContractRef;

    use super::*;
    use crate::finding::{BreakKind, Finding};

    fn outcome(findings: Vec<Finding>) -> CheckOutcome {
        CheckOutcome {
            findings,
            notes: vec!["catalog.products.v1 changes, but no service reads it".into()],
            files: 2,
            statements: 1234,
            contracts: 3,
            read_contracts: 1,
        }
    }

    fn finding() -> Finding {
        Finding {
            kind: BreakKind::ColumnsChanged,
            file: "migrations/0042_price, in cents.sql".into(),
            line: 3,
            column: 1,
            statement: "ALTER TABLE products\n  DROP COLUMN price CASCADE".into(),
            contract: ContractRef::parse("catalog.products.v2").unwrap(),
            view: QualifiedName::parse_sql("catalog_api.products_v2").unwrap(),
            consumers: vec!["orders".into()],
            message:
                "changes the columns of catalog_api.products_v2: removes price (100% of readers)"
                    .into(),
            safe_route: "publish catalog.products.v3 with the new shape, move orders to it".into(),
        }
    }

    #[test]
    fn every_format_of_a_breaking_and_a_safe_check() {
        for (name, o) in [("breaking", outcome(vec![finding()])), ("safe", outcome(Vec::new()))] {
            insta::assert_snapshot!(format!("{name}_table"), table(&o));
            insta::assert_snapshot!(format!("{name}_json"), json(&o));
            insta::assert_snapshot!(format!("{name}_github"), github(&o));
        }
    }
}
