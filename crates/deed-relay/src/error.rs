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
    /// The service's capture slot does not exist (in `database`, shown
    /// without its password): nothing was ever captured there.
    #[error(
        "no replication slot {slot} in {database}: run `deed apply` to set up capture for {service}"
    )]
    NoSlot { slot: String, database: String, service: String },
    /// The sink failed in a way that retrying may fix.
    #[error("{0}")]
    Sink(String),
}

/// A bus that cannot be named or signed in to is a setup problem; one that
/// does not answer is the sink's, which retrying may fix.
impl From<deed_bus::BusError> for RelayError {
    fn from(e: deed_bus::BusError) -> RelayError {
        match e {
            deed_bus::BusError::Connect { .. } => RelayError::Sink(e.to_string()),
            other => RelayError::Setup(other.to_string()),
        }
    }
}
