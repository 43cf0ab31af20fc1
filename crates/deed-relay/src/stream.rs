//! The relay's source: the slot read over the streaming replication
//! protocol (`START_REPLICATION … LOGICAL`, pgoutput). The server decodes
//! continuously and pushes each transaction as it commits, while the relay
//! turns the previous ones into events and a [`Pipeline`] delivers those
//! before them: three stages at once. A position is reported as flushed
//! only after the sink has every event before it, so a crash resumes from
//! the last delivered transaction.
//!
//! A bounded run (`--until-idle`) streams the same way, up to the WAL
//! position it was started at: it ends once a transaction ending there has
//! been delivered, or once the server says (in a keepalive) that it has
//! looked that far with no transaction open.

use std::time::{Duration, Instant};

use deed_pg::replication::{ReplicationEvent, ReplicationStream, StreamOptions};

use crate::envelope::Envelope;
use crate::error::RelayError;
use crate::pgoutput::{Message, decode};
use crate::pipeline::{Batch, Done, Pipeline};
use crate::sink::{Delivered, Sink};
use crate::spec::CaptureSpec;
use crate::transform::{Commit, Transformer};

fn stream_error(e: impl std::fmt::Display) -> RelayError {
    RelayError::Sink(format!("the replication stream failed: {e}"))
}

/// One delivery: how many events, what the sink said, and the last whole
/// transaction now confirmed.
#[derive(Debug, Default)]
pub struct Flushed {
    pub events: usize,
    pub delivered: Delivered,
    pub last: Option<Commit>,
    /// Transactions that produced events, confirmed with this delivery.
    pub transactions: u64,
    /// The service's writes moved away from this database (`deed split`):
    /// everything before the move is delivered and confirmed.
    pub moved: bool,
    /// A bounded run has delivered everything up to its end.
    pub finished: bool,
    /// The commit time of the first event delivered (microseconds since
    /// 2000-01-01): commit → ack is measured from it.
    pub oldest_commit_ts: Option<i64>,
}

pub struct Stream<'s> {
    client: ReplicationStream,
    transformer: Transformer<'s>,
    pipeline: Pipeline,
    buffer: Vec<Envelope>,
    /// The last transaction whose events are all in `buffer` or handed over.
    complete: Option<Commit>,
    /// Transactions with events completed since the last hand-over.
    transactions: u64,
    in_txn: bool,
    /// A keepalive's position, safe to confirm once everything before it is.
    idle_at: Option<u64>,
    /// When the oldest event in `buffer` arrived, and when it committed.
    oldest: Option<Instant>,
    oldest_commit_ts: Option<i64>,
    /// The commit time of the transaction being read.
    txn_ts: i64,
    /// A bounded run's end.
    target: Option<u64>,
    /// Whether the stream has reached `target`, or read the move marker:
    /// nothing more is read, what is in hand is delivered.
    draining: bool,
    moved: bool,
}

/// How long an event may wait in the buffer for company: under a steady
/// stream the buffer would otherwise only leave when full.
const LINGER: Duration = Duration::from_millis(5);

/// Batches in flight at once (sent, their acks not yet back).
const WINDOW: usize = 4;

