//! Hand-labelled statements, each checked against what PostgreSQL's own
//! permission checks require: the relations a statement reads and writes
//! (or locks) are exactly those a role needs privileges on to run it. The
//! whole list lives in one snapshot, so any change in an answer is seen;
//! the statements are a file, `tests/fixtures/sql/labelled.sql`.

use deed_sql::{OfflineLookup, analyze};

/// The statements of `tests/fixtures/sql/labelled.sql`: one per line, the
/// lines starting with `--` (why each is there) left out.
fn statements() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sql/labelled.sql");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("--"))
        .map(str::to_string)
        .collect()
}

fn render(sql: &str) -> String {
    let analysis =
        analyze(sql, &OfflineLookup::default()).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    let mut parts: Vec<String> = analysis
        .combined()
        .iter()
        .map(|a| {
            let mut s = a.relation.to_string();
            s.push(' ');
            if a.read {
                s.push('R');
            }
            if a.write {
                s.push('W');
            }
            if a.lock {
                s.push('L');
            }
            if a.star {
                s.push('*');
            }
            s
        })
        .collect();
    parts.sort();
    format!(
        "{sql}\n  -> {}",
        if parts.is_empty() { "(no relation)".into() } else { parts.join(", ") }
    )
}

#[test]
fn labelled_statements() {
    let all: Vec<String> = statements().iter().map(|s| render(s)).collect();
    assert!(all.len() >= 32, "the corpus is missing statements: {}", all.len());
    insta::assert_snapshot!(all.join("\n"));
}

#[test]
fn deep_but_valid_sql_is_analysed() {
    // 40 nested subqueries, a 200-term || chain, 300 UNION ALLs: PostgreSQL
    // takes all three.
    let mut nested = String::from("SELECT id FROM orders");
    for _ in 0..40 {
        nested = format!("SELECT id FROM ({nested}) s");
    }
    let chain = format!(
        "SELECT {} FROM users",
        (0..200).map(|i| format!("name || '{i}'")).collect::<Vec<_>>().join(" || ")
    );
    let unions = (0..300)
        .map(|i| format!("SELECT {i} FROM products"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    for sql in [nested, chain, unions] {
        let analysis = analyze(&sql, &OfflineLookup::default())
            .unwrap_or_else(|e| panic!("{}…: {}", &sql[..60], e.message));
        assert_eq!(analysis.combined().len(), 1, "{}", &sql[..60]);
    }
}
