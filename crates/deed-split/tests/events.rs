//! Capture moves with the tables: a consumer's projection receives every
//! change once, in order, across a cutover and a rollback, with positions
//! that keep sorting although the LSNs of the two servers do not.

mod common;

use std::time::Duration;

use common::two;
use deed_manifest::Manifest;
use deed_relay::RelayOptions;
use deed_split::phases;

const WAIT: Duration = Duration::from_secs(60);

const ORDERS: &str = r#"consumes = ["{catalog}.product_changed"]
database = "{orders_db}"
[[services.{orders}.projections]]
name = "products"
event = "{catalog}.product_changed"
into = "public.product_copies"

[[services.{catalog}.events]]
name = "product_changed"
from = "public.products"
key = ["id"]
contract = "products.v1"
"#;

/// Delivers what the relay command would: the side the writes left first,
/// then the side that has them.
async fn relay(m: &Manifest, catalog: &str, shared_url: &str, orders_url: &str) {
    let env = |_: &str| None;
    let sides = deed_relay::locate::locate(shared_url, m, catalog, &env)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for url in sides.earlier.iter().chain(std::iter::once(&sides.live)) {
        let mut o = RelayOptions::new(m.clone(), catalog, url, orders_url);
        o.until_idle = true;
        match deed_relay::run(o).await {
            Ok(_) => {}
            Err(deed_relay::RelayError::NoSlot { .. }) => {}
            Err(e) => panic!("relay: {e}"),
        }
    }
}

async fn project(m: &Manifest, orders: &str, shared_url: &str, orders_url: &str) {
    let mut o = deed_project::ProjectOptions::new(m.clone(), orders, shared_url, orders_url);
    o.until_idle = true;
    deed_project::run(o).await.unwrap_or_else(|e| panic!("project: {e}"));
}

