//! Emitting a domain event from Rust, inside the caller's transaction.

use serde_json::Value as Json;
use tokio_postgres::GenericClient;

/// Calls `deed.emit(event, key, payload)` on `client`, which may be a
/// transaction: the event commits or rolls back with it. `event` is
/// `<service>.<name>` as declared in `deed.toml`; the session's role must
/// be one of that service's logins. Returns the message's WAL position.
pub async fn emit<C: GenericClient>(
    client: &C,
    event: &str,
    key: &str,
    payload: &Json,
) -> Result<String, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT deed.emit($1, $2, $3::text::jsonb)::text",
            &[&event, &key, &payload.to_string()],
        )
        .await?;
    Ok(row.get(0))
}
