//! deed's own tables on a real server: made from nothing, brought up from
//! what an older deed left (its rows kept), passed through by a role that
//! may create nothing once they are current, and migrated by two
//! processes at once.

use deed_state::{Found, MIGRATIONS, Table, ensure, found, latest, statements};
use deed_testkit::TestDb;

async fn columns(c: &deed_pg::Client, table: &str) -> Vec<String> {
    c.query(
        "SELECT attname::text FROM pg_attribute
          WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        &[&table],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

async fn counts(c: &deed_pg::Client) -> Vec<(Table, i64)> {
    let mut out = Vec::new();
    for t in Table::ALL {
        let n: i64 = c.query_one(&format!("SELECT count(*) FROM {t}"), &[]).await.unwrap().get(0);
        out.push((t, n));
    }
    out
}

fn all_current(f: &std::collections::BTreeMap<Table, Found>) -> bool {
    Table::ALL.iter().all(|t| f[t] == Found::At(latest(*t)))
}

#[tokio::test]
async fn a_database_an_older_deed_set_up_is_brought_up_and_keeps_its_rows() {
    for fixture in ["first.sql", "unversioned.sql"] {
        let db = TestDb::new(&format!("state_{}", fixture.trim_end_matches(".sql"))).await;
        let admin = db.client().await;
        let path = format!("{}/tests/fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"));
        admin.batch_execute(&std::fs::read_to_string(&path).unwrap()).await.unwrap();
        let before = found(&admin, &Table::ALL).await.unwrap();
        assert!(
            before.values().all(|f| *f == Found::Unrecorded { owned: true }),
            "{fixture}: {before:?}"
        );
        let rows = counts(&admin).await;
        assert!(rows.iter().all(|(_, n)| *n == 1), "{fixture}: {rows:?}");

        let ensured = ensure(&admin, &Table::ALL).await.unwrap();
        assert_eq!(ensured.migrated.len(), Table::ALL.len(), "{fixture}: {ensured:?}");
        assert!(all_current(&found(&admin, &Table::ALL).await.unwrap()), "{fixture}");
        assert!(columns(&admin, "deed.projections").await.contains(&"source_offset".into()));
        assert!(columns(&admin, "deed.inbox").await.contains(&"envelope".into()));
        assert_eq!(counts(&admin).await, rows, "{fixture}: every row is kept");

        // Current: nothing left to do.
        assert!(ensure(&admin, &Table::ALL).await.unwrap().migrated.is_empty(), "{fixture}");
    }
}

#[tokio::test]
async fn the_plans_statements_make_every_table_from_nothing() {
    let db = TestDb::new("state_statements").await;
    let admin = db.client().await;
    let all = statements(&Table::ALL);
    assert_eq!(all[0], "CREATE SCHEMA IF NOT EXISTS deed");
    for sql in &all {
        admin.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    assert!(all_current(&found(&admin, &Table::ALL).await.unwrap()));
    // And again: every statement is safe to repeat.
    for sql in &all {
        admin.batch_execute(sql).await.unwrap_or_else(|e| panic!("again, {sql}: {e}"));
    }
    let made: usize = MIGRATIONS.iter().map(|m| m.statements.len()).sum();
    assert_eq!(all.len(), 1 + made + Table::ALL.len());
}

#[tokio::test]
async fn once_current_a_role_that_may_create_nothing_passes() {
    let db = TestDb::new("state_reader").await;
    let admin = db.client().await;
    ensure(&admin, &Table::CONSUMER).await.unwrap();
    let reader = db.role("reader");
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{reader}\" LOGIN; GRANT USAGE ON SCHEMA deed TO \"{reader}\""
        ))
        .await
        .unwrap();
    let as_reader = db.client_as(&reader).await;
    let done = ensure(&as_reader, &Table::CONSUMER).await.unwrap();
    assert!(done.migrated.is_empty());

    // Behind (deed.compares missing): the same role is refused with the
    // server's reason, and nothing is left half made.
    let e = ensure(&as_reader, &[Table::Projections, Table::Compares]).await.unwrap_err();
    assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{e}");
    assert!(e.to_string().contains("migrating deed's tables"), "{e}");
    assert_eq!(found(&admin, &[Table::Compares]).await.unwrap()[&Table::Compares], Found::Missing);
}

#[tokio::test]
async fn a_table_another_role_owns_is_used_as_it_is() {
    // An older deed's relay made the inbox as one role; a projector
    // running as another finds it current in all but its record.
    let db = TestDb::new("state_owner").await;
    let admin = db.client().await;
    let (maker, user) = (db.role("maker"), db.role("user"));
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{maker}\" LOGIN; CREATE ROLE \"{user}\" LOGIN;
             CREATE SCHEMA deed; GRANT CREATE, USAGE ON SCHEMA deed TO \"{maker}\", \"{user}\""
        ))
        .await
        .unwrap();
    let as_maker = db.client_as(&maker).await;
    for sql in statements(&[Table::Inbox]) {
        // The schema exists; the version is left unrecorded, as an
        // older deed left it.
        if !sql.starts_with("CREATE SCHEMA") && !sql.contains("COMMENT ON TABLE") {
            as_maker.batch_execute(&sql).await.unwrap();
        }
    }
    let as_user = db.client_as(&user).await;
    ensure(&as_user, &[Table::Inbox]).await.unwrap();
    // Not the owner: used, not recorded; the owner's next run records it.
    assert_eq!(
        found(&as_user, &[Table::Inbox]).await.unwrap()[&Table::Inbox],
        Found::Unrecorded { owned: false }
    );
    ensure(&as_maker, &[Table::Inbox]).await.unwrap();
    assert_eq!(
        found(&admin, &[Table::Inbox]).await.unwrap()[&Table::Inbox],
        Found::At(latest(Table::Inbox))
    );
}

#[tokio::test]
async fn two_processes_migrating_at_once_both_succeed() {
    let db = TestDb::new("state_race").await;
    let (a, b) = (db.client().await, db.client().await);
    let (ra, rb) = tokio::join!(ensure(&a, &Table::ALL), ensure(&b, &Table::ALL));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    // One made them; the other, waiting on the lock, found them made.
    let made: usize = ra.migrated.len() + rb.migrated.len();
    assert_eq!(made, Table::ALL.len(), "{ra:?} {rb:?}");
    assert!(all_current(&found(&a, &Table::ALL).await.unwrap()));
}
