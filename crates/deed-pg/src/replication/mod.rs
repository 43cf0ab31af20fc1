//! A logical replication stream (`START_REPLICATION … LOGICAL` with
//! pgoutput) over the wire protocol, for the relay's daemon.
//!
//! A worker task owns the connection: it forwards WAL data and keepalives
//! through a small channel, and sends standby status updates (the position
//! the caller has confirmed, never more) on a timer, when the server asks,
//! and when the caller confirms, even while the caller is busy delivering.

mod startup;
mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes};
use deed_ident::{Ident, quote_literal};
use postgres_protocol::message::frontend;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::endpoint::Endpoint;
use crate::error::PgError;
use crate::session::startup_options;
use wire::{Conn, Frame, server_error};

/// What the server sends while streaming.
#[derive(Debug)]
pub enum ReplicationEvent {
    /// One pgoutput message, and the WAL position it ends at.
    XLogData { wal_end: u64, data: Bytes },
    /// The server has sent everything up to `wal_end`.
    KeepAlive { wal_end: u64 },
}

/// Where to stream from, and how.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    pub slot: String,
    pub publication: String,
    pub application_name: String,
    /// How often the confirmed position is reported without being asked.
    pub status_interval: Duration,
}

pub struct ReplicationStream {
    /// Events arrive in runs (whatever one read from the socket held), so
    /// the worker and the caller meet once per run, not once per message.
    events: mpsc::Receiver<Result<Vec<ReplicationEvent>, PgError>>,
    run: std::collections::VecDeque<ReplicationEvent>,
    confirmed: Arc<AtomicU64>,
    ping: Arc<AtomicBool>,
    wake: Arc<Notify>,
    stop: Option<oneshot::Sender<()>>,
    worker: tokio::task::JoinHandle<()>,
}

impl ReplicationStream {
    /// Connects as `endpoint` (with the REPLICATION attribute) and starts
    /// streaming from the slot's confirmed position, with deed's fixed
    /// session settings so values are rendered as deed expects.
    pub async fn start(endpoint: &Endpoint, opts: &StreamOptions) -> Result<Self, PgError> {
        let target = endpoint.to_string();
        let fail = |f: startup::Failure| PgError::Connect {
            url: target.clone(),
            reason: f.text,
            source: None,
            code: f.code,
        };
        let options = startup_options();
        let params = [
            ("user", endpoint.user.as_str()),
            ("database", endpoint.database.as_str()),
            ("replication", "database"),
            ("application_name", opts.application_name.as_str()),
            ("options", options.as_str()),
        ];
        let mut conn = startup::open(endpoint, &params).await.map_err(fail)?;
        let ident = |name: &str| {
            Ident::new(name).map(|i| i.quoted()).map_err(|e| fail(format!("{name:?}: {e}").into()))
        };
        let command = format!(
            "START_REPLICATION SLOT {} LOGICAL 0/0 (proto_version '1', publication_names {}, messages 'true')",
            ident(&opts.slot)?,
            quote_literal(&ident(&opts.publication)?),
        );
        frontend::query(&command, &mut conn.write).map_err(|e| fail(startup::io_text(e)))?;
        conn.send().await.map_err(|e| fail(startup::io_text(e)))?;
        loop {
            let frame = conn.read_frame().await.map_err(|e| fail(startup::io_text(e)))?;
            match frame.tag {
                b'W' => break,
                b'E' => return Err(fail(server_error(&frame.body))),
                _ => {}
            }
        }
        let (tx, events) = mpsc::channel(16);
        let confirmed = Arc::new(AtomicU64::new(0));
        let ping = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = oneshot::channel();
        let worker = Worker {
            conn,
            tx,
            confirmed: confirmed.clone(),
            ping: ping.clone(),
            wake: wake.clone(),
            interval: opts.status_interval,
            target,
            reported: 0,
        };
        let worker = tokio::spawn(worker.run(stopped));
        Ok(ReplicationStream {
            events,
            run: Default::default(),
            confirmed,
            ping,
            wake,
            stop: Some(stop),
            worker,
        })
    }

