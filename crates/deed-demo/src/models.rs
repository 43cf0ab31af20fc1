//! Rung 1's models: fulfillment's hand-written copies of the tables it
//! reads give way to models `deed generate` writes from the contracts it
//! declared, with NOT NULL proven through the views.

use deed_manifest::Manifest;

use crate::error::DemoError;
use crate::narrate::Narrator;

/// What the demo generated, for tests to check.
#[derive(Debug, Default, Clone)]
pub struct Models {
    /// The generated files' paths.
    pub files: Vec<String>,
    /// Columns of the contract views generated NOT NULL, and all of them.
    pub not_null: usize,
    pub columns: usize,
    /// Every other language's files, by language, as rendered from the
    /// same model.
    pub others: Vec<(&'static str, usize)>,
}

pub(crate) async fn run(
    n: &Narrator,
    admin: &deed_pg::Client,
    manifest: &Manifest,
) -> Result<Models, DemoError> {
    n.step("fulfillment's hand-written models of orders and products give way to generated ones");
    n.command("deed generate --service fulfillment --lang python --out models/fulfillment");
    let failed = |e: deed_generate::GenerateError| DemoError::Setup(format!("deed generate: {e}"));
    let choice = deed_generate::choose(manifest, Some("fulfillment")).map_err(failed)?;
    let model = deed_generate::observe(admin, manifest, &choice).await.map_err(failed)?;
    let files =
        deed_generate::render_files(&model, deed_generate::Lang::Python, Some("fulfillment"));
    let columns = model.contracts.iter().flat_map(|c| &c.columns);
    let out = Models {
        files: files.keys().cloned().collect(),
        not_null: columns.clone().filter(|c| c.not_null).count(),
        columns: columns.count(),
        others: [
            (deed_generate::Lang::TypeScript, "typescript"),
            (deed_generate::Lang::Rust, "rust"),
            (deed_generate::Lang::Go, "go"),
            (deed_generate::Lang::JsonSchema, "jsonschema"),
            (deed_generate::Lang::AsyncApi, "asyncapi"),
        ]
        .into_iter()
        .map(|(lang, name)| {
            (name, deed_generate::render_files(&model, lang, Some("fulfillment")).len())
        })
        .collect(),
    };
    n.output(&format!(
        "models/fulfillment: {} files, a package fulfillment's applications pip install",
        out.files.len()
    ));
    if let Some(text) = files.get("deed_models_fulfillment/contracts.py") {
        // The class of the first contract view, as written.
        if let Some(start) = text.find("\n\nclass CatalogProductsV1") {
            let class = &text[start + 2..];
            let end = class.find("\n\n\nclass ").unwrap_or(class.len());
            n.code(class[..end].trim_end());
        }
    }
    let others: Vec<String> =
        out.others.iter().map(|(lang, files)| format!("{lang} {files}")).collect();
    n.output(&format!(
        "the same model in the other languages (--lang …): {} files",
        others.join(", ")
    ));
    n.explain(&[
        &format!(
            "{} of the {} columns are NOT NULL: proven through each view from its table's",
            out.not_null, out.columns
        ),
        "constraints (PostgreSQL reports every view column as nullable). `--check` in CI fails",
        "when a contract changes and the committed models were not generated again.",
    ]);
    Ok(out)
}
