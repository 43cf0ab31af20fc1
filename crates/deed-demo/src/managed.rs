//! Rung 1 again, the way most teams meet it: on a managed service, where
//! nobody is a superuser. A small database owned by an admin made like a
//! provider's (`CREATEROLE CREATEDB REPLICATION`, no superuser), its table
//! created by that admin as a migration tool would; `deed doctor` proves
//! what apply does, the plan shows what deed grants its own role, and the
//! apply runs as that admin. Everything made here is dropped at the end.

use std::path::Path;

use deed_contracts::{ApplyOutcome, Phase, PlanRequest, Stage};
use deed_manifest::{Date, Manifest};

use crate::error::DemoError;
use crate::narrate::Narrator;
use crate::target::Target;

const DATABASE: &str = "deed_demo_managed";
const ADMIN: &str = "deed_demo_managed_admin";
const LOGINS: &[&str] = &["deed_demo_m_catalog_svc", "deed_demo_m_orders_svc"];
const OWNERS: &[&str] = &["deed_m_catalog_owner", "deed_m_orders_owner"];

/// What the managed walk showed, for tests.
#[derive(Debug, Clone, Default)]
pub struct Managed {
    /// Apply's steps proved by doctor, and how many passed.
    pub proofs: usize,
    pub proofs_done: usize,
    /// The plan's grants to deed's own role.
    pub self_grants: usize,
    pub applied: usize,
    /// A plan right after the apply: nothing left to do.
    pub left_after: usize,
}

const MANIFEST: &str = r#"version = 1
[services.m_catalog]
owns = ["public.products"]
logins = ["deed_demo_m_catalog_svc"]
[[services.m_catalog.contracts]]
name = "products"
version = 1
from = "public.products"
columns = ["id", "name"]

[services.m_orders]
owns = []
logins = ["deed_demo_m_orders_svc"]
reads = ["m_catalog.products.v1"]
"#;

pub async fn run(target: &Target, n: &Narrator) -> Result<Managed, DemoError> {
    n.step("The same rung on a managed service, where nobody is a superuser");
    let result = walk(target, n).await;
    cleanup(target).await;
    result
}

async fn walk(target: &Target, n: &Narrator) -> Result<Managed, DemoError> {
    let url = target.managed_admin(DATABASE, ADMIN).await?;
    n.detail(&format!(
        "{ADMIN}: LOGIN CREATEROLE CREATEDB REPLICATION, owns database {DATABASE}, not a superuser"
    ));
    let admin = deed_pg::connect_plain(&url).await?;
    let mut setup = String::from(
        "CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, cost_cents int);\n",
    );
    for login in LOGINS {
        setup.push_str(&format!(
            "CREATE ROLE {login} LOGIN;\nGRANT SELECT ON products TO {login};\n"
        ));
    }
    admin.batch_execute(&setup).await.map_err(|e| DemoError::sql("the admin's migration", e))?;
    n.detail("The admin created products and the services' logins, as a migration tool would.");

    n.command("deed doctor   # each of apply's steps, done in a transaction rolled back");
    let client = deed_pg::connect(&url).await?;
    let observed = deed_doctor::observe(&client, None).await?;
    let mut out = Managed { proofs: observed.proofs.len(), ..Managed::default() };
    let where_ = deed_doctor::checks(&observed, None);
    for c in where_.iter().filter(|c| c.rung == 1 && c.name != "pg_dump for deed check") {
        let mark = if c.level == deed_doctor::Level::Ok { "ok  " } else { "FAIL" };
        let detail = c.detail.strip_prefix("done (rolled back): ").unwrap_or(&c.detail);
        n.detail(&format!("{mark} {}: {detail}", c.name));
    }
    out.proofs_done =
        observed.proofs.iter().filter(|p| p.outcome == deed_doctor::prove::Outcome::Done).count();

    let manifest = Manifest::parse(Path::new("deed.toml"), MANIFEST, &|_| None)
        .map_err(|e| DemoError::Setup(format!("the managed demo's manifest is invalid: {e}")))?;
    let today = Date::today();
    n.command("deed plan");
    let request = || PlanRequest { manifest: &manifest, audit: None, today, stage: Stage::Enforce };
    let plan = deed_contracts::plan(&client, request()).await?;
    for c in plan.changes.iter().filter(|c| {
        c.phase == Phase::Memberships && c.object.ends_with(ADMIN) || c.phase == Phase::Ownership
    }) {
        n.detail(&format!("+ {}", c.summary));
        for sql in &c.sql {
            n.detail(&format!("    {sql};"));
        }
    }
    out.self_grants = plan
        .changes
        .iter()
        .filter(|c| c.phase == Phase::Memberships && c.object.ends_with(ADMIN))
        .count();
    n.command("deed apply");
    out.applied = match deed_contracts::apply(&client, &manifest, today, &[]).await? {
        ApplyOutcome::Applied(changes) => changes.len(),
        ApplyOutcome::NothingToDo => 0,
    };
    out.left_after = deed_contracts::plan(&client, request()).await?.changes.len();
    n.detail(&format!(
        "deed apply: {} changes as {ADMIN}; a plan right after has {} left to do",
        out.applied, out.left_after
    ));
    n.explain(&[
        "On PostgreSQL 16 and later the creator of a role holds only ADMIN on it, so deed grants",
        "its own role each owner role (SET and INHERIT, shown in the plan), and gives a new owner",
        "CREATE on the table's schema only for the step that needs it. docs/managed-postgres.md",
        "has what each provider needs and what was tested on which version.",
    ]);
    Ok(out)
}

/// Drops the database and every role made here; reported never, since a
/// failure here changes nothing the shop needs.
async fn cleanup(target: &Target) {
    let mut statements = vec![format!("DROP DATABASE IF EXISTS \"{DATABASE}\" WITH (FORCE)")];
    for role in LOGINS.iter().chain(OWNERS).chain([&ADMIN]) {
        statements.push(format!("DROP ROLE IF EXISTS \"{role}\""));
    }
    target.run_as_superuser(&statements).await;
}
