//! Kafka: a URL parsed once, the topics deed writes and reads, and the
//! client settings every producer and consumer of deed's starts from.
//!
//! `kafka://b1:9092,b2:9092` (plaintext) or `kafkas://…` (TLS, the server
//! verified against the system's roots or `ca=FILE`). Query parameters:
//!
//! - `sasl=plain|scram-sha-256|scram-sha-512`, with the user from the URL
//!   (`kafka://user@b1:9092?sasl=scram-sha-512`) and the password from the
//!   URL or, better, `DEED_KAFKA_PASSWORD`;
//! - `ca=FILE`: PEM CA certificates the brokers' certificates chain to;
//! - `cert=FILE&key=FILE`: a client certificate and its key (PEM), for
//!   brokers that authenticate clients by TLS (MSK's and Aiven's mutual
//!   TLS); an encrypted key's passphrase comes from
//!   `DEED_KAFKA_KEY_PASSWORD`;
//! - `topic=PATTERN`: where an event goes, `{service}` and `{event}`
//!   replaced (default `deed.{service}.{event}`, a topic per event type;
//!   `{service}-events` puts all of a service's events in one topic);
//! - `dead_letters=PATTERN` (default `deed.{service}.dead_letter`) and
//!   `positions=PATTERN` (default `deed.{service}._positions`), with
//!   `{service}` replaced;
//! - `max_message_bytes=N`: the largest event the relay sends (default
//!   1000000, the brokers' default); a larger one is a dead letter.
//!
//! The relay, projectors, `deed tail` and `deed compare` take the same URL,
//! so they agree on the topics. The password is never shown: `Display`
//! and `Debug` give the URL without it.

use std::fmt;
use std::path::PathBuf;

use crate::error::BusError;

/// The variable a password comes from when the URL has none.
pub const PASSWORD_VARIABLE: &str = "DEED_KAFKA_PASSWORD";

/// The variable an encrypted client key's passphrase comes from.
pub const KEY_PASSWORD_VARIABLE: &str = "DEED_KAFKA_KEY_PASSWORD";

/// Where an event goes unless the URL says otherwise.
pub const TOPIC_PATTERN: &str = "deed.{service}.{event}";
const DEAD_LETTERS_PATTERN: &str = "deed.{service}.dead_letter";
const POSITIONS_PATTERN: &str = "deed.{service}._positions";