/// The products as (id, name, price) text, ordered.
async fn rows(client: &deed_pg::Client, table: &str) -> Vec<String> {
    client
        .query(&format!("SELECT format('%s|%s|%s', id, name, price) FROM {table} ORDER BY id"), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_continue_across_cutover_and_rollback() {
    let t = two("split_events", "", ORDERS).await;
    let orders_db = t.orders_db.as_ref().unwrap();
    let shared_url = t.shared.url.clone();
    let orders_url = orders_db.url.clone();
    relay(&t.manifest, &t.catalog, &shared_url, &orders_url).await;
    project(&t.manifest, &t.orders, &shared_url, &orders_url).await;

    let mut split = t.split().await;
    phases::prepare(&mut split, &t.manifest, false).await.unwrap_or_else(|e| panic!("{e}"));
    phases::copy(&mut split, WAIT, &mut |_| {}).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(phases::prove_phase(&mut split, WAIT).await.unwrap().equal);
    // Changes the relay has not delivered when the writes move.
    let on_shared = t.catalog_on(&t.shared).await;
    on_shared
        .batch_execute("UPDATE products SET price = 1000 WHERE id <= 10; DELETE FROM tags WHERE product_id = 11; DELETE FROM products WHERE id = 11")
        .await
        .unwrap();
    phases::switch(&mut split, true, Duration::from_secs(3600), WAIT, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // deed.toml now points catalog at its own database.
    let mut edit = deed_manifest::edit::Edit::of(&t.manifest).unwrap();
    edit.set_database(&t.catalog, Some(&t.target.url)).unwrap();
    let moved = edit.finish(&|_| None).unwrap().manifest;
    let on_target = t.catalog_on(&t.target).await;
    on_target
        .batch_execute("UPDATE products SET price = 2000 WHERE id <= 5; INSERT INTO products (name, price) VALUES ('after the move', 7); DELETE FROM tags WHERE product_id = 12; DELETE FROM products WHERE id = 12")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    relay(&moved, &t.catalog, &shared_url, &orders_url).await;
    project(&moved, &t.orders, &shared_url, &orders_url).await;
    let orders = deed_pg::connect_plain(&orders_url).await.unwrap();
    let target = deed_pg::connect_plain(&t.target.url).await.unwrap();
    assert_eq!(rows(&orders, "product_copies").await, rows(&target, "products").await);
    let epochs: Vec<String> = orders
        .query("SELECT DISTINCT split_part(position, ':', 1) FROM deed.inbox WHERE position LIKE 'E%' ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(epochs, ["E00000001"]);

    // Back: the target's last changes, then the shared database's.
    on_target.batch_execute("UPDATE products SET price = 3000 WHERE id <= 3").await.unwrap();
    phases::switch(&mut split, false, Duration::MAX, WAIT, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    on_shared
        .batch_execute("UPDATE products SET price = 4000 WHERE id <= 2")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // After the rollback deed.toml has no database for catalog again; the
    // relay still drains the target (recorded as written).
    t.shared
        .client()
        .await
        .execute("UPDATE deed.splits SET target_written = $1", &[&t.target.url])
        .await
        .unwrap();
    relay(&t.manifest, &t.catalog, &shared_url, &orders_url).await;
    project(&t.manifest, &t.orders, &shared_url, &orders_url).await;
    let shared = deed_pg::connect_plain(&shared_url).await.unwrap();
    assert_eq!(rows(&orders, "product_copies").await, rows(&shared, "products").await);
    // Each change once (the inbox keys events by id), and the last epoch's
    // after every earlier one's.
    let epochs: Vec<String> = orders
        .query("SELECT DISTINCT split_part(position, ':', 1) FROM deed.inbox WHERE position LIKE 'E%' ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(epochs, ["E00000001", "E00000002"]);
    let last: String = orders
        .query_one("SELECT max(position COLLATE \"C\") FROM deed.inbox WHERE key->>'id' = '2'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(last.starts_with("E00000002:"), "{last}");
}

/// A service captured before slots were named per database has its slot
/// as `deed_<service>`: the split moves its capture and finish drops that
/// slot once drained, the same as a current one (none is left retaining
/// WAL on the shared server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_with_the_old_name_is_moved_and_dropped_like_any() {
    let t = two("split_legacy_slot", "", ORDERS).await;
    let orders_db = t.orders_db.as_ref().unwrap();
    let (shared_url, orders_url) = (t.shared.url.clone(), orders_db.url.clone());
    let shared = t.shared.client().await;
    let oid: u32 = shared
        .query_one("SELECT oid FROM pg_database WHERE datname = current_database()", &[])
        .await
        .unwrap()
        .get(0);
    let (current, legacy) =
        (deed_events::slot_name(&t.catalog, oid), deed_events::legacy_slot_name(&t.catalog));
    shared
        .execute("SELECT pg_drop_replication_slot($1)", &[&current])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    shared
        .execute("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", &[&legacy])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    relay(&t.manifest, &t.catalog, &shared_url, &orders_url).await;
    project(&t.manifest, &t.orders, &shared_url, &orders_url).await;

    let mut split = t.split().await;
    phases::prepare(&mut split, &t.manifest, false).await.unwrap_or_else(|e| panic!("{e}"));
    phases::copy(&mut split, WAIT, &mut |_| {}).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(phases::prove_phase(&mut split, WAIT).await.unwrap().equal);
    let on_shared = t.catalog_on(&t.shared).await;
    on_shared.batch_execute("UPDATE products SET price = 9 WHERE id <= 3").await.unwrap();
    // Other writes to the server while it switches, as in production: the
    // WAL goes on past the move, where a relay stopping at it never
    // confirms.
    shared.batch_execute("CREATE TABLE public.unrelated (n int)").await.unwrap();
    let busy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let noise = tokio::spawn({
        let (url, busy) = (shared_url.clone(), busy.clone());
        async move {
            let c = deed_pg::connect_plain(&url).await.unwrap();
            while busy.load(std::sync::atomic::Ordering::Relaxed) {
                c.batch_execute("INSERT INTO public.unrelated VALUES (1)").await.unwrap();
            }
        }
    });
    phases::switch(&mut split, true, Duration::from_secs(3600), WAIT, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    busy.store(false, std::sync::atomic::Ordering::Relaxed);
    noise.await.unwrap();
    // orders stops reading catalog's contract (it has its projection),
    // and deed.toml points catalog at its own database.
    let text =
        t.manifest.source.text().replace(&format!("reads = [\"{}.products.v1\"]\n", t.catalog), "");
    let text = text.replacen(
        &format!("[services.{}]\n", t.catalog),
        &format!("[services.{}]\ndatabase = \"{}\"\n", t.catalog, t.target.url),
        1,
    );
    let moved = Manifest::parse(std::path::Path::new("deed.toml"), &text, &|_| None).unwrap();
    relay(&moved, &t.catalog, &shared_url, &orders_url).await;
    project(&moved, &t.orders, &shared_url, &orders_url).await;
    let orders = deed_pg::connect_plain(&orders_url).await.unwrap();
    let target = deed_pg::connect_plain(&t.target.url).await.unwrap();
    assert_eq!(rows(&orders, "product_copies").await, rows(&target, "products").await);

    let api = split.service.api_schema.quoted();
    shared.batch_execute(&format!("DROP VIEW {api}.products_v1")).await.unwrap();
    let done = phases::finish(&mut split, &moved, false).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(done.dropped.iter().any(|d| d.contains(&legacy)), "{:?}", done.dropped);
    let left: Vec<String> = shared
        .query(
            "SELECT slot_name::text FROM pg_replication_slots WHERE slot_name IN ($1, $2)",
            &[&current, &legacy],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(left.is_empty(), "a capture slot left retaining WAL on the shared server: {left:?}");
}
