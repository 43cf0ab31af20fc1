//! Applying a batch of events exactly once: the effects, the dead letters
//! and the projection's new position commit in one transaction. Events at
//! or before the recorded position are skipped, so a redelivery, a
//! duplicate or an old event changes nothing.
//!
//! A batch first runs whole (set-based for tables, pipelined for
//! handlers). If an event in it fails, the batch runs again event by
//! event, each under a savepoint, and only the failing events become
//! dead letters.

pub mod handler;
pub mod table;

use deed_events::Received;
use deed_pg::Client;
use tokio_postgres::{Statement, Transaction};

use crate::deadletter::{self, Blocked};
use crate::error::{Failure, ProjectError, query};
use crate::incoming::Incoming;
use crate::spec::{ProjectionSpec, SpecKind};
use crate::store;
use table::TableStatements;

/// What applying one batch did.
#[derive(Debug, Default, Clone)]
pub struct Applied {
    pub applied: u64,
    pub skipped: u64,
    pub dead_letters: u64,
    /// The projection's position after the batch.
    pub position: String,
    pub last_committed_at: Option<String>,
}

pub struct Applier {
    pub spec: ProjectionSpec,
    table: Option<TableStatements>,
    handler: Option<Statement>,
}

enum Route<'a> {
    Apply(&'a Received),
    Dead(Failure),
    Wait(String),
}

fn waiting(behind: &str) -> Failure {
    Failure { sqlstate: None, message: format!("waiting behind dead letter {behind}") }
}

impl Applier {
    pub fn new(spec: ProjectionSpec) -> Applier {
        let table = spec.table().map(TableStatements::new);
        Applier { spec, table, handler: None }
    }

    /// Prepares the handler on the consumer's connection; a handler that
    /// names a missing table or column fails here, before any event.
    pub async fn prepare(&mut self, client: &Client) -> Result<(), ProjectError> {
        if let SpecKind::Handler { handler, .. } = &self.spec.kind {
            let stmt = client.prepare(&handler.sql).await.map_err(|e| {
                ProjectError::Setup(format!(
                    "{}: handler of projection {} does not run against the consumer's database: {}",
                    self.spec.target_location,
                    self.spec.name,
                    Failure::from_db(&e).message
                ))
            })?;
            self.handler = Some(stmt);
        }
        Ok(())
    }

    async fn run(
        &self,
        tx: &Transaction<'_>,
        events: &[&Received],
    ) -> Result<(), tokio_postgres::Error> {
        match (&self.table, &self.spec.kind) {
            (Some(t), _) => t.apply(tx, events).await,
            (None, SpecKind::Handler { handler, .. }) => {
                let stmt = self.handler.as_ref().expect("prepared before use");
                handler::apply(tx, handler, stmt, events).await
            }
            (None, SpecKind::Table(_)) => {
                unreachable!("table statements are built with the applier")
            }
        }
    }

    /// One event under a savepoint: `Ok(Err(failure))` when the event is
    /// at fault (then undone), `Err` when the connection is.
    async fn attempt(
        &self,
        tx: &mut Transaction<'_>,
        ev: &Received,
    ) -> Result<Result<(), Failure>, ProjectError> {
        let sp = tx.savepoint("deed_event").await.map_err(query("setting a savepoint"))?;
        match self.run(&sp, &[ev]).await {
            Ok(()) => {
                sp.commit().await.map_err(query("releasing a savepoint"))?;
                Ok(Ok(()))
            }
            Err(err) if Failure::is_event_error(&err) => {
                sp.rollback().await.map_err(query("rolling back a savepoint"))?;
                Ok(Err(Failure::from_db(&err)))
            }
            Err(err) => Err(query("applying an event")(err)),
        }
    }

    /// Applies the events after `position` (the batch is in commit order,
    /// copies of events sent again aside), moving the projection's
    /// position past them.
    pub async fn apply(
        &self,
        client: &mut Client,
        position: &str,
        batch: &[Incoming],
    ) -> Result<Applied, ProjectError> {
        // A copy of an event sent again, or one already applied, is
        // skipped; an unreadable event becomes a dead letter.
        let fresh = crate::incoming::unapplied(position, batch);
        let skipped = (batch.len() - fresh.len()) as u64;
        if fresh.is_empty() {
            return Ok(Applied { skipped, position: position.to_string(), ..Applied::default() });
        }
        let to = fresh
            .iter()
            .rev()
            .map(|e| e.position.as_str())
            .find(|p| *p > position)
            .unwrap_or(position)
            .to_string();
        let committed_at =
            fresh.iter().rev().find_map(|e| e.event.as_ref().ok()).map(|e| e.committed_at.clone());
        let mut out = match self
            .whole(client, position, &to, &fresh, committed_at.as_deref())
            .await?
        {
            Some(out) => out,
            None => self.one_by_one(client, position, &to, &fresh, committed_at.as_deref()).await?,
        };
        out.skipped = skipped;
        out.position = to;
        out.last_committed_at = committed_at;
        Ok(out)
    }

