//! Rung 4: catalog's tables move to catalog's own server while its
//! application keeps writing through PgBouncer; orders keeps its copy from
//! catalog's events (now captured on the new server) and fulfillment still
//! reads catalog's contract view in the shared database, fed back by
//! reverse replication.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use deed_cluster::{ClusterOptions, EmbeddedCluster, EmbeddedPgBouncer};
use deed_manifest::Manifest;
use deed_split::pgbouncer::PgBouncer;
use deed_split::{Split, SplitError, phases};
use tokio::sync::Mutex;

use crate::bus::DemoBus;
use crate::error::DemoError;
use crate::narrate::Narrator;
use crate::target::Target;

/// What rung 4 showed, for tests to check.
#[derive(Debug, Default, Clone)]
pub struct Rung4 {
    /// Why prepare refused before orders dropped its foreign key.
    pub refused: Vec<String>,
    pub copied_tables: i64,
    pub proven: bool,
    pub fence_ms: f64,
    /// The catalog application's commits through PgBouncer during the
    /// move, its errors, and its longest wait.
    pub commits: usize,
    pub errors: Vec<String>,
    pub longest_commit_ms: f64,
    /// Every acknowledged insert is on catalog's server, once.
    pub ledger_ok: bool,
    pub fulfillment_sees: bool,
    pub orders_sees: bool,
    pub rung_after: u8,
    /// Why rung 4 did not run: the shop's server is older than the split
    /// needs (its PostgreSQL major version, and the sentence shown).
    pub skipped: Option<(i32, String)>,
}

fn split_error(e: SplitError) -> DemoError {
    DemoError::Setup(format!("deed split: {e}"))
}

#[derive(Default)]
struct Ledger {
    acked: Vec<i64>,
    errors: Vec<String>,
    longest: Duration,
}

