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
    Connect { url: String, reason: String },
    #[error("{context}: {reason}")]
    Query { context: String, reason: String },
}

impl PgError {
    /// Wraps a query error with what deed was doing; the server's message,
    /// detail and hint are kept because they usually say what to fix.
    pub fn query(context: impl Into<String>, e: tokio_postgres::Error) -> Self {
        PgError::Query { context: context.into(), reason: describe(&e) }
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
