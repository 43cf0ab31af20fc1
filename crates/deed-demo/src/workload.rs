//! Each service's traffic, run concurrently as its own role, with the
//! coupling the seeds describe built in.

use tokio_postgres::Client;

use crate::error::DemoError;
use crate::shop::SERVICES;
use crate::target::Target;

/// How many request rounds each service runs.
const ROUNDS: usize = 60;

pub const DESCRIPTIONS: [(&str, &str); 4] = [
    ("catalog", "lists and reprices products; reads the shared feature flags"),
    ("users", "changes emails, then rewrites the copies in orders itself"),
    (
        "orders",
        "places orders: SELECT * on products, copies the email from users, checks shipments",
    ),
    ("fulfillment", "joins orders, items and products to pack them, then marks orders shipped"),
];

#[derive(Debug, Clone, Default)]
pub struct WorkloadStats {
    pub statements: u64,
}

pub(crate) async fn run(target: &Target) -> Result<WorkloadStats, DemoError> {
    let catalog = target.client_as("catalog_svc").await?;
    let users = target.client_as("users_svc").await?;
    let orders = target.client_as("orders_svc").await?;
    let fulfillment = target.client_as("fulfillment_svc").await?;
    tokio::try_join!(
        run_catalog(&catalog),
        run_users(&users),
        run_orders(&orders),
        run_fulfillment(&fulfillment)
    )?;
    recorded(target).await
}

/// What pg_stat_statements recorded of the four services' roles: the
/// number the audit reports, so the narration and the audit agree (the
/// workload's own count misses what drivers send around the statements).
async fn recorded(target: &Target) -> Result<WorkloadStats, DemoError> {
    let logins: Vec<String> = SERVICES.iter().map(|s| s.login.to_string()).collect();
    let calls: i64 = target
        .setup_client()
        .await?
        .query_one(
            "SELECT coalesce(sum(calls), 0)::int8 FROM pg_stat_statements s
               JOIN pg_roles r ON r.oid = s.userid
              WHERE r.rolname = ANY($1)
                AND s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[&logins],
        )
        .await
        .map_err(|e| DemoError::sql("reading what pg_stat_statements recorded", e))?
        .get(0);
    Ok(WorkloadStats { statements: calls as u64 })
}

fn sql(e: tokio_postgres::Error) -> DemoError {
    DemoError::sql("running the demo workload", e)
}

async fn run_catalog(c: &Client) -> Result<(), DemoError> {
    for i in 0..ROUNDS as i64 {
        c.query(
            "SELECT id, name, price_cents FROM products WHERE vendor_id = $1 ORDER BY name",
            &[&(1 + i % 20)],
        )
        .await
        .map_err(sql)?;
        c.execute(
            "UPDATE products SET price_cents = price_cents + $1, updated_at = now() WHERE id = $2",
            &[&1i32, &(1 + i * 3 % 200)],
        )
        .await
        .map_err(sql)?;
        c.query("SELECT enabled FROM feature_flags WHERE name = $1", &[&"new_checkout"])
            .await
            .map_err(sql)?;
        if i % 10 == 0 {
            c.query(
                "SELECT v.name, count(p.id) AS products FROM vendors v LEFT JOIN products p ON p.vendor_id = v.id GROUP BY v.name",
                &[],
            )
            .await
            .map_err(sql)?;
        }
    }
    Ok(())
}

async fn run_users(c: &Client) -> Result<(), DemoError> {
    for i in 0..ROUNDS as i64 {
        let id = 1 + (i * 7) % 500;
        c.query("SELECT id, email, name FROM users WHERE id = $1", &[&id]).await.map_err(sql)?;
        if i % 4 == 0 {
            let email = format!("user{id}.{i}@mail.example");
            c.execute("UPDATE users SET email = $1 WHERE id = $2", &[&email, &id])
                .await
                .map_err(sql)?;
            // The denormalized copy, kept in sync by hand: a write into orders.
            c.execute("UPDATE orders SET customer_email = $1 WHERE user_id = $2", &[&email, &id])
                .await
                .map_err(sql)?;
        }
    }
    Ok(())
}

