//! The operator console: a web page served by `serve` on its own port
//! (`[serve] console_listen`), for the people who watch the lanes.
//!
//! ```text
//! camera workers ─LiveFrame─▶ LiveFrames ─JPEG + tracks─▶ WebSocket /api/live/<camera> ─▶ <canvas>
//! serve loop ─reads, flags, health─▶ ConsoleHub ─▶ SSE /api/events ─▶ reads table, flags, health
//! engine thread ◀─SQL (EngineHandle)─ /api/search, /api/charts, /api/crops/<read_id>
//! ```
//!
//! The page (`assets/`, embedded in the binary: nothing is fetched from
//! outside the post) logs in with an analyst's token (the Flight SQL
//! server's `[serve] tokens`, the same `[[serve.role]]`s); the server
//! answers with a session cookie (HttpOnly, SameSite=Strict, Secure over
//! TLS), because a browser cannot put a bearer token on a WebSocket or an
//! `EventSource`. Each endpoint asks the role for the table it shows:
//! the live view, the reads and search need `reads`, the flags
//! `risk_flags`, the charts `dwell_percentiles` / `transit_percentiles`.
//! Logins, searches by plate, crops and evidence clips are audited like
//! analysts' queries (`audit/<post>/sql/…`, the `audit_log` table).
//!
//! The live view is a WebSocket per camera: each binary message is one
//! processed frame as JPEG with its tracked boxes, their readings and the
//! counting line as JSON (drawn by the page over the picture), and the
//! page asks for the next frame once it has drawn one. A slow page thus
//! skips frames instead of queueing them, and the latency from a frame's
//! decoding to its drawing stays about one frame's processing (the page
//! shows it, measured per frame). MJPEG would need boxes burnt into the
//! pixels and cannot tell the page when a frame was made; HLS adds
//! seconds of segment latency; WebRTC needs a media stack this post does
//! not otherwise carry.

mod auth;
mod live;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use borderflow_engine::Storage;
use borderflow_types::{CameraConfig, CameraHealth, LiveFrames, PlateRead, ServeConfig};
use futures::Stream;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::engine_handle::EngineHandle;
use crate::exchange::tls::{TlsFiles, server_config};
use crate::flight_sql::Tokens;
use crate::outbound::{OutRow, json_rows};

pub use auth::Caller;

/// Reads and flags the page gets when it opens (newest first).
const RECENT: usize = 50;

/// What the serve loop tells the console, and what the console holds for
/// pages that open now.
pub struct ConsoleHub {
    pub post_id: String,
    /// The post's cameras, as the page lists them.
    cameras: Vec<CameraConfig>,
    /// The camera workers' latest frames.
    pub live: Arc<LiveFrames>,
    events: broadcast::Sender<ConsoleEvent>,
    recent_reads: Mutex<VecDeque<serde_json::Value>>,
    recent_flags: Mutex<VecDeque<serde_json::Value>>,
    health: Mutex<Vec<CameraHealth>>,
}

/// One server-sent event: its name and JSON data.
#[derive(Clone, Debug)]
struct ConsoleEvent {
    name: &'static str,
    data: Arc<str>,
}

impl ConsoleHub {
    pub fn new(post_id: &str, cameras: Vec<CameraConfig>) -> Arc<ConsoleHub> {
        Arc::new(ConsoleHub {
            post_id: post_id.to_string(),
            cameras,
            live: LiveFrames::new(),
            events: broadcast::channel(1024).0,
            recent_reads: Mutex::default(),
            recent_flags: Mutex::default(),
            health: Mutex::default(),
        })
    }

    fn publish(&self, name: &'static str, value: &serde_json::Value, recent: Option<&Mutex<VecDeque<serde_json::Value>>>) {
        if let Some(recent) = recent
            && let Ok(mut recent) = recent.lock()
        {
            recent.push_front(value.clone());
            recent.truncate(RECENT);
        }
        // No page listening is not an error.
        let _ = self.events.send(ConsoleEvent { name, data: Arc::from(value.to_string()) });
    }

    /// Reads the engine has just taken.
    pub fn publish_reads(&self, reads: &[PlateRead]) {
        for read in reads {
            self.publish("read", &read_json(read), Some(&self.recent_reads));
        }
    }

    /// Rows the `risk_flags` view has just gained.
    pub fn publish_flags(&self, rows: &[OutRow]) {
        for row in rows {
            self.publish("flag", &flag_json(row), Some(&self.recent_flags));
        }
    }

