//! Reading `deed.inbox`, the bus that is a table: what `deed doctor`,
//! `deed compare` and the demo ask of it. (The relay's PostgreSQL sink writes it,
//! `deed project` and `deed tail` stream it, each in its own crate.)

use deed_pg::PgError;
use tokio_postgres::GenericClient;

/// Whether any event of `service` was delivered here; `false` where no
/// relay delivered anything yet (the first run creates the inbox).
pub async fn has_events_of(client: &impl GenericClient, service: &str) -> Result<bool, PgError> {
    if !crate::exists(client, crate::Table::Inbox).await? {
        return Ok(false);
    }
    // Event types are `<service>.<event>`; the service's name is matched
    // literally, `_` and `%` included.
    let pattern =
        format!("{}.%", service.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    Ok(client
        .query_one("SELECT EXISTS (SELECT FROM deed.inbox WHERE type LIKE $1)", &[&pattern])
        .await
        .map_err(|e| PgError::query("reading deed.inbox", e))?
        .get(0))
}

/// Whether an event of type `event` was delivered with a position after
/// `after` and up to `upto` (`after < position <= upto`); `None` where
/// there is no inbox, so nothing can be told.
pub async fn has_between(
    client: &impl GenericClient,
    event: &str,
    after: &str,
    upto: &str,
) -> Result<Option<bool>, PgError> {
    if !crate::exists(client, crate::Table::Inbox).await? {
        return Ok(None);
    }
    Ok(Some(
        client
            .query_one(
                "SELECT EXISTS (SELECT FROM deed.inbox WHERE type = $1 AND position > $2 AND position <= $3)",
                &[&event, &after, &upto],
            )
            .await
            .map_err(|e| PgError::query("reading deed.inbox", e))?
            .get(0),
    ))
}

/// How many events the inbox holds; none where there is no inbox.
pub async fn count(client: &impl GenericClient) -> Result<i64, PgError> {
    if !crate::exists(client, crate::Table::Inbox).await? {
        return Ok(0);
    }
    Ok(client
        .query_one("SELECT count(*) FROM deed.inbox", &[])
        .await
        .map_err(|e| PgError::query("counting deed.inbox", e))?
        .get(0))
}
