//! Each desired contract view rendered by PostgreSQL itself: created as a
//! temporary view in a transaction (or savepoint) that is rolled back, so
//! its definition and columns can be compared with the live view's, and
//! its parse tree checked for what a contract may not do.

use std::collections::HashMap;

use deed_ident::QualifiedName;
use deed_pg::session::execute_one;
use deed_pg::{Client, PgError};

use crate::desired::{ContractView, Desired};
use crate::error::ContractError;
use crate::live::Canonical;
use crate::query_check;

fn q(context: &str) -> impl FnOnce(tokio_postgres::Error) -> PgError + '_ {
    move |e| PgError::query(context, e)
}

/// Renders every desired view; a view that cannot be created, or whose
/// query does something a contract may not, is a manifest error at its
/// contract. Nothing is left behind.
pub(crate) async fn canonical_views(
    client: &Client,
    desired: &Desired,
    in_transaction: bool,
) -> Result<HashMap<QualifiedName, Canonical>, ContractError> {
    let mut out = HashMap::new();
    if desired.views.is_empty() {
        return Ok(out);
    }
    let (begin, end) = if in_transaction {
        (
            "SAVEPOINT deed_canonical",
            "ROLLBACK TO SAVEPOINT deed_canonical; RELEASE SAVEPOINT deed_canonical",
        )
    } else {
        ("BEGIN", "ROLLBACK")
    };
    client.batch_execute(begin).await.map_err(q("starting a read-only check"))?;
    // Views are rendered under the session's own search path, as the live
    // ones are read.
    let session_path: String = client
        .query_one("SELECT current_setting('search_path')", &[])
        .await
        .map_err(q("reading the search path"))?
        .get(0);
    let mut result = Ok(());
    for (i, v) in desired.views.iter().enumerate() {
        match render(client, v, &format!("deed_canonical_{i}"), &session_path).await {
            Ok(c) => {
                out.insert(v.view.clone(), c);
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    client.batch_execute(end).await.map_err(q("ending a read-only check"))?;
    result.map(|_| out)
}

async fn render(
    client: &Client,
    v: &ContractView,
    temp: &str,
    session_path: &str,
) -> Result<Canonical, ContractError> {
    let manifest_error = |message: String| ContractError::Manifest {
        location: v.location.clone(),
        message: format!("contract {} {message}", v.contract),
    };
    for sql in v.create_statements(&format!("CREATE TEMP VIEW \"{temp}\"")) {
        if let Err(e) = execute_one(client, &sql).await {
            let reason = PgError::query("", e).to_string();
            return Err(manifest_error(format!(
                "cannot be created:{}",
                reason.trim_start_matches(':')
            )));
        }
    }
    client
        .query_one("SELECT set_config('search_path', $1, true)", &[&session_path])
        .await
        .map_err(q("restoring the search path"))?;
    let row = client
        .query_one(
            "SELECT pg_get_viewdef(c.oid),
                    array_agg(a.attname::text ORDER BY a.attnum),
                    array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum),
                    (SELECT r.ev_action::text FROM pg_rewrite r WHERE r.ev_class = c.oid)
               FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
              WHERE c.oid = ('pg_temp.' || quote_ident($1))::regclass
              GROUP BY c.oid",
            &[&temp],
        )
        .await
        .map_err(q("rendering a contract view"))?;
    let tree: String = row.get(3);
    if let Some(problem) = query_check::check(client, &tree, v.owner.as_str()).await? {
        return Err(manifest_error(problem));
    }
    let names: Vec<String> = row.get(1);
    let types: Vec<String> = row.get(2);
    Ok(Canonical { viewdef: row.get(0), columns: names.into_iter().zip(types).collect() })
}
