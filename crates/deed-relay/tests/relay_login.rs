//! `deed apply` gives each capturing service a relay login with least
//! privilege, and the relay works signed in as it: REPLICATION, the
//! `deed` schema's epochs, and nothing of the service's data.

use std::path::Path;

use deed_contracts::ApplyOutcome;
use deed_manifest::{Date, Manifest};
use deed_relay::RelayOptions;
use deed_testkit::TestDb;

#[tokio::test]
async fn apply_makes_a_relay_login_that_relays_and_can_do_nothing_else() {
    let db = TestDb::new("relay_login").await;
    let service = db.service("books");
    let admin = db.deed_client().await;
    admin
        .batch_execute("CREATE TABLE public.books (id int PRIMARY KEY, title text NOT NULL)")
        .await
        .unwrap();
    let text = format!(
        r#"version = 1
[services.{service}]
owns = ["public.books"]
[[services.{service}.contracts]]
name = "books"
version = 1
from = "public.books"
columns = ["id", "title"]
[[services.{service}.events]]
name = "book_changed"
from = "public.books"
key = ["id"]
contract = "books.v1"
"#
    );
    let manifest = Manifest::parse(Path::new("deed.toml"), &text, &|_| None).unwrap();
    deed_contracts::apply(&admin, &manifest, Date::today(), &[]).await.unwrap();
    let relay = deed_events::relay_role(&service);
    let row = admin
        .query_one(
            "SELECT rolcanlogin, rolreplication, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolbypassrls
               FROM pg_roles WHERE rolname = $1",
            &[&relay.as_str()],
        )
        .await
        .unwrap();
    let attrs: (bool, bool, bool, bool, bool, bool, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4), row.get(5), row.get(6));
    assert_eq!(attrs, (true, true, false, false, false, false, false), "LOGIN REPLICATION only");
    let again = deed_contracts::apply(&admin, &manifest, Date::today(), &[]).await.unwrap();
    if let ApplyOutcome::Applied(changes) = &again {
        let shown: Vec<_> = changes.iter().map(|c| &c.summary).collect();
        panic!("a second apply changes nothing, but: {shown:?}");
    }

    admin.batch_execute("INSERT INTO public.books VALUES (1, 'Dune'), (2, 'Emma')").await.unwrap();
    let consumer = TestDb::new("relay_login_inbox").await;
    let as_relay = as_user(&db.url, relay.as_str());
    let mut opts = RelayOptions::new(manifest.clone(), &service, &as_relay, &consumer.url);
    opts.until_idle = true;
    let report = deed_relay::run(opts).await.unwrap_or_else(|e| panic!("as {relay}: {e}"));
    assert_eq!(report.events, 2);

    // Signed in as the relay login, the service's data is out of reach.
    let c = db.client_as(relay.as_str()).await;
    for sql in [
        "SELECT * FROM public.books",
        "INSERT INTO public.books VALUES (3, 'x')",
        "CREATE TABLE public.mine (id int)",
        "SELECT * FROM deed.domain_events",
        "CREATE ROLE someone",
    ] {
        let err = c.batch_execute(sql).await.expect_err(sql);
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {err}"
        );
    }
    c.batch_execute("SELECT * FROM deed.capture_epochs").await.unwrap();

    // Given more than it needs, the next apply takes it back.
    admin.batch_execute(&format!("ALTER ROLE {} SUPERUSER INHERIT", relay.quoted())).await.unwrap();
    let fixed = deed_contracts::apply(&admin, &manifest, Date::today(), &[]).await.unwrap();
    assert!(matches!(fixed, ApplyOutcome::Applied(_)));
    let (sup, inherit): (bool, bool) = {
        let r = admin
            .query_one(
                "SELECT rolsuper, rolinherit FROM pg_roles WHERE rolname = $1",
                &[&relay.as_str()],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(!sup && !inherit, "never superuser");
}

/// The URL signed in as `user` instead (the test server trusts loopback).
fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
}
