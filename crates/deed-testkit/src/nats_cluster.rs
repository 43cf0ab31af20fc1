//! A real three-node nats-server cluster on loopback for one test: three
//! processes, routes between them, JetStream on each with its own store.
//! A node can be killed (SIGKILL) and started again on the same ports and
//! store, to take a stream's leader away in the middle of delivery.

use crate::free_port;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::nats::binary;

pub struct NatsCluster {
    dir: PathBuf,
    nodes: Vec<Node>,
}

struct Node {
    name: String,
    port: u16,
    child: Option<Child>,
    config: PathBuf,
}

impl NatsCluster {
    /// Starts `n` nodes (3 for a cluster that survives losing one).
    pub fn start(n: usize) -> NatsCluster {
        let client_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let route_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let dir = std::env::temp_dir().join(format!(
            "deed-nats-cluster-{}-{}",
            std::process::id(),
            client_ports[0]
        ));
        std::fs::create_dir_all(&dir).expect("cluster directory");
        let mut nodes = Vec::new();
        for i in 0..n {
            let name = format!("n{}", i + 1);
            let store = dir.join(&name);
            let routes: Vec<String> = (0..n)
                .filter(|j| *j != i)
                .map(|j| format!("nats-route://127.0.0.1:{}", route_ports[j]))
                .collect();
            let config = dir.join(format!("{name}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{}\njetstream {{ store_dir: \"{}\" }}\n\
                     cluster {{ name: deed_test\n listen: 127.0.0.1:{}\n routes: [{}] }}\n",
                    client_ports[i],
                    store.display(),
                    route_ports[i],
                    routes.join(", ")
                ),
            )
            .expect("node config");
            nodes.push(Node { name, port: client_ports[i], child: None, config });
        }
        let mut cluster = NatsCluster { dir, nodes };
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        // Its log, to say why when it does not start.
        let log = self.dir.join(format!("{}.log", node.name));
        let stderr = std::fs::File::create(&log).expect("node log");
        let child = Command::new(binary())
            .arg("-c")
            .arg(&node.config)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start nats-server ({e}): install it (apt-get install nats-server; scripts/setup does)")
            });
        node.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", node.port)).is_err() {
            let exited = node.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() >= deadline {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(8).collect();
                panic!(
                    "nats-server {} did not start ({}); its last lines:\n{}",
                    node.name,
                    exited.map_or("no answer in 20 s".to_string(), |s| format!("it exited: {s}")),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every node's URL, comma-separated: a client given all of them
    /// moves to another when the one it uses goes away.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// One node's URL.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].port)
    }

    /// The index of the node named `name` (`n1`, `n2`, …).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// SIGKILL: the node stops at once, with no goodbye to its peers.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed node again, on its ports and store.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
