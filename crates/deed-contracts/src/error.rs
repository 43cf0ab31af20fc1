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
    /// A statement failed, or the apply lock stayed taken: deed could not
    /// do its job, and says what was (not) changed.
    #[error("{0}")]
    Failed(String),
    /// The plan has blocking problems (each located, with what to do):
    /// apply refuses and changes nothing. A refusal, not a failure.
    #[error("nothing was changed:\n  - {}", .0.join("\n  - "))]
    Blocked(Vec<String>),
    /// The plan the user saw or saved is no longer what the database needs.
    #[error(
        "nothing was changed: the database changed since this plan was made; run deed plan again"
    )]
    PlanChanged,
}
