use std::str::FromStr;

use tokio_postgres::{Client, Config};

use crate::error::{PgError, describe};
use crate::redact::redact_url;
use crate::session;
use crate::tls::{self, TlsSettings};

/// Opens one of deed's own sessions and drives it on the current runtime:
/// `application_name = deed`, and the settings of [`crate::session`] fixed
/// whatever the database or role defaults are, so the server reads deed's
/// SQL exactly as deed wrote and checked it. `sslmode` and `sslrootcert`
/// mean what they mean to libpq.
pub async fn connect(url: &str) -> Result<Client, PgError> {
    let (mut config, tls) = parse(url)?;
    // Named whatever the URL says, so the audit can always tell deed's
    // own statements from the services'.
    config.application_name(DEED_APPLICATION);
    let client = open(config, tls, url, None).await?;
    client
        .batch_execute(&session::settings_sql())
        .await
        .map_err(|e| PgError::query(format!("setting up the session on {}", redact_url(url)), e))?;
    Ok(client)
}

/// A session with the database's and role's own defaults, as an
/// application gets it: for running an application's SQL (the demo's
/// workload, test fixtures), never for deed's own queries.
pub async fn connect_plain(url: &str) -> Result<Client, PgError> {
    let (config, tls) = parse(url)?;
    open(config, tls, url, None).await
}

/// Like [`connect_plain`], as another role of the same server and database.
pub async fn connect_as(url: &str, user: &str, password: Option<&str>) -> Result<Client, PgError> {
    let (mut config, tls) = parse(url)?;
    config.user(user);
    if let Some(p) = password {
        config.password(p);
    }
    open(config, tls, url, Some(user)).await
}

/// The `application_name` of every session deed opens for itself.
pub const DEED_APPLICATION: &str = "deed";

/// Marks every statement deed runs as another role (a backfill reads the
/// contract view as the consumer's login), so traffic sources that know
/// only the role (pg_stat_statements) still tell deed's statements from
/// the service's: audits attribute them to deed. It goes right after the
/// first keyword (`SELECT /* deed backfill */ …`): PostgreSQL 18's
/// pg_stat_statements drops a statement's leading comments.
pub const BACKFILL_MARKER: &str = "/* deed backfill */";

fn parse(url: &str) -> Result<(Config, TlsSettings), PgError> {
    let bad = |reason: String| PgError::Connect {
        url: redact_url(url),
        reason,
        source: None,
        code: None,
    };
    let (rest, tls) = tls::split(url).map_err(bad)?;
    let mut config = Config::from_str(&rest)
        .map_err(|source| PgError::BadUrl { url: redact_url(url), source })?;
    config.ssl_mode(tls.driver_mode());
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
    let connector = tls.connector().map_err(|reason| PgError::Connect {
        url: target.clone(),
        reason,
        source: None,
        code: None,
    })?;
    let (client, connection) = config.connect(connector).await.map_err(|e| PgError::Connect {
        url: target,
        reason: describe(&e),
        source: Some(e),
        code: None,
    })?;
    tokio::spawn(async move {
        // The error surfaces on the next query through the client.
        let _ = connection.await;
    });
    Ok(client)
}