/// Kafka's limit on a topic name's length.
const TOPIC_MAX: usize = 249;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sasl {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Sasl {
    fn mechanism(self) -> &'static str {
        match self {
            Sasl::Plain => "PLAIN",
            Sasl::ScramSha256 => "SCRAM-SHA-256",
            Sasl::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A Kafka cluster's URL.
#[derive(Clone)]
pub struct KafkaUrl {
    /// `host:port,host:port`.
    pub brokers: String,
    pub tls: bool,
    pub sasl: Option<Sasl>,
    pub user: Option<String>,
    password: Option<String>,
    pub ca: Option<PathBuf>,
    /// A client certificate and its key (PEM files), for brokers that
    /// authenticate clients by TLS (mutual TLS).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    topic: String,
    dead_letters: String,
    positions: String,
    pub max_message_bytes: usize,
    /// As shown: scheme, brokers and the parameters that are not secret.
    shown: String,
}

impl KafkaUrl {
    pub fn parse(text: &str) -> Result<KafkaUrl, BusError> {
        let text = text.trim();
        let (scheme, rest) = text.split_once("://").unwrap_or(("", text));
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let shown_base =
            format!("{scheme}://{}{hosts}", if userinfo.is_some() { "***@" } else { "" });
        let bad = |reason: String| BusError::BadUrl { url: shown_base.clone(), reason };
        let tls = match scheme {
            "kafka" => false,
            "kafkas" => true,
            _ => return Err(bad("a Kafka URL starts with kafka:// or kafkas:// (TLS)".into())),
        };
        let mut brokers = Vec::new();
        for (i, one) in hosts.split(',').map(str::trim).enumerate() {
            let one = one.strip_prefix("kafka://").or(one.strip_prefix("kafkas://")).unwrap_or(one);
            if one.is_empty() {
                return Err(bad(format!("broker {} of the list is empty", i + 1)));
            }
            let (host, port) = match one.rsplit_once(':') {
                Some((h, p)) if !h.is_empty() && !h.ends_with(':') => (h, p),
                _ => (one, "9092"),
            };
            if port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(bad(format!("broker {} ({one}) has no valid port", i + 1)));
            }
            if host.chars().any(|c| c.is_whitespace() || c == '/') {
                return Err(bad(format!("broker {} ({one}) is not host:port", i + 1)));
            }
            brokers.push(format!("{host}:{port}"));
        }
        let (mut user, mut password) = (None, None);
        if let Some(u) = userinfo {
            match u.split_once(':') {
                Some((name, pass)) => {
                    user = Some(deed_text::percent_decode(name));
                    password = Some(deed_text::percent_decode(pass));
                }
                None => user = Some(deed_text::percent_decode(u)),
            }
        }
        let mut url = KafkaUrl {
            brokers: brokers.join(","),
            tls,
            sasl: None,
            user,
            password,
            ca: None,
            cert: None,
            key: None,
            topic: TOPIC_PATTERN.into(),
            dead_letters: DEAD_LETTERS_PATTERN.into(),
            positions: POSITIONS_PATTERN.into(),
            max_message_bytes: 1_000_000,
            shown: String::new(),
        };
        let mut shown_params = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = deed_text::percent_decode(v);
            match k {
                "sasl" => {
                    url.sasl = Some(match v.to_ascii_lowercase().as_str() {
                        "plain" => Sasl::Plain,
                        "scram-sha-256" => Sasl::ScramSha256,
                        "scram-sha-512" => Sasl::ScramSha512,
                        _ => {
                            return Err(bad(format!(
                                "sasl={v}: write plain, scram-sha-256 or scram-sha-512"
                            )));
                        }
                    })
                }
                "ca" => url.ca = Some(PathBuf::from(&v)),
                "cert" => url.cert = Some(PathBuf::from(&v)),
                "key" => url.key = Some(PathBuf::from(&v)),
                "topic" => {
                    url.topic = pattern(&v, true).map_err(|r| bad(format!("topic={v}: {r}")))?
                }
                "dead_letters" => {
                    url.dead_letters =
                        pattern(&v, false).map_err(|r| bad(format!("dead_letters={v}: {r}")))?
                }
                "positions" => {
                    url.positions =
                        pattern(&v, false).map_err(|r| bad(format!("positions={v}: {r}")))?
                }
                "max_message_bytes" => url.max_message_bytes = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1000..=1_000_000_000).contains(n))
                    .ok_or_else(|| {
                        bad(format!(
                            "max_message_bytes={v}: give a number of bytes from 1000 to 1000000000"
                        ))
                    })?,
                "password" => {
                    return Err(bad(format!(
                        "a password is not a parameter: put it in {PASSWORD_VARIABLE}"
                    )));
                }
                _ => {
                    return Err(bad(format!(
                        "unknown parameter {k:?} (deed reads sasl, ca, cert, key, topic, dead_letters, positions, max_message_bytes)"
                    )));
                }
            }
            shown_params.push(format!("{k}={v}"));
        }
        if url.cert.is_some() != url.key.is_some() {
            return Err(bad("a client certificate needs its key: give both cert= and key=".into()));
        }
        if url.cert.is_some() && !url.tls {
            return Err(bad("cert= and key= are for TLS: write kafkas://".into()));
        }
        if url.sasl.is_some() {
            if url.user.is_none() {
                return Err(bad("sasl needs a user: kafka://user@broker:9092?sasl=…".into()));
            }
            if url.password.is_none() {
                url.password = std::env::var(PASSWORD_VARIABLE).ok();
            }
            if url.password.is_none() {
                return Err(bad(format!(
                    "sasl needs a password: set {PASSWORD_VARIABLE} (or put it in the URL)"
                )));
            }
        } else if url.user.is_some() {
            return Err(bad(
                "a user without sasl=plain|scram-sha-256|scram-sha-512 would be ignored".into(),
            ));
        }
        url.shown = format!(
            "{scheme}://{}{}{}{}",
            if userinfo.is_some() { "***@" } else { "" },
            url.brokers,
            if shown_params.is_empty() { "" } else { "?" },
            shown_params.join("&")
        );
        Ok(url)
    }

    /// The topic events of `service`'s `event` go to.
    pub fn topic(&self, service: &str, event: &str) -> String {
        self.topic.replace("{service}", service).replace("{event}", event)
    }

    /// Whether each event type has a topic of its own (`{event}` is in the
    /// pattern), so a reader of one type reads nothing else.
    pub fn topic_per_event(&self) -> bool {
        self.topic.contains("{event}")
    }

    /// Where the relay records events it cannot deliver.
    pub fn dead_letter_topic(&self, service: &str) -> String {
        self.dead_letters.replace("{service}", service)
    }

    /// Where the relay records, after each delivery, the position up to
    /// which everything is stored and the offsets it reached: what lets a
    /// reader of several partitions hand events over in commit order.
    pub fn positions_topic(&self, service: &str) -> String {
        self.positions.replace("{service}", service)
    }

    /// The librdkafka settings of a client of deed's: brokers, TLS, SASL.
    /// `purpose` names the client to the brokers.
    pub fn client_settings(&self, purpose: &str) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("bootstrap.servers", self.brokers.clone()),
            ("client.id", format!("deed-{}", purpose.replace(' ', "-"))),
        ];
        let protocol = match (self.tls, self.sasl.is_some()) {
            (false, false) => "plaintext",
            (true, false) => "ssl",
            (false, true) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        };
        out.push(("security.protocol", protocol.into()));
        if let Some(sasl) = self.sasl {
            out.push(("sasl.mechanisms", sasl.mechanism().into()));
            out.push(("sasl.username", self.user.clone().unwrap_or_default()));
            out.push(("sasl.password", self.password.clone().unwrap_or_default()));
        }
        if let Some(ca) = &self.ca {
            out.push(("ssl.ca.location", ca.display().to_string()));
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            out.push(("ssl.certificate.location", cert.display().to_string()));
            out.push(("ssl.key.location", key.display().to_string()));
            if let Ok(p) = std::env::var(KEY_PASSWORD_VARIABLE) {
                out.push(("ssl.key.password", p));
            }
        }
        out
    }

    /// A client's settings: [`KafkaUrl::client_settings`], plus `extra`.
    pub fn config(&self, purpose: &str, extra: &[(&str, &str)]) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        for (k, v) in self.client_settings(purpose) {
            c.set(k, v);
        }
        for (k, v) in extra {
            c.set(*k, *v);
        }
        // librdkafka's own log lines go to deed's log, at warn and above.
        c.set("log_level", "4");
        c
    }

    /// Checks what the settings name exists (the CA file), before a
    /// client is made: its error would not name the file.
    pub fn check_files(&self) -> Result<(), BusError> {
        for (what, file) in
            [("CA", &self.ca), ("client certificate", &self.cert), ("client key", &self.key)]
        {
            if let Some(file) = file {
                std::fs::File::open(file).map_err(|e| {
                    BusError::Setup(format!(
                        "cannot read the Kafka {what} file {}: {e}",
                        file.display()
                    ))
                })?;
            }
        }
        Ok(())
    }
}

