//! A private Kafka-protocol broker for one test: `tansu` (a Kafka
//! compatible broker, installed by `scripts/setup`), on its own port, with
//! its log in an SQLite file of its own directory, so that a broker killed
//! with SIGKILL and started again has everything it had acknowledged.
//! `DEED_TANSU` names another binary.

use crate::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct KafkaServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// Clients must sign in (SASL SCRAM), once users exist.
    authentication: bool,
    /// Clients reach the broker through TLS on this front's port, which
    /// the broker advertises.
    front: Option<crate::TlsFront>,
}

/// The broker's binary: `DEED_TANSU`, else `tansu` on the PATH or in
/// cargo's bin directory.
pub fn tansu() -> PathBuf {
    if let Some(p) = std::env::var_os("DEED_TANSU") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let in_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("tansu")).collect::<Vec<_>>())
        .unwrap_or_default();
    in_path
        .into_iter()
        .chain(home.map(|h| h.join("bin/tansu")))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no tansu binary (the Kafka-compatible broker the Kafka tests start): run scripts/setup, or set DEED_TANSU"
            )
        })
}

impl KafkaServer {
    pub fn start() -> KafkaServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("deed-kafka-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("kafka directory");
        let mut server = KafkaServer { port, dir, child: None, authentication: false, front: None };
        server.spawn();
        server
    }

    /// A broker its clients reach only over TLS, with `certs`' server
    /// certificate (and, with `client_certificates`, showing one of their
    /// own signed by `certs`' CA): a [`crate::TlsFront`] before it, whose
    /// port the broker advertises. [`KafkaServer::url`] is then a
    /// `kafkas://` URL, without the CA.
    pub fn start_tls(certs: &crate::Certs, client_certificates: bool) -> KafkaServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("deed-kafka-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("kafka directory");
        let front = crate::TlsFront::start(port, certs, client_certificates);
        let mut server =
            KafkaServer { port, dir, child: None, authentication: false, front: Some(front) };
        server.spawn();
        server
    }

    /// The port clients connect to: the TLS front's, if there is one.
    fn advertised(&self) -> u16 {
        self.front.as_ref().map_or(self.port, |f| f.port())
    }

    fn spawn(&mut self) {
        let d = &self.dir;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("broker.log"))
            .expect("kafka log");
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised());
        let mut cmd = Command::new(tansu());
        cmd.arg("broker")
            .args(["--listener-url", &listener, "--advertised-listener-url", &advertised])
            .args(["--storage-engine", "sqlite://tansu.db", "--silent"])
            .current_dir(d)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if self.authentication {
            cmd.arg("--authentication");
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start tansu ({e}): run scripts/setup, or set DEED_TANSU")
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not start on port {}: {}",
                self.port,
                std::fs::read_to_string(d.join("broker.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        index_headers(d);
    }

    /// `kafka://127.0.0.1:<port>` (`kafkas://…` behind a TLS front).
    pub fn url(&self) -> String {
        let scheme = if self.front.is_some() { "kafkas" } else { "kafka" };
        format!("{scheme}://127.0.0.1:{}", self.advertised())
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.advertised()
    }

    /// Makes a SCRAM-SHA-512 user, then restarts the broker requiring
    /// clients to sign in. (tansu 0.6.0 cannot serve TLS: its command
    /// line refuses `--cert` with `--key`.)
    pub fn secure(&mut self, user: &str, password: &str) {
        let out = Command::new(tansu())
            .args(["user", "create", "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .args(["--mechanism", "scram512", user, password])
            .output()
            .expect("tansu user create");
        assert!(
            out.status.success(),
            "tansu user create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.authentication = true;
        self.restart();
    }

    /// Kills the broker with SIGKILL: what it had not written is lost, as
    /// in a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the broker and starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The end of the broker's log, for a failing test's message.
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("broker.log")).unwrap_or_default();
        let mut start = text.len().saturating_sub(4000);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_string()
    }
}

/// tansu's SQLite storage looks up each fetched record's headers with no
/// index on them, so a fetch slows down with every header stored (deed
/// sends four per event): 500 records took 24 s from a log of 22,000
/// events, all of them 4 s with the index. The tables exist once the broker
/// listens.
fn index_headers(dir: &Path) {
    let out = Command::new("sqlite3")
        .arg(dir.join("tansu.db"))
        .arg("CREATE INDEX IF NOT EXISTS deed_header_record ON header (topition, offset_id)")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run sqlite3 ({e}): apt-get install sqlite3 (scripts/setup does)")
        });
    assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
}

impl Drop for KafkaServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
