//! Rung 3: orders' copy of the products is proven equal to the contract
//! it replaces, a planted difference is found and repaired, and the
//! cutover revokes orders' read of catalog_api.products_v2 while taking
//! it out of deed.toml; `deed status` before and after.

use std::path::Path;

use deed_compare::cutover::{self, Conditions};
use deed_compare::{CompareOptions, CompareReport};
use deed_manifest::Manifest;

use crate::bus::DemoBus;
use crate::error::DemoError;
use crate::narrate::Narrator;
use crate::target::Target;

/// What rung 3 showed, for tests to check.
#[derive(Debug, Default, Clone)]
pub struct Rung3 {
    pub first_equal: bool,
    /// Differences the compare found after one was planted (missing,
    /// extra, different).
    pub planted_found: (usize, usize, usize),
    pub repaired_equal: bool,
    pub refused_before_compare: bool,
    pub cut_over: bool,
    /// orders_svc's SELECT on the view after the cutover: its SQLSTATE.
    pub read_after: Option<String>,
    /// What `deed drift` found right after the cutover (nothing).
    pub drift_after: usize,
    pub rung_before: u8,
    pub rung_after: u8,
    pub seconds: f64,
}

pub(crate) async fn run(
    target: &Target,
    n: &Narrator,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    bus: &DemoBus,
) -> Result<(Rung3, String), DemoError> {
    let mut out = Rung3::default();
    let dir =
        tempfile::tempdir().map_err(|e| DemoError::Setup(format!("a temporary directory: {e}")))?;
    let path = dir.path().join("deed.toml");
    std::fs::write(&path, text).map_err(|e| DemoError::Setup(format!("writing deed.toml: {e}")))?;
    let manifest = parse(&path, text, lookup)?;
    let shop = target.shop_client().await?;
    let orders = deed_pg::connect(&target.inbox_url()).await?;

    n.rung("Rung 3 · proven, then severed");
    n.command("deed status");
    out.rung_before = status(n, &manifest, &shop, &target.shop_url(), lookup).await?;
    let reference = "orders.products";
    let cut = cutover::resolve(&manifest, reference)?;
    let spec = deed_compare::target(&manifest, reference)?.spec;
    let conditions = Conditions { max_age_seconds: 3600.0, max_lag_seconds: 60.0, traffic: None };
    let refusals = cutover::check(&orders, &spec, &cut, &conditions).await?;
    out.refused_before_compare = !refusals.is_empty();
    n.command("deed cutover orders.products");
    n.output(&format!(
        "deed cutover orders.products: refused, nothing was changed\n  - {}",
        refusals.join("\n  - ")
    ));

    n.step("Prove the copy: both databases checksum key ranges, only differing ranges are read");
    n.command("deed compare orders.products");
    let first = compare(&manifest, &shop, &orders).await?;
    out.first_equal = first.equal;
    out.seconds = first.seconds;
    n.output(first.table().trim_end());

    n.step("Plant a difference in orders' copy, as a bug in a consumer would");
    orders
        .batch_execute(
            "UPDATE public.product_copies SET price_eur = price_eur + 1 WHERE id = (SELECT min(id) FROM public.product_copies);
             DELETE FROM public.product_copies WHERE id = (SELECT max(id) FROM public.product_copies);",
        )
        .await
        .map_err(|e| DemoError::sql("planting a difference", e))?;
    n.command("deed compare orders.products   # exit 1");
    let planted = compare(&manifest, &shop, &orders).await?;
    out.planted_found = (planted.missing.len(), planted.extra.len(), planted.different.len());
    n.output(planted.table().trim_end());
    n.command(&format!(
        "deed project --service orders{} --backfill products --until-idle",
        bus.source_flag()
    ));
    let (shop_url, own) = (target.shop_url(), target.inbox_url());
    let repaired = crate::projections::project(&manifest, &shop_url, &own, bus, |o| {
        o.backfill = vec!["products".into()];
    })
    .await?;
    n.output(repaired.render().trim_end());
    n.command("deed compare orders.products");
    let again = compare(&manifest, &shop, &orders).await?;
    out.repaired_equal = again.equal;
    n.output(again.table().trim_end());

    n.step("Cut over: the read leaves deed.toml and the database in one step");
    n.command("deed cutover orders.products");
    let refusals = cutover::check(&orders, &spec, &cut, &conditions).await?;
    if !refusals.is_empty() {
        return Err(DemoError::Setup(format!("the cutover was refused: {}", refusals.join("; "))));
    }
    let edited = cutover::edited(&manifest, &cut, false, lookup)?;
    let (edited, after_manifest) = (edited.text, edited.manifest);
    let statements = cutover::statements(&cut, &after_manifest, false)?;
    let statement = statements.join(";\n");
    let mut owner = target.shop_client().await?;
    cutover::execute(
        &mut owner,
        &statements,
        || std::fs::write(&path, &edited),
        || std::fs::write(&path, text),
    )
    .await?;
    out.cut_over = true;
    let before = reads_line(text);
    let after = reads_line(&edited);
    n.output(&format!("{statement};\norders no longer reads catalog_api.products_v2 (catalog.products.v2): it reads its projection orders.products; deed.toml no longer lists the read"));
    n.code(&format!("-{before}\n+{after}"));
    let orders_svc = target.client_as("orders_svc").await?;
    let denied = orders_svc.query("SELECT count(*) FROM catalog_api.products_v2", &[]).await;
    out.read_after = denied.as_ref().err().and_then(|e| e.code()).map(|c| c.code().to_string());
    n.detail(&format!(
        "orders_svc: SELECT count(*) FROM catalog_api.products_v2 → {}",
        match &denied {
            Ok(_) => "allowed (UNEXPECTED)".to_string(),
            Err(e) => e.as_db_error().map_or(e.to_string(), |d| format!(
                "ERROR {}: {}",
                d.code().code(),
                d.message()
            )),
        }
    ));
    n.detail("`deed cutover orders.products --rollback` grants it back and restores the line.");
    // The database is exactly what the edited deed.toml says: a CI drift
    // gate stays green after a cutover.
    n.command("deed drift");
    let drift = deed_contracts::plan(
        &owner,
        deed_contracts::PlanRequest {
            manifest: &after_manifest,
            audit: None,
            today: deed_manifest::Date::today(),
            stage: Default::default(),
        },
    )
    .await?;
    n.output(deed_contracts::report::drift_table(&drift).trim_end());
    out.drift_after = drift.changes.len();
    n.blank();
    n.command("deed status");
    out.rung_after = status(n, &after_manifest, &shop, &target.shop_url(), lookup).await?;
    n.explain(&[
        "Compare proves the copy at a consistent point: a fence in catalog's WAL, then a wait until",
        "orders' projection has applied everything before it; keys still changing are re-checked at",
        "later fences, and only differences seen the same in two looks in a row are reported.",
        "The verdict is kept in orders' database; cutover needs a clean one under an hour old, taken",
        "after the projection's definition last changed.",
    ]);
    Ok((out, edited))
}