async fn run_orders(c: &Client) -> Result<(), DemoError> {
    for i in 0..ROUNDS as i64 {
        let product_id = 1 + (i * 13) % 200;
        let user_id = 1 + (i * 7) % 500;
        // SELECT * on another service's table.
        let product = c
            .query_one("SELECT * FROM products WHERE id = $1", &[&product_id])
            .await
            .map_err(sql)?;
        let price: i32 = product.get("price_cents");
        let quantity = 1 + (i % 3) as i32;
        // The customer's email is copied into the order: a read of users.
        let order = c
            .query_one(
                "INSERT INTO orders (user_id, customer_email, status, total_cents) \
                 SELECT id, email, 'placed', $2 FROM users WHERE id = $1 RETURNING id",
                &[&user_id, &(price * quantity)],
            )
            .await
            .map_err(sql)?;
        let order_id: i64 = order.get(0);
        c.execute(
            "INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents) VALUES ($1, $2, $3, $4)",
            &[&order_id, &product_id, &quantity, &price],
        )
        .await
        .map_err(sql)?;
        c.query("SELECT enabled FROM feature_flags WHERE name = $1", &[&"express_shipping"])
            .await
            .map_err(sql)?;
        if i > 5 {
            c.query(
                "SELECT status, shipped_at FROM shipments WHERE order_id = $1",
                &[&(order_id - 5)],
            )
            .await
            .map_err(sql)?;
        }
    }
    Ok(())
}

async fn run_fulfillment(c: &Client) -> Result<(), DemoError> {
    for i in 0..ROUNDS {
        // A cross-service join: three owners' tables in one query.
        let rows = c
            .query(
                "SELECT o.id, o.customer_email, oi.quantity, p.name FROM orders o \
                 JOIN order_items oi ON oi.order_id = o.id JOIN products p ON p.id = oi.product_id \
                 WHERE o.status = 'placed' ORDER BY o.id LIMIT 5",
                &[],
            )
            .await
            .map_err(sql)?;
        let carrier = if i % 2 == 0 { "DHL" } else { "UPS" };
        for row in rows.iter().take(2) {
            let order_id: i64 = row.get(0);
            let shipment = c
                .query_one("INSERT INTO shipments (order_id, carrier, status) VALUES ($1, $2, 'packed') RETURNING id", &[&order_id, &carrier])
                .await
                .map_err(sql)?;
            let shipment_id: i64 = shipment.get(0);
            c.execute(
                "UPDATE shipments SET status = 'shipped', shipped_at = now() WHERE id = $1",
                &[&shipment_id],
            )
            .await
            .map_err(sql)?;
            // Writing another service's table.
            c.execute("UPDATE orders SET status = 'shipped' WHERE id = $1", &[&order_id])
                .await
                .map_err(sql)?;
        }
        tokio::task::yield_now().await;
    }
    Ok(())
}

/// Rung 1: the same services, each reading only its own tables and the
/// contract views it declares. users no longer writes into orders; orders
/// refreshes its copy of the email and the shipping status from contracts.
pub const CONTRACTED_DESCRIPTIONS: [(&str, &str); 4] = [
    ("catalog", "as before, and now owns the feature flags"),
    ("users", "changes emails; the copies in orders are no longer its business"),
    (
        "orders",
        "reads catalog_api.products_v1 and users_api.users_v1, refreshes emails and statuses from contracts",
    ),
    ("fulfillment", "joins orders_api and catalog_api views, writes only its shipments"),
];

pub(crate) async fn run_contracted(target: &Target) -> Result<WorkloadStats, DemoError> {
    let catalog = target.client_as("catalog_svc").await?;
    let users = target.client_as("users_svc").await?;
    let orders = target.client_as("orders_svc").await?;
    let fulfillment = target.client_as("fulfillment_svc").await?;
    tokio::try_join!(
        run_catalog(&catalog),
        run_users_contracted(&users),
        run_orders_contracted(&orders),
        run_fulfillment_contracted(&fulfillment)
    )?;
    recorded(target).await
}

async fn run_users_contracted(c: &Client) -> Result<(), DemoError> {
    for i in 0..ROUNDS as i64 {
        let id = 1 + (i * 7) % 500;
        c.query("SELECT id, email, name FROM users WHERE id = $1", &[&id]).await.map_err(sql)?;
        if i % 4 == 0 {
            let email = format!("user{id}.{i}.v2@mail.example");
            c.execute("UPDATE users SET email = $1 WHERE id = $2", &[&email, &id])
                .await
                .map_err(sql)?;
        }
    }
    Ok(())
}

