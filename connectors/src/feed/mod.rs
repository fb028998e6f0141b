//! Plate events from third-party ANPR cameras (`[[feed]]`): an HTTP(S)
//! listener per feed that takes the events cameras that read plates
//! themselves push, and turns each into a [`PlateRead`] of the post.
//!
//! ```text
//!  camera ──POST──▶ auth (token / client cert) ──▶ parse (hikvision | json)
//!        ◀─ 2xx/4xx ─ answer ◀── engine thread: crop stored, read logged ◀─┘
//! ```
//!
//! A request is answered only after the engine thread has logged its reads
//! in the write-ahead log ([`EngineHandle::push_reads`]), so a 200 means the
//! read survives a crash, and a camera that got no answer sends the event
//! again: the read id is derived from the feed, the camera and the camera's
//! event id ([`event::read_id`]), so the engine takes a repeated event once.
//! A malformed event gets a 4xx whose JSON body names the field at fault
//! (`{"error": …, "field": …}`), nothing of that request is taken, and
//! the listener goes on. Heartbeats, other alarms and vehicles without a
//! readable plate are answered 200 and counted as ignored.
//!
//! Cameras that cannot set headers may give their token as `?token=` in
//! the URL they post to.

pub mod event;
pub mod hikvision;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use borderflow_types::{FeedConfig, FeedFormat, PlateRead};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::engine_handle::{EngineHandle, FeedPush};
use crate::exchange::tls::{TlsFiles, server_config, subject_common_name};
use crate::flight_sql::Tokens;
use event::{EventError, Parsed, VendorEvent, feed_camera, to_read};

/// A feed's counters since the listener started (logged by `serve`).
#[derive(Debug, Default)]
pub struct FeedCounters {
    /// Requests answered, whatever the answer.
    pub requests: AtomicU64,
    /// Reads the engine took.
    pub reads: AtomicU64,
    /// Events the engine held already (sent again).
    pub repeated: AtomicU64,
    /// Heartbeats, other alarms, vehicles without a plate.
    pub ignored: AtomicU64,
    /// Requests refused as malformed or from an unknown camera (4xx).
    pub malformed: AtomicU64,
    /// Requests without a valid token or certificate (401).
    pub unauthorized: AtomicU64,
    /// Requests the engine could not take (503; the camera sends them again).
    pub unavailable: AtomicU64,
}

/// What `serve` keeps of a running feed.
#[derive(Clone)]
pub struct FeedHandle {
    pub id: String,
    pub bound: SocketAddr,
    pub counters: Arc<FeedCounters>,
}

impl FeedHandle {
    /// Logs the counters.
    pub fn log(&self) {
        let c = &self.counters;
        tracing::info!(
            feed = %self.id,
            requests = c.requests.load(Ordering::Relaxed),
            reads = c.reads.load(Ordering::Relaxed),
            repeated = c.repeated.load(Ordering::Relaxed),
            ignored = c.ignored.load(Ordering::Relaxed),
            malformed = c.malformed.load(Ordering::Relaxed),
            unauthorized = c.unauthorized.load(Ordering::Relaxed),
            unavailable = c.unavailable.load(Ordering::Relaxed),
            "feed status"
        );
    }
}

struct Feed {
    config: FeedConfig,
    post_id: String,
    post_country: String,
    tokens: Option<Tokens>,
    engine: EngineHandle,
    counters: Arc<FeedCounters>,
}

/// Who is at the other end of a connection.
#[derive(Clone)]
struct Peer {
    remote: SocketAddr,
    /// The common name of a verified client certificate.
    certificate: Option<String>,
}

/// Starts the feed's listener on the current tokio runtime; returns where it listens.
pub async fn start(config: FeedConfig, post_id: &str, post_country: &str, engine: EngineHandle) -> Result<FeedHandle, String> {
    let at = |e: String| format!("feed `{}`: {e}", config.id);
    let tokens = config.tokens.as_deref().map(Tokens::from_file).transpose().map_err(at)?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let files = TlsFiles { cert: cert.clone(), key: key.clone(), ca: config.client_ca.clone() };
            // A camera with a token needs no certificate.
            let mut tls = server_config(&files, true).map_err(|e| at(e.to_string()))?;
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls)))
        }
        _ => None,
    };
    let listener = TcpListener::bind(&config.listen).await.map_err(|e| at(format!("listening on {}: {e}", config.listen)))?;
    let bound = listener.local_addr().map_err(|e| at(e.to_string()))?;
    let counters = Arc::new(FeedCounters::default());
    let id = config.id.clone();
    let limit = config.max_event_bytes;
    let feed = Arc::new(Feed { config, post_id: post_id.to_string(), post_country: post_country.to_string(), tokens, engine, counters: counters.clone() });
    let router = Router::new().fallback(take_event).layer(DefaultBodyLimit::max(limit)).with_state(feed);
    let what = id.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, remote) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(feed = %what, %error, "accepting a connection failed");
                    continue;
                }
            };
            let router = router.clone();
            let tls = tls.clone();
            let what = what.clone();
            tokio::spawn(async move {
                match tls {
                    None => serve_connection(tcp, router, Peer { remote, certificate: None }).await,
                    Some(acceptor) => match tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let certificate = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(subject_common_name);
                            serve_connection(stream, router, Peer { remote, certificate }).await
                        }
                        Ok(Err(error)) => tracing::warn!(feed = %what, %remote, %error, "TLS handshake refused"),
                        Err(_) => tracing::warn!(feed = %what, %remote, "no TLS handshake within 10 s"),
                    },
                }
            });
        }
    });
    Ok(FeedHandle { id, bound, counters })
}

