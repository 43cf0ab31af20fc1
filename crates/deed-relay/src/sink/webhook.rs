//! Webhooks: batches of events POSTed to an HTTP endpoint, in commit
//! order, one batch at a time.
//!
//! The body is a JSON array of envelopes, each byte for byte what every
//! other sink carries. With a secret (`DEED_WEBHOOK_SECRET`) each request
//! is signed: `Deed-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">`, so the endpoint can check who sent it and refuse a
//! replay. The slot is confirmed only for a batch the endpoint answered
//! with 2xx. Timeouts, connection failures, 408, 429 and 5xx are retried
//! with growing pauses (a `Retry-After` in seconds is honoured); a batch
//! the endpoint refuses (another 4xx but 401, 403 and 404, which are a
//! setting to fix and stop the relay) is split to find the events it
//! refuses. An event refused alone, or a batch still failing after the
//! last attempt, is written to the dead-letter file when there is one
//! (flushed to disk before the slot moves) and the rest go on; without
//! one, the relay stops with the endpoint's answer and delivers it again
//! when started.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use sha2::Sha256;

use super::Delivered;
use crate::envelope::Envelope;
use crate::error::RelayError;

/// The variable the signing secret comes from.
pub const SECRET_VARIABLE: &str = "DEED_WEBHOOK_SECRET";

/// How deed posts to an endpoint.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Tries of one batch before it is a dead letter (or the relay stops).
    pub attempts: u32,
    /// One request's bound.
    pub timeout: Duration,
    /// The first pause between tries; each next one doubles, up to 30 s.
    pub backoff: Duration,
    /// Where events that cannot be delivered are written (JSON lines).
    pub dead_letters: Option<PathBuf>,
    /// A PEM file of trusted roots for `https://` (default: the system's).
    pub ca: Option<PathBuf>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            attempts: 10,
            timeout: Duration::from_secs(10),
            backoff: Duration::from_millis(200),
            dead_letters: None,
            ca: None,
        }
    }
}

pub struct WebhookSink {
    client: reqwest::Client,
    url: reqwest::Url,
    /// Without credentials or query.
    shown: String,
    secret: Option<Vec<u8>>,
    settings: WebhookSettings,
}

/// What one POST came to.
enum Answer {
    Stored,
    /// Worth asking again (with the server's pause, if it gave one).
    Again(String, Option<Duration>),
    /// These events are refused.
    Refused(String),
    /// A setting to fix: no event is to blame.
    Stop(String),
}

