//! The example shop: the seeds' scenarios in one shared schema.

use crate::error::DemoError;
use crate::target::Target;

pub const DEMO_DATABASE: &str = "deed_demo";
/// The consumers' side of rung 2: the relay's Postgres inbox.
pub const INBOX_DATABASE: &str = "deed_demo_inbox";

/// One service of the shop.
pub struct DemoService {
    pub name: &'static str,
    pub description: &'static str,
    pub login: &'static str,
    pub owns: &'static [&'static str],
}

pub const SERVICES: &[DemoService] = &[
    DemoService {
        name: "catalog",
        description: "Products and vendors",
        login: "catalog_svc",
        owns: &["public.products", "public.vendors"],
    },
    DemoService {
        name: "users",
        description: "Customer accounts",
        login: "users_svc",
        owns: &["public.users"],
    },
    DemoService {
        name: "orders",
        description: "Orders and their items",
        login: "orders_svc",
        owns: &["public.orders", "public.order_items"],
    },
    DemoService {
        name: "fulfillment",
        description: "Shipments",
        login: "fulfillment_svc",
        owns: &["public.shipments"],
    },
];

/// One published contract version of the demo.
pub struct DemoContract {
    pub service: &'static str,
    pub name: &'static str,
    pub from: &'static str,
    pub columns: &'static [&'static str],
    pub readers: &'static [&'static str],
}

/// Rung 1: what each owner publishes, and who reads it.
pub const CONTRACTS: &[DemoContract] = &[
    DemoContract {
        service: "catalog",
        name: "products",
        from: "public.products",
        columns: &["id", "name", "price_cents"],
        readers: &["orders", "fulfillment"],
    },
    DemoContract {
        service: "catalog",
        name: "feature_flags",
        from: "public.feature_flags",
        columns: &["name", "enabled"],
        readers: &["orders"],
    },
    DemoContract {
        service: "users",
        name: "users",
        from: "public.users",
        columns: &["id", "email"],
        readers: &["orders"],
    },
    DemoContract {
        service: "orders",
        name: "orders",
        from: "public.orders",
        columns: &["id", "customer_email", "status"],
        readers: &["fulfillment"],
    },
    DemoContract {
        service: "orders",
        name: "order_items",
        from: "public.order_items",
        columns: &["order_id", "product_id", "quantity"],
        readers: &["fulfillment"],
    },
    DemoContract {
        service: "fulfillment",
        name: "shipments",
        from: "public.shipments",
        columns: &["order_id", "status", "shipped_at"],
        readers: &["orders"],
    },
];

/// Rung 1's manifest: catalog also takes the feature flags, every owner
/// publishes what others read, and every consumer declares its reads.
pub fn manifest_text_contracted() -> String {
    let mut out = String::from("version = 1\n\n[database]\nurl = \"${DATABASE_URL}\"\n");
    for s in SERVICES {
        let mut owns: Vec<String> = s.owns.iter().map(|o| format!("\"{o}\"")).collect();
        if s.name == "catalog" {
            owns.push("\"public.feature_flags\"".into());
        }
        let reads: Vec<String> = CONTRACTS
            .iter()
            .filter(|c| c.readers.contains(&s.name))
            .map(|c| format!("\"{}.{}.v1\"", c.service, c.name))
            .collect();
        out.push_str(&format!(
            "\n[services.{}]\ndescription = \"{}\"\nowns = [{}]\nlogins = [\"{}\"]\nreads = [{}]\n",
            s.name,
            s.description,
            owns.join(", "),
            s.login,
            reads.join(", ")
        ));
        for c in CONTRACTS.iter().filter(|c| c.service == s.name) {
            let cols: Vec<String> = c.columns.iter().map(|x| format!("\"{x}\"")).collect();
            out.push_str(&format!(
                "\n[[services.{}.contracts]]\nname = \"{}\"\nversion = 1\nfrom = \"{}\"\ncolumns = [{}]\n",
                s.name,
                c.name,
                c.from,
                cols.join(", ")
            ));
        }
    }
    out
}

