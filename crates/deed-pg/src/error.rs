/// A database operation that failed, described without secrets.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("invalid database URL {url}: {source}")]
    BadUrl {
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        url: String,
        reason: String,
        /// The driver's error, when there is one (its SQLSTATE, if the
        /// server answered).
        #[source]
        source: Option<tokio_postgres::Error>,
        /// The server's SQLSTATE where the session is deed's own (the
        /// replication protocol) rather than the driver's.
        code: Option<tokio_postgres::error::SqlState>,
    },
    #[error("{context}: {reason}")]
    Query {
        context: String,
        reason: String,
        #[source]
        source: Option<tokio_postgres::Error>,
    },
}

impl PgError {
    /// Wraps a query error with what deed was doing; the server's message,
    /// detail and hint are kept because they usually say what to fix.
    pub fn query(context: impl Into<String>, e: tokio_postgres::Error) -> Self {
        PgError::Query { context: context.into(), reason: describe(&e), source: Some(e) }
    }

    /// The server's SQLSTATE, when the server answered.
    pub fn code(&self) -> Option<&tokio_postgres::error::SqlState> {
        match self {
            PgError::Connect { source, code, .. } => {
                source.as_ref().and_then(|e| e.code()).or(code.as_ref())
            }
            PgError::Query { source, .. } => source.as_ref().and_then(|e| e.code()),
            PgError::BadUrl { .. } => None,
        }
    }

    /// Whether the server refused for want of a privilege or of valid
    /// credentials: retrying cannot fix it, someone must grant or fix
    /// something (42501, 28000, 28P01).
    pub fn is_refusal(&self) -> bool {
        use tokio_postgres::error::SqlState;
        self.code().is_some_and(|c| {
            [
                SqlState::INSUFFICIENT_PRIVILEGE,
                SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                SqlState::INVALID_PASSWORD,
            ]
            .contains(c)
        })
    }
}

/// The most useful text of a driver error: the server's own message with
/// its detail and hint, or the underlying I/O cause.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = db.message().to_string();
        if let Some(d) = db.detail() {
            s.push_str(&format!(" ({d})"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("; hint: {h}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    s
}
