use std::path::{Path, PathBuf};

use deed_sql::{OfflineLookup, StatementAnalysis, line_col};
use serde::Deserialize;

use super::SourceSummary;
use crate::collector::Collector;
use crate::error::AuditError;

/// Directories never searched for a service's SQL.
const SKIP_DIRS: &[&str] = &[".git", "target", "node_modules"];

/// An sqlx offline query file (`.sqlx/query-<hash>.json`).
#[derive(Deserialize)]
struct SqlxQuery {
    query: String,
}

/// One file of SQL a service ships, already checked to be UTF-8 and, for
/// sqlx files, unwrapped to its query text.
#[derive(Debug, Clone)]
pub struct SqlFile {
    pub path: PathBuf,
    pub sql: String,
    /// The text came from an sqlx offline query file.
    pub sqlx: bool,
}

impl SqlFile {
    /// `file:line:col` of a byte offset in the SQL text.
    pub fn location(&self, offset: usize) -> String {
        let (line, col) = line_col(&self.sql, offset);
        let name = self.path.display();
        if self.sqlx {
            format!("{name} (query text):{line}:{col}")
        } else {
            format!("{name}:{line}:{col}")
        }
    }

    /// Parses every statement, or fails at the syntax error's location.
    pub fn analyze(
        &self,
        lookup: &dyn deed_sql::SchemaLookup,
    ) -> Result<StatementAnalysis, AuditError> {
        deed_sql::analyze(&self.sql, lookup)
            .map_err(|e| AuditError::input(self.location(e.offset.unwrap_or(0)), e.message))
    }
}

/// Reads one `.sql` file (or sqlx query file), with located errors for
/// bytes that are not UTF-8.
pub fn read_sql_file(path: &Path) -> Result<SqlFile, AuditError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| AuditError::io(format!("reading {name}"), e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let good = e.utf8_error().valid_up_to();
        let (line, col) = line_col(&String::from_utf8_lossy(&e.as_bytes()[..good]), good);
        AuditError::input(format!("{name}:{line}:{col}"), "not valid UTF-8")
    })?;
    let sqlx = is_sqlx(path);
    let sql = if sqlx {
        serde_json::from_str::<SqlxQuery>(&text)
            .map_err(|e| {
                AuditError::input(
                    format!("{name}:{}:{}", e.line(), e.column()),
                    format!("not an sqlx query file: {e}"),
                )
            })?
            .query
    } else {
        text
    };
    Ok(SqlFile { path: path.to_path_buf(), sql, sqlx })
}

/// Every `.sql` file and sqlx offline query file below `dir`, sorted.
pub fn load_sql_dir(dir: &Path) -> Result<Vec<SqlFile>, AuditError> {
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(AuditError::Usage(format!(
            "{} holds no .sql files and no .sqlx/query-*.json files",
            dir.display()
        )));
    }
    files.iter().map(|f| read_sql_file(f)).collect()
}

/// Feeds every statement in `.sql` files and sqlx offline query files under
/// `dir` into the collector as one call each by `service`. A statement that
/// does not parse is an error at its file, line and column.
pub fn read_static_sql(
    dir: &Path,
    service: &str,
    collector: &mut Collector<'_>,
) -> Result<SourceSummary, AuditError> {
    let files = load_sql_dir(dir)?;
    let before = collector.statements();
    collector.note_service(service);
    for file in &files {
        // Parse the whole file first, so a syntax error is reported at
        // its place in the file rather than in a fragment.
        let analysis = file.analyze(&OfflineLookup::default())?;
        for stmt in &analysis.statements {
            let end = (stmt.offset + stmt.len).min(file.sql.len());
            collector.add(service, &file.sql[stmt.offset..end], 1);
        }
    }
    Ok(SourceSummary {
        kind: "sql".into(),
        detail: format!(
            "{} ({} file{}, service {service})",
            dir.display(),
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        ),
        statements: collector.statements() - before,
        notes: Vec::new(),
    })
}

fn is_sqlx(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "json")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), AuditError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| AuditError::io(format!("reading {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| AuditError::io(format!("reading {}", dir.display()), e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry
            .file_type()
            .map_err(|e| AuditError::io(format!("reading {}", path.display()), e))?;
        if kind.is_dir() {
            if !SKIP_DIRS.contains(&name.as_str()) {
                walk(&path, out)?;
            }
        } else if name.ends_with(".sql")
            || (name.starts_with("query-")
                && name.ends_with(".json")
                && dir.file_name().is_some_and(|d| d == ".sqlx"))
        {
            out.push(path);
        }
    }
    Ok(())
}
