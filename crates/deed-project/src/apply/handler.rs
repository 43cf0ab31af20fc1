//! Running a handler: its statement once per event, in commit order, with
//! the envelope's fields as parameters.

use deed_events::Received;
use deed_sql::{Handler, HandlerParam};
use serde_json::Value as Json;
use tokio_postgres::{Statement, Transaction};

use crate::text_param::TextParam;

/// The handler's parameters for one event.
pub fn params(h: &Handler, e: &Received) -> Vec<TextParam> {
    h.params.iter().map(|p| TextParam(value(p, e))).collect()
}

fn value(p: &HandlerParam, e: &Received) -> Option<Json> {
    let s = |t: &str| Some(Json::String(t.to_string()));
    match p {
        HandlerParam::Key(c) => e.key.get(c).cloned(),
        HandlerParam::Payload(c) => e.payload.get(c).cloned(),
        HandlerParam::Envelope(f) => match *f {
            "op" => s(e.op.as_str()),
            "id" => s(&e.id),
            "type" => s(&e.kind),
            "contract" => e.contract.as_deref().and_then(s),
            "key" => s(&e.key_text()),
            "payload" => (!e.payload.is_null()).then(|| Json::String(e.payload.to_string())),
            "position" => s(&e.position),
            "lsn" => s(&e.lsn),
            "committed_at" => s(&e.committed_at),
            _ => None,
        },
    }
}

/// Runs the handler for each event, pipelined on the connection (sent
/// in order, one round trip for the batch).
pub async fn apply(
    tx: &Transaction<'_>,
    h: &Handler,
    stmt: &Statement,
    events: &[&Received],
) -> Result<(), tokio_postgres::Error> {
    // A TRUNCATE names no row: a handler's statement has nothing to run
    // for (it is counted as applied, and the position moves past it).
    let all: Vec<Vec<TextParam>> =
        events.iter().filter(|e| !e.is_truncate()).map(|e| params(h, e)).collect();
    let runs = all.iter().map(|p| {
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            p.iter().map(|x| x as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
        async move { tx.execute(stmt, &refs).await }
    });
    futures_util::future::try_join_all(runs).await?;
    Ok(())
}
