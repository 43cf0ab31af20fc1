//! Frames of the PostgreSQL wire protocol on a plain, TLS or Unix-socket
//! stream: reading whole backend messages (cancel-safe, so a read may sit
//! in a `select!`), writing frontend ones, and the server's error fields.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_postgres::error::SqlState;

/// A byte stream to the server, whatever carries it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The longest backend message accepted: a pgoutput message carries at
/// most one row, and a row is at most about 1 GB per value.
const MAX_FRAME: usize = 1 << 30;

pub(crate) struct Conn {
    io: Box<dyn Io>,
    read: BytesMut,
    pub(crate) write: BytesMut,
}

/// One backend message: its type byte and body.
pub(crate) struct Frame {
    pub tag: u8,
    pub body: Bytes,
}

impl Conn {
    pub fn new(io: Box<dyn Io>) -> Self {
        Conn { io, read: BytesMut::with_capacity(128 * 1024), write: BytesMut::new() }
    }

    /// A whole message already read, if there is one: no I/O.
    pub fn buffered_frame(&mut self) -> std::io::Result<Option<Frame>> {
        if self.read.len() < 5 {
            return Ok(None);
        }
        let len =
            u32::from_be_bytes([self.read[1], self.read[2], self.read[3], self.read[4]]) as usize;
        if !(4..=MAX_FRAME).contains(&len) {
            return Err(protocol(format!("a message of {len} bytes")));
        }
        if self.read.len() > len {
            let mut whole = self.read.split_to(len + 1);
            let tag = whole.get_u8();
            whole.advance(4);
            return Ok(Some(Frame { tag, body: whole.freeze() }));
        }
        self.read.reserve(len + 1 - self.read.len());
        Ok(None)
    }

    /// The next whole message. Dropping the future loses nothing: partial
    /// input stays in the buffer for the next call.
    pub async fn read_frame(&mut self) -> std::io::Result<Frame> {
        loop {
            if let Some(frame) = self.buffered_frame()? {
                return Ok(frame);
            }
            if self.io.read_buf(&mut self.read).await? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
        }
    }

    /// Sends what was written into `self.write`.
    pub async fn send(&mut self) -> std::io::Result<()> {
        let out = self.write.split();
        self.io.write_all(&out).await?;
        self.io.flush().await
    }

    pub async fn shutdown(&mut self) {
        let _ = self.io.shutdown().await;
    }
}

pub(crate) fn protocol(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("protocol error: {what}"))
}

/// What went wrong opening or reading a replication session, in words for
/// the user (the caller adds where), with the server's SQLSTATE when the
/// server answered.
#[derive(Debug)]
pub(crate) struct Failure {
    pub text: String,
    pub code: Option<SqlState>,
}

impl From<String> for Failure {
    fn from(text: String) -> Self {
        Failure { text, code: None }
    }
}

impl From<&str> for Failure {
    fn from(text: &str) -> Self {
        Failure { text: text.into(), code: None }
    }
}

/// An ErrorResponse as deed shows every server error (the message, its
/// detail and hint, and the SQLSTATE), keeping the SQLSTATE to decide on.
pub(crate) fn server_error(body: &[u8]) -> Failure {
    let (mut message, mut detail, mut hint, mut code) = (None, None, None, None);
    for field in body.split(|b| *b == 0) {
        let Some((&kind, text)) = field.split_first() else { continue };
        let text = String::from_utf8_lossy(text).into_owned();
        match kind {
            b'M' => message = Some(text),
            b'D' => detail = Some(text),
            b'H' => hint = Some(text),
            b'C' => code = Some(text),
            _ => {}
        }
    }
    let mut s = message.unwrap_or_else(|| "the server reported an error".into());
    if let Some(d) = detail {
        s.push_str(&format!(" ({d})"));
    }
    if let Some(h) = hint {
        s.push_str(&format!("; hint: {h}"));
    }
    if let Some(c) = &code {
        s.push_str(&format!(" [SQLSTATE {c}]"));
    }
    Failure { text: s, code: code.as_deref().map(SqlState::from_code) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_errors_keep_every_field() {
        let body = b"SERROR\0C42704\0Mreplication slot \"x\" does not exist\0Hcreate it\0\0";
        assert_eq!(
            super::server_error(body).text,
            "replication slot \"x\" does not exist; hint: create it [SQLSTATE 42704]"
        );
        assert_eq!(super::server_error(body).code, Some(super::SqlState::UNDEFINED_OBJECT));
    }
}
