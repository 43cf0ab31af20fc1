use deed_pg::PgError;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{0}")]
    Database(#[from] PgError),
    /// What was asked for cannot be generated (an unknown service, a
    /// contract view not applied yet): exit 2.
    #[error("{0}")]
    Setup(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn query(context: &str) -> impl Fn(tokio_postgres::Error) -> GenerateError + '_ {
    move |e| GenerateError::Database(PgError::query(context, e))
}
