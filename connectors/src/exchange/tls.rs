//! Mutual TLS for the exchange and the analysts' server (rustls, ring).
//!
//! The server side is our own accept loop rather than tonic's built-in TLS,
//! so that a refused handshake (a certificate from another authority, none
//! at all, an expired one) is logged with the remote address and rustls'
//! reason before the connection is dropped; the accepted connections are
//! handed to tonic ([`serve_tls`]). The client side ([`peer_client_config`])
//! trusts the peer's CA, presents this post's identity, and refuses a server
//! whose certificate names another post than the peer (the sender's check,
//! the mirror of the receiver's on the client certificate).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

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

/// Told of each refused handshake: the remote address and rustls' reason
/// (the Flight SQL server audits it, the exchange counts it).
pub type OnRefusedHandshake = Arc<dyn Fn(SocketAddr, String) + Send + Sync>;

/// Accepts TLS connections on `listener` and yields them for
/// `tonic::transport::Server::serve_with_incoming`. A handshake that fails
/// is logged (`what`: which server) with the remote address and reason, and
/// passed to `on_refused`.
pub fn serve_tls(
    listener: TcpListener,
    config: rustls::ServerConfig,
    what: &'static str,
    on_refused: Option<OnRefusedHandshake>,
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
            let on_refused = on_refused.clone();
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp)).await;
                let reason = match handshake {
                    Ok(Ok(stream)) => {
                        let _ = sender.send(Ok(stream)).await;
                        return;
                    }
                    Ok(Err(error)) => error.to_string(),
                    Err(_) => "no handshake within 10 s".to_string(),
                };
                tracing::warn!(server = what, %remote, %reason, "TLS handshake refused");
                if let Some(on_refused) = on_refused {
                    on_refused(remote, reason);
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(receiver)
}

/// The common name of a DER certificate's subject (the post or analyst it
/// names), for checks, logs and audit; `None` if it has none or does not parse.
pub fn subject_common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let name = parsed.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    Some(name)
}

/// The sender's TLS to its peer: rustls' client configuration that trusts
/// `files.ca`, presents `files.cert` and `files.key`, and accepts only a
/// server certificate whose common name is `peer_post` ([`PeerPostVerifier`]).
/// The second value holds the reason when a server was refused for naming
/// another post (so that the sender can tell a refusal from an outage).
pub fn peer_client_config(files: &TlsFiles, peer_post: &str) -> Result<(rustls::ClientConfig, RefusedPeer), ExchangeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ca = files.ca.as_ref().ok_or_else(|| ExchangeError::Tls("the sender needs the peer's CA ([peer] ca)".into()))?;
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots.add(cert).map_err(|e| ExchangeError::Tls(format!("CA file {}: {e}", ca.display())))?;
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| ExchangeError::Tls(format!("CA file {}: {e}", ca.display())))?;
    let refused = RefusedPeer::default();
    let verifier = PeerPostVerifier { inner, peer_post: peer_post.to_string(), refused: refused.clone() };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ExchangeError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(load_certs(&files.cert)?, load_key(&files.key)?)
        .map_err(|e| ExchangeError::Tls(format!("certificate {} with key {}: {e}", files.cert.display(), files.key.display())))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok((config, refused))
}

/// Why the last handshake refused the server as not the peer post's.
#[derive(Clone, Debug, Default)]
pub struct RefusedPeer(Arc<std::sync::Mutex<Option<String>>>);

impl RefusedPeer {
    /// The reason, if the server was refused (cleared by reading it).
    pub fn take(&self) -> Option<String> {
        self.0.lock().map(|mut r| r.take()).unwrap_or_else(|e| e.into_inner().take())
    }

    fn set(&self, reason: String) {
        match self.0.lock() {
            Ok(mut slot) => *slot = Some(reason),
            Err(poisoned) => *poisoned.into_inner() = Some(reason),
        }
    }
}

/// The server's certificate names another post than the configured peer.
#[derive(Debug)]
struct NotThePeerPost(String);

impl std::fmt::Display for NotThePeerPost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotThePeerPost {}

/// webpki's checks (chain to the peer's CA, validity, the host name or
/// address), then the one the exchange adds: the certificate's common name
/// is the peer post, as the receiver checks the sender's.
#[derive(Debug)]
struct PeerPostVerifier {
    inner: Arc<WebPkiServerVerifier>,
    peer_post: String,
    refused: RefusedPeer,
}

impl ServerCertVerifier for PeerPostVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        let reason = match subject_common_name(end_entity) {
            Some(name) if name == self.peer_post => return Ok(verified),
            Some(name) => format!("the server certificate is for `{name}`, not for the peer post `{}`", self.peer_post),
            None => format!("the server certificate names no post (no common name); expected `{}`", self.peer_post),
        };
        self.refused.set(reason.clone());
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(NotThePeerPost(reason))))))
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
