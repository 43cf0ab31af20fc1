//! Rung 2, the consumer's half: orders keeps its own copy of catalog's
//! products in its own database (backfilled, then fed by events), and
//! seed 003's handler keeps orders' copies of its customers' emails
//! current from `users.user_changed`, so users no longer writes orders'
//! data. The projector is killed mid-stream and the copies stay exact.

use std::path::Path;
use std::time::Duration;

use deed_contracts::ApplyOutcome;
use deed_manifest::{Date, Manifest};
use deed_project::{ProjectOptions, ProjectReport};

use crate::bus::DemoBus;
use crate::error::DemoError;
use crate::narrate::Narrator;
use crate::rung2::relay_until_idle;
use crate::target::Target;

/// What the projections showed, for tests to check.
#[derive(Debug, Default, Clone)]
pub struct Projections {
    /// Rows the backfill copied (they existed before capture started).
    pub backfilled: u64,
    /// Rows of catalog_api.products_v2 and of orders' copy at the end.
    pub source_rows: usize,
    pub copy_rows: usize,
    /// Whether the copy equals the contract view, row for row.
    pub products_equal: bool,
    /// Emails users changed, and names (not in users.v1, so no event).
    pub emails_changed: u64,
    pub names_changed: u64,
    pub user_events: i64,
    /// Orders whose copy of the customer's email differs from users'.
    pub stale_emails: usize,
    pub killed_process: bool,
    pub applied_after_kill: u64,
    /// Events in orders' inbox at the end: none when a bus was given.
    pub inbox_rows: i64,
    /// What `deed status --bus` counted waiting on JetStream or Kafka at
    /// the end (`None` on the inbox and RabbitMQ).
    pub pending_on_bus: Option<u64>,
}

const PROJECTIONS: &str = r#"
[[services.users.events]]
name = "user_changed"
from = "public.users"
key = ["id"]
contract = "users.v1"

[[services.orders.projections]]
name = "products"
event = "catalog.product_changed"
into = "public.product_copies"
replaces = "catalog.products.v2"

[[services.orders.projections]]
name = "customer_emails"
event = "users.user_changed"
sql = "UPDATE public.customer_emails SET customer_email = :payload.email WHERE user_id = :key.id"
"#;

/// Orders gets its own database, consumes users' event, and declares its
/// projections.
fn manifest_with_projections(text: &str) -> String {
    let text = text.replacen(
        "consumes = [\"catalog.product_changed\"]\n",
        "consumes = [\"catalog.product_changed\", \"users.user_changed\"]\ndatabase = \"${ORDERS_DATABASE_URL}\"\n",
        1,
    );
    format!("{text}{PROJECTIONS}")
}

