//! The phases of a split, each safe to run again: prepare, copy (and
//! follow), prove, cutover, rollback, finish. Each takes the two sessions
//! and what was read of the service once ([`Split`]).

mod copy;
mod finish;
mod prepare;
mod proof;
mod switching;

use std::time::{Duration, Instant};

use deed_events::SplitDirection;
use deed_manifest::{Manifest, Service};
use deed_pg::Client;
use serde::Serialize;

use crate::error::{SplitError, query};
use crate::inspect::{Inspected, inspect};
use crate::pgbouncer::PgBouncer;
use crate::prove::{Proof, prove};
use crate::refuse::{Refusal, source_refusals};
use crate::roles::Statement;
use crate::state::{self, Phase, Recorded};
use crate::switch::{Capture, Side, Switched, make_live};
use crate::{replicate, roles, schema, target};
pub use copy::{Copied, copy};
pub use finish::{Finished, finish};
pub use prepare::{Prepared, prepare};
pub use proof::prove_phase;
pub use switching::switch;

/// A split in hand: the service, both sessions, what it owns.
pub struct Split {
    pub service: Service,
    pub shared: Client,
    pub target: Client,
    /// How the target's server reaches the shared database (libpq URL).
    pub shared_conninfo: String,
    /// How the shared server reaches the target (libpq URL).
    pub target_conninfo: String,
    /// The target's URL without its password, as recorded.
    pub target_shown: String,
    pub found: Inspected,
    pub capture: Capture,
    /// All of what the service captures, as `deed apply` installs it.
    pub capture_desired: Option<deed_capture::ServiceCapture>,
    pub recorded: Option<Recorded>,
}

impl Split {
    /// Reads the service's relations and the recorded state.
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        manifest: &Manifest,
        service: &str,
        shared: Client,
        target: Client,
        shared_conninfo: String,
        target_conninfo: String,
    ) -> Result<Split, SplitError> {
        let s = manifest
            .service(service)
            .ok_or_else(|| SplitError::Setup(format!("the manifest has no service {service:?}")))?
            .clone();
        if s.owns.is_empty() {
            return Err(SplitError::Setup(format!(
                "{}: service {service} owns no tables: nothing to move",
                s.location
            )));
        }
        let found = inspect(&shared, &s.owns).await?;
        let capture_desired = deed_capture::CaptureDesired::from_manifest(manifest)
            .services
            .into_iter()
            .find(|c| c.service == service);
        let capture = Capture {
            tables: capture_desired.as_ref().map(|c| c.tables.clone()).unwrap_or_default(),
            domain: capture_desired.as_ref().is_some_and(|c| !c.domain_events.is_empty()),
        };
        let recorded = state::load(&shared, service).await?;
        let target_shown = deed_pg::redact_url(&target_conninfo);
        Ok(Split {
            service: s,
            shared,
            target,
            shared_conninfo,
            target_conninfo,
            target_shown,
            found,
            capture,
            capture_desired,
            recorded,
        })
    }

    fn name(&self) -> &str {
        &self.service.name
    }

    fn phase(&self) -> Option<Phase> {
        self.recorded.as_ref().map(|r| r.phase)
    }

    fn live_on_target(&self) -> bool {
        self.recorded.as_ref().is_some_and(|r| r.live == "target")
    }

    async fn reload(&mut self) -> Result<(), SplitError> {
        self.recorded = state::load(&self.shared, &self.service.name).await?;
        Ok(())
    }
}

/// deed's advisory lock on the shared database, for a whole phase: one
/// deed at a time, and a relay retiring a slot waits for it.
pub(super) async fn lock(shared: &Client) -> Result<(), SplitError> {
    shared
        .execute("SELECT pg_advisory_lock($1)", &[&deed_contracts::ADVISORY_LOCK_KEY])
        .await
        .map_err(query("taking deed's lock"))?;
    Ok(())
}

pub(super) async fn unlock(shared: &Client) {
    let _ = shared
        .execute("SELECT pg_advisory_unlock($1)", &[&deed_contracts::ADVISORY_LOCK_KEY])
        .await;
}
