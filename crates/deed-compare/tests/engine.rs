//! The compare engine on two real databases: equal tables, each kind of
//! difference, normalization, composite and text keys, bisection.

use deed_compare::scan::Tuning;
use deed_compare::{CompareOptions, Pair, SESSION};
use deed_ident::{Ident, QualifiedName};
use deed_testkit::TestDb;

fn idents(names: &[&str]) -> Vec<Ident> {
    names.iter().map(|n| Ident::new(*n).unwrap()).collect()
}

fn pair(key: &[&str], columns: &[&str]) -> Pair {
    Pair {
        source: QualifiedName::parse_sql("public.src").unwrap(),
        target: QualifiedName::parse_sql("public.dst").unwrap(),
        key: idents(key),
        columns: idents(columns),
    }
}

struct Two {
    source: TestDb,
    target: TestDb,
}

impl Two {
    async fn new(label: &str, source_sql: &str, target_sql: &str) -> Two {
        let source = TestDb::new(label).await;
        let target = TestDb::new(&format!("{label}_t")).await;
        source.client().await.batch_execute(source_sql).await.unwrap();
        target.client().await.batch_execute(target_sql).await.unwrap();
        Two { source, target }
    }

    async fn diff(
        &self,
        pair: &Pair,
        tuning: Tuning,
    ) -> (deed_compare::scan::Scan, deed_compare::settle::Settled) {
        let s = self.source.deed_client().await;
        let t = self.target.deed_client().await;
        s.batch_execute(SESSION).await.unwrap();
        t.batch_execute(SESSION).await.unwrap();
        let opts = CompareOptions { tuning, ..CompareOptions::default() };
        deed_compare::diff(&s, &t, pair, None::<&mut deed_compare::follow::Follow>, &opts)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

const TYPED: &str = "CREATE TABLE {t} (id bigint PRIMARY KEY, name text, amount numeric, at timestamptz, doc jsonb, qty int);";

fn typed(t: &str) -> String {
    TYPED.replace("{t}", t)
}

#[tokio::test]
async fn equal_tables_compare_equal_whatever_the_form_of_equal_values() {
    let fill = |scale: &str, zone: &str, doc: &str| {
        format!(
            "SET TimeZone = '{zone}';
             INSERT INTO {{t}} SELECT g, 'name ' || g, round((g % 1000) / 7.0, 2)::numeric({scale}),
                    timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute', {doc}, g % 100
               FROM generate_series(1, 20000) g;"
        )
    };
    let source = typed("src")
        + &fill("12,2", "UTC", "jsonb_build_object('a', g, 'b', 'x')").replace("{t}", "src");
    // The same values: more decimal places, another zone, another key order.
    let target = typed("dst")
        + &fill("12,4", "Asia/Kolkata", "('{\"b\": \"x\", \"a\": ' || g || '}')::jsonb")
            .replace("{t}", "dst");
    let two = Two::new("cmp_equal", &source, &target).await;
    let (scan, settled) = two
        .diff(&pair(&["id"], &["id", "name", "amount", "at", "doc", "qty"]), Tuning::default())
        .await;
    assert_eq!((scan.source_rows, scan.target_rows), (20000, 20000));
    assert!(scan.candidates.is_empty(), "{:?}", &scan.candidates[..3.min(scan.candidates.len())]);
    assert_eq!(settled, deed_compare::settle::Settled::default());
}

#[tokio::test]
async fn each_kind_of_difference_is_found_and_named() {
    let rows = "INSERT INTO {t} SELECT g, 'name ' || g, g / 4.0, timestamptz '2024-01-01' + g * interval '1 hour',
                       jsonb_build_object('g', g), g FROM generate_series(1, 50000) g;";
    let source = typed("src") + &rows.replace("{t}", "src");
    let target = typed("dst")
        + &rows.replace("{t}", "dst")
        + "DELETE FROM dst WHERE id IN (17, 40000);
           INSERT INTO dst VALUES (60001, 'ghost', 1, now(), '{}', 1);
           UPDATE dst SET name = 'renamed' WHERE id = 2500;
           UPDATE dst SET amount = amount + 0.01, doc = '{\"g\": -1}' WHERE id = 33333;
           UPDATE dst SET at = NULL WHERE id = 49999;";
    let two = Two::new("cmp_kinds", &source, &target).await;
    let cols = ["id", "name", "amount", "at", "doc", "qty"];
    for tuning in [
        Tuning::default(),
        Tuning { per_bucket: 5000, read_rows: 300, pieces: 4, ..Tuning::default() },
    ] {
        let (scan, settled) = two.diff(&pair(&["id"], &cols), tuning).await;
        assert_eq!((scan.source_rows, scan.target_rows), (50000, 49999));
        assert_eq!(settled.missing, vec![r#"{"id": 17}"#, r#"{"id": 40000}"#]);
        assert_eq!(settled.extra, vec![r#"{"id": 60001}"#]);
        let different: Vec<(String, Vec<String>)> = settled.different.clone();
        assert_eq!(
            different,
            vec![
                (r#"{"id": 2500}"#.to_string(), vec!["name".to_string()]),
                (r#"{"id": 33333}"#.to_string(), vec!["amount".to_string(), "doc".to_string()]),
                (r#"{"id": 49999}"#.to_string(), vec!["at".to_string()]),
            ]
        );
        assert!(settled.in_flight.is_empty());
        assert!(scan.rows_read < 20_000, "read back {} rows for 6 differences", scan.rows_read);
    }
}

#[tokio::test]
async fn composite_text_keys_and_an_empty_projection_work() {
    let make = |t: &str| {
        format!(
            "CREATE TABLE {t} (tenant text, code text, n int, PRIMARY KEY (tenant, code));
             INSERT INTO {t} SELECT 'tenant ' || (g % 7), 'code-' || g, g FROM generate_series(1, 9000) g;"
        )
    };
    let target = make("dst")
        + "UPDATE dst SET n = -1 WHERE tenant = 'tenant 3' AND code = 'code-10';
           DELETE FROM dst WHERE code = 'code-8999';";
    let two = Two::new("cmp_composite", &make("src"), &target).await;
    let p = pair(&["tenant", "code"], &["tenant", "code", "n"]);
    let (_, settled) = two.diff(&p, Tuning::default()).await;
    assert_eq!(settled.missing, vec![r#"{"code": "code-8999", "tenant": "tenant 4"}"#]);
    assert_eq!(
        settled.different,
        vec![(r#"{"code": "code-10", "tenant": "tenant 3"}"#.to_string(), vec!["n".to_string()])]
    );
    // Nothing in the projection: every row is missing, found by cutting
    // the source's key ranges rather than reading it whole at once.
    two.target.client().await.batch_execute("TRUNCATE dst").await.unwrap();
    let (scan, settled) =
        two.diff(&p, Tuning { read_rows: 1000, pieces: 16, ..Tuning::default() }).await;
    assert_eq!((scan.source_rows, scan.target_rows), (9000, 0));
    assert_eq!(settled.missing.len(), 9000);
    assert!(scan.ranges > 16, "the source was cut into ranges: {}", scan.ranges);
}

#[tokio::test]
async fn text_keys_compare_across_databases_that_sort_differently() {
    let make = |t: &str, collate: &str| {
        format!(
            "CREATE TABLE {t} (k text COLLATE {collate} PRIMARY KEY, v int);
             INSERT INTO {t} SELECT chr(65 + g % 26) || lower(chr(65 + g % 23)) || g, g FROM generate_series(1, 5000) g;"
        )
    };
    let target = make("dst", "\"C\"") + "UPDATE dst SET v = 0 WHERE k = 'Bb1';";
    let two = Two::new("cmp_collate", &make("src", "\"POSIX\""), &target).await;
    let (_, settled) =
        two.diff(&pair(&["k"], &["k", "v"]), Tuning { per_bucket: 50, ..Tuning::default() }).await;
    assert!(settled.missing.is_empty() && settled.extra.is_empty(), "{settled:?}");
    assert_eq!(settled.different, vec![(r#"{"k": "Bb1"}"#.to_string(), vec!["v".to_string()])]);
}