/// catalog's application: inserts a product at a time through PgBouncer.
async fn application(url: String, stop: Arc<AtomicBool>, ledger: Arc<Mutex<Ledger>>) {
    let client = match deed_pg::connect_plain(&url).await {
        Ok(c) => c,
        Err(e) => {
            ledger.lock().await.errors.push(e.to_string());
            return;
        }
    };
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let started = Instant::now();
        let r = client
            .simple_query(&format!(
                "INSERT INTO products (vendor_id, name, price_eur, cost_cents) VALUES (1, 'demo {i}', 9.99, 500) RETURNING id"
            ))
            .await;
        let took = started.elapsed();
        let mut l = ledger.lock().await;
        match r {
            Ok(msgs) => {
                for m in msgs {
                    if let tokio_postgres::SimpleQueryMessage::Row(row) = m {
                        l.acked.push(row.get(0).and_then(|v| v.parse().ok()).unwrap_or(-1));
                    }
                }
                l.longest = l.longest.max(took);
            }
            Err(e) => l.errors.push(e.to_string()),
        }
        drop(l);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub(crate) async fn run(
    target: &Target,
    n: &Narrator,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    bus: &DemoBus,
) -> Result<Rung4, DemoError> {
    let mut out = Rung4::default();
    n.rung("Rung 4 · separated");
    let major = target.server_major().await?;
    if major < deed_split::privilege::OLDEST_MAJOR {
        let why = format!(
            "skipped: this server runs PostgreSQL {major}, and `deed split` needs {} or later on both \
             sides (its publications filter rows, which PostgreSQL 15 brought); it refuses this \
             server the same way, before it changes anything",
            deed_split::privilege::OLDEST_MAJOR
        );
        n.detail(&why);
        out.skipped = Some((major, why));
        return Ok(out);
    }
    n.step("catalog's own server: a second private PostgreSQL (removed afterwards)");
    let own = tokio::task::spawn_blocking(|| EmbeddedCluster::start(&ClusterOptions::default()))
        .await
        .map_err(|e| DemoError::Setup(format!("starting catalog's server: {e}")))??;
    deed_pg::connect(&own.url("postgres"))
        .await?
        .batch_execute("CREATE DATABASE catalog")
        .await
        .map_err(|e| DemoError::sql("creating catalog's database", e))?;
    let own_url = own.url("catalog");
    n.detail(&format!(
        "ready on 127.0.0.1:{}; CATALOG_DATABASE_URL={}",
        own.port(),
        deed_pg::redact_url(&own_url)
    ));
    let shop_url = target.shop_url();
    let lookup = |name: &str| {
        if name == "CATALOG_DATABASE_URL" { Some(own_url.clone()) } else { lookup(name) }
    };
    let lookup: &dyn Fn(&str) -> Option<String> = &lookup;
    let bouncer = EmbeddedPgBouncer::start(&[("shop", &shop_url)], &["catalog_svc"])?;
    n.detail(&format!(
        "catalog's application connects through PgBouncer (127.0.0.1:{}, database shop)",
        bouncer.port()
    ));
    let manifest = Manifest::parse(std::path::Path::new("deed.toml"), text, lookup)
        .map_err(|e| DemoError::Setup(format!("the demo's rung 4 manifest is invalid: {e}")))?;
    let open = || async {
        Split::open(
            &manifest,
            "catalog",
            deed_pg::connect(&shop_url).await?,
            deed_pg::connect(&own_url).await?,
            shop_url.clone(),
            own_url.clone(),
        )
        .await
        .map_err(split_error)
    };
    let mut split = open().await?;
    n.command("deed split catalog --to '${CATALOG_DATABASE_URL}' --prepare");
    match phases::prepare(&mut split, &manifest, false).await {
        Err(SplitError::Refused { refusals, .. }) => {
            out.refused = refusals.iter().map(|r| r.to_string()).collect();
            n.output(&format!(
                "deed split catalog: refused, nothing was changed\n  - {}",
                out.refused.join("\n  - ")
            ));
        }
        other => {
            other.map_err(split_error)?;
        }
    }
    if !out.refused.is_empty() {
        n.step("orders drops its foreign key into catalog's table (a reference across instances cannot be checked):");
        n.code("ALTER TABLE order_items DROP CONSTRAINT order_items_product_id_fkey;");
        target
            .setup_client()
            .await?
            .batch_execute("ALTER TABLE order_items DROP CONSTRAINT order_items_product_id_fkey")
            .await
            .map_err(|e| DemoError::sql("dropping the foreign key", e))?;
        n.command("deed split catalog --to '${CATALOG_DATABASE_URL}' --prepare");
        let p = phases::prepare(&mut split, &manifest, false).await.map_err(split_error)?;
        let creates: Vec<&String> =
            p.statements.iter().filter(|s| s.starts_with("CREATE")).collect();
        n.output(&format!(
            "deed split catalog: prepare ran {} statements on the target, in one transaction, e.g.\n  {}\n  ({} indexes and constraints after the copy)",
            p.statements.len(),
            creates.iter().take(4).map(|s| s.lines().next().unwrap_or("")).collect::<Vec<_>>().join("\n  "),
            p.after_copy.len()
        ));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let app =
        tokio::spawn(application(bouncer.url("shop", "catalog_svc"), stop.clone(), ledger.clone()));
    n.step("catalog's application keeps inserting products through PgBouncer from here on");

    n.command("deed split catalog --copy");
    let copied = phases::copy(&mut split, Duration::from_secs(300), &mut |_| {})
        .await
        .map_err(split_error)?;
    out.copied_tables = copied.tables;
    n.output(&format!(
        "deed split catalog: {} tables copied and following ({:.1} s), by PostgreSQL's logical replication",
        copied.tables, copied.seconds
    ));
    n.command("deed split catalog --prove");
    let proof =
        phases::prove_phase(&mut split, Duration::from_secs(60)).await.map_err(split_error)?;
    out.proven = proof.equal;
    let mut shown = format!(
        "deed split catalog: {} at fence {}",
        if proof.equal { "every table equal to its copy" } else { "DIFFERENCES" },
        proof.fence_lsn
    );
    for t in &proof.tables {
        shown.push_str(&format!(
            "\n  {:<24} {:>6} rows  {}",
            t.table,
            t.source_rows,
            if t.equal() { "equal" } else { "DIFFERENT" }
        ));
    }
    n.output(&shown);
    let admin = PgBouncer::connect(&bouncer.admin_url(), "shop").await.map_err(split_error)?;
    n.command("deed split catalog --cutover --pgbouncer <admin url> shop");
    let cut = phases::switch(
        &mut split,
        true,
        Duration::from_secs(3600),
        Duration::from_secs(10),
        Some(&admin),
    )
    .await
    .map_err(split_error)?;
    out.fence_ms = cut.fence_ms;
    let mut shown =
        format!("deed split catalog: cut over; writes were fenced for {:.0} ms", cut.fence_ms);
    for (step, ms) in &cut.steps {
        shown.push_str(&format!("\n  {ms:>6.1} ms  {step}"));
    }
    shown.push_str("\ndeed.toml: [services.catalog] database = \"${CATALOG_DATABASE_URL}\"");
    n.output(&shown);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = app.await;
    let l = ledger.lock().await;
    out.commits = l.acked.len();
    out.errors = l.errors.clone();
    out.longest_commit_ms = l.longest.as_secs_f64() * 1000.0;
    let on_own = deed_pg::connect_plain(&own_url).await?;
    let mut found: Vec<i64> = on_own
        .query("SELECT id FROM products WHERE name LIKE 'demo %'", &[])
        .await
        .map_err(|e| DemoError::sql("reading catalog's products", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    found.sort();
    let mut acked = l.acked.clone();
    acked.sort();
    out.ledger_ok = found == acked;
    n.detail(&format!(
        "catalog's application: {} inserts acknowledged, {} errors, longest commit {:.0} ms; every acknowledged insert is on catalog's server, once: {}",
        out.commits,
        out.errors.len(),
        out.longest_commit_ms,
        if out.ledger_ok { "yes" } else { "NO" }
    ));
    drop(l);

    after_the_move(target, n, &manifest, &own_url, lookup, bus, &mut out).await?;
    teardown(target).await?;
    drop(bouncer);
    own.stop();
    Ok(out)
}

/// A change on catalog's own server reaches both kinds of reader.
async fn after_the_move(
    target: &Target,
    n: &Narrator,
    manifest: &Manifest,
    own_url: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    bus: &DemoBus,
    out: &mut Rung4,
) -> Result<(), DemoError> {
    n.step("catalog changes a price, on its own server now:");
    deed_pg::connect_as(own_url, "catalog_svc", None)
        .await?
        .batch_execute("UPDATE products SET price_eur = 42.42 WHERE id = 1")
        .await
        .map_err(|e| DemoError::sql("changing a price on catalog's server", e))?;
    let fulfillment = target.client_as("fulfillment_svc").await?;
    let started = Instant::now();
    while !out.fulfillment_sees && started.elapsed() < Duration::from_secs(30) {
        out.fulfillment_sees = fulfillment
            .query_one("SELECT EXISTS (SELECT 1 FROM catalog_api.products_v2 WHERE id = 1 AND price_eur = 42.42)", &[])
            .await
            .map_err(|e| DemoError::sql("reading the contract view as fulfillment", e))?
            .get(0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    n.detail(&format!(
        "fulfillment_svc reads catalog_api.products_v2 in the shared database: 42.42 {} (reverse replication)",
        if out.fulfillment_sees { "arrived" } else { "did NOT arrive" }
    ));
    let mut edit = deed_manifest::edit::Edit::of(manifest).map_err(edit_error)?;
    edit.set_database("catalog", Some("${CATALOG_DATABASE_URL}")).map_err(edit_error)?;
    let moved = edit.finish(lookup).map_err(edit_error)?.manifest;
    let to = if bus.is_inbox() { String::new() } else { format!(" --to {}", bus.shown()) };
    n.command(&format!(
        "deed relay --service catalog{to} --until-idle && deed project --service orders{} --until-idle",
        bus.source_flag()
    ));
    let sides = deed_relay::locate::locate(&target.shop_url(), &moved, "catalog", lookup)
        .await
        .map_err(crate::rung2::relay_error)?;
    let mut events = 0;
    for url in sides.earlier.iter().chain(std::iter::once(&sides.live)) {
        events += crate::rung2::relay_until_idle(&moved, "catalog", url, &bus.url).await?.events;
    }
    let (shop, own) = (target.shop_url(), target.inbox_url());
    crate::projections::project(&moved, &shop, &own, bus, |_| {}).await?;
    out.orders_sees = deed_pg::connect_plain(&target.inbox_url())
        .await?
        .query_one("SELECT EXISTS (SELECT 1 FROM public.product_copies WHERE id = 1 AND price_eur = 42.42)", &[])
        .await
        .map_err(|e| DemoError::sql("reading orders' copy", e))?
        .get(0);
    n.detail(&format!(
        "the relay read the shared database up to the move, then catalog's server: {events} events; orders' copy shows 42.42: {}",
        if out.orders_sees { "yes" } else { "NO" }
    ));
    n.command("deed status");
    let shop = target.shop_client().await?;
    let mut observed = deed_ladder::Observed {
        capture: deed_relay::health::capture_health(&shop, &moved, 1 << 30)
            .await
            .map_err(crate::rung2::relay_error)?,
        ..Default::default()
    };
    (observed.projections, observed.verdicts) =
        deed_ladder::observe::consumers(&moved, &target.shop_url(), lookup).await?;
    for s in deed_split::state::load_all(&shop).await.map_err(split_error)? {
        observed.splits.insert(s.service.clone(), s.phase.as_str().to_string());
    }
    // catalog's capture is on its own server now.
    let own = deed_pg::connect(own_url).await?;
    observed.capture.extend(
        deed_relay::health::capture_health_of(&own, &moved, 1 << 30, &["catalog".to_string()])
            .await
            .map_err(crate::rung2::relay_error)?,
    );
    let status = crate::ladder(n, &moved, observed);
    out.rung_after = status
        .flows
        .iter()
        .find(|f| f.consumer == "orders" && f.owner == "catalog" && !f.projections.is_empty())
        .map_or(0, |f| f.rung.number());
    n.explain(&[
        "The fence: PgBouncer paused catalog's clients (their transactions in flight finished), the",
        "shared database stopped taking catalog's writes and wrote a fence row, catalog's server applied",
        "it, replication turned around (catalog's server → shared database, no copy), sequences moved",
        "past the shared values, catalog's server took the writes, PgBouncer pointed at it and resumed.",
        "catalog's events continue from its server in a new epoch, so positions keep sorting.",
        "`deed split catalog --rollback` reverses it the same way while the reverse replication runs;",
        "`--finish` ends it once no service reads catalog's contract views in the shared database.",
    ]);
    Ok(())
}

/// The shared database lets go of catalog's server, which is removed.
async fn teardown(target: &Target) -> Result<(), DemoError> {
    let shop = target.shop_client().await?;
    let sub = deed_events::split_subscription("catalog", deed_events::SplitDirection::Back);
    let q = sub.quoted();
    shop.batch_execute(&format!(
        "ALTER SUBSCRIPTION {q} DISABLE; ALTER SUBSCRIPTION {q} SET (slot_name = NONE); DROP SUBSCRIPTION {q}; DROP PUBLICATION IF EXISTS {}",
        deed_events::split_publication("catalog").quoted()
    ))
    .await
    .map_err(|e| DemoError::sql("removing the demo's reverse replication", e))
}

fn edit_error(e: deed_manifest::edit::EditError) -> DemoError {
    DemoError::Setup(e.to_string())
}
