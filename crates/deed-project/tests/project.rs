//! Projections against a real PostgreSQL: backfill, exactly-once
//! application, dead letters, handlers.

mod common;

use common::{PRODUCTS, shop};
use deed_project::apply::Applier;
use deed_project::incoming::Incoming;

#[tokio::test]
async fn a_new_projection_backfills_the_rows_that_existed_then_follows_exactly_once() {
    let s = shop(
        "project_backfill",
        "INSERT INTO products SELECT g, 'p' || g, g * 10 FROM generate_series(1, 500) g;",
        "",
        PRODUCTS,
    )
    .await;
    // Changes after capture started but before the projection exists.
    s.write("UPDATE products SET price_cents = 1 WHERE id <= 10; DELETE FROM products WHERE id BETWEEN 11 AND 15;
             INSERT INTO products VALUES (1001, 'new', 5);").await;
    s.relay().await;
    let r = s.project(|o| o.chunk = 64).await;
    let p = &r.projections[0];
    assert!(p.created_table, "{p:?}");
    assert_eq!(p.backfilled_rows, 496, "{p:?}");
    // Every event so far is older than the backfill's fence.
    assert_eq!((p.applied, p.skipped), (0, 0), "{p:?}");
    s.assert_products_equal().await;

    // Now the stream: updates, deletes, a re-insert, a no-op update.
    s.write("UPDATE products SET name = 'renamed' WHERE id = 20; DELETE FROM products WHERE id = 21;
             INSERT INTO products VALUES (21, 'back', 1); UPDATE products SET stock = 7 WHERE id = 22;
             DELETE FROM products WHERE id = 23; UPDATE products SET price_cents = NULL WHERE id = 24;").await;
    s.relay().await;
    let r = s.project(|_| {}).await;
    let p = &r.projections[0];
    assert_eq!(p.backfilled_rows, 0, "a live projection is not copied again: {p:?}");
    // `stock` is not in the contract: that update is no event.
    assert_eq!(p.applied, 5, "{p:?}");
    s.assert_products_equal().await;

    // A second run finds nothing new.
    let r = s.project(|_| {}).await;
    assert_eq!((r.projections[0].applied, r.projections[0].skipped), (0, 0));

    // Every event delivered again, in any order: nothing changes, the
    // deleted row does not come back.
    let client = s.consumer.client().await;
    let rows = client
        .query(
            "SELECT event_id, position, envelope::text FROM deed.inbox ORDER BY position DESC",
            &[],
        )
        .await
        .unwrap();
    let batch: Vec<Incoming> =
        rows.iter().map(|r| Incoming::parse(r.get(2), r.get(0), r.get(1))).collect();
    let spec = deed_project::projections(&s.manifest, &s.orders).unwrap().remove(0);
    let position: String = client
        .query_one("SELECT position FROM deed.projections WHERE name = 'products'", &[])
        .await
        .unwrap()
        .get(0);
    let mut target = s.consumer.client().await;
    let applier = Applier::new(spec);
    let mut sorted = batch.clone();
    sorted.sort_by(|a, b| a.position.cmp(&b.position));
    let done = applier.apply(&mut target, &position, &sorted).await.unwrap();
    assert_eq!(
        (done.applied, done.skipped, done.position.as_str()),
        (0, batch.len() as u64, position.as_str())
    );
    s.assert_products_equal().await;
    let gone =
        s.consumer_value("SELECT json_agg(id)::text FROM product_copies WHERE id = 23").await;
    assert!(gone.is_null(), "a deleted row came back: {gone}");

    // --backfill copies again, and removes rows the source no longer has.
    client.batch_execute("INSERT INTO product_copies VALUES (99999, 'stray', 0)").await.unwrap();
    let r = s.project(|o| o.backfill = vec!["products".into()]).await;
    assert_eq!(r.projections[0].backfilled_rows, 495);
    s.assert_products_equal().await;
}

#[tokio::test]
async fn an_event_that_cannot_be_applied_waits_as_a_dead_letter_with_its_key_and_others_go_on() {
    let s = shop(
        "project_dead",
        "INSERT INTO products VALUES (1, 'a', 100), (2, 'b', 200);",
        // The consumer's own rule: no negative prices in its copy.
        "CREATE TABLE product_copies (id integer PRIMARY KEY, name text, price_cents integer CHECK (price_cents >= 0), note text);",
        PRODUCTS,
    )
    .await;
    let r = s.project(|_| {}).await;
    assert!(!r.projections[0].created_table);
    s.write("UPDATE products SET price_cents = -1 WHERE id = 1;").await;
    s.write("UPDATE products SET name = 'a2' WHERE id = 1;").await;
    s.write("UPDATE products SET name = 'b2' WHERE id = 2;").await;
    s.relay().await;
    let r = s.project(|_| {}).await;
    let p = &r.projections[0];
    assert_eq!((p.applied, p.dead_letters, p.dead_letters_waiting), (1, 2, 2), "{p:?}");
    let copy = s.consumer_value("SELECT json_agg(json_build_array(id, name, price_cents) ORDER BY id)::text FROM product_copies").await;
    // Key 2 went on; key 1 waits at its last good state.
    assert_eq!(copy, serde_json::json!([[1, "a", 100], [2, "b2", 200]]));
    let letters = s
        .consumer_value("SELECT json_agg(json_build_array(key, sqlstate, waiting_behind IS NOT NULL, error) ORDER BY position)::text FROM deed.dead_letters")
        .await;
    assert_eq!(letters[0][0], "{\"id\":1}");
    assert_eq!(letters[0][1], "23514", "{letters}");
    assert!(
        letters[0][3].as_str().unwrap().contains("product_copies_price_cents_check"),
        "{letters}"
    );
    assert_eq!(letters[1][2], true, "the later event of the key waits behind: {letters}");

    // Retrying without a fix keeps both.
    let r = s.project(|o| o.retry_dead = true).await;
    assert_eq!((r.projections[0].retried, r.projections[0].dead_letters_waiting), (0, 2));
    // After the fix, both apply in order.
    s.consumer
        .client()
        .await
        .batch_execute(
            "ALTER TABLE product_copies DROP CONSTRAINT product_copies_price_cents_check",
        )
        .await
        .unwrap();
    let r = s.project(|o| o.retry_dead = true).await;
    assert_eq!((r.projections[0].retried, r.projections[0].dead_letters_waiting), (2, 0));
    s.assert_products_equal().await;
    // And the key follows the stream again.
    s.write("UPDATE products SET name = 'a3' WHERE id = 1;").await;
    s.relay().await;
    assert_eq!(s.project(|_| {}).await.projections[0].applied, 1);
    s.assert_products_equal().await;
}

#[tokio::test]
async fn a_handler_keeps_a_denormalized_copy_current() {
    let s = shop(
        "project_handler",
        "INSERT INTO users VALUES (1, 'ann@old.example'), (2, 'bob@old.example');",
        "CREATE TABLE orders (id serial PRIMARY KEY, user_id bigint NOT NULL, customer_email text, touched int DEFAULT 0);
         INSERT INTO orders (user_id, customer_email) VALUES (1, 'ann@old.example'), (1, 'ann@old.example'), (2, 'bob@old.example');",
        r#"
[[services.{orders}.projections]]
name = "customer_emails"
event = "{catalog}.user_changed"
sql = """
UPDATE public.orders SET customer_email = :payload.email, touched = touched + 1
 WHERE user_id = :key.id AND :op <> 'delete'"""
"#,
    )
    .await;
    s.write("UPDATE users SET email = 'ann@new.example' WHERE id = 1; UPDATE users SET login_count = 5 WHERE id = 2;
             DELETE FROM users WHERE id = 2;").await;
    s.relay().await;
    let r = s.project(|_| {}).await;
    // login_count is not published: that update is no event.
    assert_eq!(r.projections[0].applied, 2, "{:?}", r.projections[0]);
    let orders = s.consumer_value("SELECT json_agg(json_build_array(user_id, customer_email, touched) ORDER BY id)::text FROM orders").await;
    assert_eq!(
        orders,
        serde_json::json!([
            [1, "ann@new.example", 1],
            [1, "ann@new.example", 1],
            [2, "bob@old.example", 0]
        ])
    );
    // Delivered again: no second effect.
    let r = s.project(|_| {}).await;
    assert_eq!(r.projections[0].applied, 0);
    let touched = s.consumer_value("SELECT sum(touched)::text FROM orders").await;
    assert_eq!(touched, 2);
}

/// A composite, non-integer key: the backfill walks it chunk by chunk and
/// resumes from a key read back out of jsonb (whose field order differs).
#[tokio::test]
async fn a_composite_text_key_backfills_in_chunks_and_follows() {
    let owner = deed_testkit::TestDb::new("project_composite").await;
    let consumer = deed_testkit::TestDb::new("project_composite_orders").await;
    let (stock, reader) = (owner.service("stock"), owner.service("shop"));
    let login = owner.role("shop_svc");
    owner
        .client()
        .await
        .batch_execute(&format!(
            "CREATE TABLE levels (warehouse_code text, sku_number int, quantity int NOT NULL, PRIMARY KEY (warehouse_code, sku_number));
             INSERT INTO levels SELECT 'w' || (g % 7), g, g FROM generate_series(1, 700) g;
             CREATE ROLE \"{login}\" LOGIN;"
        ))
        .await
        .unwrap();
    let text = format!(
        r#"version = 1
[services.{stock}]
owns = ["public.levels"]
[[services.{stock}.contracts]]
name = "levels"
version = 1
from = "public.levels"
columns = ["warehouse_code", "sku_number", "quantity"]
[[services.{stock}.events]]
name = "level_changed"
from = "public.levels"
key = ["warehouse_code", "sku_number"]
contract = "levels.v1"
[services.{reader}]
logins = ["{login}"]
reads = ["{stock}.levels.v1"]
consumes = ["{stock}.level_changed"]
database = "{url}"
[[services.{reader}.projections]]
name = "levels"
event = "{stock}.level_changed"
into = "public.level_copies"
"#,
        url = consumer.url
    );
    let m = deed_manifest::Manifest::parse(std::path::Path::new("deed.toml"), &text, &|_| None)
        .unwrap();
    deed_contracts::apply(&owner.deed_client().await, &m, deed_manifest::Date::today(), &[])
        .await
        .unwrap();
    let run = |chunk: usize| {
        let mut o =
            deed_project::ProjectOptions::new(m.clone(), &reader, &owner.url, &consumer.url);
        o.until_idle = true;
        o.chunk = chunk;
        deed_project::run(o)
    };
    // A stop after the first chunk, then a second run that resumes.
    let mut o = deed_project::ProjectOptions::new(m.clone(), &reader, &owner.url, &consumer.url);
    o.chunk = 64;
    let (tx, rx) = tokio::sync::watch::channel(true);
    o.shutdown = rx;
    let first = deed_project::run(o).await.unwrap();
    drop(tx);
    assert_eq!(first.projections[0].backfilled_rows, 64, "{:?}", first.projections[0]);
    owner.client().await.batch_execute("UPDATE levels SET quantity = 0 WHERE sku_number % 10 = 0; DELETE FROM levels WHERE sku_number % 13 = 0;").await.unwrap();
    let second = run(64).await.unwrap();
    // It resumes after the first chunk: 647 rows left in all, 4 of the 64
    // copied first among the deleted.
    assert_eq!(second.projections[0].backfilled_rows, 647 - 60, "{:?}", second.projections[0]);
    let mut relay = deed_relay::RelayOptions::new(m.clone(), &stock, &owner.url, &consumer.url);
    relay.until_idle = true;
    deed_relay::run(relay).await.unwrap();
    owner
        .client()
        .await
        .batch_execute("UPDATE levels SET quantity = -1 WHERE warehouse_code = 'w3';")
        .await
        .unwrap();
    let mut relay = deed_relay::RelayOptions::new(m.clone(), &stock, &owner.url, &consumer.url);
    relay.until_idle = true;
    deed_relay::run(relay).await.unwrap();
    run(64).await.unwrap();
    let q = "SELECT json_agg(t ORDER BY warehouse_code, sku_number)::text FROM (SELECT warehouse_code, sku_number, quantity FROM {}) t";
    let source: String = owner
        .client()
        .await
        .query_one(&q.replace("{}", &format!("{stock}_api.levels_v1")), &[])
        .await
        .unwrap()
        .get(0);
    let copy: String = consumer
        .client()
        .await
        .query_one(&q.replace("{}", "public.level_copies"), &[])
        .await
        .unwrap()
        .get(0);
    assert!(source == copy, "source {source}\ncopy {copy}");
}

#[tokio::test]
async fn a_changed_handler_goes_on_from_its_position_and_backfill_refuses_a_handler() {
    let handler = r#"
[[services.{orders}.projections]]
name = "emails"
event = "{catalog}.user_changed"
sql = "INSERT INTO public.seen (id) VALUES (:id)"
"#;
    let s = shop(
        "project_redefine",
        "INSERT INTO users VALUES (1, 'a@x');",
        "CREATE TABLE seen (id text NOT NULL, note text);",
        handler,
    )
    .await;
    s.write("UPDATE users SET email = 'b@x' WHERE id = 1;").await;
    s.relay().await;
    assert_eq!(s.project(|_| {}).await.projections[0].applied, 1);
    let changed = s.manifest.source.text().replace(
        "INSERT INTO public.seen (id) VALUES (:id)",
        "INSERT INTO public.seen (id, note) VALUES (:id, :payload.email)",
    );
    let m = deed_manifest::Manifest::parse(std::path::Path::new("deed.toml"), &changed, &|_| None)
        .unwrap();
    let mut o =
        deed_project::ProjectOptions::new(m.clone(), &s.orders, &s.owner.url, &s.consumer.url);
    o.until_idle = true;
    let r = deed_project::run(o.clone()).await.unwrap();
    assert_eq!(r.projections[0].applied, 0, "history is not replayed through the new statement");
    let seen = s.consumer_value("SELECT count(*)::text FROM seen").await;
    assert_eq!(seen, 1);
    o.backfill = vec!["emails".into()];
    let e = deed_project::run(o).await.unwrap_err();
    assert!(e.to_string().contains("a handler keeps no copy to backfill"), "{e}");
}
