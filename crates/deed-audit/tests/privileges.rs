//! The audit's reads and writes checked against PostgreSQL's own
//! permission checks: each statement runs as a role holding exactly the
//! privileges the analysis says it needs (SELECT on what it reads, INSERT,
//! UPDATE and DELETE on what it writes), and must succeed; taken away one
//! relation at a time, each must be missed (42501). A write reported where
//! the server needs only SELECT would pass the first check and fail the
//! second. (On PostgreSQL 14, which has no MERGE, the server must refuse
//! each MERGE as a syntax error instead.)

use deed_sql::{OfflineLookup, analyze};
use deed_testkit::TestDb;

const TABLES: &str = "CREATE TABLE products (id int PRIMARY KEY, name text);
    CREATE TABLE staging (id int PRIMARY KEY, name text);
    INSERT INTO products VALUES (1, 'a'), (2, 'b'); INSERT INTO staging VALUES (1, 'x'), (3, 'y');";

const STATEMENTS: &[&str] = &[
    "MERGE INTO products p USING staging s ON p.id = s.id WHEN MATCHED THEN DO NOTHING",
    "MERGE INTO products p USING staging s ON p.id = s.id WHEN MATCHED THEN DO NOTHING WHEN NOT MATCHED THEN DO NOTHING",
    "MERGE INTO products p USING staging s ON p.id = s.id WHEN MATCHED THEN UPDATE SET name = s.name WHEN NOT MATCHED THEN DO NOTHING",
    "MERGE INTO products p USING staging s ON p.id = s.id WHEN MATCHED THEN DO NOTHING WHEN NOT MATCHED THEN INSERT (id, name) VALUES (s.id, s.name)",
    "MERGE INTO products p USING staging s ON p.id = s.id WHEN MATCHED AND s.name = 'x' THEN DELETE",
    "INSERT INTO products (id, name) SELECT id, name FROM staging ON CONFLICT DO NOTHING",
];

/// Runs `sql` as `role` in a transaction that is rolled back; its SQLSTATE
/// if it fails.
async fn run_as(db: &TestDb, role: &str, sql: &str) -> Result<(), String> {
    let c = db.client_as(role).await;
    let r = c.batch_execute(&format!("BEGIN; {sql}; ROLLBACK")).await;
    r.map_err(|e| e.code().map_or_else(|| e.to_string(), |c| c.code().to_string()))
}

#[tokio::test]
async fn reads_and_writes_are_what_the_server_checks() {
    let db = TestDb::new("audit_privileges").await;
    let admin = db.client().await;
    admin.batch_execute(TABLES).await.unwrap();
    let role = db.role("probe");
    admin.batch_execute(&format!("CREATE ROLE \"{role}\" LOGIN")).await.unwrap();
    let version: i32 = admin
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .unwrap()
        .get(0);
    for sql in STATEMENTS {
        if sql.starts_with("MERGE") && version < 150_000 {
            // PostgreSQL 14 has no MERGE: the server refuses it as syntax.
            let refused = admin.batch_execute(sql).await.unwrap_err();
            assert_eq!(refused.code().map(|c| c.code()), Some("42601"), "{sql}: {refused}");
            continue;
        }
        let analysis = analyze(sql, &OfflineLookup::default()).unwrap();
        let accesses = analysis.combined();
        let grant = |a: &deed_sql::RelationAccess| {
            let mut p = vec!["SELECT"];
            if a.write {
                p.extend(["INSERT", "UPDATE", "DELETE"]);
            }
            format!("GRANT {} ON {} TO \"{role}\"", p.join(", "), a.relation)
        };
        let revoke_all = format!("REVOKE ALL ON products, staging FROM \"{role}\"");
        admin.batch_execute(&revoke_all).await.unwrap();
        for a in &accesses {
            admin.batch_execute(&grant(a)).await.unwrap();
        }
        assert_eq!(run_as(&db, &role, sql).await, Ok(()), "{sql}: {accesses:?}");
        for a in &accesses {
            // A write taken away must be missed; a read-only relation
            // must need its SELECT.
            let missing = if a.write {
                format!("REVOKE INSERT, UPDATE, DELETE ON {} FROM \"{role}\"", a.relation)
            } else {
                format!("REVOKE SELECT ON {} FROM \"{role}\"", a.relation)
            };
            admin.batch_execute(&missing).await.unwrap();
            assert_eq!(
                run_as(&db, &role, sql).await,
                Err("42501".into()),
                "{sql}: runs without what the audit says it needs ({missing})"
            );
            admin.batch_execute(&grant(a)).await.unwrap();
        }
    }
}
