//! SIGINT and SIGTERM during `deed check`: the scratch database is dropped
//! before deed exits, whatever phase the check is in.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The scratch database in use: (server URL, name).
static CURRENT: Mutex<Option<(String, String)>> = Mutex::new(None);

/// Set as soon as a signal arrives.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

pub(crate) fn signalled() -> bool {
    SIGNALLED.load(Ordering::SeqCst)
}

pub(crate) fn remember(server_url: &str, name: &str) {
    if let Ok(mut c) = CURRENT.lock() {
        *c = Some((server_url.to_string(), name.to_string()));
    }
}

pub(crate) fn forget() {
    if let Ok(mut c) = CURRENT.lock() {
        *c = None;
    }
}

/// Resolves when the process is asked to stop; then drops the scratch
/// database in use, if any.
pub(crate) async fn stopped() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) =
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        return std::future::pending().await;
    };
    let which = tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    };
    SIGNALLED.store(true, Ordering::SeqCst);
    let current = CURRENT.lock().ok().and_then(|mut c| c.take());
    if let Some((url, name)) = current {
        crate::scratch::drop_database(&url, &name).await;
    }
    which
}