impl<'s> Stream<'s> {
    /// Starts streaming from the slot's confirmed position, delivering into
    /// `sink`; with `target`, only up to that WAL position.
    pub async fn start(
        url: &str,
        spec: &'s CaptureSpec,
        sink: Sink,
        target: Option<u64>,
    ) -> Result<Stream<'s>, RelayError> {
        let endpoint = deed_pg::endpoint(url)?;
        let options = StreamOptions {
            slot: spec.slot.clone(),
            publication: spec.publication.clone(),
            application_name: format!("deed relay {}", spec.service),
            status_interval: Duration::from_secs(1),
        };
        let client = ReplicationStream::start(&endpoint, &options)
            .await
            .map_err(|e| {
                RelayError::Sink(format!(
                    "cannot start replication from slot {} as {} ({e}); the role needs the REPLICATION attribute",
                    spec.slot, endpoint.user
                ))
            })?;
        Ok(Stream {
            client,
            transformer: Transformer::new(spec),
            pipeline: Pipeline::start(sink, WINDOW),
            buffer: Vec::new(),
            complete: None,
            transactions: 0,
            in_txn: false,
            idle_at: None,
            oldest: None,
            oldest_commit_ts: None,
            txn_ts: 0,
            target,
            draining: false,
            moved: false,
        })
    }

    /// Something to hand over: events, a whole transaction to confirm, or
    /// a keepalive's position (only between transactions: inside one it
    /// waits for the commit, instead of being handed over again and again).
    fn has_work(&self) -> bool {
        !self.buffer.is_empty()
            || self.complete.is_some()
            || (self.idle_at.is_some() && !self.in_txn)
    }

    /// Reads and hands over batches until one has been delivered (its
    /// position confirmed), and returns it; `None` when nothing happened
    /// within `idle`.
    pub async fn next(
        &mut self,
        chunk: usize,
        idle: Duration,
    ) -> Result<Option<Flushed>, RelayError> {
        let started = Instant::now();
        loop {
            if let Some(done) = self.pipeline.try_done()? {
                return Ok(Some(self.confirm(done)));
            }
            if self.draining && self.pipeline.in_flight() == 0 {
                if self.has_work() {
                    self.hand_over().await?;
                    continue;
                }
                if let Some(t) = self.target.filter(|_| !self.moved) {
                    // Everything up to the end is delivered: the WAL up to
                    // it (other tables', say) is done with too.
                    self.client.confirm(t);
                }
                return Ok(Some(Flushed {
                    finished: !self.moved,
                    moved: self.moved,
                    ..Flushed::default()
                }));
            }
            if self.oldest.is_some_and(|t| t.elapsed() >= LINGER) || self.buffer.len() >= chunk {
                self.hand_over().await?;
                continue;
            }
            // With work in hand, wait only briefly for more: a pause in the
            // stream is the moment to deliver.
            let wait = if self.has_work() {
                Duration::from_millis(1)
            } else if self.target.is_some() {
                Duration::from_millis(20)
            } else {
                idle.saturating_sub(started.elapsed())
            };
            let in_flight = self.pipeline.in_flight() > 0;
            let reading = !self.draining;
            tokio::select! {
                done = self.pipeline.done(), if in_flight => return Ok(Some(self.confirm(done?))),
                event = self.client.recv(), if reading => {
                    let event = event.map_err(stream_error)?.ok_or_else(|| {
                        RelayError::Sink("the server ended the replication stream".into())
                    })?;
                    self.take(event, chunk)?;
                }
                _ = tokio::time::sleep(wait) => {
                    if self.has_work() {
                        self.hand_over().await?;
                    } else if !in_flight {
                        if self.target.is_some() {
                            // Ask how far the server has looked.
                            self.client.request_keepalive();
                        }
                        if started.elapsed() >= idle {
                            return Ok(None);
                        }
                    }
                }
            }
        }
    }

    /// Takes one event and every one already waiting behind it, up to a
    /// full buffer.
    fn take(&mut self, first: ReplicationEvent, chunk: usize) -> Result<(), RelayError> {
        let mut event = Some(first);
        while let Some(e) = event {
            self.one(e)?;
            if self.draining || self.buffer.len() >= chunk {
                return Ok(());
            }
            event = self.client.try_recv().map_err(stream_error)?;
        }
        Ok(())
    }

    fn one(&mut self, event: ReplicationEvent) -> Result<(), RelayError> {
        let data = match event {
            ReplicationEvent::XLogData { data, .. } => data,
            ReplicationEvent::KeepAlive { wal_end } => {
                // Everything before a keepalive has been sent; with no
                // transaction open, its position may be confirmed once the
                // events before it are, so unrelated WAL is released.
                if !self.in_txn && wal_end > 0 {
                    self.idle_at = Some(wal_end);
                    if self.target.is_some_and(|t| wal_end >= t) {
                        self.draining = true;
                    }
                }
                return Ok(());
            }
        };
        let message = decode(&data)?;
        if let Message::Begin { commit_ts, .. } = message {
            self.in_txn = true;
            self.txn_ts = commit_ts;
        }
        let before = self.buffer.len();
        let commit = self.transformer.feed(message, &mut self.buffer)?;
        if before == 0 && !self.buffer.is_empty() {
            self.oldest = Some(Instant::now());
            self.oldest_commit_ts = Some(self.txn_ts);
        }
        if let Some(commit) = commit {
            self.in_txn = false;
            self.transactions += u64::from(commit.events > 0);
            self.complete = Some(commit);
            if self.transformer.moved {
                self.moved = true;
                self.draining = true;
            }
            if self.target.is_some_and(|t| commit.end_lsn >= t) {
                self.draining = true;
            }
        }
        Ok(())
    }

    /// Hands the buffer over to the pipeline, with what it makes safe to
    /// confirm.
    async fn hand_over(&mut self) -> Result<(), RelayError> {
        self.oldest = None;
        let batch = Batch {
            events: std::mem::take(&mut self.buffer),
            commit: self.complete.take(),
            transactions: std::mem::take(&mut self.transactions),
            idle_at: if self.in_txn { None } else { self.idle_at.take() },
            oldest_commit_ts: self.oldest_commit_ts.take(),
        };
        self.pipeline.submit(batch).await
    }

    /// A batch is stored: confirm what it made safe.
    fn confirm(&mut self, done: Done) -> Flushed {
        if let Some(commit) = done.commit {
            self.client.confirm(commit.end_lsn);
        }
        if let Some(at) = done.idle_at {
            self.client.confirm(at);
        }
        Flushed {
            events: done.events,
            delivered: done.delivered,
            last: done.commit,
            transactions: done.transactions,
            moved: false,
            finished: false,
            oldest_commit_ts: done.oldest_commit_ts,
        }
    }

    /// Reports the last confirmed position and closes the stream.
    pub async fn stop(self) {
        if !self.client.stop().await {
            tracing::warn!(
                "the replication stream did not close within 5 s; its connection was dropped"
            );
        }
    }
}
