//! Consumer-side contract tests: every relation and column a consumer's
//! shipped SQL uses must be its own, or inside a contract version it
//! declares in `reads`.

use std::path::Path;

use deed_audit::source::load_sql_dir;
use deed_ident::QualifiedName;
use deed_manifest::{ContractShape, Manifest};
use deed_sql::{OfflineLookup, SchemaLookup, is_system_schema, line_col};
use serde::Serialize;

use crate::error::CheckError;

#[derive(Debug, Clone, Serialize)]
pub struct ConsumerViolation {
    pub location: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub relation: QualifiedName,
    pub statement: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsumerOutcome {
    pub consumer: String,
    pub files: usize,
    pub statements: usize,
    pub violations: Vec<ConsumerViolation>,
    pub notes: Vec<String>,
}

/// Resolves names through the search path and knows the columns of every
/// contract version with a column list, so unqualified columns in a join
/// with a contract view can be attributed without a database.
struct ContractLookup<'m> {
    manifest: &'m Manifest,
    offline: OfflineLookup,
}

impl SchemaLookup for ContractLookup<'_> {
    fn resolve(&self, schema: Option<&str>, name: &str) -> Option<QualifiedName> {
        self.offline.resolve(schema, name)
    }

    fn columns(&self, relation: &QualifiedName) -> Option<Vec<String>> {
        let r = self.manifest.contract_for_view(relation)?;
        match &self.manifest.contract(&r)?.1.shape {
            ContractShape::Columns(cols) => {
                Some(cols.iter().map(|c| c.as_str().to_string()).collect())
            }
            ContractShape::Query(_) => None,
        }
    }
}

pub fn check_consumer(
    manifest: &Manifest,
    consumer: &str,
    dir: &Path,
    placeholders: deed_sql::Placeholders,
) -> Result<ConsumerOutcome, CheckError> {
    let service = manifest.service(consumer).ok_or_else(|| {
        CheckError::Usage(format!("--consumer {consumer}: the manifest has no such service"))
    })?;
    let lookup = ContractLookup {
        manifest,
        offline: OfflineLookup { search_path: manifest.database.search_path.clone() },
    };
    let files =
        load_sql_dir(dir, deed_audit::Limits::default().file_bytes).map_err(|e| match e {
            deed_audit::AuditError::Input { location, message } => {
                CheckError::Input { location, message }
            }
            other => CheckError::Audit(other),
        })?;
    let mut outcome = ConsumerOutcome {
        consumer: consumer.to_string(),
        files: files.len(),
        statements: 0,
        violations: Vec::new(),
        notes: Vec::new(),
    };
    for file in &files {
        let analysis = file.analyze(&lookup, placeholders).map_err(|e| match e {
            deed_audit::AuditError::Input { location, message } => {
                CheckError::Input { location, message }
            }
            other => CheckError::Audit(other),
        })?;
        for st in &analysis.statements {
            outcome.statements += 1;
            let end = (st.offset + st.len).min(file.sql.len());
            let (line, column) = line_col(&file.sql, st.offset);
            let mut violate = |relation: &QualifiedName, message: String| {
                outcome.violations.push(ConsumerViolation {
                    location: file.location(st.offset),
                    file: file.path.display().to_string(),
                    line,
                    column,
                    relation: relation.clone(),
                    statement: file.sql[st.offset..end].trim().to_string(),
                    message,
                });
            };
            let reads_contract =
                st.accesses.iter().any(|a| manifest.contract_for_view(&a.relation).is_some());
            if reads_contract && !st.unresolved_columns.is_empty() {
                let first = st
                    .accesses
                    .iter()
                    .find(|a| manifest.contract_for_view(&a.relation).is_some())
                    .expect("checked");
                let relation = first.relation.clone();
                violate(
                    &relation,
                    format!(
                        "{consumer} uses {}, which none of the contract versions it reads here publishes",
                        st.unresolved_columns.join(", ")
                    ),
                );
            }
            if let Some(why) = &st.opaque {
                outcome.notes.push(format!("{}: not checked: {why}", file.location(st.offset)));
            }
            for a in &st.accesses {
                if is_system_schema(a.relation.schema.as_str()) || service.owns(&a.relation) {
                    continue;
                }
                let Some(contract) = manifest.contract_for_view(&a.relation) else {
                    let whose = match manifest.owner_of(&a.relation) {
                        Some(o) => format!("{} owns it", o.name),
                        None => "no service owns it".to_string(),
                    };
                    violate(
                        &a.relation,
                        format!(
                            "{consumer} {} {} directly, outside the contracts it reads ({whose})",
                            if a.write { "writes" } else { "reads" },
                            a.relation
                        ),
                    );
                    continue;
                };
                if !service.reads.contains(&contract) {
                    violate(
                        &a.relation,
                        format!(
                            "{consumer} reads {} ({contract}) without declaring it: add \"{contract}\" to its reads",
                            a.relation
                        ),
                    );
                    continue;
                }
                if a.write {
                    violate(
                        &a.relation,
                        format!(
                            "{consumer} writes the contract view {}; contracts are read-only",
                            a.relation
                        ),
                    );
                    continue;
                }
                if let Some(cols) = lookup.columns(&a.relation) {
                    let outside: Vec<&str> = a
                        .columns_read
                        .iter()
                        .filter(|c| !cols.contains(c))
                        .map(String::as_str)
                        .collect();
                    if !outside.is_empty() {
                        violate(
                            &a.relation,
                            format!(
                                "{consumer} uses {} of {}, which {contract} does not publish",
                                outside.join(", "),
                                a.relation
                            ),
                        );
                    }
                }
            }
        }
    }
    Ok(outcome)
}
