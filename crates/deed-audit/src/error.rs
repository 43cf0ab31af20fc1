use deed_pg::PgError;

/// Why an audit could not be produced. Every variant is "deed could not do
/// its job" (exit 2), as opposed to findings (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Bad input at a known place: `file:line[:col]`.
    #[error("{location}: {message}")]
    Input { location: String, message: String },
    #[error("{0}")]
    Database(#[from] PgError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

impl AuditError {
    pub(crate) fn input(location: impl Into<String>, message: impl Into<String>) -> Self {
        AuditError::Input { location: location.into(), message: message.into() }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        AuditError::Io { what: what.into(), source }
    }
}