    /// The next event; `None` when the server ended the stream. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<ReplicationEvent>, PgError> {
        if let Some(event) = self.run.pop_front() {
            return Ok(Some(event));
        }
        match self.events.recv().await.transpose()? {
            Some(run) => {
                self.run = run.into();
                Ok(self.run.pop_front())
            }
            None => Ok(None),
        }
    }

    /// The next event if one has already arrived; never waits.
    pub fn try_recv(&mut self) -> Result<Option<ReplicationEvent>, PgError> {
        if let Some(event) = self.run.pop_front() {
            return Ok(Some(event));
        }
        match self.events.try_recv() {
            Ok(run) => {
                self.run = run?.into();
                Ok(self.run.pop_front())
            }
            Err(_) => Ok(None),
        }
    }

    /// Asks the server for a keepalive now: its position says how far the
    /// server has looked, which tells a caller waiting to be caught up
    /// that nothing more is coming.
    pub fn request_keepalive(&self) {
        self.ping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Everything before `lsn` is safely delivered: the server may release
    /// it. Reported promptly by the worker.
    pub fn confirm(&self, lsn: u64) {
        self.confirmed.fetch_max(lsn, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Reports the confirmed position one last time and closes the stream.
    /// `false` when the worker did not finish within 5 s and was abandoned
    /// (the server then sees the connection drop instead of CopyDone).
    pub async fn stop(mut self) -> bool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(5), &mut self.worker).await.is_ok()
    }
}

impl Drop for ReplicationStream {
    fn drop(&mut self) {
        if self.stop.is_some() {
            self.worker.abort();
        }
    }
}

enum Handled {
    Event(ReplicationEvent),
    Nothing,
    End,
}

struct Worker {
    conn: Conn,
    tx: mpsc::Sender<Result<Vec<ReplicationEvent>, PgError>>,
    confirmed: Arc<AtomicU64>,
    ping: Arc<AtomicBool>,
    wake: Arc<Notify>,
    interval: Duration,
    target: String,
    reported: u64,
}

/// What the worker does next.
enum Step {
    Go,
    /// The stream ended, or the caller went away.
    End,
    /// The caller asked to stop: report and close.
    Stop,
}

impl From<bool> for Step {
    fn from(go: bool) -> Step {
        if go { Step::Go } else { Step::End }
    }
}

