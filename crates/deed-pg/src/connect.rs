use std::str::FromStr;

use tokio_postgres::{Client, Config};

use crate::error::{PgError, describe};
use crate::redact::redact_url;
use crate::tls::{self, TlsSettings};

/// Connects and drives the connection on the current runtime. `sslmode`
/// and `sslrootcert` mean what they mean to libpq.
pub async fn connect(url: &str) -> Result<Client, PgError> {
    let (config, tls) = parse(url)?;
    open(config, tls, url, None).await
}

/// Connects to the same server and database as `url`, as another role.
pub async fn connect_as(url: &str, user: &str, password: Option<&str>) -> Result<Client, PgError> {
    let (mut config, tls) = parse(url)?;
    config.user(user);
    if let Some(p) = password {
        config.password(p);
    }
    open(config, tls, url, Some(user)).await
}

fn parse(url: &str) -> Result<(Config, TlsSettings), PgError> {
    let bad = |reason: String| PgError::Connect { url: redact_url(url), reason };
    let (rest, tls) = tls::split(url).map_err(bad)?;
    let mut config = Config::from_str(&rest)
        .map_err(|source| PgError::BadUrl { url: redact_url(url), source })?;
    config.ssl_mode(tls.driver_mode());
    if config.get_application_name().is_none() {
        config.application_name("deed");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    Ok((config, tls))
}

async fn open(
    config: Config,
    tls: TlsSettings,
    url: &str,
    role: Option<&str>,
) -> Result<Client, PgError> {
    let target = match role {
        Some(r) => format!("{} as role {r}", redact_url(url)),
        None => redact_url(url),
    };
    let connector =
        tls.connector().map_err(|reason| PgError::Connect { url: target.clone(), reason })?;
    let (client, connection) = config
        .connect(connector)
        .await
        .map_err(|e| PgError::Connect { url: target, reason: describe(&e) })?;
    tokio::spawn(async move {
        // The error surfaces on the next query through the client.
        let _ = connection.await;
    });
    Ok(client)
}
