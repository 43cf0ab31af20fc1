use deed_pg::PgError;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("{0}")]
    Database(#[from] PgError),
    #[error("{0}")]
    Decode(#[from] crate::pgoutput::DecodeError),
    /// The manifest or the database is not set up for this relay.
    #[error("{0}")]
    Setup(String),
    /// The sink failed in a way that retrying may fix.
    #[error("{0}")]
    Sink(String),
}
