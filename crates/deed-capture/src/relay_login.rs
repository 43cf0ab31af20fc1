//! A login per capturing service for its relay, `deed_<service>_relay`,
//! with least privilege: `REPLICATION` to stream its slot, `USAGE` on
//! schema `deed` and `SELECT` on `deed.capture_epochs` (where `deed split`
//! records a move), never superuser, no other attribute, and not
//! inheriting whatever roles it is later granted. Decoding reads the WAL,
//! so it needs no privilege on the service's tables and is given none.
//!
//! Who may give replication depends on the server: a superuser always;
//! from PostgreSQL 16 a `CREATEROLE` role that has `REPLICATION` itself
//! (Cloud SQL, Azure, Supabase, Neon and plain admins); on RDS and Aurora
//! the admin grants the `rds_replication` role instead. Where deed may not,
//! the missing login is reported with the statements to run, instead of
//! failing the whole apply.

use deed_ident::Ident;

use super::CaptureDesired;
use super::diff::change;
use deed_change::{Change, Phase};

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
            deed_state::statements(&[deed_state::Table::CaptureEpochs]),
        ));
    }
    for role in wanted(desired) {
        let name = role.as_str();
        let shown = role.quoted();
        // How this server gives replication: the attribute, or the
        // provider's role (RDS), or only an operator can.
        let (attributes, grant_role) = if live.give_replication {
            (ATTRIBUTES.to_string(), None)
        } else if let Some(role) = live.replication_role {
            (ATTRIBUTES.replace(" REPLICATION", ""), Some(role))
        } else {
            (ATTRIBUTES.to_string(), None)
        };
        let may_make = live.give_replication || grant_role.is_some();
        let mut make = vec![format!("CREATE ROLE {shown} {attributes}")];
        make.extend(grant_role.map(|r| format!("GRANT \"{r}\" TO {shown}")));
        match live.relay_logins.get(name) {
            None if !may_make => out.push(change(
                Phase::Warning,
                "relay-login",
                name,
                format!(
                    "relay login {name} is missing and deed may not give REPLICATION here ({}): run as a superuser `{}`, then deed apply again",
                    WHY_NOT,
                    make.join("; ")
                ),
                format!("relay login {name} is missing"),
                Vec::new(),
            )),
            None => out.push(change(
                Phase::Roles,
                "create-role",
                name,
                format!(
                    "create relay login {name} (replication{}, nothing else; give it a password or a client certificate)",
                    grant_role.map(|r| format!(" through {r}")).unwrap_or_default()
                ),
                format!("relay login {name} is missing"),
                make,
            )),
            Some(r) => {
                let right = r.login && r.replication && !r.extra && !r.inherit;
                if !right {
                    let what = if r.extra {
                        "has more than REPLICATION (superuser, createdb, createrole or bypassrls)"
                    } else {
                        "lacks LOGIN or REPLICATION, or inherits other roles' privileges"
                    };
                    let mut fix = vec![format!("ALTER ROLE {shown} {attributes}")];
                    fix.extend(grant_role.map(|r| format!("GRANT \"{r}\" TO {shown}")));
                    out.push(change(
                        if may_make { Phase::Roles } else { Phase::Warning },
                        "alter-role",
                        name,
                        if may_make {
                            format!("give relay login {name} exactly what a relay needs")
                        } else {
                            format!(
                                "relay login {name} {what}; deed may not change it here ({}): run as a superuser `{}`",
                                WHY_NOT,
                                fix.join("; ")
                            )
                        },
                        format!("relay login {name} {what}"),
                        if may_make { fix } else { Vec::new() },
                    ));
                }
            }
        }
        let exists = live.relay_logins.contains_key(name) || may_make;
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

/// Why deed may not give replication on this server, in words.
const WHY_NOT: &str = "only a superuser may, or on PostgreSQL 16 and later a CREATEROLE role that has REPLICATION itself";
