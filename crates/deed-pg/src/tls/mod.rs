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
    let mut take = |key: &str, value: &str| -> Result<bool, String> {
        match key {
            "sslmode" => {
                settings.mode = match value {
                    "disable" => TlsMode::Disable,
                    "allow" | "prefer" => TlsMode::Prefer,
                    "require" => TlsMode::Require,
                    "verify-ca" => TlsMode::VerifyCa,
                    "verify-full" => TlsMode::VerifyFull,
                    other => return Err(format!("unknown sslmode {other:?}")),
                };
                Ok(true)
            }
            "sslrootcert" => {
                settings.root_cert = Some(PathBuf::from(percent_decode(value)));
                Ok(true)
            }
            "sslcert" => {
                settings.client_cert = Some(PathBuf::from(percent_decode(value)));
                Ok(true)
            }
            "sslkey" => {
                settings.client_key = Some(PathBuf::from(percent_decode(value)));
                Ok(true)
            }
            _ => Ok(false),
        }
    };
    let rest = if url.contains("://") {
        match url.split_once('?') {
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    if !take(k, v)? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => url.to_string(),
        }
    } else {
        let mut kept = Vec::new();
        for pair in url.split_whitespace() {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !take(k.trim(), v.trim_matches('\''))? {
                kept.push(pair);
            }
        }
        kept.join(" ")
    };
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

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
        assert_eq!((rest.as_str(), s.mode), ("host=h dbname=d", TlsMode::Disable));
        let (_, s) = split("postgres://h/d?sslmode=require&sslrootcert=ca.pem").unwrap();
        assert_eq!(s.mode, TlsMode::VerifyCa);
        assert!(split("postgres://h/d?sslmode=sometimes").is_err());
        assert_eq!(split("postgres://h/d").unwrap().1.mode, TlsMode::Prefer);
    }
}
