//! `deed plan -o FILE` and `deed apply FILE`: a plan saved for later, that
//! applies only while the manifest and the database are as they were when
//! it was made.

use std::path::Path;

use anyhow::{Context, Result, bail};
use deed_contracts::{Plan, Stage};
use deed_ident::QualifiedName;
use serde_json::{Value, json};

const KIND: &str = "deed-plan";

pub struct SavedPlan {
    pub manifest: String,
    pub stage: Stage,
    pub keep: Vec<QualifiedName>,
    pub statements: Vec<String>,
}

pub fn save(path: &Path, manifest_text: &str, stage: Stage, plan: &Plan) -> Result<()> {
    let doc = json!({
        "format_version": 1,
        "kind": KIND,
        "stage": stage,
        "manifest": manifest_text,
        "keep": plan
            .kept
            .iter()
            .map(|k| [k.view.schema.as_str(), k.view.name.as_str()])
            .collect::<Vec<_>>(),
        "statements": plan.expected(),
        "summary": plan.changes.iter().map(|c| c.summary.clone()).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&doc).expect("a plan serialises");
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

pub fn load(path: &Path) -> Result<SavedPlan> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let doc: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a plan saved by `deed plan -o`", path.display()))?;
    if doc["kind"] != KIND || doc["format_version"] != 1 {
        bail!("{}: not a plan saved by `deed plan -o` (format 1)", path.display());
    }
    let strings = |key: &str| -> Result<Vec<String>> {
        doc[key]
            .as_array()
            .with_context(|| format!("{}: `{key}` is missing", path.display()))?
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .with_context(|| format!("{}: `{key}` must hold strings", path.display()))
    };
    let stage = match doc["stage"].as_str() {
        Some("publish") => Stage::Publish,
        Some("enforce") => Stage::Enforce,
        _ => bail!("{}: `stage` must be publish or enforce", path.display()),
    };
    let keep = doc["keep"]
        .as_array()
        .with_context(|| format!("{}: `keep` is missing", path.display()))?
        .iter()
        .map(|pair| {
            let (Some(schema), Some(name)) = (pair[0].as_str(), pair[1].as_str()) else {
                bail!("{}: `keep` holds [schema, name] pairs", path.display());
            };
            QualifiedName::from_catalog(schema, name)
                .map_err(|e| anyhow::anyhow!("{}: kept view {schema}.{name}: {e}", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SavedPlan {
        manifest: doc["manifest"]
            .as_str()
            .with_context(|| format!("{}: `manifest` is missing", path.display()))?
            .to_string(),
        stage,
        keep,
        statements: strings("statements")?,
    })
}
