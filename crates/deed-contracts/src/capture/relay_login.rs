//! A login per capturing service for its relay, `deed_<service>_relay`,
//! with least privilege: `REPLICATION` to stream its slot, `USAGE` on
//! schema `deed` and `SELECT` on `deed.capture_epochs` (where `deed split`
//! records a move), never superuser, no other attribute, and not
//! inheriting whatever roles it is later granted. Decoding reads the WAL,
//! so it needs no privilege on the service's tables and is given none.
//!
//! PostgreSQL 15 lets only a superuser give `REPLICATION`: when `deed
//! apply` runs as another role, the missing login is reported (with the
//! statement to run) instead of failing the whole apply.

use deed_ident::Ident;

use super::CaptureDesired;
use super::diff::change;
use crate::change::{Change, Phase};

/// A relay login as the catalog shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayLogin {
    pub login: bool,
    pub replication: bool,
    /// SUPERUSER, CREATEDB, CREATEROLE or BYPASSRLS: any is too much.
    pub extra: bool,
    pub inherit: bool,
    pub schema_usage: bool,
    pub epochs_select: bool,
}

const ATTRIBUTES: &str =
    "LOGIN REPLICATION NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS";

/// The relay logins capture wants.
pub fn wanted(desired: &CaptureDesired) -> Vec<Ident> {
    desired.services.iter().map(|s| deed_events::relay_role(&s.service)).collect()
}

pub(super) fn relay_logins(
    desired: &CaptureDesired,
    live: &super::CaptureLive,
    out: &mut Vec<Change>,
) {
    if desired.is_empty() {
        return;
    }
    if !live.epochs_table {
        out.push(change(
            Phase::Capture,
            "create-table",
            "deed.capture_epochs",
            "create deed.capture_epochs, where deed split records a move for the relay".into(),
            "deed.capture_epochs is missing".into(),
            deed_events::EPOCHS_DDL
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        ));
    }
    for role in wanted(desired) {
        let name = role.as_str();
        let shown = role.quoted();
        match live.relay_logins.get(name) {
            None if !live.superuser => out.push(change(
                Phase::Warning,
                "relay-login",
                name,
                format!(
                    "relay login {name} is missing and only a superuser may give REPLICATION: run as one `CREATE ROLE {shown} {ATTRIBUTES}`, then deed apply again"
                ),
                format!("relay login {name} is missing"),
                Vec::new(),
            )),
            None => out.push(change(
                Phase::Roles,
                "create-role",
                name,
                format!("create relay login {name} (REPLICATION, nothing else; give it a password or a client certificate)"),
                format!("relay login {name} is missing"),
                vec![format!("CREATE ROLE {shown} {ATTRIBUTES}")],
            )),
            Some(r) => {
                let right = r.login && r.replication && !r.extra && !r.inherit;
                if !right {
                    let what = if r.extra {
                        "has more than REPLICATION (superuser, createdb, createrole or bypassrls)"
                    } else {
                        "lacks LOGIN or REPLICATION, or inherits other roles' privileges"
                    };
                    let phase = if live.superuser { Phase::Roles } else { Phase::Warning };
                    out.push(change(
                        phase,
                        "alter-role",
                        name,
                        format!("give relay login {name} exactly what a relay needs"),
                        format!("relay login {name} {what}"),
                        if live.superuser {
                            vec![format!("ALTER ROLE {shown} {ATTRIBUTES}")]
                        } else {
                            Vec::new()
                        },
                    ));
                }
            }
        }
        let exists = live.relay_logins.contains_key(name) || live.superuser;
        let current = live.relay_logins.get(name).cloned().unwrap_or_default();
        if exists && !current.schema_usage {
            out.push(change(
                Phase::Capture,
                "grant",
                "deed",
                format!("grant USAGE on schema deed to {name}"),
                format!("missing grant: USAGE on schema deed to {name}"),
                vec![format!("GRANT USAGE ON SCHEMA \"deed\" TO {shown}")],
            ));
        }
        if exists && !current.epochs_select {
            out.push(change(
                Phase::Capture,
                "grant",
                "deed.capture_epochs",
                format!("grant SELECT on deed.capture_epochs to {name}"),
                format!("missing grant: SELECT on deed.capture_epochs to {name}"),
                vec![format!("GRANT SELECT ON \"deed\".\"capture_epochs\" TO {shown}")],
            ));
        }
    }
}
