//! A PostgreSQL connection string taken apart once, the way libpq reads
//! it: a URL (`postgres://user:pass@h1:5432,h2/db?sslmode=require`, every
//! part percent-decoded) or `key=value` pairs (quotes and backslashes as
//! libpq has them). Everything deed does to one (take the TLS settings or
//! the password out, point it at another database) is done on this type
//! and written back in the form it came in.

use std::fmt;

use deed_text::percent_decode as decode;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What a URL part keeps unencoded: RFC 3986's unreserved characters, and
/// `*` (so a hidden password shows as `***`).
const PART: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'*');

#[derive(Clone, PartialEq, Eq)]
enum Form {
    /// `postgres://` or `postgresql://`, as written.
    Url(String),
    KeyValue,
}

/// A parsed connection string. `Debug` and `Display` never show the
/// password; [`ConnString::to_conninfo`] writes it back whole.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnString {
    form: Form,
    /// libpq's parameters in the order written (`host`, `port`, `user`,
    /// `password`, `dbname` from a URL's parts first).
    params: Vec<(String, String)>,
}

/// Why a connection string cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConnStringError(String);

fn encode(part: &str) -> String {
    utf8_percent_encode(part, PART).to_string()
}

impl ConnString {
    pub fn parse(text: &str) -> Result<ConnString, ConnStringError> {
        let text = text.trim();
        for scheme in ["postgresql://", "postgres://"] {
            if let Some(rest) = text.strip_prefix(scheme) {
                return Ok(ConnString::parse_url(&scheme[..scheme.len() - 3], rest));
            }
        }
        if text.contains("://") {
            return Err(ConnStringError(
                "a PostgreSQL URL starts with postgres:// or postgresql://".into(),
            ));
        }
        match deed_text::parse_conninfo(text) {
            Some(params) if !params.is_empty() || text.is_empty() => {
                Ok(ConnString { form: Form::KeyValue, params })
            }
            _ => Err(ConnStringError(
                "neither a postgres:// URL nor key=value pairs (an unclosed quote?)".into(),
            )),
        }
    }

    fn parse_url(scheme: &str, rest: &str) -> ConnString {
        let mut params = Vec::new();
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = match before_query.find('/') {
            Some(i) => (&before_query[..i], Some(&before_query[i + 1..])),
            None => (before_query, None),
        };
        // The last `@` ends the user part: a password may hold one.
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        if let Some(userinfo) = userinfo {
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                params.push(("user".into(), decode(user)));
            }
            if let Some(p) = password {
                params.push(("password".into(), decode(p)));
            }
        }
        if !hosts.is_empty() {
            let (mut names, mut ports) = (Vec::new(), Vec::new());
            for one in hosts.split(',') {
                let (host, port) = split_host_port(one);
                names.push(decode(host));
                ports.push(port.map(decode).unwrap_or_default());
            }
            if names.iter().any(|h| !h.is_empty()) {
                params.push(("host".into(), names.join(",")));
            }
            if ports.iter().any(|p| !p.is_empty()) {
                params.push(("port".into(), ports.join(",")));
            }
        }
        if let Some(db) = path.filter(|p| !p.is_empty()) {
            params.push(("dbname".into(), decode(db)));
        }
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.push((decode(k), decode(v)));
        }
        ConnString { form: Form::Url(scheme.to_string()), params }
    }

    /// The last value given for `key` (libpq takes the last).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Sets `key`, replacing every value it had.
    pub fn set(&mut self, key: &str, value: &str) {
        match self.params.iter().position(|(k, _)| k == key) {
            Some(i) => {
                self.params[i].1 = value.to_string();
                let mut n = 0;
                self.params.retain(|(k, _)| {
                    n += usize::from(k == key);
                    k != key || n == 1
                });
            }
            None => self.params.push((key.to_string(), value.to_string())),
        }
    }

    /// Removes `key`, returning the value libpq would have used.
    pub fn take(&mut self, key: &str) -> Option<String> {
        let value = self.get(key).map(String::from);
        self.params.retain(|(k, _)| k != key);
        value
    }

    /// Every `(key, value)`, in order.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The whole string, password included, in the form it was written:
    /// for a driver or `PGPASSWORD`-less libpq program, never to print.
    pub fn to_conninfo(&self) -> String {
        match &self.form {
            Form::KeyValue => deed_text::write_conninfo(&self.params),
            Form::Url(scheme) => self.url(scheme),
        }
    }

    fn url(&self, scheme: &str) -> String {
        let mut out = format!("{scheme}://");
        if let Some(user) = self.get("user") {
            out.push_str(&encode(user));
            if let Some(p) = self.get("password") {
                out.push(':');
                out.push_str(&encode(p));
            }
            out.push('@');
        }
        let hosts: Vec<&str> = self.get("host").map(|h| h.split(',').collect()).unwrap_or_default();
        let ports: Vec<&str> = self.get("port").map(|p| p.split(',').collect()).unwrap_or_default();
        let n = hosts.len().max(ports.len());
        let mut list = Vec::with_capacity(n);
        for i in 0..n {
            let host = hosts.get(i).copied().unwrap_or_default();
            let mut one = if host.contains(':') && !host.starts_with('/') {
                format!("[{host}]")
            } else {
                encode(host)
            };
            if let Some(port) = ports.get(i).or(ports.first().filter(|_| ports.len() == 1)) {
                if !port.is_empty() {
                    one.push(':');
                    one.push_str(&encode(port));
                }
            }
            list.push(one);
        }
        out.push_str(&list.join(","));
        if let Some(db) = self.get("dbname") {
            out.push('/');
            out.push_str(&encode(db));
        }
        let rest: Vec<String> = self
            .params
            .iter()
            .filter(|(k, _)| {
                !matches!(k.as_str(), "user" | "password" | "host" | "port" | "dbname")
            })
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        if !rest.is_empty() {
            out.push('?');
            out.push_str(&rest.join("&"));
        }
        out
    }
}

