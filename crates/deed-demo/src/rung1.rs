//! Rung 1 of the demo: contracts as views, enforced by roles.

use std::path::Path;

use deed_audit::AuditRequest;
use deed_audit::report::AuditReport;
use deed_contracts::{ApplyOutcome, PlanRequest, report};
use deed_manifest::{Date, Manifest};

use crate::error::DemoError;
use crate::narrate::Narrator;
use crate::shop::{CONTRACTS, manifest_text_contracted};
use crate::target::Target;
use crate::workload;

pub struct Rung1 {
    pub plan_breaking: bool,
    pub applied: usize,
    pub second_apply_changed: usize,
    pub audit: deed_audit::AuditOutcome,
    pub denied: Vec<(String, String, Result<(), String>)>,
    pub drift: usize,
    /// What drift said after orders_svc was granted pg_read_all_data by
    /// hand, and whether orders_svc could read products after the apply.
    pub escalation: Vec<String>,
    pub escalation_reads_after_apply: bool,
    /// fulfillment's generated models.
    pub models: crate::models::Models,
}

/// A shortcut someone takes by hand during an incident: orders_svc gets
/// pg_read_all_data, which reads every table whatever the grants say.
/// drift names it, and apply takes it back.
async fn escalation(
    target: &Target,
    n: &Narrator,
    admin: &deed_pg::Client,
    manifest: &Manifest,
    today: Date,
) -> Result<(Vec<String>, bool), DemoError> {
    n.step("During an incident someone runs GRANT pg_read_all_data TO orders_svc by hand");
    target
        .setup_client()
        .await?
        .batch_execute("GRANT pg_read_all_data TO orders_svc")
        .await
        .map_err(|e| DemoError::sql("granting pg_read_all_data", e))?;
    let plan = deed_contracts::plan(
        admin,
        PlanRequest { manifest, audit: None, today, stage: Default::default() },
    )
    .await?;
    n.command("deed drift");
    n.output(&report::drift_table(&plan));
    let found: Vec<String> = plan.changes.iter().map(|c| c.drift.clone()).collect();
    n.command("deed apply");
    match deed_contracts::apply(admin, manifest, today, &[]).await? {
        ApplyOutcome::Applied(changes) => {
            for c in &changes {
                n.detail(&c.summary);
            }
        }
        ApplyOutcome::NothingToDo => n.detail("nothing to do (unexpected)"),
    }
    let reads = target
        .client_as("orders_svc")
        .await?
        .batch_execute("SELECT cost_cents FROM products LIMIT 1")
        .await
        .is_ok();
    n.detail(&format!(
        "orders_svc: SELECT cost_cents FROM products → {}",
        if reads { "ALLOWED (unexpected)" } else { "permission denied" }
    ));
    n.blank();
    Ok((found, reads))
}

