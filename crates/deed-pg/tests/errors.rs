//! A refused statement keeps the server's SQLSTATE: `PgError::code()`
//! reads it from the driver's error (the `source`), and a refusal for want
//! of a privilege or of valid credentials is told from a lost connection
//! without reading any message.

use deed_pg::{PgError, SqlState};
use deed_testkit::TestDb;

#[tokio::test]
async fn a_refused_privilege_keeps_its_sqlstate_and_is_not_retried() {
    let db = TestDb::new("pg_errors").await;
    let login = db.role("nobody");
    db.client()
        .await
        .batch_execute(&format!(
            "CREATE ROLE \"{login}\" LOGIN; CREATE TABLE secret (id int); REVOKE ALL ON secret FROM PUBLIC"
        ))
        .await
        .unwrap();
    let nobody = db.client_as(&login).await;
    let e = nobody.query("SELECT id FROM secret", &[]).await.unwrap_err();
    let e = PgError::query("reading secret", e);
    assert_eq!(e.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{e}");
    assert!(e.is_refusal(), "{e}");
    assert!(std::error::Error::source(&e).is_some(), "the driver's error is kept");
    assert!(e.to_string().contains("permission denied"), "{e}");

    // A statement that fails for another reason is no refusal.
    let e = nobody.query("SELECT 1/0", &[]).await.unwrap_err();
    let e = PgError::query("dividing", e);
    assert_eq!(e.code(), Some(&SqlState::DIVISION_BY_ZERO));
    assert!(!e.is_refusal());

    // Neither is a server that does not answer.
    let e = deed_pg::connect("postgres://u@127.0.0.1:1/db?connect_timeout=2").await.unwrap_err();
    assert_eq!(e.code(), None, "{e}");
    assert!(!e.is_refusal());
}

/// deed speaks the replication protocol itself: a replication session the
/// server refuses keeps its SQLSTATE too, so a relay whose login lost
/// REPLICATION, or may not log in, stops instead of retrying.
#[tokio::test]
async fn a_refused_replication_session_keeps_its_sqlstate() {
    use deed_pg::replication::{ReplicationStream, StreamOptions};
    let db = TestDb::new("pg_errors_replication").await;
    let login = db.role("no_replication");
    db.superuser_client()
        .await
        .batch_execute(&format!("CREATE ROLE \"{login}\" LOGIN NOREPLICATION"))
        .await
        .unwrap();
    let options = StreamOptions {
        slot: "nothing".into(),
        publication: "nothing".into(),
        application_name: "deed-test".into(),
        status_interval: std::time::Duration::from_secs(10),
    };
    let mut endpoint = deed_pg::endpoint(&db.url).unwrap();
    endpoint.user = login.clone();
    let Err(e) = ReplicationStream::start(&endpoint, &options).await else {
        panic!("a role without REPLICATION started a replication session")
    };
    assert_eq!(e.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{e}");
    assert!(e.is_refusal(), "{e}");

    // A login the server refuses outright.
    db.superuser_client()
        .await
        .batch_execute(&format!("ALTER ROLE \"{login}\" NOLOGIN REPLICATION"))
        .await
        .unwrap();
    let Err(e) = ReplicationStream::start(&endpoint, &options).await else {
        panic!("a NOLOGIN role started a replication session")
    };
    assert_eq!(e.code(), Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION), "{e}");
    assert!(e.is_refusal(), "{e}");

    // A slot that does not exist is no refusal.
    let endpoint = deed_pg::endpoint(&db.url).unwrap();
    let Err(e) = ReplicationStream::start(&endpoint, &options).await else {
        panic!("streamed from a slot that does not exist")
    };
    assert_eq!(e.code(), Some(&SqlState::UNDEFINED_OBJECT), "{e}");
    assert!(!e.is_refusal(), "{e}");
}
