//! A private RabbitMQ node for one test, on its own ports and data
//! directory, which the test may kill (SIGKILL) and start again: for what
//! the machine's shared broker must not be put through.

use crate::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RabbitServer {
    port: u16,
    /// A TLS listener's port, when the node has one.
    tls_port: Option<u16>,
    dist_port: u16,
    dir: PathBuf,
    name: String,
    child: Option<Child>,
}

fn script() -> PathBuf {
    // The Debian wrapper in /usr/sbin switches user and drops the
    // environment; the script it wraps takes it.
    for p in ["/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/sbin/rabbitmq-server"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("rabbitmq-server")
}

impl RabbitServer {
    pub fn start() -> RabbitServer {
        RabbitServer::start_with(None)
    }

    /// A node that also listens for TLS with `certs`' server certificate
    /// and requires a client certificate signed by `certs`' CA
    /// ([`RabbitServer::tls_url`]).
    pub fn start_tls(certs: &crate::Certs) -> RabbitServer {
        RabbitServer::start_with(Some(certs))
    }

    fn start_with(certs: Option<&crate::Certs>) -> RabbitServer {
        let (port, dist_port) = (free_port(), free_port());
        let dir = std::env::temp_dir().join(format!("deed-rabbit-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("log")).expect("rabbitmq directory");
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("rabbitmq plugins file");
        let mut config = format!("listeners.tcp.default = 127.0.0.1:{port}\n");
        let tls_port = certs.map(|c| {
            let tls_port = free_port();
            config += &format!(
                "listeners.ssl.default = 127.0.0.1:{tls_port}\n\
                 ssl_options.cacertfile = {}\n\
                 ssl_options.certfile = {}\n\
                 ssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_peer\n\
                 ssl_options.fail_if_no_peer_cert = true\n",
                c.ca.display(),
                c.server_cert.display(),
                c.server_key.display()
            );
            tls_port
        });
        std::fs::write(dir.join("rabbitmq.conf"), config).expect("rabbitmq config");
        let name = format!("deed{}_{port}@localhost", std::process::id());
        let mut server = RabbitServer { port, tls_port, dist_port, dir, name, child: None };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let d = &self.dir;
        let out = std::fs::File::create(d.join("log/out.log")).expect("rabbitmq log");
        let child = Command::new(script())
            .current_dir(d)
            .env("HOME", d)
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq.conf"))
            .env("RABBITMQ_PID_FILE", d.join("pid"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start rabbitmq-server ({e}): install it (apt-get install rabbitmq-server; scripts/setup does)")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        for port in std::iter::once(self.port).chain(self.tls_port) {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "rabbitmq-server did not start on port {port}: {}",
                    std::fs::read_to_string(d.join("log/out.log")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// `amqps://guest:guest@localhost:<tls port>/%2f`, without the CA and
    /// the client certificate (a node from [`RabbitServer::start_tls`]).
    pub fn tls_url(&self) -> String {
        let port = self.tls_port.expect("a node started with start_tls");
        format!("amqps://guest:guest@localhost:{port}/%2f")
    }

    /// Kills the node with SIGKILL (no shutdown: what it had not written
    /// is lost, as in a crash).
    pub fn kill(&mut self) {
        // The script execs the Erlang VM, so the child is the node; its
        // pid file says so too, should the script have forked.
        let pid = std::fs::read_to_string(self.dir.join("pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        if let Some(pid) = pid {
            // SAFETY: kill(2) with a pid read from the node's own pid file.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.dir.join("pid"));
        // The port is free once the node is gone.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the node serves `queues` again (a restarted node takes
    /// connections before its streams are back).
    pub async fn ready(&self, queues: &[String]) {
        let url = deed_bus::AmqpUrl::parse(&self.url()).expect("a test URL");
        let deadline = Instant::now() + Duration::from_secs(60);
        'wait: loop {
            assert!(Instant::now() < deadline, "RabbitMQ's queues {queues:?} did not come back");
            tokio::time::sleep(Duration::from_millis(200)).await;
            let Ok(conn) = url.connect("test").await else { continue };
            for q in queues {
                let Ok(ch) = conn.create_channel().await else { continue 'wait };
                let passive =
                    lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
                let declared = ch
                    .queue_declare(q.as_str().into(), passive, lapin::types::FieldTable::default())
                    .await;
                if declared.is_err() {
                    let _ = conn.close(200, "ok".into()).await;
                    continue 'wait;
                }
            }
            let _ = conn.close(200, "ok".into()).await;
            return;
        }
    }

    /// Kills the node and starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RabbitServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
