use deed_pg::PgError;

use crate::refuse::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("{0}")]
    Database(#[from] PgError),
    /// What stands in the way (what cannot cross instances, a service
    /// still reading), each with where it is. Nothing was changed.
    #[error("{}: refused, nothing was changed:\n{}", .service, .refusals.iter().map(|r| format!("  - {r}")).collect::<Vec<_>>().join("\n"))]
    Refused { service: String, refusals: Vec<Refusal> },
    /// Not now: a phase asked for before the one it needs, or one the
    /// split's state does not allow (no fresh proof, already finished);
    /// nothing was changed and the message says what to run. A refusal,
    /// like [`SplitError::Refused`], not a failure.
    #[error("{0}")]
    NotNow(String),
    /// Something deed could not do or work from; the message says what
    /// happened and what to run.
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Compare(#[from] deed_compare::CompareError),
}

pub(crate) fn query(context: &str) -> impl Fn(tokio_postgres::Error) -> SplitError + '_ {
    move |e| SplitError::Database(PgError::query(context, e))
}
