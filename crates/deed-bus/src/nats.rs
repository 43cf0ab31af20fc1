//! How deed signs in to NATS: user and password or a token (in the URL,
//! `nats://user:password@host`, or from the environment), an nkey seed
//! file, a `.creds` file (JWT and seed), and TLS with the server verified
//! against a CA and, when the server asks, a client certificate. Secrets
//! are read from files or the environment, never printed: errors name the
//! file or the variable, and URLs are shown without their password.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::BusError;
use crate::url::NatsServers;

#[derive(Clone, Default)]
pub struct NatsAuth {
    pub user: Option<String>,
    /// Never printed: `Debug` shows only whether it is set.
    pub password: Option<String>,
    pub token: Option<String>,
    /// A file holding an nkey seed (`SU…`).
    pub nkey_file: Option<PathBuf>,
    /// A `.creds` file: a user JWT and its nkey seed.
    pub creds_file: Option<PathBuf>,
    /// PEM CA certificates the server's certificate must chain to.
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate and its key, for servers that verify clients.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Refuse a connection that is not TLS.
    pub require_tls: bool,
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |s: &Option<String>| s.as_ref().map(|_| "***");
        f.debug_struct("NatsAuth")
            .field("user", &self.user)
            .field("password", &secret(&self.password))
            .field("token", &secret(&self.token))
            .field("nkey_file", &self.nkey_file)
            .field("creds_file", &self.creds_file)
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("require_tls", &self.require_tls)
            .finish()
    }
}

fn unreadable(what: &str, path: &std::path::Path, e: std::io::Error) -> BusError {
    BusError::Setup(format!("cannot read the {what} {}: {e}", path.display()))
}

impl NatsAuth {
    /// Whether any way of signing in or of securing the connection is set.
    pub fn is_empty(&self) -> bool {
        self.user.is_none()
            && self.token.is_none()
            && self.nkey_file.is_none()
            && self.creds_file.is_none()
            && self.ca_file.is_none()
            && self.client_cert.is_none()
            && !self.require_tls
    }

    /// The client options these settings make.
    pub async fn options(&self) -> Result<async_nats::ConnectOptions, BusError> {
        let mut o = match &self.creds_file {
            Some(path) => async_nats::ConnectOptions::with_credentials_file(path.clone())
                .await
                .map_err(|e| unreadable("NATS credentials file", path, e))?,
            None => async_nats::ConnectOptions::new(),
        };
        if let Some(path) = &self.nkey_file {
            let seed = std::fs::read_to_string(path)
                .map_err(|e| unreadable("NATS nkey seed file", path, e))?;
            let seed = seed
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with('S') && !l.is_empty())
                .ok_or_else(|| {
                    BusError::Setup(format!(
                        "{} holds no nkey seed (a line starting with S)",
                        path.display()
                    ))
                })?
                .to_string();
            if nkeys::KeyPair::from_seed(&seed).is_err() {
                return Err(BusError::Setup(format!(
                    "{} holds no valid nkey seed",
                    path.display()
                )));
            }
            o = o.nkey(seed);
        }
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            o = o.user_and_password(user.clone(), password.clone());
        } else if let Some(user) = &self.user {
            return Err(BusError::Setup(format!(
                "NATS user {user} without a password: set DEED_NATS_PASSWORD"
            )));
        }
        if let Some(token) = &self.token {
            o = o.token(token.clone());
        }
        if let Some(ca) = &self.ca_file {
            std::fs::metadata(ca).map_err(|e| unreadable("NATS CA file", ca, e))?;
            o = o.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &self.client_cert {
            std::fs::metadata(cert).map_err(|e| unreadable("NATS client certificate", cert, e))?;
            std::fs::metadata(key).map_err(|e| unreadable("NATS client key", key, e))?;
            o = o.add_client_certificate(cert.clone(), key.clone()).require_tls(true);
        }
        if self.require_tls {
            o = o.require_tls(true);
        }
        Ok(o)
    }

    /// Connects to `url`: one server, or several of a cluster
    /// comma-separated (see [`NatsServers`]).
    pub async fn connect(&self, url: &str) -> Result<async_nats::Client, BusError> {
        self.connect_to(&NatsServers::parse(url)?).await
    }

    /// Connects to one of `servers`; the client moves to another when the
    /// one it is on goes away.
    pub async fn connect_to(&self, servers: &NatsServers) -> Result<async_nats::Client, BusError> {
        let shown = servers.to_string();
        // Credentials given as flags or in the environment win over the URL's.
        let mut auth = self.clone();
        if auth.user.is_none() && auth.token.is_none() {
            auth.user = servers.user.clone();
            auth.password = servers.password.clone();
            auth.token = servers.token.clone();
        }
        let events = shown.clone();
        auth.options()
            .await?
            .connection_timeout(Duration::from_secs(5))
            .event_callback(move |event| {
                let at = events.clone();
                async move {
                    match event {
                        async_nats::Event::Disconnected => {
                            tracing::warn!(server = %at, "disconnected from NATS; reconnecting")
                        }
                        async_nats::Event::Connected => {
                            tracing::info!(server = %at, "connected to NATS")
                        }
                        other => tracing::debug!(server = %at, event = %other, "NATS"),
                    }
                }
            })
            .connect(servers.servers.clone())
            .await
            .map_err(|e| BusError::Connect { url: shown, reason: e.to_string() })
    }
}

/// A NATS URL (or a comma-separated list) without credentials: in
/// `nats://token@host` even the part before the `@` is a secret.
pub fn redact_nats_url(url: &str) -> String {
    url.split(',')
        .map(|one| {
            let one = one.trim();
            let (scheme, rest) = one.split_once("://").unwrap_or(("", one));
            let host_start = rest.find('/').unwrap_or(rest.len());
            let shown = match rest[..host_start].rfind('@') {
                Some(at) => format!("***@{}", &rest[at + 1..]),
                None => rest.to_string(),
            };
            if scheme.is_empty() { shown } else { format!("{scheme}://{shown}") }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::redact_nats_url;

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(redact_nats_url("nats://s3cret@h:4222"), "nats://***@h:4222");
        assert_eq!(redact_nats_url("nats://u:p@a:1,tls://b:2"), "nats://***@a:1,tls://b:2");
        assert_eq!(redact_nats_url("nats://h:4222"), "nats://h:4222");
        assert!(!redact_nats_url("t0k@n@h").contains("t0k"));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let auth = super::NatsAuth {
            user: Some("deed".into()),
            password: Some("pw-secret".into()),
            token: Some("tok-secret".into()),
            ..Default::default()
        };
        let shown = format!("{auth:?}");
        assert!(!shown.contains("secret") && shown.contains("***"), "{shown}");
    }
}
