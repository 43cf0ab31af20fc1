//! What the relay tests share: an owner service with a table, a state
//! event and a domain event, and a saved copy of its slot.

#![allow(dead_code)]

use std::path::Path;

use deed_manifest::{Date, Manifest};
use deed_relay::RelayOptions;
use deed_testkit::TestDb;

pub struct Owner {
    pub db: TestDb,
    pub manifest: Manifest,
    pub service: String,
    pub login: String,
}

pub async fn owner(label: &str, extra_sql: &str) -> Owner {
    let db = TestDb::new(label).await;
    let service = db.service("catalog");
    let login = db.role("catalog_svc");
    let admin = db.client().await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price_cents int, secret text);
             CREATE ROLE \"{login}\" LOGIN; {extra_sql}"
        ))
        .await
        .unwrap();
    let text = format!(
        r#"version = 1
[services.{service}]
owns = ["public.products"]
logins = ["{login}"]
[[services.{service}.contracts]]
name = "products"
version = 1
from = "public.products"
columns = ["id", "name", "price_cents"]
[[services.{service}.events]]
name = "product_changed"
from = "public.products"
key = ["id"]
contract = "products.v1"
[[services.{service}.events]]
name = "price_alert"
"#
    );
    let manifest = Manifest::parse(Path::new("deed.toml"), &text, &|_| None).unwrap();
    deed_contracts::apply(&admin, &manifest, Date::today(), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Owner { db, manifest, service, login }
}

/// A copy of the service's slot, to deliver the same changes again from
/// where the slot was when it was saved.
pub struct SavedSlot {
    admin: deed_pg::Client,
    slot: String,
    saved: String,
}

impl SavedSlot {
    pub async fn save(o: &Owner) -> SavedSlot {
        let admin = o.db.client().await;
        let slot: String = admin
            .query_one(
                "SELECT slot_name::text FROM pg_replication_slots WHERE database = current_database()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let saved = format!("{slot}_saved");
        admin
            .execute("SELECT pg_copy_logical_replication_slot($1, $2)", &[&slot, &saved])
            .await
            .unwrap();
        SavedSlot { admin, slot, saved }
    }

    /// The service's slot back where it was saved.
    pub async fn rewind(&self) {
        let (admin, slot, saved) = (&self.admin, &self.slot, &self.saved);
        admin.execute("SELECT pg_drop_replication_slot($1)", &[slot]).await.unwrap();
        admin
            .execute("SELECT pg_copy_logical_replication_slot($1, $2)", &[saved, slot])
            .await
            .unwrap();
    }

    pub async fn drop(self) {
        self.admin.execute("SELECT pg_drop_replication_slot($1)", &[&self.saved]).await.unwrap();
    }
}

pub fn options(o: &Owner, sink: &str) -> RelayOptions {
    let mut opts = RelayOptions::new(o.manifest.clone(), &o.service, &o.db.url, sink);
    opts.until_idle = true;
    opts
}
