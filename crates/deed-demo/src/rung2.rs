//! Rung 2 of the demo: catalog's price changes and orders' confirmations
//! leave the shop database as events, through `deed relay`, into an inbox
//! in the consumers' own database (or onto the bus `--bus` names); the
//! relay is killed mid-delivery and nothing is lost.

use std::path::{Path, PathBuf};
use std::time::Duration;

use deed_contracts::ApplyOutcome;
use deed_manifest::{Date, Manifest};
use deed_relay::{RelayOptions, RelayReport};

use crate::bus::DemoBus;
use crate::error::DemoError;
use crate::narrate::Narrator;
use crate::target::Target;

/// What rung 2 showed, for tests to check.
#[derive(Debug, Default, Clone)]
pub struct Rung2 {
    /// Price changes catalog committed (rolled-back ones excluded).
    pub price_changes: u64,
    /// Orders confirmed, each with one `order_confirmed` event.
    pub confirmations: u64,
    /// Distinct events in the inbox, by type.
    pub product_events: i64,
    pub order_events: i64,
    /// Events the inbox already had when the relay redelivered them.
    pub duplicates: u64,
    /// Whether the relay was a separate process killed with SIGKILL (or,
    /// without a `deed` executable, a task aborted mid-delivery).
    pub killed_process: bool,
    /// Problems `deed status` reported while no relay ran.
    pub status_warnings: usize,
    /// catalog's events that arrived on the bus, when one was given.
    pub bus_events: Option<usize>,
    /// orders' relay ran signed in as `deed_orders_relay`, which was
    /// refused a read of orders' table.
    pub relay_login_refused_read: bool,
    /// The manifest with events, which the projections build on.
    pub manifest: String,
}

const EVENTS: &str = r#"
[[services.catalog.events]]
name = "product_changed"
from = "public.products"
key = ["id"]
contract = "products.v2"

[[services.orders.events]]
name = "order_confirmed"
"#;

/// The migrations story's manifest, plus events and their consumers.
fn manifest_with_events(text: &str) -> String {
    let text = text
        .replacen(
            "logins = [\"orders_svc\"]\n",
            "logins = [\"orders_svc\"]\nconsumes = [\"catalog.product_changed\"]\n",
            1,
        )
        .replacen(
            "logins = [\"fulfillment_svc\"]\n",
            "logins = [\"fulfillment_svc\"]\nconsumes = [\"orders.order_confirmed\"]\n",
            1,
        );
    format!("{text}{EVENTS}")
}

pub struct Rung2Options<'a> {
    pub manifest_text: &'a str,
    pub deed_exe: Option<&'a Path>,
    /// Where the events go: the consumers' inbox or a bus.
    pub bus: &'a DemoBus,
}

