use deed_ident::QualifiedName;
use deed_manifest::ContractRef;
use serde::Serialize;

/// How a migration breaks a contract version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakKind {
    /// The view is gone, directly or through `DROP … CASCADE`.
    Dropped,
    /// Columns removed, added, renamed, retyped or reordered.
    ColumnsChanged,
    /// The published view was redefined (`CREATE OR REPLACE VIEW`).
    Redefined,
    /// A column beneath an exposed one lost its NOT NULL.
    NotNullDropped,
    /// A payload column of an event gained NOT NULL, which events already
    /// published may lack (breaks `compatibility = "backward"` and `"full"`).
    NotNullAdded,
    /// A column beneath an exposed one was renamed: the view survives, but
    /// the manifest's definition no longer resolves.
    Renamed,
    /// The manifest's definition no longer creates the published shape.
    DefinitionBroken,
    /// The migration fails because the contract view depends on what it
    /// changes.
    Blocked,
}

/// One breaking change, at the statement that makes it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: BreakKind,
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The statement, as written in the migration.
    pub statement: String,
    pub contract: ContractRef,
    pub view: QualifiedName,
    /// Services that read this version (declared, or observed).
    pub consumers: Vec<String>,
    pub message: String,
    pub safe_route: String,
}

impl Finding {
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.file, self.line, self.column)
    }
}