async fn run_orders_contracted(c: &Client) -> Result<(), DemoError> {
    for i in 0..ROUNDS as i64 {
        let product_id = 1 + (i * 13) % 200;
        let user_id = 1 + (i * 7) % 500;
        let product = c
            .query_one(
                "SELECT id, name, price_cents FROM catalog_api.products_v1 WHERE id = $1",
                &[&product_id],
            )
            .await
            .map_err(sql)?;
        let price: i32 = product.get("price_cents");
        let quantity = 1 + (i % 3) as i32;
        let order = c
            .query_one(
                "INSERT INTO orders (user_id, customer_email, status, total_cents) \
                 SELECT id, email, 'placed', $2 FROM users_api.users_v1 WHERE id = $1 RETURNING id",
                &[&user_id, &(price * quantity)],
            )
            .await
            .map_err(sql)?;
        let order_id: i64 = order.get(0);
        c.execute(
            "INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents) VALUES ($1, $2, $3, $4)",
            &[&order_id, &product_id, &quantity, &price],
        )
        .await
        .map_err(sql)?;
        c.query(
            "SELECT enabled FROM catalog_api.feature_flags_v1 WHERE name = $1",
            &[&"express_shipping"],
        )
        .await
        .map_err(sql)?;
        if i % 5 == 0 {
            // The copies orders keeps, refreshed by orders itself.
            c.execute(
                "UPDATE orders o SET customer_email = u.email FROM users_api.users_v1 u \
                 WHERE u.id = o.user_id AND o.customer_email <> u.email",
                &[],
            )
            .await
            .map_err(sql)?;
            c.execute(
                "UPDATE orders o SET status = 'shipped' FROM fulfillment_api.shipments_v1 s \
                 WHERE s.order_id = o.id AND s.status = 'shipped' AND o.status <> 'shipped'",
                &[],
            )
            .await
            .map_err(sql)?;
        }
    }
    Ok(())
}

async fn run_fulfillment_contracted(c: &Client) -> Result<(), DemoError> {
    for i in 0..ROUNDS {
        let rows = c
            .query(
                "SELECT o.id, o.customer_email, oi.quantity, p.name FROM orders_api.orders_v1 o \
                 JOIN orders_api.order_items_v1 oi ON oi.order_id = o.id \
                 JOIN catalog_api.products_v1 p ON p.id = oi.product_id \
                 WHERE o.status = 'placed' AND NOT EXISTS (SELECT 1 FROM shipments s WHERE s.order_id = o.id) \
                 ORDER BY o.id LIMIT 5",
                &[],
            )
            .await
            .map_err(sql)?;
        let carrier = if i % 2 == 0 { "DHL" } else { "UPS" };
        for row in rows.iter().take(2) {
            let order_id: i64 = row.get(0);
            let shipment = c
                .query_one("INSERT INTO shipments (order_id, carrier, status) VALUES ($1, $2, 'packed') RETURNING id", &[&order_id, &carrier])
                .await
                .map_err(sql)?;
            let shipment_id: i64 = shipment.get(0);
            c.execute(
                "UPDATE shipments SET status = 'shipped', shipped_at = now() WHERE id = $1",
                &[&shipment_id],
            )
            .await
            .map_err(sql)?;
        }
        tokio::task::yield_now().await;
    }
    Ok(())
}

/// Statements from rung 0 that the roles may no longer run, with who runs
/// them: each must now fail with "permission denied".
pub const NOW_DENIED: [(&str, &str); 4] = [
    ("orders_svc", "SELECT * FROM products WHERE id = 1"),
    ("orders_svc", "SELECT email FROM users WHERE id = 1"),
    ("fulfillment_svc", "UPDATE orders SET status = 'shipped' WHERE id = 1"),
    ("users_svc", "UPDATE orders SET customer_email = 'x@example.com' WHERE user_id = 1"),
];

/// Runs each formerly coupled statement as its service's role and returns
/// the server's answer.
pub(crate) async fn try_denied(
    target: &Target,
) -> Result<Vec<(String, String, Result<(), String>)>, DemoError> {
    let mut out = Vec::new();
    for (login, statement) in NOW_DENIED {
        let c = target.client_as(login).await?;
        let result = match c.batch_execute(statement).await {
            Ok(()) => Ok(()),
            Err(e) => {
                Err(e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string()))
            }
        };
        out.push((login.to_string(), statement.to_string(), result));
    }
    Ok(out)
}