/// A topic pattern: the characters Kafka allows in a name and the
/// placeholders `{service}` (required) and `{event}` (events only).
fn pattern(text: &str, event: bool) -> Result<String, String> {
    let rest = text.replace("{service}", "").replace("{event}", "");
    if !text.contains("{service}") {
        return Err("must contain {service}, so services do not share topics".into());
    }
    if !event && text.contains("{event}") {
        return Err("takes {service} only".into());
    }
    if let Some(c) =
        rest.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("{c:?} is not allowed in a Kafka topic name (letters, digits, . _ -)"));
    }
    if text.len() > TOPIC_MAX - 80 {
        return Err(format!("too long for a Kafka topic name ({TOPIC_MAX} bytes at most)"));
    }
    Ok(text.to_string())
}

/// Without the password.
impl fmt::Display for KafkaUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for KafkaUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KafkaUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_never_show_the_password() {
        let u = KafkaUrl::parse(
            "kafkas://deed:s3cret@b1:9093,b2?sasl=scram-sha-512&ca=/etc/ca.pem&topic={service}-events",
        )
        .unwrap();
        assert_eq!(u.brokers, "b1:9093,b2:9092");
        assert_eq!(u.sasl, Some(Sasl::ScramSha512));
        assert_eq!(u.topic("users", "user_changed"), "users-events");
        assert!(!u.topic_per_event());
        assert_eq!(u.dead_letter_topic("users"), "deed.users.dead_letter");
        let shown = format!("{u} {u:?}");
        assert!(!shown.contains("s3cret") && shown.contains("b1:9093"), "{shown}");
        let settings = u.client_settings("relay users");
        assert!(settings.contains(&("security.protocol", "sasl_ssl".into())));
        assert!(settings.contains(&("sasl.password", "s3cret".into())));

        let u = KafkaUrl::parse("kafka://127.0.0.1:9092").unwrap();
        assert_eq!(u.topic("users", "user_changed"), "deed.users.user_changed");
        assert_eq!(u.positions_topic("users"), "deed.users._positions");
        assert!(u.client_settings("x").contains(&("security.protocol", "plaintext".into())));

        for (bad, says) in [
            ("kafka://a:1,,b:2", "broker 2"),
            ("kafka://a:notaport", "no valid port"),
            ("kafka://u:s3cret@a:9092", "without sasl"),
            ("kafka://a:9092?sasl=gssapi", "sasl=gssapi"),
            ("kafka://a:9092?topic=events", "{service}"),
            ("kafka://a:9092?topic={service}/x", "not allowed"),
            ("kafka://a:9092?dead_letters={service}.{event}", "{service} only"),
            ("kafka://a:9092?password=s3cret", "not a parameter"),
            ("kafka://a:9092?acks=1", "unknown parameter"),
        ] {
            let e = KafkaUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says) && !e.contains("s3cret"), "{bad}: {e}");
        }
    }
}
