//! A rustls client configuration with libpq's meaning of each `sslmode`:
//! `prefer` and `require` encrypt without checking the certificate,
//! `verify-ca` checks the chain, `verify-full` the chain and the host name.
//! Roots come from `sslrootcert` (a PEM file, or `system` for the
//! operating system's store) or, as in libpq, `~/.postgresql/root.crt`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use super::verify::{ChainOnly, Unchecked};
use super::{TlsMode, TlsSettings};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for `settings`. Errors name the file at fault.
pub fn client_config(settings: &TlsSettings) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("setting up TLS: {e}"))?;
    let builder = match settings.mode {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(Unchecked::new(provider)))
        }
        TlsMode::VerifyCa => {
            let roots = roots(settings.root_cert.as_deref())?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly::new(roots, provider)?))
        }
        TlsMode::VerifyFull => {
            builder.with_root_certificates(roots(settings.root_cert.as_deref())?)
        }
    };
    let config = match client_identity(settings)? {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("the client certificate and key do not go together: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn roots(path: Option<&Path>) -> Result<Arc<RootCertStore>, String> {
    let mut store = RootCertStore::empty();
    if path.is_some_and(|p| p == Path::new("system")) {
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            // One unusable certificate in the system store is no reason
            // to refuse the others.
            let _ = store.add(cert);
        }
        if store.is_empty() {
            return Err("sslrootcert=system: the system has no usable root certificates".into());
        }
        return Ok(Arc::new(store));
    }
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => default_file("root.crt").ok_or_else(|| {
            "certificate verification needs a root certificate: set sslrootcert=FILE (or \
             sslrootcert=system), or put one in ~/.postgresql/root.crt"
                .to_string()
        })?,
    };
    for cert in read_certs(&path)? {
        store.add(cert).map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
    }
    Ok(Arc::new(store))
}

fn client_identity(
    settings: &TlsSettings,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, String> {
    // libpq sends ~/.postgresql/postgresql.crt when it exists; so does deed.
    let cert = settings.client_cert.clone().or_else(|| default_file("postgresql.crt"));
    let Some(cert) = cert else { return Ok(None) };
    let key = settings.client_key.clone().or_else(|| default_file("postgresql.key")).ok_or_else(
        || format!("the client certificate {} needs its key: set sslkey=FILE", cert.display()),
    )?;
    let chain = read_certs(&cert)?;
    let key = PrivateKeyDer::from_pem_file(&key)
        .map_err(|e| format!("sslkey {}: {}", key.display(), pem_error(e)))?;
    Ok(Some((chain, key)))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {}", path.display(), pem_error(e)))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in the file", path.display()));
    }
    Ok(certs)
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not a valid PEM file ({other:?})"),
    }
}

/// A file in `~/.postgresql/`, where libpq looks by default, if it exists.
fn default_file(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let path = Path::new(&home).join(".postgresql").join(name);
    path.is_file().then_some(path)
}