/// `host:port`, `[v6]:port` or a bare host.
fn split_host_port(one: &str) -> (&str, Option<&str>) {
    if let Some(v6) = one.strip_prefix('[') {
        if let Some((host, after)) = v6.split_once(']') {
            return (host, after.strip_prefix(':'));
        }
    }
    match one.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (one, None),
    }
}

/// Without the password.
impl fmt::Display for ConnString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.clone();
        if shown.get("password").is_some() {
            shown.set("password", "***");
        }
        f.write_str(&shown.to_conninfo())
    }
}

impl fmt::Debug for ConnString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnString({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(text: &str) -> String {
        ConnString::parse(text).unwrap().to_conninfo()
    }

    #[test]
    fn urls_read_as_libpq_reads_them() {
        let c = ConnString::parse("postgres://ap%40p:p%40ss:w@h1:5433,[::1]:5434/sh%2Fop?sslmode=require&application_name=a%20b").unwrap();
        assert_eq!(c.get("user"), Some("ap@p"));
        assert_eq!(c.get("password"), Some("p@ss:w"));
        assert_eq!(c.get("host"), Some("h1,::1"));
        assert_eq!(c.get("port"), Some("5433,5434"));
        assert_eq!(c.get("dbname"), Some("sh/op"));
        assert_eq!(c.get("application_name"), Some("a b"));
        assert_eq!(
            c.to_string(),
            "postgres://ap%40p:***@h1:5433,[::1]:5434/sh%2Fop?sslmode=require&application_name=a%20b"
        );
        assert_eq!(round("postgresql://h/db"), "postgresql://h/db");
        assert_eq!(round("postgres://u@%2Ftmp%2Fsock/db"), "postgres://u@%2Ftmp%2Fsock/db");
        assert_eq!(round("postgres://"), "postgres://");
    }

    #[test]
    fn bad_percent_escapes_never_panic() {
        // A lone `%` before a multi-byte character is kept as it is.
        let c = ConnString::parse("postgres://u@h/db?sslmode=require&sslrootcert=%aé").unwrap();
        assert_eq!(c.get("sslrootcert"), Some("%aé"));
        let c = ConnString::parse("postgres://u:%@h/%zz?x=%e9").unwrap();
        assert_eq!((c.get("password"), c.get("dbname")), (Some("%"), Some("%zz")));
        assert_eq!(c.get("x"), Some("\u{fffd}"));
    }

    #[test]
    fn key_value_strings() {
        let mut c = ConnString::parse("host=db password='a b' dbname=s port=1 port=2").unwrap();
        assert_eq!(c.get("port"), Some("2"));
        assert_eq!(c.take("password").as_deref(), Some("a b"));
        c.set("dbname", "t");
        c.set("port", "3");
        assert_eq!(c.to_conninfo(), "host='db' dbname='t' port='3'");
        assert!(ConnString::parse("host='db").is_err());
        assert!(ConnString::parse("mysql://h/db").is_err());
    }
}
