//! Delivery beside decoding: a task owns the sink and takes batches in
//! order, keeping a few in flight (sent, their acks not yet back), while
//! the relay goes on decoding the next ones. Results come back in the
//! order the batches went in, so the relay confirms a position on the
//! slot only once everything before it is stored.

use std::collections::VecDeque;

use tokio::sync::mpsc;

use crate::envelope::Envelope;
use crate::error::RelayError;
use crate::sink::{Delivered, Sink, Ticket};
use crate::transform::Commit;

/// Events, and what becomes safe to confirm once they are stored.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<Envelope>,
    /// The last whole transaction in the batch (or before it).
    pub commit: Option<Commit>,
    /// Transactions with events that the batch completes.
    pub transactions: u64,
    /// A position with no transaction open (from a keepalive), also safe.
    pub idle_at: Option<u64>,
    /// When the first event's transaction committed.
    pub oldest_commit_ts: Option<i64>,
}

/// A batch stored.
#[derive(Debug, Default)]
pub struct Done {
    pub events: usize,
    pub delivered: Delivered,
    pub commit: Option<Commit>,
    pub transactions: u64,
    pub idle_at: Option<u64>,
    pub oldest_commit_ts: Option<i64>,
}

pub struct Pipeline {
    tx: mpsc::Sender<Batch>,
    done: mpsc::UnboundedReceiver<Result<Done, RelayError>>,
    task: tokio::task::JoinHandle<()>,
    in_flight: usize,
}

impl Pipeline {
    /// Starts delivering into `sink`, with up to `window` batches in flight.
    pub fn start(sink: Sink, window: usize) -> Pipeline {
        let (tx, rx) = mpsc::channel(window.max(1));
        let (done_tx, done) = mpsc::unbounded_channel();
        let task = tokio::spawn(deliver(sink, rx, done_tx, window.max(1)));
        Pipeline { tx, done, task, in_flight: 0 }
    }

    /// Batches handed over and not yet reported done.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Hands a batch over; waits while the pipeline is full.
    pub async fn submit(&mut self, batch: Batch) -> Result<(), RelayError> {
        if self.tx.send(batch).await.is_err() {
            // The task stopped: its error is waiting.
            return Err(self.failure().await);
        }
        self.in_flight += 1;
        Ok(())
    }

    /// The next batch stored, in order. Cancel-safe.
    pub async fn done(&mut self) -> Result<Done, RelayError> {
        match self.done.recv().await {
            Some(r) => self.took(r),
            None => Err(RelayError::Sink("the delivery task stopped".into())),
        }
    }

    /// A batch already stored, if any; never waits.
    pub fn try_done(&mut self) -> Result<Option<Done>, RelayError> {
        match self.done.try_recv() {
            Ok(r) => self.took(r).map(Some),
            Err(_) => Ok(None),
        }
    }

    fn took(&mut self, r: Result<Done, RelayError>) -> Result<Done, RelayError> {
        self.in_flight = self.in_flight.saturating_sub(1);
        r
    }

    async fn failure(&mut self) -> RelayError {
        while let Some(r) = self.done.recv().await {
            if let Err(e) = r {
                return e;
            }
        }
        RelayError::Sink("the delivery task stopped".into())
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.task.abort();
    }
}

enum Next {
    Batch(Option<Batch>),
    Settled(Result<Delivered, RelayError>),
}

async fn deliver(
    mut sink: Sink,
    mut rx: mpsc::Receiver<Batch>,
    done: mpsc::UnboundedSender<Result<Done, RelayError>>,
    window: usize,
) {
    let mut waiting: VecDeque<(Ticket, Done)> = VecDeque::new();
    let mut open = true;
    loop {
        let next = match waiting.front() {
            None if !open => return,
            None => Next::Batch(rx.recv().await),
            Some((ticket, _)) => {
                let ticket = *ticket;
                // New batches first, so the broker always has work; the
                // window bounds what waits for acks.
                tokio::select! {
                    biased;
                    b = rx.recv(), if open && waiting.len() < window => Next::Batch(b),
                    r = sink.settle(ticket) => Next::Settled(r),
                }
            }
        };
        match next {
            Next::Batch(None) => open = false,
            Next::Batch(Some(batch)) => match sink.send(&batch.events).await {
                Ok(ticket) => waiting.push_back((
                    ticket,
                    Done {
                        events: batch.events.len(),
                        delivered: Delivered::default(),
                        commit: batch.commit,
                        transactions: batch.transactions,
                        idle_at: batch.idle_at,
                        oldest_commit_ts: batch.oldest_commit_ts,
                    },
                )),
                Err(e) => {
                    let _ = done.send(Err(e));
                    return;
                }
            },
            Next::Settled(Ok(delivered)) => {
                let (_, mut d) = waiting.pop_front().expect("a batch was waiting");
                d.delivered = delivered;
                if done.send(Ok(d)).is_err() {
                    return;
                }
            }
            Next::Settled(Err(e)) => {
                let _ = done.send(Err(e));
                return;
            }
        }
    }
}