async fn serve_connection<S>(stream: S, router: Router, peer: Peer)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router.layer(Extension(peer)));
    if let Err(error) = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
        tracing::debug!(%error, "feed connection ended");
    }
}

/// A 4xx or 5xx answer with a JSON body naming what is wrong.
fn refuse(status: StatusCode, field: Option<&str>, message: &str) -> Response {
    let body = serde_json::json!({ "error": message, "field": field });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn token_of(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))
    {
        return Some(token.trim().to_string());
    }
    let query = uri.query()?;
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned())
}

async fn take_event(State(feed): State<Arc<Feed>>, Extension(peer): Extension<Peer>, method: axum::http::Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    feed.counters.requests.fetch_add(1, Ordering::Relaxed);
    let id = &feed.config.id;
    // Who sent it: a verified client certificate, else a token, when the feed asks for either.
    let guarded = feed.tokens.is_some() || feed.config.client_ca.is_some();
    let sender = match (&peer.certificate, token_of(&headers, &uri)) {
        (Some(name), _) => Some(name.clone()),
        (None, Some(token)) => feed.tokens.as_ref().and_then(|t| t.user(&token)).map(str::to_string),
        (None, None) => None,
    };
    if guarded && sender.is_none() {
        feed.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(feed = %id, remote = %peer.remote, "event refused: no valid token or client certificate");
        let mut answer = refuse(StatusCode::UNAUTHORIZED, None, "a valid bearer token (Authorization header or ?token=) or client certificate is needed");
        answer.headers_mut().insert(header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        return answer;
    }
    if method != axum::http::Method::POST && method != axum::http::Method::PUT {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, None, "events are sent with POST");
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let parsed = match &feed.config.format {
        FeedFormat::HikvisionIsapi => hikvision::parse_body(content_type, body).await.map(|p| vec![p]),
        FeedFormat::Json(fields) => match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Array(events)) => events
                .iter()
                .enumerate()
                .map(|(i, e)| event::parse_json(e, fields).map_err(|err| EventError::new(format!("[{i}]{}", err.field), err.message)))
                .collect(),
            Ok(value) => event::parse_json(&value, fields).map(|p| vec![p]),
            Err(e) => Err(EventError::new("body", format!("is not JSON ({e})"))),
        },
    };
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return malformed(&feed, &peer, StatusCode::BAD_REQUEST, &error),
    };
    let mut reads: Vec<PlateRead> = Vec::new();
    let mut crops: Vec<(String, Vec<u8>)> = Vec::new();
    let mut ignored = Vec::new();
    for event in parsed {
        let event: VendorEvent = match event {
            Parsed::Plate(event) => event,
            Parsed::Ignored(what) => {
                ignored.push(what);
                continue;
            }
        };
        let Some(camera) = feed_camera(&feed.config, &event) else {
            let error = EventError::new("camera", format!("the event names the camera {:?}, which is not a [[feed.camera]] device of feed `{id}`", event.device));
            return malformed(&feed, &peer, StatusCode::UNPROCESSABLE_ENTITY, &error);
        };
        let read = to_read(&feed.post_id, &feed.post_country, &feed.config, camera, &event);
        if let Some(image) = event.image {
            crops.push((read.read_id.clone(), image));
        }
        reads.push(read);
    }
    feed.counters.ignored.fetch_add(ignored.len() as u64, Ordering::Relaxed);
    let read_ids: Vec<String> = reads.iter().map(|r| r.read_id.clone()).collect();
    if reads.is_empty() {
        let body = serde_json::json!({ "taken": 0, "repeated": 0, "ignored": ignored, "read_ids": read_ids });
        return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    }
    match feed.engine.push_reads(FeedPush { source: format!("feed `{id}`"), reads, crops }).await {
        Ok(taken) => {
            feed.counters.reads.fetch_add(taken.new as u64, Ordering::Relaxed);
            feed.counters.repeated.fetch_add(taken.repeated as u64, Ordering::Relaxed);
            let body = serde_json::json!({ "taken": taken.new, "repeated": taken.repeated, "ignored": ignored, "read_ids": read_ids });
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
        }
        Err(error) => {
            feed.counters.unavailable.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(feed = %id, %error, "event not taken; the camera will send it again");
            refuse(StatusCode::SERVICE_UNAVAILABLE, None, &format!("not taken, send it again: {error}"))
        }
    }
}

fn malformed(feed: &Feed, peer: &Peer, status: StatusCode, error: &EventError) -> Response {
    feed.counters.malformed.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(feed = %feed.config.id, remote = %peer.remote, field = %error.field, error = %error.message, "event refused");
    refuse(status, Some(&error.field), &format!("{}: {}", error.field, error.message))
}
