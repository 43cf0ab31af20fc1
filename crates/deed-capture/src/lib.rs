//! What change capture needs in the owner's database: per service with
//! events, a publication of its state-event tables and a logical
//! replication slot (pgoutput), replica identity full where the old row is
//! needed, the `deed` schema with `deed.emit(event, key, payload)` for
//! domain events, which writes a transactional logical message, and the
//! relay's own login with exactly the grants it needs.
//!
//! Each is desired state ([`CaptureDesired`], from the manifest), live
//! state ([`CaptureLive`], from the catalogs) and a diff
//! ([`diff_capture`]) into the same [`deed_change::Change`]s as the
//! contract views'. `deed apply` (`deed-contracts`) runs them in the plan
//! that sets up roles and views, because it is the one command that
//! changes a database's roles and schema; `deed split` sets up capture the
//! same way on the new instance. The relay (`deed-relay`) only reads what
//! was set up here.
//!
//! This crate sits below the rungs because two of them set capture up:
//! rung 1's `deed apply` and rung 4's `deed split`; neither may depend on
//! the other's crate for it.

mod compatibility;
mod diff;
mod event_contracts;
mod live;
mod relay_login;

pub use diff::{PUBLISH, diff_capture};
pub use live::CaptureLive;
pub use relay_login::RelayLogin;

use std::collections::BTreeSet;

use deed_ident::{Ident, QualifiedName};
use deed_manifest::{Compatibility, ContractShape, Manifest};
use serde::Serialize;

use deed_events::owner_role;

/// Bumped whenever the SQL of `deed.emit` changes, so apply replaces it.
pub const EMIT_VERSION: &str = "deed capture v1";

/// One service's capture.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceCapture {
    pub service: String,
    pub publication: Ident,
    /// Tables its state events come from.
    pub tables: Vec<QualifiedName>,
    /// For each table, the columns that must be present in the old row of
    /// an update or delete (the event keys) and those carried as payload.
    pub keys: Vec<(QualifiedName, Vec<Ident>)>,
    pub payload_columns: Vec<(QualifiedName, Vec<Ident>)>,
    /// Fully qualified domain event names, `<service>.<event>`.
    pub domain_events: Vec<String>,
    pub owner: Ident,
    /// Each state event, the contract version it carries, and the services
    /// that consume it: changing that contract breaks them.
    pub event_contracts: Vec<EventContract>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventContract {
    pub event: String,
    pub contract: String,
    pub consumers: Vec<String>,
    pub compatibility: Compatibility,
    /// The table the event is captured from.
    pub table: QualifiedName,
    /// The columns the contract carries (empty for a query contract).
    pub columns: Vec<String>,
    /// The earlier versions of the same contract still in the manifest,
    /// with their columns: a new version must be compatible with each.
    pub earlier: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct CaptureDesired {
    pub services: Vec<ServiceCapture>,
}

impl CaptureDesired {
    pub fn from_manifest(m: &Manifest) -> CaptureDesired {
        let services = m
            .services
            .iter()
            .filter(|s| !s.events.is_empty())
            .map(|s| {
                let mut tables: Vec<QualifiedName> = Vec::new();
                let mut keys: Vec<(QualifiedName, Vec<Ident>)> = Vec::new();
                let mut payload_columns: Vec<(QualifiedName, Vec<Ident>)> = Vec::new();
                let mut domain_events = Vec::new();
                let mut event_contracts = Vec::new();
                for e in &s.events {
                    if let (Some(k), Some(from)) = (&e.contract, &e.from) {
                        let columns_of = |c: &deed_manifest::Contract| match &c.shape {
                            ContractShape::Columns(cols) => {
                                cols.iter().map(|c| c.as_str().to_string()).collect()
                            }
                            ContractShape::Query(_) => Vec::new(),
                        };
                        let earlier = s
                            .contracts
                            .iter()
                            .filter(|c| c.name == k.contract && c.version < k.version)
                            .map(|c| {
                                (format!("{}.{}.v{}", s.name, c.name, c.version), columns_of(c))
                            })
                            .collect();
                        let columns = s.contract(k).map(columns_of).unwrap_or_default();
                        let consumers = m
                            .services
                            .iter()
                            .filter(|c| {
                                c.consumes.iter().any(|r| r.service == s.name && r.event == e.name)
                            })
                            .map(|c| c.name.clone())
                            .collect();
                        event_contracts.push(EventContract {
                            event: e.name.clone(),
                            contract: format!("{}.{}.v{}", s.name, k.contract, k.version),
                            consumers,
                            compatibility: e.compatibility,
                            table: from.clone(),
                            columns,
                            earlier,
                        });
                    }
                    match &e.from {
                        Some(from) => {
                            if !tables.contains(from) {
                                tables.push(from.clone());
                            }
                            keys.push((from.clone(), e.key.clone()));
                            let cols = e
                                .contract
                                .as_ref()
                                .and_then(|k| s.contract(k))
                                .map(|c| match &c.shape {
                                    ContractShape::Columns(cols) => cols.clone(),
                                    ContractShape::Query(_) => Vec::new(),
                                })
                                .unwrap_or_default();
                            payload_columns.push((from.clone(), cols));
                        }
                        None => domain_events.push(format!("{}.{}", s.name, e.name)),
                    }
                }
                tables.sort();
                ServiceCapture {
                    service: s.name.clone(),
                    publication: deed_events::publication_name(&s.name),
                    tables,
                    keys,
                    payload_columns,
                    domain_events,
                    owner: owner_role(&s.name),
                    event_contracts,
                }
            })
            .collect();
        CaptureDesired { services }
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Owner roles that may call `deed.emit`.
    pub fn emitters(&self) -> BTreeSet<Ident> {
        self.services
            .iter()
            .filter(|s| !s.domain_events.is_empty())
            .map(|s| s.owner.clone())
            .collect()
    }
}

/// The emit function: validates the event and the caller, then writes a
/// transactional logical message that commits or rolls back with the
/// caller's transaction. Two statements: the function and its comment.
pub fn emit_function_sql() -> [String; 2] {
    [
        r#"CREATE OR REPLACE FUNCTION "deed"."emit"("event" text, "key" text, "payload" jsonb) RETURNS pg_lsn
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $deed$
DECLARE
    owner name;
BEGIN
    SELECT d.owner_role INTO owner FROM "deed"."domain_events" d WHERE d.event = emit.event;
    IF owner IS NULL THEN
        RAISE EXCEPTION 'deed.emit: % is not a domain event in deed.toml', emit.event
            USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_has_role(session_user, owner, 'USAGE') THEN
        RAISE EXCEPTION 'deed.emit: % may not emit %', session_user, emit.event
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN pg_logical_emit_message(true, 'deed:' || split_part(emit.event, '.', 1),
        json_build_object('event', emit.event, 'key', emit.key, 'payload', emit.payload)::text);
END
$deed$"#
            .to_string(),
        format!(r#"COMMENT ON FUNCTION "deed"."emit"(text, text, jsonb) IS '{EMIT_VERSION}'"#),
    ]
}
