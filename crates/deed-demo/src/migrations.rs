//! Migrations against published contracts: a breaking change rejected by
//! `deed check`, then the same change made the safe way (expand, migrate,
//! contract) with a new contract version.

use std::path::{Path, PathBuf};

use deed_check::{CheckOutcome, CheckRequest, bump};
use deed_contracts::{ApplyOutcome, PlanRequest};
use deed_manifest::{Date, Manifest};

use crate::error::DemoError;
use crate::narrate::Narrator;
use crate::shop::manifest_text_contracted;
use crate::target::Target;

pub struct MigrationStory {
    /// The breaking migration's verdict.
    pub rejected: CheckOutcome,
    /// The expand and contract migrations' verdicts.
    pub expand: CheckOutcome,
    pub contract: CheckOutcome,
    /// Drift after the whole route.
    pub drift: usize,
    /// The manifest at the end: products.v2 only.
    pub manifest: String,
}

const BREAKING: &str = "ALTER TABLE products ADD COLUMN price_eur numeric(12,2);\n\
UPDATE products SET price_eur = price_cents / 100.0;\n\
ALTER TABLE products DROP COLUMN price_cents CASCADE;\n";

const EXPAND: &str = "ALTER TABLE products ADD COLUMN price_eur numeric(12,2);\n\
UPDATE products SET price_eur = price_cents / 100.0;\n";

const CONTRACT: &str = "ALTER TABLE products DROP COLUMN price_cents;\n";

fn manifest(text: &str, url: &str) -> Result<Manifest, DemoError> {
    Manifest::parse(Path::new("deed.toml"), text, &|name| {
        (name == "DATABASE_URL").then(|| url.to_string())
    })
    .map_err(|e| DemoError::Setup(format!("a demo manifest is invalid: {e}")))
}

fn write(dir: &Path, name: &str, sql: &str) -> Result<PathBuf, DemoError> {
    let path = dir.join(name);
    std::fs::write(&path, sql)
        .map_err(|e| DemoError::Setup(format!("writing {}: {e}", path.display())))?;
    Ok(path)
}

pub(crate) async fn run(target: &Target, n: &Narrator) -> Result<MigrationStory, DemoError> {
    let url = target.shop_url();
    let today = Date::today();
    // Unique per run: two demos in one process (the tests) never share it.
    let tmp = tempfile::Builder::new()
        .prefix("deed-demo-migrations-")
        .tempdir()
        .map_err(|e| DemoError::Setup(format!("making a temporary directory: {e}")))?;
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(dir.join("migrations"))
        .map_err(|e| DemoError::Setup(format!("{e}")))?;
    let shown = |text: String| text.replace(&format!("{}/", dir.display()), "");
    let url_ref = &url;
    let check = move |text: &str, files: Vec<PathBuf>| {
        let manifest = manifest(text, url_ref);
        async move {
            let request = CheckRequest {
                manifest: manifest?,
                database_url: url_ref.clone(),
                scratch_url: None,
                migrations: files,
                audit: None,
                today,
            };
            Ok::<_, DemoError>(deed_check::check(&request).await?)
        }
    };

    n.rung("Rung 1 · contracted: migrations");
    n.step("catalog wants prices in euros and writes the migration the usual way:");
    let breaking = write(&dir, "migrations/0042_price_eur.sql", BREAKING)?;
    n.code(BREAKING);
    n.command("deed check migrations/0042_price_eur.sql");
    let v1_text = manifest_text_contracted();
    let rejected = check(&v1_text, vec![breaking]).await?;
    n.output(&shown(deed_check::report::table(&rejected)));
    n.explain(&[
        "Rejected (exit 1), in CI, before it reaches the database. The safe route instead:",
        "",
    ]);

    n.step("Expand: publish v2 next to v1, and only add the new column");
    n.command("deed contract bump catalog.products");
    let (bumped, reference) = bump(&manifest(&v1_text, &url)?, "catalog.products")?;
    let at = bumped
        .find("version = 2")
        .ok_or_else(|| DemoError::Setup("bump made no version 2".into()))?;
    let v2_text = format!(
        "{}{}",
        &bumped[..at],
        bumped[at..].replacen(
            "columns = [\"id\", \"name\", \"price_cents\"]",
            "columns = [\"id\", \"name\", \"price_eur\"]",
            1
        )
    );
    n.output(&format!("added {reference} to deed.toml; its columns become id, name, price_eur"));
    let expand = write(&dir, "migrations/0042_price_eur.sql", EXPAND)?;
    n.code(EXPAND);
    n.command("deed check migrations/0042_price_eur.sql");
    let expand_verdict = check(&v2_text, vec![expand]).await?;
    n.output(&shown(deed_check::report::table(&expand_verdict)));
    let catalog = target.client_as("catalog_svc").await?;
    catalog
        .batch_execute(EXPAND)
        .await
        .map_err(|e| DemoError::sql("running the expand migration", e))?;
    let admin = target.shop_client().await?;
    apply(&admin, &v2_text, &url, today).await?;
    n.detail("The migration ran as catalog_svc, and deed apply published catalog_api.products_v2.");
    n.blank();

    n.step("Migrate: orders and fulfillment move to v2, in their queries and in deed.toml");
    let moved = v2_text.replace("\"catalog.products.v1\"", "\"catalog.products.v2\"");
    let applied = apply(&admin, &moved, &url, today).await?;
    n.detail(&format!("deed apply: {applied} changes (their grants on v2)"));
    n.blank();

    n.step("Contract: nobody reads v1, so it leaves deed.toml, and then the old column goes");
    let start = moved
        .find("[[services.catalog.contracts]]\nname = \"products\"\nversion = 1\n")
        .ok_or_else(|| DemoError::Setup("no v1 block".into()))?;
    let end = start + moved[start..].find("\n\n").unwrap_or(moved.len() - start) + 2;
    let retired = format!("{}{}", &moved[..start], &moved[end..]);
    let applied = apply(&admin, &retired, &url, today).await?;
    n.detail(&format!("deed apply: {applied} change (DROP VIEW catalog_api.products_v1)"));
    n.blank();
    let contract_file = write(&dir, "migrations/0043_drop_price_cents.sql", CONTRACT)?;
    n.code(CONTRACT);
    n.command("deed check migrations/0043_drop_price_cents.sql");
    let contract_verdict = check(&retired, vec![contract_file]).await?;
    n.output(&shown(deed_check::report::table(&contract_verdict)));
    catalog
        .batch_execute(CONTRACT)
        .await
        .map_err(|e| DemoError::sql("running the contract migration", e))?;
    let m = manifest(&retired, &url)?;
    let drift = deed_contracts::plan(
        &admin,
        PlanRequest { manifest: &m, audit: None, today, stage: Default::default() },
    )
    .await?;
    n.command("deed drift");
    n.output(&deed_contracts::report::drift_table(&drift));
    n.explain(&[
        "The same change, in three deployable steps: no consumer ever saw a column vanish.",
    ]);
    Ok(MigrationStory {
        rejected,
        expand: expand_verdict,
        contract: contract_verdict,
        drift: drift.changes.len(),
        manifest: retired,
    })
}

async fn apply(
    admin: &deed_pg::Client,
    text: &str,
    url: &str,
    today: Date,
) -> Result<usize, DemoError> {
    let m = manifest(text, url)?;
    Ok(match deed_contracts::apply(admin, &m, today, &[]).await? {
        ApplyOutcome::Applied(c) => c.len(),
        ApplyOutcome::NothingToDo => 0,
    })
}
