use deed_pg::PgError;

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("{0}")]
    Database(#[from] PgError),
    /// The manifest or a database is not set up for this projection.
    #[error("{0}")]
    Setup(String),
    /// The event source (the inbox or JetStream) failed.
    #[error("{0}")]
    Source(String),
    /// Another projector moved this projection's progress meanwhile.
    #[error("projection {0} was advanced by another `deed project`; run one per service")]
    Concurrent(String),
}

/// A statement's failure as the server reported it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub sqlstate: Option<String>,
    pub message: String,
}

impl Failure {
    pub fn from_db(e: &tokio_postgres::Error) -> Failure {
        match e.as_db_error() {
            Some(db) => {
                let mut message = db.message().to_string();
                if let Some(d) = db.detail() {
                    message.push_str(&format!(" ({d})"));
                }
                if let Some(h) = db.hint() {
                    message.push_str(&format!("; hint: {h}"));
                }
                Failure { sqlstate: Some(db.code().code().to_string()), message }
            }
            None => Failure { sqlstate: None, message: e.to_string() },
        }
    }

    /// Whether the failure is the event's (a constraint, a bad value, a
    /// handler error) rather than the connection's, which a retry fixes.
    pub fn is_event_error(e: &tokio_postgres::Error) -> bool {
        e.as_db_error().is_some_and(|db| {
            let class = &db.code().code()[..2];
            // 08 connection, 40 serialization/deadlock, 53 resources,
            // 57 operator intervention, 58 system: the event is not at fault.
            !matches!(class, "08" | "40" | "53" | "57" | "58")
        })
    }
}

pub(crate) fn query(context: &str) -> impl Fn(tokio_postgres::Error) -> ProjectError + '_ {
    move |e| ProjectError::Database(PgError::query(context, e))
}
