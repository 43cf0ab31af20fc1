//! Whether a long-running process that moves events (a relay, a
//! projector) is alive and doing its job, as `/readyz` reports it: ready
//! while it works and its loop keeps turning, or while it stands by for
//! another instance; not ready while it starts, retries after an error,
//! or has not turned its loop for longer than the stall limit.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The state before the first connection (the default).
const STARTING: u8 = 0;
const WORKING: u8 = 1;
const STANDBY: u8 = 2;
const RETRYING: u8 = 3;

/// How long a working loop may go without turning before it is stalled.
pub const STALL_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Liveness {
    state: AtomicU8,
    /// Unix milliseconds of the last turn of the working loop.
    heartbeat_ms: AtomicI64,
    /// Why it stands by or retries.
    detail: Mutex<String>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Liveness {
    /// The loop turned: connected and working.
    pub fn working(&self) {
        self.heartbeat_ms.store(now_ms(), Ordering::Relaxed);
        self.state.store(WORKING, Ordering::Relaxed);
    }

    /// Connected, waiting for another instance to let go (`why`).
    pub fn standby(&self, why: &str) {
        self.set(STANDBY, why);
    }

    /// Failed with `error`; about to try again.
    pub fn retrying(&self, error: &str) {
        self.set(RETRYING, error);
    }

    fn set(&self, state: u8, detail: &str) {
        if let Ok(mut d) = self.detail.lock() {
            *d = detail.to_string();
        }
        self.state.store(state, Ordering::Relaxed);
    }

    /// `Ok(what it does)` when ready, `Err(why not)` otherwise.
    pub fn readiness(&self) -> Result<String, String> {
        self.readiness_at(now_ms())
    }

    fn readiness_at(&self, now: i64) -> Result<String, String> {
        let detail = self.detail.lock().map(|d| d.clone()).unwrap_or_default();
        match self.state.load(Ordering::Relaxed) {
            WORKING => {
                let idle = now - self.heartbeat_ms.load(Ordering::Relaxed);
                if idle > STALL_AFTER.as_millis() as i64 {
                    Err(format!("stalled: no progress for {} s", idle / 1000))
                } else {
                    Ok("working".into())
                }
            }
            STANDBY => Ok(format!("standing by: {detail}")),
            RETRYING => Err(format!("retrying after an error: {detail}")),
            STARTING => Err("starting: not connected yet".into()),
            other => Err(format!("in an unknown state ({other})")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_while_working_or_standing_by() {
        let l = Liveness::default();
        assert!(l.readiness().unwrap_err().starts_with("starting"));
        l.working();
        assert_eq!(l.readiness(), Ok("working".to_string()));
        let later = now_ms() + STALL_AFTER.as_millis() as i64 + 5_000;
        assert!(l.readiness_at(later).unwrap_err().starts_with("stalled: no progress for 6"));
        l.retrying("connection refused");
        assert_eq!(l.readiness(), Err("retrying after an error: connection refused".to_string()));
        l.standby("another relay delivers");
        assert_eq!(l.readiness(), Ok("standing by: another relay delivers".to_string()));
    }
}
