use std::path::{Path, PathBuf};

use deed_sql::{Placeholders, SessionEffects, SessionState, StatementAnalysis, line_col};
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

    /// The file as plain SQL of the same length (see
    /// [`deed_sql::clean_script`]): psql's meta-commands and `COPY` data
    /// blanked, driver placeholders turned into parameters.
    pub fn cleaned(&self, placeholders: Placeholders) -> String {
        deed_sql::clean_script(&self.sql, placeholders)
    }

    /// Parses every statement of the cleaned text (offsets stay those of
    /// the file), or fails at the syntax error's location.
    pub fn analyze(
        &self,
        lookup: &dyn deed_sql::SchemaLookup,
        placeholders: Placeholders,
    ) -> Result<StatementAnalysis, AuditError> {
        deed_sql::analyze(&self.cleaned(placeholders), lookup)
            .map_err(|e| AuditError::input(self.location(e.offset.unwrap_or(0)), e.message))
    }
}

/// Reads one `.sql` file (or sqlx query file) of at most `max` bytes, with
/// located errors for bytes that are not UTF-8.
pub fn read_sql_file(path: &Path, max: u64) -> Result<SqlFile, AuditError> {
    let name = path.display().to_string();
    let bytes = crate::limits::read_file(path, max).map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidData {
            AuditError::input(format!("{name}:1"), e.to_string())
        } else {
            AuditError::io(format!("reading {name}"), e)
        }
    })?;
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
/// Symbolic links are followed only while they stay inside `dir`; one that
/// leads out is skipped (see [`sql_paths`]).
pub fn load_sql_dir(dir: &Path, max_file: u64) -> Result<Vec<SqlFile>, AuditError> {
    let (files, _) = sql_paths(dir)?;
    files.iter().map(|f| read_sql_file(f, max_file)).collect()
}

/// The SQL files below `dir`, and the links skipped because they lead
/// outside it: `--from-sql` reads a service's own tree, never a token file
/// a link points to.
pub fn sql_paths(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), AuditError> {
    let root = std::fs::canonicalize(dir)
        .map_err(|e| AuditError::io(format!("reading {}", dir.display()), e))?;
    let mut walk = Walk { root, files: Vec::new(), outside: Vec::new(), seen: Vec::new() };
    walk.dir(dir)?;
    walk.files.sort();
    if walk.files.is_empty() {
        let skipped = if walk.outside.is_empty() {
            String::new()
        } else {
            let shown: Vec<String> =
                walk.outside.iter().take(5).map(|p| p.display().to_string()).collect();
            format!(
                " it may read: {} {} outside it (or nowhere) and {} skipped",
                shown.join(", "),
                if walk.outside.len() == 1 { "leads" } else { "lead" },
                if walk.outside.len() == 1 { "was" } else { "were" }
            )
        };
        return Err(AuditError::Usage(format!(
            "{} holds no .sql files and no .sqlx/query-*.json files{skipped}",
            dir.display()
        )));
    }
    Ok((walk.files, walk.outside))
}

/// Feeds every statement in `.sql` files and sqlx offline query files under
/// `dir` into the collector as one call each by `service`. A statement that
/// does not parse is an error at its file, line and column.
pub fn read_static_sql(
    dir: &Path,
    service: &str,
    placeholders: Placeholders,
    limits: &crate::Limits,
    collector: &mut Collector<'_>,
) -> Result<SourceSummary, AuditError> {
    let (paths, outside) = sql_paths(dir)?;
    let mut warnings = Vec::new();
    let before = collector.statements();
    collector.note_service(service);
    for path in &paths {
        // One file in memory at a time; statements are cut by the scanner
        // (cheap), and each is parsed on its own by the collector.
        let file = read_sql_file(path, limits.file_bytes)?;
        let sql = file.cleaned(placeholders);
        let statements = deed_sql::split_statements(&sql);
        // Each file is one session: its SET search_path and temporary
        // tables change how its later statements resolve names.
        let mut session = SessionState::default();
        collector.set_session(&session);
        for (offset, text) in statements {
            let shape = collector.add(service, text, 1);
            let effects = match &collector.shapes()[shape].result {
                Ok(a) => a.effects.clone(),
                Err(_) if collector.is_oversized(shape) => continue,
                // One statement the parser rejects does not hide the rest.
                Err(e) => {
                    let at = offset + e.offset.unwrap_or(0);
                    warnings.push(format!("{}: {}", file.location(at), e.message));
                    continue;
                }
            };
            if apply_effects(&mut session, &effects, text) {
                collector.set_session(&session);
            }
        }
    }
    collector.set_session(&SessionState::default());
    Ok(SourceSummary {
        kind: "sql".into(),
        detail: format!(
            "{} ({} file{}, service {service})",
            dir.display(),
            paths.len(),
            if paths.len() == 1 { "" } else { "s" }
        ),
        statements: collector.statements() - before,
        notes: outside
            .iter()
            .map(|p| {
                format!(
                    "skipped {}: a link that leads outside {}",
                    deed_text::printable(&p.display().to_string()),
                    dir.display()
                )
            })
            .collect(),
        warnings,
    })
}

