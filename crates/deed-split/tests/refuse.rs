//! Prepare refuses, all at once and each located, what cannot cross
//! instances, and changes nothing on either side.

mod common;

use common::two;
use deed_split::{SplitError, phases};

const BLOCKERS: &str = "
CREATE TABLE suppliers (id int PRIMARY KEY);
ALTER TABLE products ADD COLUMN supplier_id int REFERENCES suppliers (id);
CREATE TABLE invoices (id int PRIMARY KEY, product_id int REFERENCES products (id));
CREATE TABLE other_things (id int PRIMARY KEY DEFAULT nextval('products_id_seq'));
CREATE VIEW cheap AS SELECT id, name FROM products WHERE price < 10;
CREATE FUNCTION product_count() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM products; END;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER tags_touch BEFORE UPDATE ON tags FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TABLE catalog_log (message text);
";

const BILLING: &str = r#"
[services.billing]
owns = ["public.suppliers", "public.invoices", "public.other_things"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_refuses_what_cannot_cross_and_changes_nothing() {
    let t = two("split_refuse", BLOCKERS, BILLING).await;
    // The catalog's owns gains the table without a key, and the orders
    // login may write tags.
    let text = t.manifest.source.text().replace(
        "owns = [\"public.products\", \"public.tags\"]",
        "owns = [\"public.products\", \"public.tags\", \"public.catalog_log\", \"public.gone\"]",
    );
    let manifest =
        deed_manifest::Manifest::parse(std::path::Path::new("deed.toml"), &text, &|_| None)
            .unwrap_or_else(|e| panic!("{e}"));
    t.shared
        .client()
        .await
        .batch_execute(&format!(
            "ALTER TABLE catalog_log OWNER TO deed_{}_owner; GRANT INSERT ON tags TO \"{}\"",
            t.catalog, t.orders_login
        ))
        .await
        .unwrap();
    // The target already has a products table, of another shape.
    t.target
        .client()
        .await
        .batch_execute("CREATE TABLE products (id bigint PRIMARY KEY)")
        .await
        .unwrap();

    let mut split = deed_split::Split::open(
        &manifest,
        &t.catalog,
        t.shared.deed_client().await,
        deed_pg::connect(&t.target.url).await.unwrap(),
        t.shared.url.clone(),
        t.target.url.clone(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let e = phases::prepare(&mut split, &manifest, false).await.unwrap_err();
    let SplitError::Refused { refusals, .. } = &e else { panic!("{e}") };
    let text = e.to_string();
    for expected in [
        "deed.toml:3:", // located in the manifest
        "public.gone does not exist",
        "public.catalog_log has no primary key",
        "a foreign key to public.suppliers (owned by billing)",
        "public.invoices (owned by billing) has a foreign key to public.products",
        "view public.cheap reads public.products",
        "function public.product_count()",
        "trigger tags_touch",
        "sequence public.products_id_seq",
        "public.other_things draws from it too",
        &format!("{} may INSERT it", t.orders_login),
        "public.products on the target: exists with other columns",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert_eq!(refusals.len(), 10, "{text}");
    // The contract view is not a reason.
    assert!(!text.contains("products_v1"), "{text}");
    // Nothing was created on the target, nothing recorded on the source.
    let tables: i64 = t
        .target
        .client()
        .await
        .query_one("SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'deed')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "only the table that was there");
    let recorded: bool = t
        .shared
        .client()
        .await
        .query_one("SELECT to_regclass('deed.splits') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!recorded);
}

/// A managed service's admin on either side is refused before anything
/// is made, with the reason (which side, the role, what it lacks) and what
/// to ask for instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_refuses_an_admin_that_is_not_a_superuser() {
    use deed_testkit::managed::{Admin, prepare_server};
    let t = two("split_refuse_admin", "", "").await;
    let admin = Admin::Plain.login().unwrap();
    for (side, db) in [("shared database", &t.shared), ("target", &t.target)] {
        prepare_server(&db.superuser_client().await, Admin::Plain).await;
        let as_admin = deed_pg::connect_as(&db.url, admin, None)
            .await
            .unwrap_or_else(|e| panic!("connecting to the {side} as {admin}: {e}"));
        let (shared, target) = if side == "target" {
            (t.shared.deed_client().await, as_admin)
        } else {
            (as_admin, deed_pg::connect(&t.target.url).await.unwrap())
        };
        let mut split = deed_split::Split::open(
            &t.manifest,
            &t.catalog,
            shared,
            target,
            t.shared.url.clone(),
            t.target.url.clone(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let e = phases::prepare(&mut split, &t.manifest, false).await.unwrap_err();
        let SplitError::Refused { refusals, .. } = &e else { panic!("{e}") };
        let text = e.to_string();
        assert_eq!(refusals.len(), 1, "{text}");
        assert!(
            text.contains(&format!(
                "deed connects to the {side} as {admin}, which is not a superuser"
            )) && text.contains("run deed split with a superuser's URL"),
            "{text}"
        );
        // Nothing made on the target, nothing recorded on the source.
        let made: i64 = t
            .target
            .superuser_client()
            .await
            .query_one(
                "SELECT (SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'deed'))
                      + (SELECT count(*) FROM pg_publication)",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(made, 0, "the {side}'s refusal changed the target");
        let recorded: bool = t
            .shared
            .superuser_client()
            .await
            .query_one("SELECT to_regclass('deed.splits') IS NOT NULL", &[])
            .await
            .unwrap()
            .get(0);
        assert!(!recorded, "the {side}'s refusal recorded a split");
    }
}
