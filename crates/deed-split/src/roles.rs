//! The service's roles on the target: its NOLOGIN owner role and its
//! logins, members of it, with the password verifiers copied from the
//! shared server when deed may read them, so the application logs in to
//! the target with the credentials it already has. Nothing else: the
//! contract views' readers stay in the shared database.

use deed_contracts::owner_role;
use deed_ident::{Ident, quote_literal};
use deed_manifest::Service;
use deed_pg::Client;

use crate::error::{SplitError, query};

/// A statement and how it is shown: a copied password never is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub shown: String,
}

impl Statement {
    pub fn plain(sql: String) -> Statement {
        Statement { shown: sql.clone(), sql }
    }
}

/// A login's password verifier on the shared server, if deed can read it
/// (only a superuser can).
async fn verifier(source: &Client, role: &str) -> Option<String> {
    source
        .query_opt("SELECT rolpassword FROM pg_authid WHERE rolname = $1", &[&role])
        .await
        .ok()
        .flatten()
        .and_then(|r| r.get::<_, Option<String>>(0))
}

async fn exists(target: &Client, role: &str) -> Result<bool, SplitError> {
    Ok(target
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", &[&role])
        .await
        .map_err(query("looking for a role on the target"))?
        .get(0))
}

/// What the target lacks of the service's roles.
pub async fn statements(
    source: &Client,
    target: &Client,
    service: &Service,
) -> Result<(Vec<Statement>, Vec<String>), SplitError> {
    let owner = owner_role(&service.name);
    let mut out = Vec::new();
    let mut notes = Vec::new();
    if !exists(target, owner.as_str()).await? {
        out.push(Statement::plain(format!("CREATE ROLE {} NOLOGIN", owner.quoted())));
    }
    for login in &service.logins {
        if !exists(target, login.as_str()).await? {
            out.push(create_login(source, login, &mut notes).await);
        }
        out.push(Statement::plain(format!("GRANT {} TO {}", owner.quoted(), login.quoted())));
    }
    Ok((out, notes))
}

async fn create_login(source: &Client, login: &Ident, notes: &mut Vec<String>) -> Statement {
    let base = format!("CREATE ROLE {} LOGIN", login.quoted());
    match verifier(source, login.as_str()).await {
        Some(v) => Statement {
            sql: format!("{base} PASSWORD {}", quote_literal(&v)),
            shown: format!("{base} PASSWORD '…' -- the shared server's verifier, not shown"),
        },
        None => {
            notes.push(format!(
                "{login} is created on the target without a password (deed could not read it on the shared server): set one before the cutover"
            ));
            Statement::plain(base)
        }
    }
}
