use deed_pg::PgError;

use crate::refuse::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("{0}")]
    Database(#[from] PgError),
    /// What cannot cross instances, each with where it is.
    #[error("{} cannot move:\n{}", .service, .refusals.iter().map(|r| format!("  - {r}")).collect::<Vec<_>>().join("\n"))]
    Refused { service: String, refusals: Vec<Refusal> },
    /// A phase asked for before the one it needs, or a state deed cannot
    /// work from; the message says what to run.
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Compare(#[from] deed_compare::CompareError),
}

pub(crate) fn query(context: &str) -> impl Fn(tokio_postgres::Error) -> SplitError + '_ {
    move |e| SplitError::Database(PgError::query(context, e))
}
