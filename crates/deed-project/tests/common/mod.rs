//! A producer (catalog, users) in the shared database and a consumer
//! (orders) with its own database, on a real PostgreSQL.

#![allow(dead_code)]

use std::path::Path;

use deed_manifest::{Date, Manifest};
use deed_project::{ProjectOptions, ProjectReport};
use deed_relay::RelayOptions;
use deed_testkit::TestDb;
use serde_json::Value;

pub struct Shop {
    pub owner: TestDb,
    pub consumer: TestDb,
    pub manifest: Manifest,
    pub catalog: String,
    pub orders: String,
    pub catalog_login: String,
    pub orders_login: String,
}

/// `before` runs on the owner before `deed apply` (rows that exist before
/// capture); `projections` is the consumer's projections' TOML, with
/// `{catalog}` standing for the producer's service name.
pub async fn shop(label: &str, before: &str, consumer_sql: &str, projections: &str) -> Shop {
    shop_as(label, deed_testkit::test_admin(), before, consumer_sql, projections).await
}

/// Like [`shop`], with deed and the fixtures running as `admin`.
pub async fn shop_as(
    label: &str,
    admin: deed_testkit::Admin,
    before: &str,
    consumer_sql: &str,
    projections: &str,
) -> Shop {
    let owner = TestDb::new_as(label, admin).await;
    let consumer = TestDb::new_as(&format!("{label}_orders"), admin).await;
    let catalog = owner.service("catalog");
    let orders = owner.service("orders");
    let catalog_login = owner.role("catalog_svc");
    let orders_login = owner.role("orders_svc");
    owner
        .client()
        .await
        .batch_execute(&format!(
            "CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price_cents int, stock int NOT NULL DEFAULT 0);
             CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, login_count int NOT NULL DEFAULT 0);
             CREATE ROLE \"{catalog_login}\" LOGIN; CREATE ROLE \"{orders_login}\" LOGIN;
             {before}"
        ))
        .await
        .unwrap();
    consumer.client().await.batch_execute(consumer_sql).await.unwrap();
    let projections = projections.replace("{catalog}", &catalog).replace("{orders}", &orders);
    let text = format!(
        r#"version = 1
[services.{catalog}]
owns = ["public.products", "public.users"]
logins = ["{catalog_login}"]
[[services.{catalog}.contracts]]
name = "products"
version = 1
from = "public.products"
columns = ["id", "name", "price_cents"]
[[services.{catalog}.contracts]]
name = "users"
version = 1
from = "public.users"
columns = ["id", "email"]
[[services.{catalog}.events]]
name = "product_changed"
from = "public.products"
key = ["id"]
contract = "products.v1"
[[services.{catalog}.events]]
name = "user_changed"
from = "public.users"
key = ["id"]
contract = "users.v1"

[services.{orders}]
logins = ["{orders_login}"]
reads = ["{catalog}.products.v1", "{catalog}.users.v1"]
consumes = ["{catalog}.product_changed", "{catalog}.user_changed"]
database = "{url}"
{projections}
"#,
        url = consumer.url,
    );
    let manifest =
        Manifest::parse(Path::new("deed.toml"), &text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    deed_contracts::apply(&owner.deed_client().await, &manifest, Date::today(), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Shop { owner, consumer, manifest, catalog, orders, catalog_login, orders_login }
}

impl Shop {
    /// Delivers everything committed so far to the consumer's inbox.
    pub async fn relay(&self) {
        let mut opts = RelayOptions::new(
            self.manifest.clone(),
            &self.catalog,
            &self.owner.url,
            &self.consumer.url,
        );
        opts.until_idle = true;
        deed_relay::run(opts).await.unwrap_or_else(|e| panic!("relay: {e}"));
    }

    pub fn options(&self) -> ProjectOptions {
        let mut opts = ProjectOptions::new(
            self.manifest.clone(),
            &self.orders,
            &self.owner.url,
            &self.consumer.url,
        );
        opts.until_idle = true;
        opts
    }

    pub async fn project(&self, change: impl FnOnce(&mut ProjectOptions)) -> ProjectReport {
        let mut opts = self.options();
        change(&mut opts);
        deed_project::run(opts).await.unwrap_or_else(|e| panic!("project: {e}"))
    }

    /// Runs SQL on the owner as the catalog service.
    pub async fn write(&self, sql: &str) {
        self.owner.client().await.batch_execute(sql).await.unwrap();
    }

    /// The contract view's rows and the projection's, as JSON, by id.
    pub async fn both(&self, view: &str, table: &str, cols: &str) -> (Value, Value) {
        let q = |rel: &str| {
            format!(
                "SELECT coalesce(json_agg(t ORDER BY id), '[]')::text FROM (SELECT {cols} FROM {rel}) t"
            )
        };
        let api = format!("{}_api.{view}", self.catalog);
        let source: String =
            self.owner.client().await.query_one(&q(&api), &[]).await.unwrap().get(0);
        let copy: String =
            self.consumer.client().await.query_one(&q(table), &[]).await.unwrap().get(0);
        (serde_json::from_str(&source).unwrap(), serde_json::from_str(&copy).unwrap())
    }

    pub async fn assert_products_equal(&self) {
        let (source, copy) =
            self.both("products_v1", "public.product_copies", "id, name, price_cents").await;
        assert!(
            source == copy,
            "projection differs from the contract view:\nsource {source}\ncopy   {copy}"
        );
    }

    pub async fn consumer_value(&self, sql: &str) -> Value {
        let text: Option<String> =
            self.consumer.client().await.query_one(sql, &[]).await.unwrap().get(0);
        text.map_or(Value::Null, |t| serde_json::from_str(&t).unwrap())
    }
}

pub const PRODUCTS: &str = r#"
[[services.{orders}.projections]]
name = "products"
event = "{catalog}.product_changed"
into = "public.product_copies"
replaces = "{catalog}.products.v1"
"#;