/// `deed status` with every rung's observations; returns the rung of
/// orders ← catalog: products.
async fn status(
    n: &Narrator,
    manifest: &Manifest,
    shop: &deed_pg::Client,
    shop_url: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<u8, DemoError> {
    let mut observed = deed_ladder::Observed {
        capture: deed_relay::health::capture_health(shop, manifest, 1 << 30)
            .await
            .map_err(crate::rung2::relay_error)?,
        ..Default::default()
    };
    (observed.projections, observed.verdicts) =
        deed_ladder::observe::consumers(manifest, shop_url, lookup).await?;
    let status = crate::ladder(n, manifest, observed);
    Ok(status
        .flows
        .iter()
        .find(|f| f.consumer == "orders" && f.owner == "catalog" && f.subject == "products")
        .map_or(0, |f| f.rung.number()))
}

fn parse(
    path: &Path,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Manifest, DemoError> {
    Manifest::parse(path, text, lookup)
        .map_err(|e| DemoError::Setup(format!("the demo's rung 3 manifest is invalid: {e}")))
}

async fn compare(
    manifest: &Manifest,
    shop: &deed_pg::Client,
    orders: &deed_pg::Client,
) -> Result<CompareReport, DemoError> {
    let target = deed_compare::target(manifest, "orders.products")?;
    Ok(deed_compare::compare(target, shop, orders, &CompareOptions::default()).await?)
}

/// The `reads` line of orders' block.
fn reads_line(text: &str) -> String {
    let block = text.split("[services.orders]").nth(1).unwrap_or_default();
    block.lines().find(|l| l.trim_start().starts_with("reads")).unwrap_or_default().to_string()
}
