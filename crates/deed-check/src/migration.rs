//! Migration files, parsed up front so a syntax error stops everything at
//! its location before any database is touched.

use std::path::PathBuf;

use deed_audit::source::read_sql_file;
use deed_sql::{OfflineLookup, Placeholders, line_col};

use crate::error::CheckError;

pub(crate) struct Statement {
    pub text: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub command: String,
    /// Relations the statement creates or redefines as views.
    pub creates_views: Vec<deed_ident::QualifiedName>,
    /// Relations the statement writes or alters.
    pub writes: Vec<deed_ident::QualifiedName>,
    /// Whether it opens or ends the file's own transaction.
    pub transaction: Txn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Txn {
    None,
    Begin,
    End,
}

impl Txn {
    /// `BEGIN`/`START TRANSACTION` open a transaction; `COMMIT`, `END`,
    /// `ROLLBACK` (not `ROLLBACK TO`), `ABORT` and `PREPARE TRANSACTION`
    /// end it.
    fn of(command: &str, text: &str) -> Txn {
        if command != "TRANSACTION" {
            return Txn::None;
        }
        let words: Vec<String> = text
            .split_whitespace()
            .take(2)
            .map(|w| w.trim_end_matches(';').to_ascii_uppercase())
            .collect();
        match (words.first().map(String::as_str), words.get(1).map(String::as_str)) {
            (Some("BEGIN" | "START"), _) => Txn::Begin,
            (Some("ROLLBACK"), Some("TO")) => Txn::None,
            (Some("COMMIT" | "END" | "ROLLBACK" | "ABORT" | "PREPARE"), _) => Txn::End,
            _ => Txn::None,
        }
    }
}

pub(crate) struct Migration {
    pub statements: Vec<Statement>,
}

pub(crate) fn load(
    paths: &[PathBuf],
    lookup: &OfflineLookup,
) -> Result<Vec<Migration>, CheckError> {
    let mut out = Vec::new();
    for path in paths {
        let file = read_sql_file(path, deed_audit::Limits::default().file_bytes).map_err(input)?;
        // psql's meta-commands and COPY data are not SQL the server would
        // see; variables (`:name`) are left as written: psql would fill them.
        let sql = file.cleaned(Placeholders::Dollar);
        let analysis = file.analyze(lookup, Placeholders::Dollar).map_err(input)?;
        let statements = analysis
            .statements
            .iter()
            .map(|s| {
                let end = (s.offset + s.len).min(sql.len());
                let (line, column) = line_col(&file.sql, s.offset);
                Statement {
                    text: sql[s.offset..end].trim().to_string(),
                    file: file.path.display().to_string(),
                    line,
                    column,
                    command: s.command.clone(),
                    transaction: Txn::of(&s.command, &sql[s.offset..end]),
                    writes: s
                        .accesses
                        .iter()
                        .filter(|a| a.write)
                        .map(|a| a.relation.clone())
                        .collect(),
                    creates_views: if s.command == "CREATE VIEW" {
                        s.accesses.iter().filter(|a| a.write).map(|a| a.relation.clone()).collect()
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect();
        out.push(Migration { statements });
    }
    Ok(out)
}

fn input(e: deed_audit::AuditError) -> CheckError {
    match e {
        deed_audit::AuditError::Input { location, message } => {
            CheckError::Input { location, message }
        }
        other => CheckError::Audit(other),
    }
}

#[cfg(test)]
mod tests {
    use super::Txn;

    #[test]
    fn transaction_control_is_recognised() {
        assert_eq!(Txn::of("TRANSACTION", "begin"), Txn::Begin);
        assert_eq!(
            Txn::of("TRANSACTION", "START TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
            Txn::Begin
        );
        assert_eq!(Txn::of("TRANSACTION", "COMMIT;"), Txn::End);
        assert_eq!(Txn::of("TRANSACTION", "rollback to savepoint a"), Txn::None);
        assert_eq!(Txn::of("TRANSACTION", "ROLLBACK"), Txn::End);
        assert_eq!(Txn::of("TRANSACTION", "SAVEPOINT a"), Txn::None);
        assert_eq!(Txn::of("ALTER TABLE", "BEGIN"), Txn::None);
    }
}
