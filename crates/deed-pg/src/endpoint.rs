//! A URL taken apart, for clients that speak to the server without
//! tokio-postgres (the relay's replication stream).

use std::str::FromStr;

use tokio_postgres::Config;
use tokio_postgres::config::Host;

use crate::error::PgError;
use crate::redact::redact_url;
use crate::tls::{self, TlsSettings};

/// Where and as whom to connect. `Debug` never shows the password.
#[derive(Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    pub tls: TlsSettings,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self} ({:?})", self.tls.mode)
    }
}

/// `user@host:port/database`: where, never with the password.
impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}/{}", self.user, self.host, self.port, self.database)
    }
}

/// The first host of `url`, with libpq's defaults for what it leaves out
/// (port 5432, user from `$PGUSER` or `$USER`, database = user).
pub fn endpoint(url: &str) -> Result<Endpoint, PgError> {
    let bad = |reason: String| PgError::Connect {
        url: redact_url(url),
        reason,
        source: None,
        code: None,
    };
    let (rest, settings) = tls::split(url).map_err(bad)?;
    let config = Config::from_str(&rest)
        .map_err(|source| PgError::BadUrl { url: redact_url(url), source })?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config
        .get_user()
        .map(String::from)
        .or_else(|| std::env::var("PGUSER").ok())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "postgres".to_string());
    let database = config.get_dbname().map(String::from).unwrap_or_else(|| user.clone());
    let password = config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .or_else(|| std::env::var("PGPASSWORD").ok());
    Ok(Endpoint { host, port, user, password, database, tls: settings })
}
