#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Cluster(#[from] deed_cluster::ClusterError),
    #[error("{0}")]
    Database(#[from] deed_pg::PgError),
    #[error("{0}")]
    Audit(#[from] deed_audit::AuditError),
    #[error("{0}")]
    Contracts(#[from] deed_contracts::ContractError),
    #[error("{0}")]
    Check(#[from] deed_check::CheckError),
    #[error("{0}")]
    Project(#[from] deed_project::ProjectError),
    #[error("{0}")]
    Compare(#[from] deed_compare::CompareError),
    #[error("{0}")]
    Ladder(#[from] deed_ladder::LadderError),
    #[error("{0}")]
    Setup(String),
}

impl DemoError {
    pub(crate) fn sql(context: &str, e: tokio_postgres::Error) -> Self {
        DemoError::Database(deed_pg::PgError::query(context, e))
    }
}
