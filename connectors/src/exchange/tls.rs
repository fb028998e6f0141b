//! Mutual TLS for the exchange and the analysts' server (rustls, ring).
//!
//! The server side is our own accept loop rather than tonic's built-in TLS,
//! so that a refused handshake (a certificate from another authority, none
//! at all, an expired one) is logged with the remote address and rustls'
//! reason before the connection is dropped; the accepted connections are
//! handed to tonic ([`serve_tls`]). The client side is tonic's
//! [`ClientTlsConfig`] with the peer's CA and this post's identity.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use super::ExchangeError;

fn read(path: &Path, what: &str) -> Result<Vec<u8>, ExchangeError> {
    std::fs::read(path).map_err(|e| ExchangeError::Tls(format!("{what} {}: {e}", path.display())))
}

/// Certificates in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ExchangeError> {
    let bytes = read(path, "certificate file")?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ExchangeError::Tls(format!("certificate file {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ExchangeError::Tls(format!("certificate file {}: no PEM certificate in it", path.display())));
    }
    Ok(certs)
}

/// The private key in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ExchangeError> {
    let bytes = read(path, "key file")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| ExchangeError::Tls(format!("key file {}: {e}", path.display())))
}

/// The files of one side's TLS setup.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// This side's certificate chain and key.
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    /// The authority the other side's certificates must chain to; `None`
    /// (server only): clients present no certificate.
    pub ca: Option<std::path::PathBuf>,
}

/// A rustls server configuration; with `files.ca`, every client must
/// present a certificate signed by it (`client_optional`: may present none).
pub fn server_config(files: &TlsFiles, client_optional: bool) -> Result<rustls::ServerConfig, ExchangeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ExchangeError::Tls(e.to_string()))?;
    let builder = match &files.ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in load_certs(ca)? {
                roots.add(cert).map_err(|e| ExchangeError::Tls(format!("CA file {}: {e}", ca.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if client_optional { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| ExchangeError::Tls(format!("CA file {}: {e}", ca.display())))?)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(load_certs(&files.cert)?, load_key(&files.key)?)
        .map_err(|e| ExchangeError::Tls(format!("certificate {} with key {}: {e}", files.cert.display(), files.key.display())))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// tonic's client TLS: trust `files.ca`, present `files.cert` and `files.key`.
pub fn client_config(files: &TlsFiles, domain: &str) -> Result<ClientTlsConfig, ExchangeError> {
    let mut config = ClientTlsConfig::new().domain_name(domain).identity(Identity::from_pem(read(&files.cert, "certificate file")?, read(&files.key, "key file")?));
    if let Some(ca) = &files.ca {
        config = config.ca_certificate(Certificate::from_pem(read(ca, "CA file")?));
    }
    Ok(config)
}

/// Accepts TLS connections on `listener` and yields them for
/// `tonic::transport::Server::serve_with_incoming`. A handshake that fails
/// is logged (`what`: which server) with the remote address and reason.
pub fn serve_tls(
    listener: TcpListener,
    config: rustls::ServerConfig,
    what: &'static str,
) -> tokio_stream::wrappers::ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let (tcp, remote): (TcpStream, SocketAddr) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(server = what, %error, "accepting a connection failed");
                    continue;
                }
            };
            if sender.is_closed() {
                break;
            }
            let acceptor = acceptor.clone();
            let sender = sender.clone();
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp)).await;
                match handshake {
                    Ok(Ok(stream)) => {
                        let _ = sender.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => tracing::warn!(server = what, %remote, reason = %error, "TLS handshake refused"),
                    Err(_) => tracing::warn!(server = what, %remote, reason = "no handshake within 10 s", "TLS handshake refused"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(receiver)
}

/// The common name of a DER certificate's subject, for logs and audit.
pub fn subject_common_name(cert: &CertificateDer<'_>) -> Option<String> {
    // OID 2.5.4.3 (commonName), DER-encoded, followed by a string type and length.
    let bytes = cert.as_ref();
    let oid = [0x06, 0x03, 0x55, 0x04, 0x03];
    // The subject comes after the issuer: take the last common name.
    let mut found = None;
    let mut i = 0;
    while i + oid.len() + 2 <= bytes.len() {
        if bytes[i..i + oid.len()] == oid {
            let len = bytes[i + oid.len() + 1] as usize;
            let start = i + oid.len() + 2;
            if len < 0x80 && start + len <= bytes.len() {
                found = std::str::from_utf8(&bytes[start..start + len]).ok().map(str::to_string);
            }
        }
        i += 1;
    }
    found
}