/// Folds a statement's effects into the session; whether anything changed.
fn apply_effects(session: &mut SessionState, effects: &SessionEffects, text: &str) -> bool {
    let mut changed = false;
    if let Some(path) = &effects.search_path {
        // `set_config('search_path', '…')` takes the path from a literal,
        // which statements sharing one analysis may differ in: read it
        // from this text.
        let path = if text.contains("set_config") {
            deed_sql::analyze(text, &deed_sql::OfflineLookup::default())
                .ok()
                .and_then(|a| a.statements.last().and_then(|s| s.effects.search_path.clone()))
                .unwrap_or_else(|| path.clone())
        } else {
            path.clone()
        };
        session.search_path = path.map(|p| {
            p.into_iter()
                .filter(|s| s != "$user")
                .filter_map(|s| deed_ident::Ident::new(s).ok())
                .collect()
        });
        changed = true;
    }
    for t in &effects.temp_tables {
        changed |= session.temp_tables.insert(t.clone());
    }
    changed
}

fn is_sqlx(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "json")
}

struct Walk {
    root: PathBuf,
    files: Vec<PathBuf>,
    outside: Vec<PathBuf>,
    /// Directories already walked (canonical), so a link loop ends.
    seen: Vec<PathBuf>,
}

impl Walk {
    fn dir(&mut self, dir: &Path) -> Result<(), AuditError> {
        let io = |path: &Path| {
            let shown = path.display().to_string();
            move |e| AuditError::io(format!("reading {shown}"), e)
        };
        let canonical = std::fs::canonicalize(dir).map_err(io(dir))?;
        if self.seen.contains(&canonical) {
            return Ok(());
        }
        self.seen.push(canonical);
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut kind = entry.file_type().map_err(io(&path))?;
            if kind.is_symlink() {
                match std::fs::canonicalize(&path) {
                    Ok(target) if target.starts_with(&self.root) => {
                        kind = std::fs::metadata(&target).map_err(io(&path))?.file_type();
                    }
                    // Dangling, or leading out of the directory.
                    _ => {
                        if is_sql_name(&name, dir)
                            || std::fs::metadata(&path).is_ok_and(|m| m.is_dir())
                        {
                            self.outside.push(path);
                        }
                        continue;
                    }
                }
            }
            if kind.is_dir() {
                if !SKIP_DIRS.contains(&name.as_str()) {
                    self.dir(&path)?;
                }
            } else if is_sql_name(&name, dir) {
                if !kind.is_file() {
                    // A device, a pipe or a socket: never read as SQL.
                    return Err(AuditError::input(
                        path.display().to_string(),
                        "not a regular file (a device, a pipe or a socket); remove it or give the directory of the real files",
                    ));
                }
                self.files.push(path);
            }
        }
        Ok(())
    }
}

fn is_sql_name(name: &str, dir: &Path) -> bool {
    name.ends_with(".sql")
        || (name.starts_with("query-")
            && name.ends_with(".json")
            && dir.file_name().is_some_and(|d| d == ".sqlx"))
}
