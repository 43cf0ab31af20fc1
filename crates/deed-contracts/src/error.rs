use deed_pg::PgError;

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The manifest asks for something the database cannot have, located
    /// at the manifest entry.
    #[error("{location}: {message}")]
    Manifest { location: String, message: String },
    #[error("{0}")]
    Database(#[from] PgError),
    #[error("{0}")]
    Audit(#[from] deed_audit::AuditError),
    #[error("{0}")]
    Refused(String),
    /// The plan the user saw or saved is no longer what the database needs.
    #[error(
        "nothing was changed: the database changed since this plan was made; run deed plan again"
    )]
    PlanChanged,
}