/// The shop's ownership lines as a manifest.
pub fn manifest_text() -> String {
    let mut out = String::from("version = 1\n\n[database]\nurl = \"${DATABASE_URL}\"\n");
    for s in SERVICES {
        let owns: Vec<String> = s.owns.iter().map(|o| format!("\"{o}\"")).collect();
        out.push_str(&format!(
            "\n[services.{}]\ndescription = \"{}\"\nowns = [{}]\nlogins = [\"{}\"]\n",
            s.name,
            s.description,
            owns.join(", "),
            s.login
        ));
    }
    out
}

/// Tables, seed rows, and the shared-database starting point: every
/// service's role may read and write every table.
const SCHEMA: &str = r#"
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;

CREATE TABLE vendors (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    contact_email text NOT NULL
);
CREATE TABLE products (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vendor_id   bigint NOT NULL REFERENCES vendors,
    name        text NOT NULL,
    price_cents integer NOT NULL,
    currency    text NOT NULL DEFAULT 'EUR',
    cost_cents  integer NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    name          text NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES users,
    customer_email text NOT NULL,
    status         text NOT NULL,
    total_cents    integer NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE order_items (
    order_id         bigint NOT NULL REFERENCES orders,
    product_id       bigint NOT NULL REFERENCES products,
    quantity         integer NOT NULL,
    unit_price_cents integer NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
CREATE TABLE shipments (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id   bigint NOT NULL REFERENCES orders,
    carrier    text NOT NULL,
    status     text NOT NULL,
    shipped_at timestamptz
);
CREATE TABLE feature_flags (
    name    text PRIMARY KEY,
    enabled boolean NOT NULL
);

INSERT INTO vendors (name, contact_email)
SELECT 'Vendor ' || i, 'sales@vendor' || i || '.example' FROM generate_series(1, 20) i;
INSERT INTO products (vendor_id, name, price_cents, cost_cents)
SELECT 1 + i % 20, 'Product ' || i, 500 + i * 7, 300 + i * 4 FROM generate_series(1, 200) i;
INSERT INTO users (email, name, password_hash)
SELECT 'user' || i || '@shop.example', 'User ' || i, md5('pw' || i) FROM generate_series(1, 500) i;
INSERT INTO feature_flags VALUES ('express_shipping', true), ('gift_wrap', false), ('new_checkout', true);
-- Orders already waiting to ship, so fulfillment has work from its first
-- round however the services' workloads interleave.
INSERT INTO orders (user_id, customer_email, status, total_cents)
SELECT i, 'user' || i || '@shop.example', 'placed', 1000 + i FROM generate_series(1, 10) i;
INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents)
SELECT i, i, 1, 1000 + i FROM generate_series(1, 10) i;
"#;

pub(crate) async fn build(target: &Target) -> Result<(), DemoError> {
    let admin = target.setup_client().await?;
    admin.batch_execute(SCHEMA).await.map_err(|e| {
        let hint = if e.to_string().contains("pg_stat_statements") || e.as_db_error().is_some_and(|d| d.message().contains("pg_stat_statements")) {
            " (pg_stat_statements must be in shared_preload_libraries; run the demo without --database-url to use a private cluster)"
        } else {
            ""
        };
        DemoError::Setup(format!("building the shop failed: {}{hint}", deed_pg::PgError::query("schema", e)))
    })?;
    for s in SERVICES {
        admin
            .batch_execute(&format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO \"{0}\";
                 GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO \"{0}\";",
                s.login
            ))
            .await
            .map_err(|e| DemoError::sql("granting the shared-database privileges", e))?;
    }
    // Start the catalogue from the services' own traffic only.
    admin
        .batch_execute("SELECT pg_stat_statements_reset()")
        .await
        .map_err(|e| DemoError::sql("resetting pg_stat_statements", e))?;
    Ok(())
}
