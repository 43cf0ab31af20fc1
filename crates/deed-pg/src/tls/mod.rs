//! TLS with libpq's meaning of `sslmode`, so a URL that works with psql
//! works with deed: `disable`, `allow`/`prefer` (TLS if offered, no
//! certificate check), `require` (TLS, no certificate check unless
//! `sslrootcert` is given), `verify-ca` (the chain) and `verify-full` (the
//! chain and the host name). tokio-postgres understands only some of this,
//! so the URL is split into what it understands and what the connector does.
//!
//! One TLS stack serves every connection deed makes: rustls with the ring
//! provider ([`config`]), plugged into tokio-postgres ([`connector`]) and
//! into the relay's replication stream.

mod config;
mod connector;
mod verify;

use std::path::PathBuf;

use crate::conn_string::ConnString;

pub use config::client_config;
pub(crate) use connector::MakeRustls;

/// `sslmode`, as libpq means it (`allow` is taken as `prefer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The TLS part of a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: TlsMode,
    /// `sslrootcert`: a PEM file of trusted roots, or `system`.
    pub root_cert: Option<PathBuf>,
    /// `sslcert` and `sslkey`: a client certificate and its key, in PEM.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// Removes `sslmode`, `sslrootcert`, `sslcert` and `sslkey` from a URL or
/// `key=value` string, returning the rest for tokio-postgres and the TLS
/// settings.
pub(crate) fn split(url: &str) -> Result<(String, TlsSettings), String> {
    let mut settings =
        TlsSettings { mode: TlsMode::Prefer, root_cert: None, client_cert: None, client_key: None };
    let mut conn = ConnString::parse(url).map_err(|e| e.to_string())?;
    if let Some(mode) = conn.take("sslmode") {
        settings.mode = match mode.as_str() {
            "disable" => TlsMode::Disable,
            "allow" | "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            other => {
                return Err(format!("unknown sslmode {:?}", deed_text::excerpt(other, 40)));
            }
        };
    }
    settings.root_cert = conn.take("sslrootcert").map(PathBuf::from);
    settings.client_cert = conn.take("sslcert").map(PathBuf::from);
    settings.client_key = conn.take("sslkey").map(PathBuf::from);
    let rest = conn.to_conninfo();
    // A root certificate makes `require` check the chain, as in libpq.
    if settings.mode == TlsMode::Require && settings.root_cert.is_some() {
        settings.mode = TlsMode::VerifyCa;
    }
    Ok((rest, settings))
}

impl TlsSettings {
    /// The mode tokio-postgres should negotiate.
    pub fn driver_mode(&self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as M;
        match self.mode {
            TlsMode::Disable => M::Disable,
            TlsMode::Prefer => M::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => M::Require,
        }
    }

    pub(crate) fn connector(&self) -> Result<MakeRustls, String> {
        Ok(MakeRustls::new(client_config(self)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls_and_dsns() {
        let (rest, s) = split(
            "postgres://u@h/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u@h/db?application_name=x");
        assert_eq!(s.mode, TlsMode::VerifyFull);
        assert_eq!(s.root_cert, Some(PathBuf::from("/tmp/ca.pem")));
        let (rest, s) = split("postgres://u@h/db?sslmode=require").unwrap();
        assert_eq!((rest.as_str(), s.mode), ("postgres://u@h/db", TlsMode::Require));
        let (rest, s) = split("host=h sslmode=disable dbname=d").unwrap();
        assert_eq!((rest.as_str(), s.mode), ("host='h' dbname='d'", TlsMode::Disable));
        let (_, s) = split("postgres://h/d?sslmode=require&sslrootcert=ca.pem").unwrap();
        assert_eq!(s.mode, TlsMode::VerifyCa);
        assert!(split("postgres://h/d?sslmode=sometimes").is_err());
        assert_eq!(split("postgres://h/d").unwrap().1.mode, TlsMode::Prefer);
    }
}
