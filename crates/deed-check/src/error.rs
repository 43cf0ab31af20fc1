#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Bad input at a known place: a migration that does not parse, or
    /// fails for a reason that has nothing to do with contracts.
    #[error("{location}: {message}")]
    Input { location: String, message: String },
    #[error("{0}")]
    Database(#[from] deed_pg::PgError),
    #[error("{0}")]
    Audit(#[from] deed_audit::AuditError),
    #[error("{0}")]
    Contracts(#[from] deed_contracts::ContractError),
    #[error("{0}")]
    Scratch(String),
    #[error("interrupted by {0}; the scratch database was dropped")]
    Interrupted(&'static str),
    #[error("{0}")]
    Usage(String),
}
