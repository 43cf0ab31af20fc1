//! One relay delivers per service; others wait. The active one holds a
//! session advisory lock on the owner database, released by PostgreSQL the
//! moment its session ends, however the relay died.

use std::time::Duration;

use deed_pg::{Client, PgError};

use crate::error::RelayError;

/// The lock key for a service's relay: a fixed namespace and an FNV-1a
/// hash of the service name.
pub fn lock_key(service: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("deed relay {service}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

pub async fn try_lead(client: &Client, service: &str) -> Result<bool, RelayError> {
    Ok(client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&lock_key(service)])
        .await
        .map_err(|e| PgError::query("taking the relay lock", e))?
        .get(0))
}

/// Waits until this relay may deliver, checking every `every`.
pub async fn lead(client: &Client, service: &str, every: Duration) -> Result<(), RelayError> {
    let mut announced = false;
    while !try_lead(client, service).await? {
        if !announced {
            tracing::info!(service, "another relay is delivering; standing by to take over");
            announced = true;
        }
        tokio::time::sleep(every).await;
    }
    if announced {
        tracing::info!(service, "took over delivery");
    }
    Ok(())
}
