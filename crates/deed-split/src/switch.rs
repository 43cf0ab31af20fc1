//! The fence: moving the service's writes from one side to the other.
//! Cutover makes the target live, rollback the source; both are the same
//! steps with the sides swapped, and both work from what the databases
//! show (who may write, which subscription exists), not from a record of
//! steps, so a run killed half-way is finished by running it again, or
//! undone by running the other way.
//!
//! Making X live while Y is:
//! 1. on Y, in one transaction: lock the tables (waiting for writes in
//!    flight), revoke the owner's writes, take the tables out of Y's
//!    capture publication, and write a fence row;
//! 2. wait until X has applied the fence row, then drop the Y → X
//!    subscription;
//! 3. create the X → Y subscription, without a copy, its slot starting now;
//! 4. create X's capture slot if the service captures and X has none;
//! 5. on X, in one transaction: sequences past Y's, the owner's writes
//!    granted, the tables in X's capture publication, the capture epoch.

use std::time::{Duration, Instant};

use deed_contracts::owner_role;
use deed_events::SplitDirection;
use deed_ident::QualifiedName;
use deed_pg::Client;
use serde::Serialize;

use crate::error::{SplitError, query};
use crate::inspect::Inspected;
use crate::replicate;
use crate::schema::{SEQUENCE_WRITES, TABLE_WRITES};

/// One side of the split.
pub struct Side<'a> {
    pub client: &'a mut Client,
    /// How the other side's server reaches this one (a libpq URL).
    pub conninfo: &'a str,
    /// `source` or `target`.
    pub label: &'static str,
}

/// What the service captures: the tables its state events come from.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    pub tables: Vec<QualifiedName>,
    /// It also emits domain events (`deed.emit`).
    pub domain: bool,
}

