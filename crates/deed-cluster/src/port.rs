//! Free loopback ports for the servers deed starts itself: private
//! PostgreSQL clusters and PgBouncer (the demo, the tests, the
//! benchmarks), and the brokers the test kit starts.
//!
//! A port from `bind(127.0.0.1:0)` comes from the kernel's ephemeral
//! range, the range every outgoing connection takes its local port from.
//! Between that check and the server's own bind, any connection on the
//! machine (a nats-server dialling its cluster peers, a test's client)
//! may be given the same port, and the server then fails to start. So
//! ports are picked at random below that range, never twice in one
//! process, and checked free.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The lowest port handed out: above the well-known and most registered
/// services' ports.
const FLOOR: u16 = 20_000;

/// Ports handed out by this process.
static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
static STATE: AtomicU64 = AtomicU64::new(0);

/// A loopback port nothing listens on, below the ephemeral range; the
/// kernel's pick when that range leaves too little room below it.
pub fn free_port() -> std::io::Result<u16> {
    let ceiling = ephemeral_floor();
    if ceiling > FLOOR + 1_000 {
        let span = u64::from(ceiling - FLOOR);
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        let given = given.get_or_insert_with(HashSet::new);
        for _ in 0..200 {
            let port = FLOOR + (next_random() % span) as u16;
            if given.contains(&port) {
                continue;
            }
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                given.insert(port);
                return Ok(port);
            }
        }
    }
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The first port of the kernel's ephemeral range (Linux's default when
/// it cannot be read).
fn ephemeral_floor() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// xorshift64, seeded from the clock and the process id: spread enough
/// that processes started together pick different ports.
fn next_random() -> u64 {
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        x = nanos ^ (u64::from(std::process::id()) << 32) | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_distinct_and_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        let ceiling = ephemeral_floor();
        if ceiling > FLOOR + 1_000 {
            assert!(ports.iter().all(|p| (FLOOR..ceiling).contains(p)), "{ports:?}");
        }
        for p in ports {
            TcpListener::bind(("127.0.0.1", p)).expect("still free");
        }
    }
}
