//! The daemon's source: the slot read over the streaming replication
//! protocol (`START_REPLICATION … LOGICAL`, pgoutput). The server decodes
//! once, continuously, and pushes each transaction as it commits; the
//! relay reports a position as flushed only after the sink has every event
//! before it, so a crash resumes from the last delivered transaction.
//!
//! (The SQL functions re-decode the WAL from the slot's restart point on
//! every call; `--until-idle` still uses them, because a bounded run needs
//! to know where to stop.)

use std::time::{Duration, Instant};

use deed_pg::replication::{ReplicationEvent, ReplicationStream, StreamOptions};

use crate::envelope::Envelope;
use crate::error::RelayError;
use crate::pgoutput::{Message, decode};
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
}

pub struct Stream<'s> {
    client: ReplicationStream,
    transformer: Transformer<'s>,
    buffer: Vec<Envelope>,
    /// The last transaction whose events are all in `buffer` or delivered.
    complete: Option<Commit>,
    /// Transactions with events completed since the last flush.
    transactions: u64,
    in_txn: bool,
    /// A keepalive's position, safe to confirm once the buffer is empty.
    idle_at: Option<u64>,
    /// When the oldest event in `buffer` arrived.
    oldest: Option<Instant>,
}

/// How long an event may wait in the buffer for company: under a steady
/// stream the buffer would otherwise only leave when full.
const LINGER: Duration = Duration::from_millis(5);

impl<'s> Stream<'s> {
    pub async fn start(url: &str, spec: &'s CaptureSpec) -> Result<Stream<'s>, RelayError> {
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
            buffer: Vec::new(),
            complete: None,
            transactions: 0,
            in_txn: false,
            idle_at: None,
            oldest: None,
        })
    }

    fn has_work(&self) -> bool {
        !self.buffer.is_empty() || self.complete.is_some() || self.idle_at.is_some()
    }

    /// Reads until `chunk` events are buffered or the stream pauses, then
    /// delivers them and confirms what is whole. Returns `None` when there
    /// was nothing to do within `idle`.
    pub async fn next(
        &mut self,
        sink: &mut Sink,
        chunk: usize,
        idle: Duration,
    ) -> Result<Option<Flushed>, RelayError> {
        loop {
            // With work in hand, wait only briefly for more: a pause in the
            // stream is the moment to deliver.
            let wait = if self.has_work() { Duration::from_millis(1) } else { idle };
            if self.oldest.is_some_and(|t| t.elapsed() >= LINGER) {
                return self.flush(sink).await.map(Some);
            }
            let event = match tokio::time::timeout(wait, self.client.recv()).await {
                Err(_) if self.has_work() => return self.flush(sink).await.map(Some),
                Err(_) => return Ok(None),
                Ok(event) => event.map_err(stream_error)?,
            };
            let Some(event) = event else {
                return Err(RelayError::Sink("the server ended the replication stream".into()));
            };
            let message = match event {
                ReplicationEvent::XLogData { data, .. } => {
                    let message = decode(&data)?;
                    if matches!(message, Message::Begin { .. }) {
                        self.in_txn = true;
                    }
                    Some(message)
                }
                ReplicationEvent::KeepAlive { wal_end } => {
                    // Everything before a keepalive has been sent; with no
                    // transaction open, its position may be confirmed once
                    // the buffer is delivered, so unrelated WAL is released.
                    if !self.in_txn && wal_end > 0 {
                        self.idle_at = Some(wal_end);
                    }
                    None
                }
            };
            if let Some(message) = message {
                let before = self.buffer.len();
                let commit = self.transformer.feed(message, &mut self.buffer)?;
                if before == 0 && !self.buffer.is_empty() {
                    self.oldest = Some(Instant::now());
                }
                if let Some(commit) = commit {
                    self.in_txn = false;
                    self.transactions += u64::from(commit.events > 0);
                    self.complete = Some(commit);
                    if self.transformer.moved {
                        let mut out = self.flush(sink).await?;
                        out.moved = true;
                        return Ok(Some(out));
                    }
                }
            }
            if self.buffer.len() >= chunk {
                return self.flush(sink).await.map(Some);
            }
        }
    }

    async fn flush(&mut self, sink: &mut Sink) -> Result<Flushed, RelayError> {
        let mut out = Flushed::default();
        self.oldest = None;
        if !self.buffer.is_empty() {
            out.delivered = sink.deliver(&self.buffer).await?;
            out.events = self.buffer.len();
            self.buffer.clear();
        }
        if let Some(commit) = self.complete.take() {
            self.client.confirm(commit.end_lsn);
            out.last = Some(commit);
            out.transactions = std::mem::take(&mut self.transactions);
        }
        if let Some(at) = self.idle_at.take() {
            if !self.in_txn {
                self.client.confirm(at);
            }
        }
        Ok(out)
    }

    /// Reports the last confirmed position and closes the stream.
    pub async fn stop(self) {
        self.client.stop().await;
    }
}