impl Capture {
    /// Whether the service captures anything: its capture moves with it.
    pub fn any(&self) -> bool {
        !self.tables.is_empty() || self.domain
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Switched {
    /// From the first lock to the last commit (and PgBouncer's resume).
    pub fence_ms: f64,
    /// Each step and how long it took.
    pub steps: Vec<(String, f64)>,
    /// Where the service's changes on the side losing the writes end: the
    /// relay's move marker where the service is captured (its capture
    /// slot, confirmed past it, has delivered every one), else the WAL
    /// position after the fence's commit.
    pub fence_lsn: String,
    /// Nothing was left to do.
    pub already: bool,
}

/// Which way replication runs when `live` takes the writes.
fn direction_into(label: &str) -> SplitDirection {
    if label == "target" { SplitDirection::Forward } else { SplitDirection::Back }
}

pub async fn writable(
    client: &Client,
    service: &str,
    table: &QualifiedName,
) -> Result<bool, SplitError> {
    Ok(client
        .query_one(
            // A table not there (yet) is not writable.
            "SELECT CASE WHEN to_regclass($2) IS NULL THEN false
                         ELSE has_table_privilege($1, $2, 'INSERT') END",
            &[&owner_role(service).as_str(), &table.quoted()],
        )
        .await
        .map_err(query("reading the owner's privileges"))?
        .get(0))
}

struct Clock {
    started: Instant,
    last: Instant,
    steps: Vec<(String, f64)>,
}

impl Clock {
    fn new() -> Clock {
        Clock { started: Instant::now(), last: Instant::now(), steps: Vec::new() }
    }
    fn step(&mut self, what: &str) {
        let now = Instant::now();
        self.steps.push((what.to_string(), (now - self.last).as_secs_f64() * 1000.0));
        self.last = now;
    }
}

/// Makes `x` take the service's writes from `y`.
pub async fn make_live(
    x: &mut Side<'_>,
    y: &mut Side<'_>,
    service: &str,
    found: &Inspected,
    capture: &Capture,
    epoch: i32,
    timeout: Duration,
) -> Result<Switched, SplitError> {
    let first = &found.tables[0].name;
    let into_x = direction_into(x.label);
    let into_y = direction_into(y.label);
    let y_writable = writable(y.client, service, first).await?;
    let x_writable = writable(x.client, service, first).await?;
    let sub_into_x = replicate::subscription_exists(x.client, service, into_x).await?;
    // Nothing to move: X has the writes and nothing replicates into it.
    if x_writable && !y_writable && !sub_into_x {
        return Ok(Switched {
            fence_ms: 0.0,
            steps: Vec::new(),
            fence_lsn: String::new(),
            already: true,
        });
    }
    if x_writable && y_writable {
        return Err(SplitError::Setup(format!(
            "the service's owner may write on both sides: fix the grants by hand (REVOKE {TABLE_WRITES} on the side that is not live) before going on"
        )));
    }
    if y_writable && !sub_into_x {
        return Err(SplitError::NotNow(format!(
            "nothing replicates the {} into the {}: copy first (`deed split {service} --copy`)",
            y.label, x.label
        )));
    }
    let mut clock = Clock::new();
    // A fence row only where it replicates from: written on a side that
    // is itself a subscriber, it would collide with one arriving later.
    let (fence, lsn) =
        close(y.client, service, found, capture, y_writable, sub_into_x, timeout).await?;
    clock.step(&format!("{}: writes stopped, fence written", y.label));
    crate::crash::point("switch:closed");
    if let Some(fence) = fence.filter(|_| sub_into_x) {
        replicate::wait_fence(x.client, service, fence, timeout).await?;
        clock.step(&format!("{}: fence applied", x.label));
        crate::crash::point("switch:applied");
        replicate::unsubscribe(x.client, y.client, service, into_x).await?;
        clock.step(&format!("{}: {} subscription dropped", x.label, y.label));
        crate::crash::point("switch:unsubscribed");
    }
    let next = sequences(y.client, found).await?;
    replicate::subscribe(y.client, x.client, x.conninfo, service, into_y, false, timeout).await?;
    clock.step(&format!("{}: subscribed to {}", y.label, x.label));
    crate::crash::point("switch:subscribed");
    if capture.any() {
        ensure_capture_slot(x.client, x.label, service, timeout).await?;
        clock.step(&format!("{}: capture slot ready", x.label));
    }
    open(x.client, service, found, capture, &next, epoch).await?;
    crate::crash::point("switch:opened");
    clock.step(&format!("{}: sequences set, writes granted", x.label));
    Ok(Switched {
        fence_ms: clock.started.elapsed().as_secs_f64() * 1000.0,
        steps: clock.steps,
        fence_lsn: deed_events::lsn_text(lsn),
        already: false,
    })
}

fn table_list(found: &Inspected) -> String {
    found.tables.iter().map(|t| t.name.quoted()).collect::<Vec<_>>().join(", ")
}

fn own_sequences(found: &Inspected) -> Vec<&QualifiedName> {
    found.sequences.iter().filter(|s| s.identity_of.is_none()).map(|s| &s.name).collect()
}

/// Step 1: the side losing the writes stops taking them.
async fn close(
    y: &mut Client,
    service: &str,
    found: &Inspected,
    capture: &Capture,
    writable: bool,
    publishes: bool,
    timeout: Duration,
) -> Result<(Option<i64>, u64), SplitError> {
    let owner = owner_role(service);
    let mut marker = None;
    let tx = y.transaction().await.map_err(query("starting the fence"))?;
    // The fence row's statement makes the commit flush (FENCE_SQL).
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&deed_contracts::ADVISORY_LOCK_KEY])
        .await
        .map_err(query("taking deed's lock"))?;
    if writable {
        // A short deadlock_timeout makes the server cancel an autovacuum
        // holding a table after 20 ms instead of 1 s.
        tx.batch_execute(&format!(
            "SET LOCAL deadlock_timeout = '20ms'; SET LOCAL lock_timeout = '{}ms'; LOCK TABLE {} IN EXCLUSIVE MODE",
            timeout.as_millis(),
            table_list(found)
        ))
        .await
        .map_err(query("locking the tables (a transaction in flight kept them longer than the timeout; nothing was changed)"))?;
        tx.batch_execute(&format!(
            "REVOKE {TABLE_WRITES} ON {} FROM {}",
            table_list(found),
            owner.quoted()
        ))
        .await
        .map_err(query("revoking the owner's writes"))?;
        for s in own_sequences(found) {
            tx.batch_execute(&format!(
                "REVOKE {SEQUENCE_WRITES} ON SEQUENCE {} FROM {}",
                s.quoted(),
                owner.quoted()
            ))
            .await
            .map_err(query("revoking the owner's sequences"))?;
        }
        capture_tables(&tx, service, capture, false).await?;
        if capture.any() {
            // A relay reading this side stops here: the rest of the
            // service's events come from the other side. Every write of
            // the service committed before the lock above, so before this
            // record: a slot confirmed past it has delivered them all. (The
            // WAL position after the commit may be further on, past other
            // databases' writes, where a relay that stops at the marker
            // never confirms.)
            let at: String = tx
                .query_one(
                    "SELECT pg_logical_emit_message(true, $1, '')::text",
                    &[&deed_events::moved_prefix(service)],
                )
                .await
                .map_err(query("marking the move for the relay"))?
                .get(0);
            marker = Some(
                deed_events::parse_lsn(&at)
                    .ok_or_else(|| SplitError::Setup(format!("unexpected LSN {at}")))?,
            );
        }
    }
    let fence = if publishes {
        let row = tx
            .query_one(replicate::FENCE_SQL, &[&service])
            .await
            .map_err(query("writing the fence"))?;
        Some(row.get(0))
    } else {
        None
    };
    tx.commit().await.map_err(query("committing the fence"))?;
    let lsn = match marker {
        Some(at) => at,
        None => replicate::current_lsn(y).await?,
    };
    Ok((fence, lsn))
}

