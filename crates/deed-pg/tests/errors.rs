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
