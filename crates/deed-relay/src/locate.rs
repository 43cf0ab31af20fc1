//! Where a service's events are captured: the shared database, or, once
//! `deed split` has moved its writes, the service's own database. A relay
//! first drains the side the writes left (its events up to the move), then
//! reads the side that has them, so events keep their commit order across
//! the move.

use deed_manifest::Manifest;
use deed_pg::redact_url;

use crate::error::RelayError;
use crate::source::q;

/// The database to read, and the one to drain first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSides {
    pub live: String,
    pub earlier: Option<String>,
}

pub async fn locate(
    shared_url: &str,
    manifest: &Manifest,
    service: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<CaptureSides, RelayError> {
    let shared = deed_pg::connect(shared_url).await?;
    let exists: bool = shared
        .query_one("SELECT to_regclass('deed.splits') IS NOT NULL", &[])
        .await
        .map_err(q("looking for deed.splits"))?
        .get(0);
    let row = if exists {
        shared
            .query_opt(
                "SELECT live, target_written FROM deed.splits WHERE service = $1",
                &[&service],
            )
            .await
            .map_err(q("reading deed.splits"))?
    } else {
        None
    };
    let Some(row) = row else {
        return Ok(CaptureSides { live: shared_url.to_string(), earlier: None });
    };
    let live: String = row.get(0);
    let written: Option<String> = row.get(1);
    let s = manifest
        .service(service)
        .ok_or_else(|| RelayError::Setup(format!("the manifest has no service {service:?}")))?;
    let own = match manifest.service_database_url(s, lookup) {
        Ok(Some(url)) => Some(url),
        Ok(None) => written
            .as_deref()
            .map(|w| deed_manifest::resolve_references(w, lookup))
            .transpose()
            .map_err(|e| RelayError::Setup(format!("deed.splits target of {service}: {e}")))?,
        Err(e) => return Err(RelayError::Setup(e.to_string())),
    };
    let own = own.filter(|u| u != shared_url);
    match (live.as_str(), own) {
        ("target", Some(own)) => {
            Ok(CaptureSides { live: own, earlier: Some(shared_url.to_string()) })
        }
        ("target", None) => Err(RelayError::Setup(format!(
            "{service}'s writes were moved to its own database by `deed split`, but deed.toml has no `database` for it: set it (the relay reads {service}'s events there)"
        ))),
        (_, own) => Ok(CaptureSides { live: shared_url.to_string(), earlier: own }),
    }
}

impl CaptureSides {
    /// For logs: where each side is, without passwords.
    pub fn describe(&self) -> String {
        match &self.earlier {
            Some(e) => format!("{} (after draining {})", redact_url(&self.live), redact_url(e)),
            None => redact_url(&self.live),
        }
    }
}
