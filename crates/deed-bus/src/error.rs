/// Why a bus cannot be named or reached. Messages never hold a secret.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The URL (shown redacted) is not one deed reads.
    #[error("{url}: {reason}")]
    BadUrl { url: String, reason: String },
    /// A credential or certificate file, or a setting, deed cannot use.
    #[error("{0}")]
    Setup(String),
    /// No server answered, or one refused deed.
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
}