    /// Every camera's health now.
    pub fn publish_health(&self, health: Vec<CameraHealth>) {
        let value = serde_json::to_value(&health).unwrap_or_default();
        if let Ok(mut held) = self.health.lock() {
            *held = health;
        }
        self.publish("health", &value, None);
    }
}

/// A read as the page shows it (times as RFC 3339 and as ms).
fn read_json(read: &PlateRead) -> serde_json::Value {
    let mut value = serde_json::to_value(read).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("captured_at".into(), iso(read.captured_at_ms).into());
        map.insert("has_crop".into(), read.crop_uri.is_some().into());
        map.remove("crop_uri");
    }
    value
}

fn flag_json(row: &OutRow) -> serde_json::Value {
    let evidence: Vec<String> = row
        .row
        .get("evidence")
        .and_then(|e| e.as_str())
        .map(|e| e.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    serde_json::json!({ "id": row.id, "row": row.row, "evidence": evidence })
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)).unwrap_or_default()
}

/// Exports a read's evidence clip: given the read id and who asks, the
/// MP4 (see `borderflow clip`, which also writes its sidecar and audit record).
pub type ClipExporter = Arc<dyn Fn(&str, &str) -> Result<Vec<u8>, String> + Send + Sync>;

/// The console's server state.
pub(crate) struct Console {
    hub: Arc<ConsoleHub>,
    engine: EngineHandle,
    storage: Storage,
    auth: auth::Sessions,
    tls: bool,
    clips: Option<ClipExporter>,
}

/// Starts the console on `listen` (on the current tokio runtime), TLS
/// with `[serve] tls_cert`/`tls_key` when set; returns where it listens.
pub async fn start(
    listen: &str,
    config: &ServeConfig,
    storage: Storage,
    engine: EngineHandle,
    hub: Arc<ConsoleHub>,
    clips: Option<ClipExporter>,
) -> Result<SocketAddr, String> {
    let at = |e: String| format!("console: {e}");
    let tokens = match &config.tokens {
        Some(path) => Tokens::from_file(path).map_err(at)?,
        None => return Err(at("the console needs `[serve] tokens` (who may log in)".into())),
    };
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let files = TlsFiles { cert: cert.clone(), key: key.clone(), ca: None };
            let mut tls = server_config(&files, true).map_err(|e| at(e.to_string()))?;
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls)))
        }
        _ => None,
    };
    let listener = TcpListener::bind(listen).await.map_err(|e| at(format!("listening on {listen}: {e}")))?;
    let bound = listener.local_addr().map_err(|e| at(e.to_string()))?;
    let console = Arc::new(Console {
        auth: auth::Sessions::new(tokens, &config.roles, &hub.post_id, storage.clone()),
        hub,
        engine,
        storage,
        tls: tls.is_some(),
        clips,
    });
    let router = router(console);
    tokio::spawn(async move {
        loop {
            let (tcp, remote) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "console: accepting a connection failed");
                    continue;
                }
            };
            let router = router.clone().layer(axum::Extension(auth::Remote(remote)));
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => serve_connection(tcp, router).await,
                    Some(acceptor) => match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => serve_connection(stream, router).await,
                        Ok(Err(error)) => tracing::warn!(%remote, %error, "console: TLS handshake refused"),
                        Err(_) => tracing::warn!(%remote, "console: no TLS handshake within 10 s"),
                    },
                }
            });
        }
    });
    Ok(bound)
}

async fn serve_connection<S>(stream: S, router: Router)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    // Upgrades: the live view's WebSockets.
    if let Err(error) = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).with_upgrades().await {
        tracing::debug!(%error, "console connection ended");
    }
}

fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", include_str!("assets/index.html")) }))
        .route("/console.js", get(|| async { asset("text/javascript; charset=utf-8", include_str!("assets/console.js")) }))
        .route("/console.css", get(|| async { asset("text/css; charset=utf-8", include_str!("assets/console.css")) }))
        .route("/api/login", post(auth::login))
        .route("/api/logout", post(auth::logout))
        .route("/api/me", get(me))
        .route("/api/events", get(events))
        .route("/api/live/{camera}", get(live::live))
        .route("/api/crops/{read_id}", get(crop))
        .route("/api/search", get(search))
        .route("/api/charts", get(charts))
        .route("/api/clips/{read_id}", get(clip))
        .with_state(console)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// A JSON error answer: `{"error": …}`.
