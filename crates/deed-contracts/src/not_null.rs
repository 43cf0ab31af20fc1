//! `not_null`: columns an owner states are never NULL where the view
//! cannot prove it (a hand-written query, an outer join the data never
//! misses). `deed apply` checks the statement against the data inside
//! its transaction, after the views are (re)created: a named column the
//! view lacks, or a NULL in one, refuses the apply and changes nothing.
//! The check reads each such view whole, once per apply.

use deed_pg::PgError;
use tokio_postgres::Client;

use crate::desired::ContractView;
use crate::error::ContractError;

/// Every view's `not_null` columns, checked: what is wrong, each located.
pub async fn verify(client: &Client, views: &[ContractView]) -> Result<(), ContractError> {
    let mut wrong = Vec::new();
    for view in views.iter().filter(|v| !v.not_null.is_empty()) {
        let shown = view.view.quoted();
        let columns: Vec<String> = client
            .query(
                "SELECT attname::text FROM pg_catalog.pg_attribute \
                 WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
                &[&shown],
            )
            .await
            .map_err(|e| PgError::query(format!("reading the columns of {shown}"), e))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if columns.is_empty() {
            // Not created at this stage of the apply.
            continue;
        }
        let (present, missing): (Vec<_>, Vec<_>) =
            view.not_null.iter().partition(|c| columns.iter().any(|have| have == c.as_str()));
        for c in missing {
            wrong.push(format!(
                "{}: not_null names {c}, which {} ({shown}) does not have; its columns are {}",
                view.location,
                view.contract,
                columns.join(", ")
            ));
        }
        if present.is_empty() {
            continue;
        }
        let counts: Vec<String> = present
            .iter()
            .map(|c| format!("count(*) FILTER (WHERE {} IS NULL)", c.quoted()))
            .collect();
        let row = client
            .query_one(&format!("SELECT {} FROM {shown}", counts.join(", ")), &[])
            .await
            .map_err(|e| PgError::query(format!("counting NULLs in {shown}"), e))?;
        for (i, c) in present.iter().enumerate() {
            let nulls: i64 = row.get(i);
            if nulls > 0 {
                wrong.push(format!(
                    "{}: not_null states {c} is never NULL, but {} rows of {} ({shown}) have it NULL; \
                     fix the data, or take {c} out of not_null (consumers' generated models then treat it as optional)",
                    view.location, nulls, view.contract
                ));
            }
        }
    }
    if wrong.is_empty() { Ok(()) } else { Err(ContractError::Blocked(wrong)) }
}
