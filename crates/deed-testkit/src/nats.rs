//! A private nats-server with JetStream for one test, on its own port and
//! store directory, which the test may stop, restart and kill.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NatsServer {
    port: u16,
    dir: PathBuf,
    config: Option<String>,
    child: Option<Child>,
}

pub(crate) fn binary() -> PathBuf {
    for p in ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"] {
        if std::path::Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("nats-server")
}

impl NatsServer {
    /// Starts a server; `config` is extra nats-server configuration (e.g.
    /// `max_payload: 65536`).
    pub fn start(config: Option<&str>) -> NatsServer {
        let port = crate::free_port();
        let dir = std::env::temp_dir().join(format!("deed-nats-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("nats store directory");
        let mut server = NatsServer { port, dir, config: config.map(String::from), child: None };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(binary());
        cmd.args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"]).arg(&self.dir);
        if let Some(extra) = &self.config {
            let path = self.dir.join("server.conf");
            std::fs::write(&path, extra).expect("nats config");
            cmd.arg("-c").arg(path);
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| {
            panic!("cannot start nats-server ({e}): install it (apt-get install nats-server; scripts/setup does)")
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server and starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
