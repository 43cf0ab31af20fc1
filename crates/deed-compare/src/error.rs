use deed_pg::PgError;

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{0}")]
    Database(#[from] PgError),
    /// The manifest, a database or the projection is not in a state a
    /// compare can run in (not started, not caught up, wrong shape).
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Project(#[from] deed_project::ProjectError),
    #[error("--events-from {0}")]
    Bus(#[from] deed_bus::BusError),
}

pub(crate) fn query(context: &str) -> impl Fn(tokio_postgres::Error) -> CompareError + '_ {
    move |e| CompareError::Database(PgError::query(context, e))
}