/// Adds the tables to (or takes them out of) this side's capture
/// publication, when the service captures and the publication exists.
async fn capture_tables(
    tx: &tokio_postgres::Transaction<'_>,
    service: &str,
    capture: &Capture,
    add: bool,
) -> Result<(), SplitError> {
    if capture.tables.is_empty() {
        return Ok(());
    }
    let publication = deed_events::publication_name(service);
    let present: Vec<(String, String)> = tx
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1",
            &[&publication.as_str()],
        )
        .await
        .map_err(query("reading the capture publication"))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let change: Vec<String> = capture
        .tables
        .iter()
        .filter(|t| {
            let here = present.iter().any(|(s, n)| s == t.schema.as_str() && n == t.name.as_str());
            here != add
        })
        .map(QualifiedName::quoted)
        .collect();
    if change.is_empty() {
        return Ok(());
    }
    let verb = if add { "ADD" } else { "DROP" };
    tx.batch_execute(&format!(
        "ALTER PUBLICATION {} {verb} TABLE {}",
        publication.quoted(),
        change.join(", ")
    ))
    .await
    .map_err(query("moving capture"))
}

/// The value each sequence would give next.
async fn sequences(y: &Client, found: &Inspected) -> Result<Vec<(String, i64)>, SplitError> {
    let mut out = Vec::new();
    for s in &found.sequences {
        let name = sequence_of(y, s).await?;
        let next: i64 = y
            .query_one(
                &format!(
                    "SELECT CASE WHEN is_called THEN last_value + (SELECT seqincrement FROM pg_sequence WHERE seqrelid = {lit}::regclass) ELSE last_value END FROM {name}",
                    lit = deed_ident::quote_literal(&name)
                ),
                &[],
            )
            .await
            .map_err(query("reading a sequence"))?
            .get(0);
        out.push((name, next));
    }
    Ok(out)
}

/// An identity column's sequence may have another name on each side.
async fn sequence_of(
    client: &impl tokio_postgres::GenericClient,
    s: &crate::inspect::Sequence,
) -> Result<String, SplitError> {
    let Some((table, column)) = &s.identity_of else { return Ok(s.name.quoted()) };
    let name: Option<String> = client
        .query_one("SELECT pg_get_serial_sequence($1, $2)", &[&table.quoted(), &column.as_str()])
        .await
        .map_err(query("finding an identity sequence"))?
        .get(0);
    name.ok_or_else(|| {
        SplitError::Setup(format!("{table}.{column} has no identity sequence on one side"))
    })
}

/// Step 5: the side gaining the writes takes them.
async fn open(
    x: &mut Client,
    service: &str,
    found: &Inspected,
    capture: &Capture,
    next: &[(String, i64)],
    epoch: i32,
) -> Result<(), SplitError> {
    let owner = owner_role(service);
    let tx = x.transaction().await.map_err(query("starting the switch"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&deed_contracts::ADVISORY_LOCK_KEY])
        .await
        .map_err(query("taking deed's lock"))?;
    for (s, (_, value)) in found.sequences.iter().zip(next) {
        let name = sequence_of(&tx, s).await?;
        // Never backwards: a rollback after a partial cutover must not
        // hand out a value twice.
        tx.batch_execute(&format!(
            "SELECT setval({lit}, greatest({value}, (SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM {name})), false)",
            lit = deed_ident::quote_literal(&name)
        ))
        .await
        .map_err(query("setting a sequence"))?;
    }
    tx.batch_execute(&format!(
        "GRANT {TABLE_WRITES} ON {} TO {}",
        table_list(found),
        owner.quoted()
    ))
    .await
    .map_err(query("granting the owner's writes"))?;
    for s in own_sequences(found) {
        tx.batch_execute(&format!(
            "GRANT {SEQUENCE_WRITES} ON SEQUENCE {} TO {}",
            s.quoted(),
            owner.quoted()
        ))
        .await
        .map_err(query("granting the owner's sequences"))?;
    }
    capture_tables(&tx, service, capture, true).await?;
    if capture.any() {
        deed_state::ensure_in(&tx, &[deed_state::Table::CaptureEpochs]).await?;
        tx.execute(
            "INSERT INTO deed.capture_epochs (service, epoch, since_lsn)
             VALUES ($1, $2, pg_current_wal_insert_lsn()::text)
             ON CONFLICT (service, epoch) DO NOTHING",
            &[&service, &epoch],
        )
        .await
        .map_err(query("recording the capture epoch"))?;
        tx.execute(
            "SELECT pg_logical_emit_message(true, $1, $2)",
            &[&deed_events::epoch_prefix(service), &epoch.to_string()],
        )
        .await
        .map_err(query("announcing the capture epoch"))?;
    }
    tx.commit().await.map_err(query("committing the switch"))
}

/// The service's capture slot on this side, created now if missing: it
/// must exist before the first write it should capture.
async fn ensure_capture_slot(
    x: &Client,
    side: &str,
    service: &str,
    timeout: Duration,
) -> Result<(), SplitError> {
    let slot = replicate::capture_slot(x, service).await?;
    crate::slot::create(x, &slot, side, timeout).await
}
