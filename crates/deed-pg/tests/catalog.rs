//! The catalog against a real server: name resolution through the search
//! path, columns, and views resolved to the tables beneath them.

use deed_ident::SchemaLookup;
use deed_ident::{Ident, QualifiedName};
use deed_pg::{Catalog, RelationKind};
use deed_testkit::TestDb;

fn q(s: &str) -> QualifiedName {
    QualifiedName::parse_sql(s).unwrap()
}

#[tokio::test]
async fn resolves_names_columns_and_views() {
    let db = TestDb::new("catalog").await;
    let c = db.client().await;
    c.batch_execute(
        "CREATE SCHEMA sales;
         CREATE TABLE public.orders (id int, status text);
         CREATE TABLE sales.orders (id int, region text);
         CREATE TABLE public.users (id int, email text);
         CREATE VIEW public.order_emails AS SELECT o.id, u.email FROM public.orders o JOIN public.users u ON u.id = o.id;
         CREATE VIEW sales.report AS SELECT * FROM public.order_emails;
         CREATE TABLE \"Mixed Case\" (\"Id\" int);",
    )
    .await
    .unwrap();
    let path = [Ident::new("sales").unwrap(), Ident::new("public").unwrap()];
    let cat = Catalog::load(&c, &path).await.unwrap();
    assert_eq!(cat.resolve(None, "orders"), Some(q("sales.orders")));
    assert_eq!(cat.resolve(None, "users"), Some(q("public.users")));
    assert_eq!(cat.resolve(None, "pg_class"), Some(q("pg_catalog.pg_class")));
    assert_eq!(cat.resolve(None, "nowhere"), Some(q("sales.nowhere")));
    assert_eq!(cat.columns(&q("sales.orders")).unwrap(), ["id", "region"]);
    assert_eq!(cat.columns(&q("public.\"Mixed Case\"")).unwrap(), ["Id"]);
    assert_eq!(cat.kind(&q("sales.report")), Some(RelationKind::View));
    assert_eq!(cat.base_relations(&q("sales.report")), [q("public.orders"), q("public.users")]);
}