    /// Where an event goes, before anything runs. An event that cannot be
    /// read blocks the later events of its key.
    fn route<'a>(&self, e: &'a Incoming, blocked: &mut Blocked) -> Route<'a> {
        let route = match (&e.event, blocked.get(&e.key_text())) {
            (_, Some(behind)) => Route::Wait(behind.clone()),
            (Err(why), None) => Route::Dead(Failure { sqlstate: None, message: why.clone() }),
            (Ok(ev), None) if ev.kind != self.spec.event => Route::Dead(Failure {
                sqlstate: None,
                message: format!(
                    "event of type {} delivered to a projection of {}",
                    ev.kind, self.spec.event
                ),
            }),
            (Ok(ev), None) => Route::Apply(ev),
        };
        if matches!(route, Route::Dead(_)) {
            blocked.insert(e.key_text(), e.id.clone());
        }
        route
    }

    /// Locks the projection's row for the transaction (a retry of its
    /// dead letters waits, and waits for it) and reads which keys are
    /// blocked now.
    async fn lock(&self, tx: &Transaction<'_>, from: &str) -> Result<Blocked, ProjectError> {
        store::lock(tx, &self.spec, from).await?;
        deadletter::blocked(tx, &self.spec).await
    }

    /// Records an event that is not applied.
    async fn not_applied(
        &self,
        tx: &Transaction<'_>,
        e: &Incoming,
        failure: &Failure,
        behind: Option<&str>,
    ) -> Result<(), ProjectError> {
        if behind.is_none() {
            tracing::warn!(projection = %self.spec.name, event = %e.id, error = %failure.message, "dead letter");
        }
        deadletter::record(tx, &self.spec, e, failure, behind).await
    }

    /// The fast path: the whole batch in one statement or pipeline.
    /// `None` when an event failed, for [`Self::one_by_one`] to sort out.
    async fn whole(
        &self,
        client: &mut Client,
        from: &str,
        to: &str,
        fresh: &[&Incoming],
        committed_at: Option<&str>,
    ) -> Result<Option<Applied>, ProjectError> {
        let tx = client.transaction().await.map_err(query("starting a projection transaction"))?;
        let mut blocked = self.lock(&tx, from).await?;
        let routes: Vec<(&Incoming, Route)> =
            fresh.iter().map(|e| (*e, self.route(e, &mut blocked))).collect();
        let events: Vec<&Received> = routes
            .iter()
            .filter_map(|(_, r)| match r {
                Route::Apply(e) => Some(*e),
                _ => None,
            })
            .collect();
        match self.run(&tx, &events).await {
            Ok(()) => {}
            Err(e) if Failure::is_event_error(&e) => return Ok(None),
            Err(e) => return Err(query("applying events")(e)),
        }
        let mut dead = 0;
        for (e, r) in &routes {
            match r {
                Route::Apply(_) => continue,
                Route::Dead(f) => self.not_applied(&tx, e, f, None).await?,
                Route::Wait(behind) => {
                    self.not_applied(&tx, e, &waiting(behind), Some(behind)).await?
                }
            }
            dead += 1;
        }
        store::advance(&tx, &self.spec, from, to, events.len() as i64, committed_at).await?;
        tx.commit().await.map_err(query("committing a projection transaction"))?;
        Ok(Some(Applied { applied: events.len() as u64, dead_letters: dead, ..Applied::default() }))
    }

    /// The careful path: each event under a savepoint; the ones that fail,
    /// and the later ones of their keys, become dead letters.
    async fn one_by_one(
        &self,
        client: &mut Client,
        from: &str,
        to: &str,
        fresh: &[&Incoming],
        committed_at: Option<&str>,
    ) -> Result<Applied, ProjectError> {
        let mut out = Applied::default();
        let mut tx =
            client.transaction().await.map_err(query("starting a projection transaction"))?;
        let mut local = self.lock(&tx, from).await?;
        for e in fresh {
            let failure = match self.route(e, &mut local) {
                Route::Wait(behind) => {
                    self.not_applied(&tx, e, &waiting(&behind), Some(&behind)).await?;
                    out.dead_letters += 1;
                    continue;
                }
                Route::Dead(f) => f,
                Route::Apply(ev) => match self.attempt(&mut tx, ev).await? {
                    Ok(()) => {
                        out.applied += 1;
                        continue;
                    }
                    Err(f) => {
                        local.insert(e.key_text(), e.id.clone());
                        f
                    }
                },
            };
            self.not_applied(&tx, e, &failure, None).await?;
            out.dead_letters += 1;
        }
        store::advance(&tx, &self.spec, from, to, out.applied as i64, committed_at).await?;
        tx.commit().await.map_err(query("committing a projection transaction"))?;
        Ok(out)
    }

    /// Re-applies the dead letters in key and position order; a key stops
    /// at its first event that still fails.
    pub async fn retry_dead(&self, client: &mut Client) -> Result<(u64, u64), ProjectError> {
        let (mut applied, mut left) = (0u64, 0u64);
        let mut tx = client.transaction().await.map_err(query("starting a retry transaction"))?;
        store::lock_any(&tx, &self.spec).await?;
        let letters = deadletter::list(&tx, &self.spec).await?;
        let mut stuck: Option<String> = None;
        for d in &letters {
            if stuck.as_deref() == Some(d.key.as_str()) {
                left += 1;
                continue;
            }
            let result = match &d.incoming.event {
                Err(why) => Err(Failure { sqlstate: None, message: why.clone() }),
                Ok(ev) => self.attempt(&mut tx, ev).await?,
            };
            match result {
                Ok(()) => {
                    deadletter::remove(&tx, &self.spec, &d.incoming.id).await?;
                    applied += 1;
                }
                Err(f) => {
                    deadletter::failed_again(&tx, &self.spec, &d.incoming.id, &f).await?;
                    stuck = Some(d.key.clone());
                    left += 1;
                }
            }
        }
        tx.commit().await.map_err(query("committing the retry"))?;
        Ok((applied, left))
    }
}
