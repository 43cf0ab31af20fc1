//! `deed demo`: the example shop from the seeds' scenarios, built in a
//! fresh database with one login role per service, driven by a workload
//! with the coupling the articles describe, and audited.
//!
//! With no database URL it runs on a private throwaway cluster started
//! from the local PostgreSQL binaries and removed afterwards.

mod bus;
mod error;
mod managed;
mod migrations;
mod models;
mod narrate;
mod projections;
mod rung1;
mod rung2;
mod rung3;
mod rung4;
mod shop;
mod target;
mod workload;

use std::path::Path;

use deed_audit::AuditRequest;
use deed_audit::report::AuditReport;
use deed_manifest::Manifest;

pub use bus::bus_url;
pub use error::DemoError;
pub use managed::Managed;
pub use migrations::MigrationStory;
pub use projections::Projections;
pub use rung1::Rung1;
pub use rung2::Rung2;
pub use rung3::Rung3;
pub use rung4::Rung4;
pub use shop::{CONTRACTS, DEMO_DATABASE, SERVICES, manifest_text, manifest_text_contracted};
pub use workload::WorkloadStats;

use bus::DemoBus;
use narrate::Narrator;
use target::Target;

#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// An existing server to build the shop on (as a superuser); `None`
    /// starts a private cluster.
    pub database_url: Option<String>,
    /// Leave the shop database in place afterwards.
    pub keep: bool,
    /// Write the audit's HTML page here too.
    pub html: Option<std::path::PathBuf>,
    /// The `deed` executable, to run the relay as a real process and kill
    /// it with SIGKILL; without it the relay runs as a task.
    pub deed_exe: Option<std::path::PathBuf>,
    /// Rung 2's bus: a NATS, RabbitMQ or Kafka URL ([`bus_url`] turns
    /// `--bus`'s names into one); `None` is the consumers' inbox.
    pub bus: Option<String>,
    /// Print rung 1's whole plan, not its summary.
    pub full_plan: bool,
}

/// What the demo found, for tests to check.
pub struct DemoResult {
    pub workload: WorkloadStats,
    pub audit: deed_audit::AuditOutcome,
    pub rung1: Rung1,
    /// Rung 1 again as a managed service's admin (no superuser).
    pub managed: Managed,
    pub migrations: MigrationStory,
    pub rung2: Rung2,
    pub projections: Projections,
    pub rung3: Rung3,
    pub rung4: Rung4,
}

/// Runs the whole demo, narrating to stdout.
pub async fn run(options: &DemoOptions) -> Result<DemoResult, DemoError> {
    let n = Narrator::stdout();
    n.title("deed demo: a shop whose services share one PostgreSQL database");
    let target = Target::prepare(options, &n).await?;
    let outcome = walk(&target, &n, options).await;
    target.finish(options.keep, &n).await;
    outcome
}