impl Worker {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        let mut ticker = tokio::time::interval(self.interval);
        loop {
            let result = tokio::select! {
                _ = &mut stop => return self.finish().await,
                _ = self.wake.notified() => {
                    let ping = self.ping.swap(false, Ordering::SeqCst);
                    self.report(ping).await.map(Step::from)
                }
                _ = ticker.tick() => self.report(true).await.map(Step::from),
                frame = self.conn.read_frame() => match frame {
                    Ok(frame) => self.handle_run(frame, &mut ticker, &mut stop).await,
                    Err(e) => Err(e.to_string()),
                },
            };
            match result {
                Ok(Step::Go) => {}
                Ok(Step::End) => return,
                Ok(Step::Stop) => return self.finish().await,
                Err(reason) => {
                    let context = format!("the replication stream from {}", self.target);
                    let _ =
                        self.tx.send(Err(PgError::Query { context, reason, source: None })).await;
                    return;
                }
            }
        }
    }

    /// Handles `first` and every whole message already read after it,
    /// and hands their events over as one run. The caller may have
    /// stopped reading (a bounded run reached its end) while the channel
    /// is full: a stop asked for meanwhile is taken at once, not after
    /// [`ReplicationStream::stop`]'s timeout, so the last position is
    /// still reported and the stream closed in order.
    async fn handle_run(
        &mut self,
        first: Frame,
        ticker: &mut tokio::time::Interval,
        stop: &mut oneshot::Receiver<()>,
    ) -> Result<Step, String> {
        let mut run = Vec::new();
        let mut frame = Some(first);
        let mut open = true;
        while let Some(f) = frame {
            match self.handle(f).await? {
                Handled::Event(e) => run.push(e),
                Handled::Nothing => {}
                Handled::End => {
                    open = false;
                    break;
                }
            }
            if run.len() >= 1024 {
                break;
            }
            frame = self.conn.buffered_frame().map_err(|e| e.to_string())?;
        }
        if run.is_empty() {
            return Ok(Step::from(open));
        }
        // While the caller is busy, keep telling the server we are alive,
        // so a slow delivery never looks like a dead client.
        let send = self.tx.send(Ok(run));
        tokio::pin!(send);
        loop {
            tokio::select! {
                sent = &mut send => return Ok(Step::from(open && sent.is_ok())),
                _ = &mut *stop => return Ok(Step::Stop),
                _ = ticker.tick() => {
                    let at = self.confirmed.load(Ordering::SeqCst);
                    send_status(&mut self.conn, &mut self.reported, at, true).await?;
                }
            }
        }
    }

    /// One message: an event for the caller, nothing, or the end.
    async fn handle(&mut self, frame: Frame) -> Result<Handled, String> {
        match frame.tag {
            b'd' => {}
            b'E' => return Err(server_error(&frame.body).text),
            b'c' | b'C' | b'Z' => return Ok(Handled::End),
            _ => return Ok(Handled::Nothing),
        }
        let mut body = frame.body;
        let short = |what: &str| wire::protocol(format!("a short {what} message")).to_string();
        let event = match body.first() {
            Some(b'w') if body.len() >= 25 => {
                body.advance(1);
                let _start = body.get_u64();
                let wal_end = body.get_u64();
                let _time = body.get_i64();
                ReplicationEvent::XLogData { wal_end, data: body }
            }
            Some(b'k') if body.len() >= 18 => {
                body.advance(1);
                let wal_end = body.get_u64();
                let _time = body.get_i64();
                if body.get_u8() != 0 {
                    self.report(true).await?;
                }
                ReplicationEvent::KeepAlive { wal_end }
            }
            Some(b'w') => return Err(short("XLogData")),
            Some(b'k') => return Err(short("keepalive")),
            _ => return Ok(Handled::Nothing),
        };
        Ok(Handled::Event(event))
    }

    /// Sends a standby status update if the position moved, or always
    /// when `always`. The periodic update asks the server for a keepalive
    /// in reply: its position lets an idle client confirm WAL that holds
    /// nothing for it, so the slot's confirmed position follows the
    /// server's even when nothing is published.
    async fn report(&mut self, always: bool) -> Result<bool, String> {
        let at = self.confirmed.load(Ordering::SeqCst);
        if always || at != self.reported {
            send_status(&mut self.conn, &mut self.reported, at, always).await?;
        }
        Ok(true)
    }

    async fn finish(mut self) {
        let _ = self.report(true).await;
        frontend::copy_done(&mut self.conn.write);
        if self.conn.send().await.is_ok() {
            // The server answers CopyDone, then CommandComplete; the
            // confirmed position is durable once it has read the update.
            let _ = tokio::time::timeout(Duration::from_secs(3), async {
                while let Ok(f) = self.conn.read_frame().await {
                    if matches!(f.tag, b'C' | b'Z' | b'E') {
                        break;
                    }
                }
            })
            .await;
        }
        frontend::terminate(&mut self.conn.write);
        let _ = self.conn.send().await;
        self.conn.shutdown().await;
    }
}

/// Sends a standby status update for `at` and remembers it as reported.
/// A free function, so it can run while a send to the caller borrows the
/// worker's channel.
async fn send_status(
    conn: &mut Conn,
    reported: &mut u64,
    at: u64,
    reply: bool,
) -> Result<(), String> {
    status(conn, at, reply).map_err(|e| e.to_string())?;
    conn.send().await.map_err(|e| e.to_string())?;
    *reported = at;
    Ok(())
}

/// A standby status update: written, flushed and applied are all `at`;
/// with `reply`, the server answers with a keepalive.
fn status(conn: &mut Conn, at: u64, reply: bool) -> std::io::Result<()> {
    // Microseconds since 2000-01-01, the server's epoch.
    const PG_EPOCH: u64 = 946_684_800;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let micros = now.as_micros() as i64 - (PG_EPOCH as i64) * 1_000_000;
    let mut body = Vec::with_capacity(34);
    body.push(b'r');
    for _ in 0..3 {
        body.extend_from_slice(&at.to_be_bytes());
    }
    body.extend_from_slice(&micros.to_be_bytes());
    body.push(u8::from(reply));
    frontend::CopyData::new(&body[..])?.write(&mut conn.write);
    Ok(())
}