pub(crate) async fn run(
    target: &Target,
    n: &Narrator,
    rung2_manifest: &str,
    deed_exe: Option<&Path>,
    bus: &DemoBus,
) -> Result<(Projections, String), DemoError> {
    let mut out = Projections::default();
    let shop = target.shop_url();
    let own = target.inbox_url();
    let text = manifest_with_projections(rung2_manifest);
    let lookup = |name: &str| match name {
        "DATABASE_URL" => Some(shop.clone()),
        "ORDERS_DATABASE_URL" => Some(own.clone()),
        _ => None,
    };
    let manifest = Manifest::parse(Path::new("deed.toml"), &text, &lookup).map_err(|e| {
        DemoError::Setup(format!("the demo's projections manifest is invalid: {e}"))
    })?;

    n.step(&format!(
        "orders keeps its own copies, in its own database, from the events in {}",
        bus.place()
    ));
    let (users_event, orders_part) = PROJECTIONS.trim().split_once("\n\n").expect("two parts");
    n.code(&format!(
        "{users_event}\n\n[services.orders]\nconsumes = [\"catalog.product_changed\", \"users.user_changed\"]\ndatabase = \"${{ORDERS_DATABASE_URL}}\"\n\n{orders_part}"
    ));
    n.command("deed apply");
    let admin = target.shop_client().await?;
    match deed_contracts::apply(&admin, &manifest, Date::today(), &[]).await? {
        ApplyOutcome::Applied(changes) => n.detail(&format!(
            "users' capture: {} changes (its publication and slot)",
            changes.len()
        )),
        ApplyOutcome::NothingToDo => n.detail("nothing to do"),
    }
    // Until now users rewrote orders.customer_email itself (seed 003), and
    // orders refreshed its copies on its own schedule, so some may lag;
    // orders refreshes them one last time as it takes them along to its
    // own database, and from here on users' events keep them current.
    let orders_db = deed_pg::connect_plain(&own).await?;
    let copies: Vec<(i64, i64, String)> = admin
        .query(
            "SELECT o.id, o.user_id, coalesce(u.email, o.customer_email)
               FROM public.orders o LEFT JOIN public.users u ON u.id = o.user_id ORDER BY o.id",
            &[],
        )
        .await
        .map_err(|e| DemoError::sql("reading orders' email copies", e))?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    orders_db
        .batch_execute(
            "CREATE TABLE public.customer_emails (order_id bigint PRIMARY KEY, user_id bigint NOT NULL, customer_email text NOT NULL);
             CREATE INDEX ON public.customer_emails (user_id);",
        )
        .await
        .map_err(|e| DemoError::sql("creating orders' customer_emails", e))?;
    for (order, user, email) in &copies {
        orders_db
            .execute(
                "INSERT INTO public.customer_emails VALUES ($1, $2, $3)",
                &[order, user, email],
            )
            .await
            .map_err(|e| DemoError::sql("copying orders' email copies", e))?;
    }
    n.detail(&format!(
        "orders' {} copies of its customers' emails now live in its database, as public.customer_emails",
        copies.len()
    ));
    n.blank();

    let from = bus.source_flag();
    n.command(&format!("deed project --service orders{from} --until-idle"));
    let first = project(&manifest, &shop, &own, bus, |_| {}).await?;
    out.backfilled = first.projections.iter().map(|p| p.backfilled_rows).sum();
    n.output(first.render().trim_end());
    n.explain(&[
        "The products existed before capture began, so no event carries them: the projection",
        "first copied them from catalog_api.products_v2, reading as orders_svc (rung 1's grants",
        "still decide), after a fence in the WAL; events after the fence are then applied on top.",
    ]);

    n.step("users changes emails (and names, which users.v1 does not publish); catalog reprices");
    let users = target.client_as("users_svc").await?;
    out.emails_changed = users
        .execute(
            "UPDATE users SET email = 'new.' || email WHERE id IN (SELECT id FROM users ORDER BY id LIMIT 5)",
            &[],
        )
        .await
        .map_err(|e| DemoError::sql("changing emails", e))?;
    out.names_changed = users
        .execute("UPDATE users SET name = name || ' Jr.' WHERE id IN (SELECT id FROM users ORDER BY id DESC LIMIT 5)", &[])
        .await
        .map_err(|e| DemoError::sql("changing names", e))?;
    let catalog = target.client_as("catalog_svc").await?;
    let mut repriced = 0;
    for _ in 0..10 {
        repriced += catalog
            .execute("UPDATE products SET price_eur = price_eur + 0.01, updated_at = now()", &[])
            .await
            .map_err(|e| DemoError::sql("repricing", e))?;
    }
    n.detail(&format!(
        "users changed {} emails and {} names; catalog repriced every product 10 times ({repriced} changes)",
        out.emails_changed, out.names_changed
    ));
    let to = if bus.is_inbox() { "$ORDERS_DATABASE_URL".to_string() } else { bus.shown() };
    for service in ["users", "catalog"] {
        n.command(&format!("deed relay --service {service} --to {to} --until-idle"));
        let r = relay_until_idle(&manifest, service, &shop, &bus.url).await?;
        n.output(&format!("deed relay: delivered {} events", r.events));
    }
    out.user_events =
        bus.distinct_by_type("users").await?.get("users.user_changed").copied().unwrap_or(0) as i64;
    n.detail(&format!(
        "{} users.user_changed events: the name changes touched no published column, so they are none",
        out.user_events
    ));
    n.blank();

    n.step("Run the projector, and kill it mid-stream");
    n.command(&format!("deed project --service orders{from}"));
    out.killed_process = match deed_exe {
        Some(exe) => kill_process(exe, &text, &shop, &own, bus, &orders_db).await?,
        None => abort_task(&manifest, &shop, &own, bus, &orders_db).await?,
    };
    n.detail(if out.killed_process {
        "the projector process was killed (SIGKILL) between its transactions"
    } else {
        "the projector was stopped abruptly mid-stream"
    });
    n.command(&format!("deed project --service orders{from} --until-idle"));
    let last = project(&manifest, &shop, &own, bus, |_| {}).await?;
    out.applied_after_kill = last.projections.iter().map(|p| p.applied).sum();
    n.output(last.render().trim_end());

    out.inbox_rows = inbox_rows(&orders_db).await?;
    compare(&admin, &orders_db, &mut out).await?;
    n.step("The copies are exact");
    n.detail(&format!(
        "catalog_api.products_v2: {} rows; orders' product_copies: {} rows; {}",
        out.source_rows,
        out.copy_rows,
        if out.products_equal { "equal, row for row" } else { "DIFFERENT" }
    ));
    n.detail(&format!(
        "orders whose copy of the customer's email differs from users': {}",
        out.stale_emails
    ));
    n.blank();
    let specs = deed_project::projections(&manifest, "orders")?;
    let mut health = deed_project::health::projection_health(&orders_db, &specs).await?;
    // On JetStream and Kafka, what waits there as the bus counts it.
    if deed_project::source::Backlog::counts(&bus.bus) {
        n.command(&format!("deed status --bus {}", bus.shown()));
        let backlog =
            deed_project::source::Backlog::open(&bus.bus, &deed_bus::NatsAuth::default()).await?;
        deed_project::health::count_on_bus(&mut health, &specs, &backlog).await;
        out.pending_on_bus = health.iter().map(|h| h.on_bus.as_ref()?.pending).sum();
    } else {
        n.command("deed status");
    }
    n.output(deed_project::health::render(&health).trim_start_matches('\n'));
    n.explain(&[
        "Each batch's effects and the projection's position commit in one transaction, so a kill",
        "loses nothing and repeats nothing: events at or before the position are skipped on",
        "redelivery, and a deleted row never comes back. An event that cannot be applied waits in",
        "deed.dead_letters with its error (only its key waits) until `deed project --retry-dead`.",
        "orders can now stop reading catalog_api.products_v2 and users_api.users_v1 directly.",
    ]);
    Ok((out, text))
}

