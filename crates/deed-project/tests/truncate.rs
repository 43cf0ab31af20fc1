//! A TRUNCATE of a captured table is an event (one per table and state
//! event), and a table projection clears itself on it; what follows it is
//! applied as usual.

mod common;

use common::{PRODUCTS, shop};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncate_clears_the_projection() {
    let s = shop("truncate", "", "", PRODUCTS).await;
    s.write("INSERT INTO products VALUES (1, 'a', 100, 0), (2, 'b', 200, 0), (3, 'c', 300, 0);")
        .await;
    s.relay().await;
    s.project(|_| {}).await;
    s.assert_products_equal().await;
    s.write("UPDATE products SET price_cents = 1 WHERE id = 1; TRUNCATE products; INSERT INTO products VALUES (9, 'after', 900, 0);")
        .await;
    s.relay().await;
    let ops = s
        .consumer_value("SELECT json_agg(op ORDER BY position COLLATE \"C\")::text FROM deed.inbox WHERE type LIKE '%product_changed'")
        .await;
    let ops: Vec<String> = serde_json::from_value(ops).unwrap();
    assert_eq!(ops.iter().filter(|o| *o == "truncate").count(), 1, "{ops:?}");
    assert_eq!(ops.last().map(String::as_str), Some("insert"), "{ops:?}");
    s.project(|_| {}).await;
    s.assert_products_equal().await;
    let left = s.consumer_value("SELECT json_agg(id)::text FROM public.product_copies").await;
    assert_eq!(left, serde_json::json!([9]));
}
