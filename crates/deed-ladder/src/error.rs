use deed_pg::PgError;

#[derive(Debug, thiserror::Error)]
pub enum LadderError {
    #[error("{0}")]
    Database(#[from] PgError),
    #[error("{0}")]
    Manifest(String),
    #[error(transparent)]
    Project(#[from] deed_project::ProjectError),
    #[error(transparent)]
    Compare(#[from] deed_compare::CompareError),
    #[error(transparent)]
    Contracts(#[from] deed_contracts::ContractError),
    #[error(transparent)]
    Relay(#[from] deed_relay::RelayError),
    #[error(transparent)]
    Split(#[from] deed_split::SplitError),
}