pub(crate) async fn run(
    target: &Target,
    n: &Narrator,
    options: &crate::DemoOptions,
) -> Result<Rung1, DemoError> {
    n.rung("Rung 1 · contracted");
    n.step("Publishing versioned contract views, and declaring who reads them (deed.toml):");
    for c in CONTRACTS {
        n.detail(&format!(
            "{:<40} ({}) read by {}",
            format!("{}.{}.v1", c.service, c.name),
            c.columns.join(", "),
            c.readers.join(", ")
        ));
    }
    n.detail("catalog also takes ownership of public.feature_flags");
    let url = target.shop_url();
    let text = manifest_text_contracted();
    let manifest = Manifest::parse(Path::new("deed.toml"), &text, &|name| {
        (name == "DATABASE_URL").then(|| url.clone())
    })
    .map_err(|e| DemoError::Setup(format!("the demo's rung 1 manifest is invalid: {e}")))?;
    let admin = target.shop_client().await?;
    let today = Date::today();
    let observed = AuditRequest {
        manifest: Some(manifest.clone()),
        database_url: Some(url.clone()),
        pg_stat_statements: true,
        ..AuditRequest::default()
    };
    let plan = deed_contracts::plan(
        &admin,
        PlanRequest {
            manifest: &manifest,
            audit: Some(observed.clone()),
            today,
            stage: Default::default(),
        },
    )
    .await?;
    n.blank();
    n.command("deed plan --from pg_stat_statements");
    if options.full_plan {
        n.output(&report::plan_table(&plan, &manifest));
    } else {
        n.output(&report::plan_summary(&plan));
        n.detail("(each change, and the SQL apply runs: `deed demo --full-plan`, or `deed plan` on your database)");
    }
    n.explain(&[
        "The impact preview replays the workload just observed against the plan: every",
        "statement above would fail once the roles are enforced. So the consumers change first.",
    ]);

    n.step("Switching the consumers' queries to the contract views");
    for (service, what) in workload::CONTRACTED_DESCRIPTIONS {
        n.detail(&format!("{service:<12} {what}"));
    }
    n.blank();
    n.command("deed apply");
    let applied = match deed_contracts::apply(&admin, &manifest, today, &[]).await? {
        ApplyOutcome::Applied(changes) => changes.len(),
        ApplyOutcome::NothingToDo => 0,
    };
    target.mark_owner_roles().await?;
    n.output(&format!(
        "deed apply: applied {applied} changes in one transaction, under an advisory lock"
    ));
    let second_apply_changed = match deed_contracts::apply(&admin, &manifest, today, &[]).await? {
        ApplyOutcome::Applied(changes) => changes.len(),
        ApplyOutcome::NothingToDo => 0,
    };
    n.command("deed apply");
    n.output(&format!(
        "deed apply: {}",
        if second_apply_changed == 0 {
            "nothing to do; the database already matches the manifest."
        } else {
            "changed more (unexpected)"
        }
    ));

    n.step("Running the switched workload, then auditing it");
    target
        .setup_client()
        .await?
        .batch_execute("SELECT pg_stat_statements_reset()")
        .await
        .map_err(|e| DemoError::sql("resetting pg_stat_statements", e))?;
    let stats = workload::run_contracted(target).await?;
    n.detail(&format!(
        "{} statements in all, as pg_stat_statements recorded them",
        stats.statements
    ));
    let audit = deed_audit::run(&observed).await?;
    let report = AuditReport {
        catalogue: &audit.catalogue,
        findings: &audit.findings,
        excepted: &audit.excepted,
        manifest: Some(&manifest),
    };
    n.blank();
    n.command("deed audit --from pg_stat_statements");
    n.output(&report.table());
    n.command("deed status --from pg_stat_statements");
    crate::ladder(
        n,
        &manifest,
        deed_ladder::Observed { catalogue: Some(&audit.catalogue), ..Default::default() },
    );

    n.step("The old coupled statements, as the services' own roles:");
    let denied = workload::try_denied(target).await?;
    for (login, statement, result) in &denied {
        let answer = match result {
            Ok(()) => "ALLOWED (unexpected)".to_string(),
            Err(e) => e.clone(),
        };
        n.detail(&format!("{login:<16} {statement}\n{:<21}→ {answer}", ""));
    }
    let drift_plan = deed_contracts::plan(
        &admin,
        PlanRequest { manifest: &manifest, audit: None, today, stage: Default::default() },
    )
    .await?;
    n.blank();
    n.command("deed drift");
    n.output(&report::drift_table(&drift_plan));
    n.explain(&[
        "Every service now reads other services' data only through versioned views it declared;",
        "the database refuses anything else. A migration can no longer silently break a",
        "consumer: the views are the API, and their columns change only in a new version.",
    ]);
    let models = crate::models::run(n, &admin, &manifest).await?;
    let (escalation, escalation_reads_after_apply) =
        escalation(target, n, &admin, &manifest, today).await?;
    Ok(Rung1 {
        escalation,
        escalation_reads_after_apply,
        plan_breaking: plan.is_breaking(),
        applied,
        second_apply_changed,
        audit,
        denied,
        drift: drift_plan.changes.len(),
        models,
    })
}