pub(crate) fn refuse(status: StatusCode, message: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], serde_json::json!({ "error": message }).to_string()).into_response()
}

fn json(value: serde_json::Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], value.to_string()).into_response()
}

/// Who is logged in, what the console shows them, and what it holds now.
async fn me(State(console): State<Arc<Console>>, caller: Caller) -> Response {
    let may = |table: &str| caller.role.may_read(table);
    let cameras: Vec<serde_json::Value> = console
        .hub
        .cameras
        .iter()
        .map(|c| serde_json::json!({ "id": c.id, "lane": c.lane, "direction": c.direction, "point": c.point }))
        .collect();
    let reads: Vec<serde_json::Value> =
        if may("reads") { console.hub.recent_reads.lock().map(|r| r.iter().cloned().collect()).unwrap_or_default() } else { Vec::new() };
    let flags: Vec<serde_json::Value> =
        if may("risk_flags") { console.hub.recent_flags.lock().map(|r| r.iter().cloned().collect()).unwrap_or_default() } else { Vec::new() };
    let health = console.hub.health.lock().map(|h| serde_json::to_value(&*h).unwrap_or_default()).unwrap_or_default();
    json(serde_json::json!({
        "user": caller.user,
        "role": caller.role.name,
        "post": console.hub.post_id,
        "may": { "reads": may("reads"), "risk_flags": may("risk_flags"), "charts": may("dwell_percentiles") || may("transit_percentiles") },
        "cameras": cameras,
        "reads": reads,
        "flags": flags,
        "health": health,
        "clips": console.clips.is_some(),
    }))
}