/// `deed project --until-idle`, reading `bus`. A projector killed a
/// moment ago may still hold the service's lock until the server notices
/// its connection is gone: wait for it, as an operator would, rather than
/// fail.
pub(crate) async fn project(
    manifest: &Manifest,
    shop: &str,
    own: &str,
    bus: &DemoBus,
    change: impl FnOnce(&mut ProjectOptions),
) -> Result<ProjectReport, DemoError> {
    let mut opts = ProjectOptions::new(manifest.clone(), "orders", shop, own);
    opts.from = bus.source();
    opts.until_idle = true;
    change(&mut opts);
    let mut tries = 0;
    loop {
        match deed_project::run(opts.clone()).await {
            Err(deed_project::ProjectError::Setup(m))
                if m.contains("is running") && tries < 100 =>
            {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return Ok(other?),
        }
    }
}

/// The contract view against orders' copy, and users' emails against
/// orders' copies of them.
async fn compare(
    shop: &deed_pg::Client,
    orders: &deed_pg::Client,
    out: &mut Projections,
) -> Result<(), DemoError> {
    let source = rows(shop, "SELECT coalesce(json_agg(p ORDER BY id), '[]')::text FROM (SELECT id, name, price_eur FROM catalog_api.products_v2) p").await?;
    let copy = rows(orders, "SELECT coalesce(json_agg(p ORDER BY id), '[]')::text FROM (SELECT id, name, price_eur FROM public.product_copies) p").await?;
    out.source_rows = source.len();
    out.copy_rows = copy.len();
    out.products_equal = source == copy;
    let emails = rows(
        shop,
        "SELECT coalesce(json_agg(json_build_array(id, email)), '[]')::text FROM public.users",
    )
    .await?;
    let copies = rows(orders, "SELECT coalesce(json_agg(json_build_array(user_id, customer_email)), '[]')::text FROM public.customer_emails").await?;
    let current: std::collections::HashMap<i64, &str> =
        emails.iter().filter_map(|v| Some((v[0].as_i64()?, v[1].as_str()?))).collect();
    out.stale_emails = copies
        .iter()
        .filter(|v| v[0].as_i64().and_then(|u| current.get(&u)).copied() != v[1].as_str())
        .count();
    Ok(())
}

/// Events in the consumer's inbox; none when it was never made.
async fn inbox_rows(orders: &deed_pg::Client) -> Result<i64, DemoError> {
    Ok(deed_state::inbox::count(orders).await?)
}

/// One JSON array a query returns.
async fn rows(c: &deed_pg::Client, sql: &str) -> Result<Vec<serde_json::Value>, DemoError> {
    let text: String =
        c.query_one(sql, &[]).await.map_err(|e| DemoError::sql("comparing the copies", e))?.get(0);
    serde_json::from_str(&text).map_err(|e| DemoError::Setup(format!("comparing the copies: {e}")))
}

/// Waits until the projector has committed something after `before`.
async fn wait_for_progress(orders: &deed_pg::Client, before: i64) -> Result<(), DemoError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if applied_so_far(orders).await? > before {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(DemoError::Setup("the projector applied nothing within 30 s".into()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn applied_so_far(orders: &deed_pg::Client) -> Result<i64, DemoError> {
    Ok(deed_state::projections::applied_total(orders).await?)
}

/// Runs `deed project` as a process (small batches, so a kill lands
/// between transactions with more to do) and kills it with SIGKILL.
async fn kill_process(
    exe: &Path,
    manifest: &str,
    shop: &str,
    own: &str,
    bus: &DemoBus,
    orders: &deed_pg::Client,
) -> Result<bool, DemoError> {
    let tmp = tempfile::Builder::new()
        .prefix("deed-demo-project-")
        .tempdir()
        .map_err(|e| DemoError::Setup(format!("making a temporary directory: {e}")))?;
    let path = tmp.path().join("deed.toml");
    std::fs::write(&path, manifest).map_err(|e| DemoError::Setup(format!("{e}")))?;
    let before = applied_so_far(orders).await?;
    let mut command = tokio::process::Command::new(exe);
    command.arg("--manifest").arg(&path).args([
        "project",
        "--service",
        "orders",
        "--batch",
        "10",
        "--log-format",
        "json",
    ]);
    if let Some(from) = bus.source() {
        command.args(["--from", &from]);
    }
    let mut child = command
        .env("DATABASE_URL", shop)
        .env("ORDERS_DATABASE_URL", own)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| DemoError::Setup(format!("starting {}: {e}", exe.display())))?;
    wait_for_progress(orders, before).await?;
    child.start_kill().map_err(|e| DemoError::Setup(format!("killing the projector: {e}")))?;
    let _ = child.wait().await;
    Ok(true)
}

/// Without a `deed` executable (inside tests), the projector runs as a
/// task that is dropped mid-stream.
async fn abort_task(
    manifest: &Manifest,
    shop: &str,
    own: &str,
    bus: &DemoBus,
    orders: &deed_pg::Client,
) -> Result<bool, DemoError> {
    let before = applied_so_far(orders).await?;
    let mut opts = ProjectOptions::new(manifest.clone(), "orders", shop, own);
    opts.from = bus.source();
    opts.batch = 10;
    let task = tokio::spawn(deed_project::run(opts));
    wait_for_progress(orders, before).await?;
    task.abort();
    let _ = task.await;
    Ok(false)
}
