//! Opening a replication session: the socket, TLS as `sslmode` asks, the
//! startup packet with `replication=database`, and authentication
//! (trust, password, md5 or SCRAM-SHA-256), up to ReadyForQuery.

use std::time::Duration;

use bytes::Buf;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::frontend;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) use super::wire::Failure;
use super::wire::{Conn, Io, protocol, server_error};
use crate::endpoint::Endpoint;
use crate::tls::{TlsMode, client_config};

pub(crate) async fn open(e: &Endpoint, params: &[(&str, &str)]) -> Result<Conn, Failure> {
    let io = tokio::time::timeout(Duration::from_secs(10), socket(e))
        .await
        .map_err(|_| "timed out after 10 s".to_string())??;
    let mut conn = Conn::new(io);
    frontend::startup_message(params.iter().copied(), &mut conn.write).map_err(io_text)?;
    conn.send().await.map_err(io_text)?;
    authenticate(&mut conn, e).await?;
    Ok(conn)
}

async fn socket(e: &Endpoint) -> Result<Box<dyn Io>, Failure> {
    if e.host.starts_with('/') {
        // A socket directory, as in libpq; TLS is never used there.
        let path = format!("{}/.s.PGSQL.{}", e.host, e.port);
        let s =
            tokio::net::UnixStream::connect(&path).await.map_err(|err| format!("{path}: {err}"))?;
        return Ok(Box::new(s));
    }
    let mut tcp = tokio::net::TcpStream::connect((e.host.as_str(), e.port))
        .await
        .map_err(|err| format!("{}:{}: {err}", e.host, e.port))?;
    let _ = tcp.set_nodelay(true);
    if e.tls.mode == TlsMode::Disable {
        return Ok(Box::new(tcp));
    }
    let mut request = bytes::BytesMut::new();
    frontend::ssl_request(&mut request);
    tcp.write_all(&request).await.map_err(io_text)?;
    let answer = tcp.read_u8().await.map_err(io_text)?;
    match (answer, e.tls.mode) {
        (b'S', _) => {}
        (b'N', TlsMode::Prefer) => return Ok(Box::new(tcp)),
        (b'N', _) => return Err("the server does not accept TLS connections".into()),
        (other, _) => return Err(io_text(protocol(format!("answer {other:?} to SSLRequest")))),
    }
    let config = client_config(&e.tls)?;
    let name = ServerName::try_from(e.host.clone()).map_err(|err| err.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(io_text)?;
    Ok(Box::new(tls))
}

async fn authenticate(conn: &mut Conn, e: &Endpoint) -> Result<(), Failure> {
    let mut scram: Option<ScramSha256> = None;
    loop {
        let mut frame = conn.read_frame().await.map_err(io_text)?;
        match frame.tag {
            b'R' => {
                if frame.body.len() < 4 {
                    return Err(io_text(protocol("a short authentication request".into())));
                }
                let code = frame.body.get_i32();
                match code {
                    0 => {}
                    3 => {
                        frontend::password_message(password(e)?, &mut conn.write)
                            .map_err(io_text)?;
                        conn.send().await.map_err(io_text)?;
                    }
                    5 => {
                        if frame.body.len() < 4 {
                            return Err(io_text(protocol("an md5 request without salt".into())));
                        }
                        let salt = [frame.body[0], frame.body[1], frame.body[2], frame.body[3]];
                        let hash = md5_hash(e.user.as_bytes(), password(e)?, salt);
                        frontend::password_message(hash.as_bytes(), &mut conn.write)
                            .map_err(io_text)?;
                        conn.send().await.map_err(io_text)?;
                    }
                    10 => {
                        let offered = String::from_utf8_lossy(&frame.body);
                        if !offered.split('\0').any(|m| m == SCRAM_SHA_256) {
                            return Err(format!(
                                "the server offers no SASL mechanism deed speaks ({})",
                                offered.trim_end_matches('\0').replace('\0', ", ")
                            )
                            .into());
                        }
                        let s = ScramSha256::new(password(e)?, ChannelBinding::unsupported());
                        frontend::sasl_initial_response(
                            SCRAM_SHA_256,
                            s.message(),
                            &mut conn.write,
                        )
                        .map_err(io_text)?;
                        conn.send().await.map_err(io_text)?;
                        scram = Some(s);
                    }
                    11 | 12 => {
                        let s = scram
                            .as_mut()
                            .ok_or_else(|| io_text(protocol("SASL data before SASL".into())))?;
                        if code == 11 {
                            s.update(&frame.body).map_err(io_text)?;
                            frontend::sasl_response(s.message(), &mut conn.write)
                                .map_err(io_text)?;
                            conn.send().await.map_err(io_text)?;
                        } else {
                            s.finish(&frame.body).map_err(io_text)?;
                        }
                    }
                    other => {
                        return Err(format!(
                            "the server asks for authentication method {other}, which deed does not speak"
                        )
                        .into());
                    }
                }
            }
            b'E' => return Err(server_error(&frame.body)),
            b'Z' => return Ok(()),
            // ParameterStatus, BackendKeyData, notices.
            _ => {}
        }
    }
}

fn password(e: &Endpoint) -> Result<&[u8], Failure> {
    e.password.as_deref().map(str::as_bytes).ok_or_else(|| {
        "the server asks for a password and none was given (in the URL or PGPASSWORD)".into()
    })
}

pub(crate) fn io_text(e: std::io::Error) -> Failure {
    e.to_string().into()
}
