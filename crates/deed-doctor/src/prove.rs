//! Privileges proved by doing, not by reading attributes: in one
//! transaction that is always rolled back, deed creates a role, grants
//! itself that role, creates a schema for it, gives it a table and
//! publishes the table — each step what `deed apply` does for a service.
//! A managed service's admin passes or fails these exactly as apply would;
//! reading `rolcreaterole` says nothing about what PostgreSQL 16's
//! `createrole_self_grant` or a provider's restrictions allow.
//!
//! Each step runs under a savepoint, so a failure is reported with the
//! server's SQLSTATE and message and the steps that need it are skipped.
//! Nothing persists: the transaction is rolled back whatever happens.

use deed_pg::{Actor, Client, PgError};
use serde::Serialize;

/// One step tried.
#[derive(Debug, Clone, Serialize)]
pub struct Proof {
    pub step: &'static str,
    /// The statement run (with the probe's names).
    pub sql: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum Outcome {
    Done,
    /// The server refused: its SQLSTATE and message.
    Refused {
        sqlstate: String,
        message: String,
    },
    /// Not tried: an earlier step it needs failed.
    Skipped,
}

/// The steps, in order; `{role}`, `{schema}`, `{grant}` and `{publication}`
/// are filled in.
const STEPS: &[(&str, &str)] = &[
    ("create a role", "CREATE ROLE {role} NOLOGIN"),
    ("grant itself the role", "{grant}"),
    ("create a schema for it", "CREATE SCHEMA {schema} AUTHORIZATION {role}"),
    (
        "give it a table",
        "CREATE TABLE {schema}.probe (id int PRIMARY KEY); ALTER TABLE {schema}.probe OWNER TO {role}",
    ),
    ("publish the table", "CREATE PUBLICATION {publication} FOR TABLE {schema}.probe"),
];

/// Runs the steps in a transaction it rolls back. `client` must not be in
/// a transaction.
pub async fn prove(client: &Client, actor: &Actor) -> Result<Vec<Proof>, PgError> {
    let tag = format!("deed_doctor_probe_{}", std::process::id());
    let role = deed_ident::Ident::new(tag.clone()).expect("a plain name").quoted();
    let grant = actor.self_grant_sql(&role);
    let fill = |sql: &str| {
        sql.replace("{grant}", &grant)
            .replace("{role}", &role)
            .replace("{schema}", &role)
            .replace("{publication}", &role)
    };
    client.batch_execute("BEGIN").await.map_err(|e| PgError::query("starting the proofs", e))?;
    let mut out = Vec::new();
    let mut failed = false;
    for (step, template) in STEPS {
        let sql = fill(template);
        let outcome = if failed {
            Outcome::Skipped
        } else {
            client
                .batch_execute("SAVEPOINT deed_doctor")
                .await
                .map_err(|e| PgError::query("a savepoint for the proofs", e))?;
            match client.batch_execute(&sql).await {
                Ok(()) => Outcome::Done,
                Err(e) => {
                    failed = true;
                    let _ = client.batch_execute("ROLLBACK TO SAVEPOINT deed_doctor").await;
                    let db = e.as_db_error();
                    Outcome::Refused {
                        sqlstate: db.map_or_else(String::new, |d| d.code().code().to_string()),
                        message: db.map_or_else(|| e.to_string(), |d| d.message().to_string()),
                    }
                }
            }
        };
        out.push(Proof { step, sql, outcome });
    }
    client
        .batch_execute("ROLLBACK")
        .await
        .map_err(|e| PgError::query("rolling the proofs back", e))?;
    Ok(out)
}