/// Server-sent events: `read`, `flag` and `health`, as the role allows.
async fn events(State(console): State<Arc<Console>>, caller: Caller) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
    let (reads, flags) = (caller.role.may_read("reads"), caller.role.may_read("risk_flags"));
    let stream = BroadcastStream::new(console.hub.events.subscribe()).filter_map(move |event| match event {
        Ok(event) => {
            let allowed = match event.name {
                "read" => reads,
                "flag" => flags,
                _ => true,
            };
            allowed.then(|| Ok(Event::default().event(event.name).data(&*event.data)))
        }
        // A page that fell behind misses events; it is told so.
        Err(BroadcastStreamRecvError::Lagged(missed)) => Some(Ok(Event::default().event("lagged").data(serde_json::json!({ "missed": missed }).to_string()))),
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// A read id as the engine makes them (a ULID), or `None`.
fn checked_read_id(read_id: &str) -> Option<&str> {
    (read_id.len() == 26 && read_id.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(read_id)
}

/// A read's plate crop (JPEG), audited.
async fn crop(State(console): State<Arc<Console>>, caller: Caller, Path(read_id): Path<String>) -> Response {
    if !caller.role.may_read("reads") {
        return refuse(StatusCode::FORBIDDEN, &format!("role `{}` may not read `reads`", caller.role.name));
    }
    let Some(read_id) = checked_read_id(&read_id) else { return refuse(StatusCode::BAD_REQUEST, "not a read id") };
    let sql = format!("SELECT post_id, CAST(captured_at AS BIGINT) AS at FROM reads WHERE read_id = '{read_id}' AND crop_uri IS NOT NULL");
    let found = match console.engine.sql(&sql).await {
        Ok(batch) => json_rows(&batch).unwrap_or_default(),
        Err(error) => return refuse(StatusCode::SERVICE_UNAVAILABLE, &error),
    };
    let Some(row) = found.first() else {
        console.auth.audit(&caller, "Console.Crop", Some(&sql), &[read_id], Some(0), Some("no such read with a crop")).await;
        return refuse(StatusCode::NOT_FOUND, &format!("no read {read_id} with a plate crop"));
    };
    let post = row.get("post_id").and_then(|v| v.as_str()).unwrap_or_default();
    let at = row.get("at").and_then(|v| v.as_i64()).unwrap_or_default();
    let path = borderflow_engine::history::crop_path(post, at, read_id);
    match console.storage.get(&path).await {
        Ok(jpeg) => {
            console.auth.audit(&caller, "Console.Crop", Some(&sql), &[read_id], Some(1), None).await;
            ([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "private, max-age=3600")], jpeg).into_response()
        }
        Err(error) => refuse(StatusCode::NOT_FOUND, &error.to_string()),
    }
}

#[derive(serde::Deserialize)]
struct SearchQuery {
    plate: String,
}

/// The reads of a plate (normalised, fuzzy look-alikes included), newest
/// first, audited with the plate asked for.
async fn search(State(console): State<Arc<Console>>, caller: Caller, Query(query): Query<SearchQuery>) -> Response {
    if !caller.role.may_read("reads") {
        return refuse(StatusCode::FORBIDDEN, &format!("role `{}` may not read `reads`", caller.role.name));
    }
    let norm = borderflow_types::plate_norm(&query.plate);
    // The normalised plate is letters and digits only: nothing to escape.
    if norm.is_empty() || !norm.bytes().all(|b| b.is_ascii_alphanumeric()) || norm.len() > 16 {
        return refuse(StatusCode::BAD_REQUEST, "a plate is 1 to 16 letters and digits");
    }
    let sql = format!(
        "SELECT read_id, post_id, camera_id, lane, direction, point, captured_at, plate_text, plate_norm, plate_country, confidence, crop_uri IS NOT NULL AS has_crop \
         FROM reads WHERE plate_fuzzy(plate_norm) = plate_fuzzy('{norm}') ORDER BY captured_at DESC LIMIT 200"
    );
    match console.engine.sql(&sql).await {
        Ok(batch) => {
            let rows = json_rows(&batch).unwrap_or_default();
            console.auth.audit(&caller, "Console.Search", Some(&sql), &[&norm], Some(rows.len() as i64), None).await;
            json(serde_json::json!({ "plate": norm, "reads": rows }))
        }
        Err(error) => {
            console.auth.audit(&caller, "Console.Search", Some(&sql), &[&norm], None, Some(&error)).await;
            refuse(StatusCode::SERVICE_UNAVAILABLE, &error)
        }
    }
}

/// Dwell and transit times per post and hour, from the standard views
/// (those the role may read and the engine has).
async fn charts(State(console): State<Arc<Console>>, caller: Caller) -> Response {
    let mut out = serde_json::Map::new();
    for (view, sql) in [
        ("dwell_percentiles", "SELECT post_id, direction, CAST(hour AS BIGINT) AS hour_ms, passages, p50_s, p90_s FROM dwell_percentiles ORDER BY hour, post_id, direction"),
        ("transit_percentiles", "SELECT entry_post_id, CAST(hour AS BIGINT) AS hour_ms, transits, p50_s, p90_s FROM transit_percentiles ORDER BY hour, entry_post_id"),
    ] {
        if !caller.role.may_read(view) {
            continue;
        }
        let rows = match console.engine.sql(sql).await {
            Ok(batch) => serde_json::Value::Array(json_rows(&batch).unwrap_or_default().into_iter().map(serde_json::Value::Object).collect()),
            // A post without the standard views has no charts.
            Err(_) => continue,
        };
        out.insert(view.to_string(), rows);
    }
    json(serde_json::Value::Object(out))
}

/// A read's evidence clip (MP4), exported and audited like `borderflow clip`.
async fn clip(State(console): State<Arc<Console>>, caller: Caller, Path(read_id): Path<String>) -> Response {
    if !caller.role.may_read("reads") {
        return refuse(StatusCode::FORBIDDEN, &format!("role `{}` may not read `reads`", caller.role.name));
    }
    let Some(read_id) = checked_read_id(&read_id).map(str::to_string) else { return refuse(StatusCode::BAD_REQUEST, "not a read id") };
    let Some(exporter) = console.clips.clone() else { return refuse(StatusCode::NOT_FOUND, "this post records no video") };
    let user = caller.user.clone();
    let id = read_id.clone();
    let exported = tokio::task::spawn_blocking(move || exporter(&id, &user)).await.unwrap_or_else(|e| Err(e.to_string()));
    match exported {
        Ok(mp4) => {
            console.auth.audit(&caller, "Console.Clip", None, &[&read_id], Some(1), None).await;
            let disposition = format!("attachment; filename=\"{read_id}.mp4\"");
            Response::builder()
                .header(header::CONTENT_TYPE, "video/mp4")
                .header(header::CONTENT_DISPOSITION, disposition)
                .body(Body::from(mp4))
                .unwrap_or_else(|_| refuse(StatusCode::INTERNAL_SERVER_ERROR, "answer"))
        }
        Err(error) => {
            console.auth.audit(&caller, "Console.Clip", None, &[&read_id], None, Some(&error)).await;
            refuse(StatusCode::NOT_FOUND, &error)
        }
    }
}
