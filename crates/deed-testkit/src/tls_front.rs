//! A TLS front for a broker that serves only plaintext (tansu 0.6.0 cannot
//! serve TLS): it takes TLS connections on a port of its own, verifies the
//! client's certificate when asked to, and passes the bytes on to the
//! broker's plaintext port. The broker advertises the front's port, so a
//! client that learns the brokers from metadata comes back through it.
//! The client under test (librdkafka) speaks real TLS to a real TLS server
//! (rustls); only the last hop, inside the machine, is plaintext.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::certs::Certs;

pub struct TlsFront {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn server_config(certs: &Certs, client_certificates: bool) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&certs.server_cert)
        .expect("server certificate")
        .collect::<Result<_, _>>()
        .expect("server certificate");
    let key = PrivateKeyDer::from_pem_file(&certs.server_key).expect("server key");
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("TLS versions");
    let builder = if client_certificates {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&certs.ca).expect("CA") {
            roots.add(c.expect("CA")).expect("CA");
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client verifier");
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    builder.with_single_cert(chain, key).expect("server certificate and key")
}

impl TlsFront {
    /// Listens on a free port of its own, serving TLS with `certs`' server
    /// certificate, and passes each connection on to `127.0.0.1:backend`.
    /// With `client_certificates`, a client must show a certificate signed
    /// by `certs`' CA.
    pub fn start(backend: u16, certs: &Certs, client_certificates: bool) -> TlsFront {
        let acceptor = TlsAcceptor::from(Arc::new(server_config(certs, client_certificates)));
        let port = crate::free_port();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("TLS front port");
        listener.set_nonblocking(true).expect("nonblocking");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("listener");
                tokio::select! {
                    _ = stopped => {}
                    _ = serve(listener, acceptor, backend) => {}
                }
            });
        });
        TlsFront { port, stop: Some(stop), thread: Some(thread) }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, backend: u16) {
    loop {
        let Ok((client, _)) = listener.accept().await else { continue };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            // A handshake the client gives up on (wrong CA, no
            // certificate) ends here: the client reports it.
            let Ok(mut tls) = acceptor.accept(client).await else { return };
            let Ok(mut broker) = TcpStream::connect(("127.0.0.1", backend)).await else { return };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
        });
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