impl WebhookSink {
    pub fn connect(
        url: &deed_bus::WebhookUrl,
        settings: &WebhookSettings,
    ) -> Result<WebhookSink, RelayError> {
        let tls = deed_pg::TlsSettings {
            mode: deed_pg::TlsMode::VerifyFull,
            root_cert: Some(settings.ca.clone().unwrap_or_else(|| PathBuf::from("system"))),
            client_cert: None,
            client_key: None,
        };
        let builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("deed/", env!("CARGO_PKG_VERSION")));
        // Set for http:// too: reqwest then never looks for a default
        // crypto provider (deed's TLS is rustls with ring throughout).
        let config = deed_pg::client_config(&tls).map_err(RelayError::Setup)?;
        let client = builder
            .tls_backend_preconfigured((*config).clone())
            .build()
            .map_err(|e| RelayError::Setup(format!("setting up the HTTP client: {e}")))?;
        let secret = std::env::var(SECRET_VARIABLE).ok().filter(|s| !s.is_empty());
        if secret.is_none() {
            tracing::warn!("{SECRET_VARIABLE} is not set: requests to {url} are not signed");
        }
        Ok(WebhookSink {
            client,
            url: url.url().clone(),
            shown: url.to_string(),
            secret: secret.map(String::into_bytes),
            settings: settings.clone(),
        })
    }

    /// Delivers the events in order: returns once the endpoint has them
    /// all, or those it refused are dead letters.
    pub async fn deliver(&mut self, events: &[Envelope]) -> Result<Delivered, RelayError> {
        let mut delivered = Delivered::default();
        // Batches still to send, first first.
        let mut todo: Vec<&[Envelope]> = vec![events];
        while let Some(batch) = todo.pop() {
            match self.post_until_done(batch).await? {
                Answer::Stored => {}
                Answer::Refused(why) if batch.len() > 1 => {
                    let (a, b) = batch.split_at(batch.len() / 2);
                    tracing::warn!(events = batch.len(), reason = %why, "the endpoint refused a batch; sending it in halves to find the events it refuses");
                    todo.push(b);
                    todo.push(a);
                }
                Answer::Refused(why) | Answer::Again(why, _) => {
                    self.dead_letter(batch, &why)?;
                    delivered.dead_letters += batch.len() as u64;
                }
                Answer::Stop(why) => return Err(RelayError::Sink(why)),
            }
        }
        Ok(delivered)
    }

    /// Posts one batch until it is stored, refused, or out of attempts.
    async fn post_until_done(&self, batch: &[Envelope]) -> Result<Answer, RelayError> {
        let body = body(batch);
        let mut pause = self.settings.backoff;
        let mut attempt = 1;
        loop {
            match self.post(&body, batch).await {
                Answer::Again(why, asked) if attempt < self.settings.attempts => {
                    let wait = asked.unwrap_or(pause).min(Duration::from_secs(30));
                    tracing::warn!(attempt, reason = %why, wait_ms = wait.as_millis() as u64, "the endpoint did not take a batch; asking again");
                    tokio::time::sleep(wait).await;
                    pause = (pause * 2).min(Duration::from_secs(30));
                    attempt += 1;
                }
                Answer::Again(why, _) if self.settings.dead_letters.is_none() => {
                    return Err(RelayError::Sink(format!(
                        "{} did not take a batch after {attempt} attempts: {why}; nothing was confirmed past it (give --webhook-dead-letters FILE to set such batches aside and go on)",
                        self.shown
                    )));
                }
                Answer::Refused(why)
                    if batch.len() == 1 && self.settings.dead_letters.is_none() =>
                {
                    return Err(RelayError::Sink(format!(
                        "{} refuses event {}: {why}; nothing was confirmed past it (give --webhook-dead-letters FILE to set refused events aside and go on)",
                        self.shown, batch[0].id
                    )));
                }
                other => return Ok(other),
            }
        }
    }

    async fn post(&self, body: &str, batch: &[Envelope]) -> Answer {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Deed-Events", batch.len().to_string())
            .header("Deed-First-Id", batch[0].id.as_str())
            .header("Deed-Last-Position", batch[batch.len() - 1].position());
        if let Some(secret) = &self.secret {
            request = request.header("Deed-Signature", signature(secret, body, unix_now()));
        }
        let response = match request.body(body.to_string()).send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Answer::Again(
                    format!("no answer within {} s", self.settings.timeout.as_secs()),
                    None,
                );
            }
            Err(e) => return Answer::Again(format!("cannot reach it: {}", without_url(&e)), None),
        };
        let status = response.status();
        if status.is_success() {
            return Answer::Stored;
        }
        let asked = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.unwrap_or_default();
        let said = deed_text::one_line(text.trim(), 300);
        let why = format!(
            "HTTP {status}{}",
            if said.is_empty() { String::new() } else { format!(": {said}") }
        );
        match status {
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
                Answer::Again(why, asked)
            }
            s if s.is_server_error() => Answer::Again(why, asked),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
                Answer::Stop(format!(
                    "{} answers {why}: check the URL and {SECRET_VARIABLE}; nothing was confirmed past this batch",
                    self.shown
                ))
            }
            s if s.is_redirection() => Answer::Stop(format!(
                "{} answers {why}: deed does not follow redirects; give the URL it points to",
                self.shown
            )),
            _ => Answer::Refused(why),
        }
    }

    /// Appends the events, without payloads, to the dead-letter file and
    /// flushes it to disk: only then may the slot move past them.
    fn dead_letter(&self, batch: &[Envelope], why: &str) -> Result<(), RelayError> {
        let Some(path) = &self.settings.dead_letters else {
            return Err(RelayError::Sink(format!("{} did not take a batch: {why}", self.shown)));
        };
        let fail = |e: std::io::Error| {
            RelayError::Setup(format!("writing dead letters to {}: {e}", path.display()))
        };
        let mut f =
            std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(fail)?;
        let mut text = Vec::new();
        for e in batch {
            tracing::error!(event = %e.id, kind = %e.kind, error = why, "event not delivered; written as a dead letter");
            text.extend(super::dead_letter_body(e, why));
            text.push(b'\n');
        }
        f.write_all(&text).map_err(fail)?;
        f.sync_data().map_err(fail)
    }
}

/// `[envelope,envelope,…]`, each envelope as every sink writes it.
fn body(batch: &[Envelope]) -> String {
    let mut out = String::with_capacity(batch.iter().map(|e| 200 + e.payload.len()).sum());
    out.push('[');
    for (i, e) in batch.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        e.write_json(&mut out);
    }
    out.push(']');
    out
}

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, "<unix>.<body>")>`.
pub fn signature(secret: &[u8], body: &str, unix: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(unix.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={unix},v1={hex}")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// reqwest's error text without the URL it carries (which may hold a
/// token in its query).
fn without_url(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    last.unwrap_or_else(|| "connection failed".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_time_and_body() {
        // echo -n '1700000000.[1]' | openssl dgst -sha256 -hmac key
        assert_eq!(
            signature(b"key", "[1]", 1_700_000_000),
            "t=1700000000,v1=3ddf1197d04e744e02f66efb6c8502da0025c505f123a4adc6dc011bd70d3f94"
        );
    }
}