async fn walk(
    target: &Target,
    n: &Narrator,
    options: &DemoOptions,
) -> Result<DemoResult, DemoError> {
    n.step("Building the shop: 4 services, one shared schema, one login role per service");
    shop::build(target).await?;
    let width = SERVICES.iter().map(|s| s.owns.join(", ").len()).max().unwrap_or(0);
    for s in SERVICES {
        n.detail(&format!(
            "{:<12} owns {:<width$}  logs in as {}",
            s.name,
            s.owns.join(", "),
            s.login
        ));
    }
    n.detail("public.feature_flags is read by several services and owned by none");

    n.step("Running each service's workload as its own role");
    let stats = workload::run(target).await?;
    for (service, what) in workload::DESCRIPTIONS {
        n.detail(&format!("{service:<12} {what}"));
    }
    n.detail(&format!(
        "{} statements in all, as pg_stat_statements recorded them",
        stats.statements
    ));

    let manifest_text = manifest_text();
    n.step("Drawing the ownership lines on paper first: deed.toml");
    n.code(&manifest_text);
    n.rung("Rung 0 · shared");
    n.command("deed audit --from pg_stat_statements");
    let url = target.shop_url();
    let manifest = Manifest::parse(Path::new("deed.toml"), &manifest_text, &|name| {
        (name == "DATABASE_URL").then(|| url.clone())
    })
    .map_err(|e| DemoError::Setup(format!("the demo manifest is invalid: {e}")))?;
    let request = AuditRequest {
        manifest: Some(manifest),
        database_url: Some(target.shop_url()),
        pg_stat_statements: true,
        ..AuditRequest::default()
    };
    let audit = deed_audit::run(&request).await?;
    let report = AuditReport {
        catalogue: &audit.catalogue,
        findings: &audit.findings,
        excepted: &audit.excepted,
        manifest: request.manifest.as_ref(),
    };
    n.output(&report.table());
    if let Some(path) = &options.html {
        std::fs::write(path, report.html())
            .map_err(|e| DemoError::Setup(format!("writing {}: {e}", path.display())))?;
        n.detail(&format!("The same audit as a page: {}", path.display()));
        n.blank();
    }
    n.explain(&[
        "Each `!` is coupling nobody agreed to, invisible until now:",
        "- fulfillment marks orders shipped by writing public.orders itself, and users rewrites",
        "  orders.customer_email to keep its denormalized copy of the email in sync: three writers.",
        "- orders reads public.products with SELECT *: any column catalog adds or drops changes",
        "  what orders receives, at runtime, with no warning.",
        "- fulfillment joins orders, order_items and products directly: three owners' schemas",
        "  are now one service's API.",
        "- public.feature_flags belongs to no one, so no one may change it safely.",
        "`deed init` proposes a manifest like this one from the same traffic.",
    ]);
    n.command("deed status --from pg_stat_statements");
    if let Some(m) = &request.manifest {
        ladder(
            n,
            m,
            deed_ladder::Observed { catalogue: Some(&audit.catalogue), ..Default::default() },
        );
    }
    let rung1 = rung1::run(target, n, options).await?;
    let managed = managed::run(target, n).await?;
    let migrations = migrations::run(target, n).await?;
    // Rungs 2 to 4 keep their events where `--bus` says: the demo makes
    // its services' streams, queues or topics there, and removes them
    // afterwards whether the rungs succeed or fail.
    let bus = DemoBus::new(options.bus.as_deref(), &target.inbox_url())?;
    bus.refuse_existing().await?;
    let rungs = events_rungs(target, n, options, &migrations.manifest, &bus).await;
    if !bus.is_inbox() {
        bus.remove().await;
        if rungs.is_ok() {
            n.detail(&format!("(the demo's {} were removed from {})", bus.made(), bus.shown()));
        }
    }
    let (rung2, projections, rung3, rung4) = rungs?;
    Ok(DemoResult {
        workload: stats,
        audit,
        rung1,
        managed,
        migrations,
        rung2,
        projections,
        rung3,
        rung4,
    })
}

/// Rungs 2 to 4, on `bus`.
async fn events_rungs(
    target: &Target,
    n: &Narrator,
    options: &DemoOptions,
    manifest_text: &str,
    bus: &DemoBus,
) -> Result<(Rung2, Projections, Rung3, Rung4), DemoError> {
    let deed_exe = options.deed_exe.as_deref();
    let rung2 = rung2::run(target, n, rung2::Rung2Options { manifest_text, deed_exe, bus }).await?;
    let (projections, text) = projections::run(target, n, &rung2.manifest, deed_exe, bus).await?;
    let (shop, own) = (target.shop_url(), target.inbox_url());
    let lookup = move |name: &str| match name {
        "DATABASE_URL" => Some(shop.clone()),
        "ORDERS_DATABASE_URL" => Some(own.clone()),
        _ => None,
    };
    let (rung3, text) = rung3::run(target, n, &text, &lookup, bus).await?;
    let rung4 = rung4::run(target, n, &text, &lookup, bus).await?;
    Ok((rung2, projections, rung3, rung4))
}

/// `deed status` as the command prints it: every flow's rung and next
/// step, capture's health and the projections.
pub(crate) fn ladder(
    n: &Narrator,
    manifest: &Manifest,
    observed: deed_ladder::Observed<'_>,
) -> deed_ladder::Status {
    let status = deed_ladder::status(
        manifest,
        observed,
        deed_manifest::Date::today(),
        deed_ladder::Bounds::default(),
    );
    n.output(&deed_ladder::render::table(&status));
    status
}
