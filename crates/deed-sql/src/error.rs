/// A statement PostgreSQL's parser rejects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    pub message: String,
    /// Byte offset of the error in the text, when the parser reports one.
    pub offset: Option<usize>,
}
