//! The HTTP endpoint of the long-running commands (`deed relay`,
//! `deed project` with `--metrics ADDR`): `/metrics` (Prometheus,
//! OpenMetrics text), `/healthz` (the process answers: 200) and `/readyz`
//! (200 while it works or stands by, 503 with the reason while it starts,
//! retries or is stalled), for Kubernetes probes and systemd watchdogs.
//! Other paths are 404, other methods 405; a client gets 5 seconds to
//! send its request and to read the answer, 32 are answered at a time,
//! and an error accepting one never stops the endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deed_events::Liveness;
use deed_events::exposition::{self, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the endpoint serves.
#[derive(Clone)]
pub struct Endpoints {
    pub registry: Arc<Registry>,
    pub liveness: Arc<dyn Fn() -> Result<String, String> + Send + Sync>,
}

impl Endpoints {
    /// `registry` on `/metrics`, `liveness` of `owner` on `/readyz`.
    pub fn new<T: Send + Sync + 'static>(
        registry: Registry,
        owner: Arc<T>,
        liveness: fn(&T) -> &Liveness,
    ) -> Endpoints {
        Endpoints {
            registry: Arc::new(registry),
            liveness: Arc::new(move || liveness(&owner).readiness()),
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: usize = 32;

/// Binds `addr` and serves until the process ends; returns the bound
/// address (port 0 picks one).
pub async fn serve(addr: SocketAddr, endpoints: Endpoints) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    // At most this many answers at a time; more wait to be accepted.
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else { return };
            match listener.accept().await {
                Ok((socket, _)) => {
                    let endpoints = endpoints.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(TIMEOUT, answer(socket, &endpoints)).await;
                        drop(permit);
                    });
                }
                // Out of file descriptors, say: the endpoint keeps serving.
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a metrics connection; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(bound)
}

async fn answer(mut socket: TcpStream, endpoints: &Endpoints) -> std::io::Result<()> {
    // The request line is all that matters; headers are read and ignored.
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            ("200 OK", exposition::CONTENT_TYPE, exposition::text(&endpoints.registry))
        }
        ("GET" | "HEAD", "/healthz") => ("200 OK", "text/plain", "ok\n".to_string()),
        ("GET" | "HEAD", "/readyz") => match (endpoints.liveness)() {
            Ok(what) => ("200 OK", "text/plain", format!("ready: {what}\n")),
            Err(why) => ("503 Service Unavailable", "text/plain", format!("not ready: {why}\n")),
        },
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain",
            "not found: /metrics, /healthz and /readyz are served\n".to_string(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "only GET and HEAD\n".to_string()),
    };
    let shown = if method == "HEAD" { "" } else { body.as_str() };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{shown}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await
}