pub(crate) async fn run(
    target: &Target,
    n: &Narrator,
    o: Rung2Options<'_>,
) -> Result<Rung2, DemoError> {
    let mut out = Rung2::default();
    let url = target.shop_url();
    let text = manifest_with_events(o.manifest_text);
    out.manifest = text.clone();
    let manifest = Manifest::parse(Path::new("deed.toml"), &text, &|name| {
        (name == "DATABASE_URL").then(|| url.clone())
    })
    .map_err(|e| DemoError::Setup(format!("the demo's rung 2 manifest is invalid: {e}")))?;

    n.rung("Rung 2 · events");
    n.step("catalog publishes product_changed (state, carrying products.v2); orders emits order_confirmed");
    n.code(EVENTS.trim());
    n.command("deed apply");
    let admin = target.shop_client().await?;
    match deed_contracts::apply(&admin, &manifest, Date::today(), &[]).await? {
        ApplyOutcome::Applied(changes) => {
            for c in changes.iter().filter(|c| {
                matches!(
                    c.kind,
                    "create-schema"
                        | "create-function"
                        | "create-publication"
                        | "create-slot"
                        | "replica-identity"
                ) || (c.kind == "create-role" && c.object.ends_with("_relay"))
            }) {
                n.detail(&c.summary);
            }
            n.detail(&format!("({} changes in all)", changes.len()));
        }
        ApplyOutcome::NothingToDo => n.detail("nothing to do"),
    }
    target.mark_owner_roles().await?;
    n.blank();

    n.step("The services work as usual; capture costs them no trigger and no extra write");
    let catalog = target.client_as("catalog_svc").await?;
    let orders = target.client_as("orders_svc").await?;
    out.price_changes += reprice(&catalog, 1, 100, 25).await?;
    out.confirmations += confirm(&orders, 10).await?;
    n.detail(&format!(
        "catalog repriced {} products in 25-row transactions (one more transaction rolled back)",
        out.price_changes
    ));
    n.detail(&format!(
        "orders confirmed {} orders, each calling deed.emit('orders.order_confirmed', ...) in its transaction",
        out.confirmations
    ));
    n.blank();

    n.command("deed status");
    let health = deed_relay::health::capture_health(&admin, &manifest, 1 << 30)
        .await
        .map_err(relay_error)?;
    out.status_warnings = health.iter().map(|h| h.warnings.len() + h.problems.len()).sum();
    crate::ladder(n, &manifest, deed_ladder::Observed { capture: health, ..Default::default() });
    n.explain(&[
        "Nothing is lost while no relay runs: the slot holds the WAL, and deed status says how much.",
    ]);

    // One slot per service: the events go to one sink, the inbox by
    // default or the bus given.
    let bus = o.bus;
    let to = bus.url.clone();
    let shown = bus.shown();
    let place = bus.place();
    n.step("Start catalog's relay, then kill it mid-delivery while catalog keeps writing");
    n.command(&format!("deed relay --service catalog --to {shown}"));
    let writes = async {
        let mut changed = 0;
        for round in 0..16 {
            changed += reprice(&catalog, 101 + round * 6, 6, 2).await?;
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        Ok::<u64, DemoError>(changed)
    };
    let relay = async {
        match o.deed_exe {
            Some(exe) => kill_process(exe, &text, &url, bus).await,
            None => abort_task(&manifest, &url, bus).await,
        }
    };
    let (written, killed) = tokio::join!(writes, relay);
    out.price_changes += written?;
    out.killed_process = killed?;
    n.detail(if out.killed_process {
        "the relay process was killed (SIGKILL) between deliveries and confirmations"
    } else {
        "the relay was stopped abruptly mid-delivery"
    });
    n.command(&format!("deed relay --service catalog --to {shown} --until-idle"));
    let again = relay_until_idle(&manifest, "catalog", &url, &to).await?;
    out.duplicates = again.duplicates;
    n.output(&if again.events == 0 {
        "deed relay: delivered 0 events (the stopped relay had delivered and confirmed everything)"
            .to_string()
    } else if bus.keeps_copies() {
        format!(
            "deed relay: delivered {} events (any the killed relay had sent unacknowledged are now in {place} twice, with the same ids: consumers skip the copies)",
            again.events
        )
    } else {
        format!(
            "deed relay: delivered {} events ({} {place} already had, recognised by event id)",
            again.events, again.duplicates
        )
    });
    // orders' relay signs in as its own login: REPLICATION, nothing else.
    let relay_url = target.relay_login_url("orders").await?;
    n.command(&format!(
        "deed relay --service orders --database-url {} --to {shown} --until-idle",
        deed_pg::redact_url(&relay_url)
    ));
    let orders_report = relay_until_idle(&manifest, "orders", &relay_url, &to).await?;
    n.output(&format!("deed relay: delivered {} events", orders_report.events));
    let as_relay = deed_pg::connect(&relay_url).await?;
    out.relay_login_refused_read = as_relay
        .query("SELECT 1 FROM public.orders LIMIT 1", &[])
        .await
        .is_err_and(|e| e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE));
    n.detail(&format!(
        "signed in as deed_orders_relay, the login deed apply made: LOGIN REPLICATION, never superuser; reading public.orders as it: {}",
        if out.relay_login_refused_read { "permission denied" } else { "ALLOWED (unexpected)" }
    ));

    let mut counts = bus.distinct_by_type("catalog").await?;
    counts.extend(bus.distinct_by_type("orders").await?);
    let count = |kind: &str| counts.get(kind).copied().unwrap_or(0) as i64;
    out.product_events = count("catalog.product_changed");
    out.order_events = count("orders.order_confirmed");
    if !bus.is_inbox() {
        out.bus_events = Some(out.product_events as usize);
    }
    n.step(&format!("Every committed change is in {place}, once per event id"));
    n.detail(&format!(
        "catalog committed {} price changes  →  {} catalog.product_changed events",
        out.price_changes, out.product_events
    ));
    n.detail(&format!(
        "orders confirmed {} orders          →  {} orders.order_confirmed events",
        out.confirmations, out.order_events
    ));
    n.blank();
    n.command(&format!("deed tail orders.order_confirmed --from {shown} --limit 1"));
    let mut first = None;
    bus.read("orders", "order_confirmed", Some(1), bus.quiet(), |raw| {
        first = Some(deed_relay::tail::parse(raw))
    })
    .await?;
    if let Some(v) = first {
        n.output(&serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    n.blank();
    n.command("deed status");
    let health = deed_relay::health::capture_health(&admin, &manifest, 1 << 30)
        .await
        .map_err(relay_error)?;
    crate::ladder(n, &manifest, deed_ladder::Observed { capture: health, ..Default::default() });
    n.explain(&[
        "Each event exists exactly when its transaction committed (the rolled-back ones never left),",
        "in commit order per key, with an id (<service>/<commit position>) that makes every redelivery",
        "after a crash recognisable. Next, the consumer's half: keeping its own copies.",
    ]);
    Ok(out)
}

/// Raises `count` products' prices, `per_txn` to a transaction, and rolls
/// one extra transaction back; returns the committed changes.
async fn reprice(
    c: &deed_pg::Client,
    first: i64,
    count: i64,
    per_txn: i64,
) -> Result<u64, DemoError> {
    let sql = "UPDATE products SET price_eur = round(price_eur * 1.05, 2), updated_at = now() \
               WHERE id BETWEEN $1 AND $2";
    let mut changed = 0;
    let mut at = first;
    while at < first + count {
        let last = (at + per_txn - 1).min(first + count - 1);
        changed += c
            .execute(sql, &[&at, &last])
            .await
            .map_err(|e| DemoError::sql("repricing products", e))?;
        at = last + 1;
    }
    c.batch_execute(&format!(
        "BEGIN; UPDATE products SET price_eur = 0 WHERE id BETWEEN {first} AND {}; ROLLBACK",
        first + count - 1
    ))
    .await
    .map_err(|e| DemoError::sql("a rolled-back repricing", e))?;
    Ok(changed)
}

/// Confirms `count` placed orders, emitting one domain event each.
async fn confirm(c: &deed_pg::Client, count: i64) -> Result<u64, DemoError> {
    let sql = "WITH o AS (
                 UPDATE orders SET status = 'confirmed'
                  WHERE id = (SELECT id FROM orders WHERE status = 'placed' ORDER BY id LIMIT 1)
                 RETURNING id, customer_email, total_cents)
               SELECT deed.emit('orders.order_confirmed', o.id::text,
                        jsonb_build_object('order_id', o.id, 'total_cents', o.total_cents))
                 FROM o";
    let mut done = 0;
    for _ in 0..count {
        done += c.execute(sql, &[]).await.map_err(|e| DemoError::sql("confirming an order", e))?;
    }
    c.batch_execute(&format!("BEGIN; {sql}; ROLLBACK"))
        .await
        .map_err(|e| DemoError::sql("a rolled-back confirmation", e))?;
    Ok(done)
}

pub(crate) fn relay_error(e: deed_relay::RelayError) -> DemoError {
    DemoError::Setup(format!("the relay failed: {e}"))
}

pub(crate) async fn relay_until_idle(
    manifest: &Manifest,
    service: &str,
    url: &str,
    to: &str,
) -> Result<RelayReport, DemoError> {
    let mut opts = RelayOptions::new(manifest.clone(), service, url, to);
    opts.until_idle = true;
    deed_relay::run(opts).await.map_err(relay_error)
}

/// Runs `deed relay` as a process and kills it with SIGKILL once it has
/// delivered something.
async fn kill_process(
    exe: &Path,
    manifest: &str,
    url: &str,
    bus: &DemoBus,
) -> Result<bool, DemoError> {
    // Unique per run: two demos in one process (the tests) never share it.
    let tmp = tempfile::Builder::new()
        .prefix("deed-demo-relay-")
        .tempdir()
        .map_err(|e| DemoError::Setup(format!("making a temporary directory: {e}")))?;
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(&dir).map_err(|e| DemoError::Setup(format!("{e}")))?;
    let path: PathBuf = dir.join("deed.toml");
    std::fs::write(&path, manifest).map_err(|e| DemoError::Setup(format!("{e}")))?;
    let mut child = tokio::process::Command::new(exe)
        .arg("--manifest")
        .arg(&path)
        .args(["relay", "--service", "catalog", "--to", &bus.url, "--log-format", "json"])
        .env("DATABASE_URL", url)
        .stdout(std::process::Stdio::null())
        .stderr(
            std::fs::File::create(dir.join("relay.log"))
                .map_err(|e| DemoError::Setup(format!("{e}")))?,
        )
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| DemoError::Setup(format!("starting {}: {e}", exe.display())))?;
    if let Err(e) = wait_for_events(bus).await {
        let log = std::fs::read_to_string(dir.join("relay.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        return Err(DemoError::Setup(format!(
            "{e}; the relay's last log lines:\n{}",
            tail.join("\n")
        )));
    }
    child.start_kill().map_err(|e| DemoError::Setup(format!("killing the relay: {e}")))?;
    let _ = child.wait().await;
    Ok(true)
}

/// Without a `deed` executable (inside tests), the relay runs as a task
/// that is dropped mid-delivery.
async fn abort_task(manifest: &Manifest, url: &str, bus: &DemoBus) -> Result<bool, DemoError> {
    let opts = RelayOptions::new(manifest.clone(), "catalog", url, &bus.url);
    let task = tokio::spawn(deed_relay::run(opts));
    wait_for_events(bus).await?;
    task.abort();
    let _ = task.await;
    Ok(false)
}

/// Waits until the relay has delivered its first events: a reader that
/// returns with the first one (the inbox is asked again and again).
async fn wait_for_events(bus: &DemoBus) -> Result<(), DemoError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        // Nothing there yet (no inbox, stream or topic) reads as none.
        if bus.read("catalog", "*", Some(1), left, |_| {}).await.unwrap_or(0) > 0 {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(DemoError::Setup(format!(
                "the relay delivered nothing to {} within 30 s",
                bus.shown()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
