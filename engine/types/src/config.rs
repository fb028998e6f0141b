//! The post configuration: one TOML file per post, read by
//! [`PostConfig::from_file`] (or [`PostConfig::from_toml`] for text in hand).
//!
//! This comment is the reference of the file's options, with their defaults.
//! Every table refuses keys it does not know, so a typo is an error, not a
//! silently ignored line. Relative paths are relative to the folder of the
//! configuration file, and are stored resolved to absolute paths.
//!
//! ```toml
//! [post]                      # required
//! id = "otaci"                # required; letters, digits, `-`, `_`; unique among posts that exchange data
//! name = "Otaci"              # required; for people
//! country = "MD"              # required; ISO 3166 alpha-2, two capital letters
//! crossing = "otaci-mohyliv-podilskyi"   # required; the crossing this post is one side of
//!
//! [peer]                      # optional; the neighbour's post across the bridge
//! post = "mohyliv-podilskyi"  # required in [peer]; another post's id
//! endpoint = "https://127.0.0.1:8815"    # optional; http(s):// or grpc(+tls):// URL of the peer
//! ca = "certs/ua-customs-ca.pem"         # optional; mutual TLS: the peer's CA
//! cert = "certs/otaci.pem"               # optional; this post's certificate
//! key = "certs/otaci.key"                # optional; this post's private key
//! hmac_keys = "secrets/exchange-keys.toml"   # optional; versioned shared keys
//!
//! [serve]                     # optional; what `borderflow serve` listens on
//! exchange_listen = "127.0.0.1:8817"   # optional; where the peer sends its pre-arrival records
//!                             # (Arrow Flight DoPut, mutual TLS with [peer] ca, cert and key)
//! sql_listen = "127.0.0.1:8820"        # optional; Flight SQL for analysts
//! metrics_listen = "127.0.0.1:9464"    # optional; GET /metrics (OpenMetrics text, no plate in it)
//! console_listen = "127.0.0.1:8080"    # optional; the operator console (needs `tokens`; TLS with tls_cert/tls_key)
//! tokens = "secrets/analyst-tokens.toml"   # optional; analysts' bearer tokens: [[token]] user = "…",
//!                             # sha256 = "<hex SHA-256 of the token>"
//! tls_cert = "certs/otaci-sql.pem"     # optional, with tls_key: TLS for the Flight SQL server
//! tls_key = "certs/otaci-sql.key"
//! client_ca = "certs/md-analysts-ca.pem"   # optional, with TLS: a client certificate signed by this
//!                             # authority admits an analyst without a token (user = its common name)
//! query_memory_mb = 512       # optional, default 512: memory one query may use
//! query_timeout = "60s"       # optional, default 60s: time one query may run
//! result_ttl = "5m"           # optional, default 5m: how long an answer waits for its DoGet
//! answers_memory_mb = 2048   # optional, default 2048 (at least query_memory_mb): memory all
//!                             # answers waiting for their DoGet may hold together
//!
//! [[serve.role]]              # optional, repeated; what analysts may read. Without any role,
//!                             # every admitted analyst reads every table and view (not the audit log)
//! name = "border-police"      # required; letters, digits, `-`, `_`; unique
//! read = ["risk_flags", "cross_border_matches"]   # required; table and view names, `*` for all
//!                             # but the audit log, `prefix*` for names that start with prefix,
//!                             # "audit_log" for the Flight SQL audit records
//! users = ["desk-1"]          # optional; token users and client certificate common names in
//!                             # this role (a user is in one role; a user in none is refused)
//!
//! [storage]                   # optional
//! url = "file://./data"       # default: the folder `data` beside this file; also s3://bucket/prefix,
//!                             # gs://, az://, … (kept as written)
//! retention = { reads = "30d", flags = "90d", crops = "7d", video = "30d" }   # each optional,
//!                             # these defaults; a whole number and a unit: s, m, h, d or w ("12h", "90m").
//!                             # reads: the `reads` table, by `captured_at`: older reads are retracted
//!                             # from every view and deleted from the write-ahead log;
//!                             # flags: the views' changelog files (views/<view>/changes/);
//!                             # crops: plate crop images;
//!                             # video: recorded segments ([recording]), by the end of each segment
//!
//! [storage.s3]                # optional; for s3:// URLs. Each key left out is taken from the
//!                             # environment (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
//!                             # AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), as AWS tools do
//! endpoint = "http://127.0.0.1:9000"   # optional; an S3-compatible server; default: AWS
//! region = "eu-central-1"     # optional
//! access_key_id = "…"         # optional
//! secret_access_key = "…"     # optional
//! session_token = "…"         # optional
//! allow_http = true           # optional; default: true when `endpoint` is http://
//! max_retries = 10            # optional, default 10; a failed request is retried with exponential
//! retry_timeout = "3m"        # backoff at most this often and this long (default 3 minutes)
//! request_timeout = "30s"     # optional, default 30s: one request's limit
//!
//! [recording]                 # optional; the cameras' own video kept in segments, for evidence clips
//! path = "video"              # a local folder, relative to this file; default: the folder `video` in
//!                             # [storage] url when it is file://; required with any other storage
//! segment = "60s"             # optional, default 60s: the length of one segment file, 2s to 1h
//!                             # (a segment ends at the first key frame after that long)
//!
//! [[camera]]                  # one table per camera; none is fine
//! id = "otaci-entry-arrival-1"   # required; unique in this file
//! uri = "rtsp://127.0.0.1:8554/otaci-entry-arrival-1"   # required; file://, rtsp://, http://,
//!                             # https:// (MJPEG) or dir:// (a folder of images); a relative
//!                             # file:// or dir:// path is beside this file, the rest kept as written
//! lane = 1                    # required; 1 or more
//! direction = "entry"         # required; "entry" or "exit": vehicles entering or leaving `country`
//! point = "arrival"           # required; "arrival" or "departure": where in the control zone
//! counting_line = [[0.05, 0.60], [0.95, 0.60]]   # required; two distinct points, fractions 0..=1
//!                             # of the frame's width and height (origin top left)
//! from_side = "top"           # required; "top", "bottom", "left" or "right": a track crossing the
//!                             # line from this side is a passage
//! max_fps = 25                # optional; default: every frame the camera sends
//! transport = "tcp"           # optional, rtsp:// only, default "tcp": "tcp" (RTP interleaved in the
//!                             # RTSP connection) or "udp"
//! latency_ms = 200            # optional, rtsp:// only, default 200: the jitter buffer, 0 to 10000
//! stall_timeout_ms = 5000     # optional, rtsp:// and http(s):// only, default 5000: a stream that
//!                             # delivers no frame this long is reopened (with backoff); 100 or more
//! image_interval_ms = 1000    # optional, dir:// only, default 1000: event time between two images
//! queue_frames = 8            # optional, default 8: decoded frames waiting for the engine; a live
//!                             # camera drops (and counts) frames when it is full; 1 to 10000
//! decoder_threads = 0         # optional, default 0 (the decoder decides): video decoder threads, 0 to 64
//! record = "continuous"       # optional, only with [recording]: "continuous" (the camera's H.264 or
//!                             # H.265 stream is kept as it arrives, no re-encoding) or "off"; default:
//!                             # "continuous" for file:// and rtsp:// cameras, "off" for http(s):// (MJPEG)
//!                             # and dir://, which cannot be recorded
//!
//! [[view]]                    # one table per standing SQL view; none is fine
//! name = "exits_per_lane"     # required; an SQL identifier (letters, digits, `_`), unique
//! sql = "SELECT lane, count(*) AS passages FROM reads GROUP BY lane"   # required
//!
//! [watchlist]                 # optional; the watchlist, the whole list, read again when it changes
//! path = "watchlist.csv"      # a local .csv (header row) or .parquet file with columns plate, reason,
//!                             # severity (1-3), and optionally valid_from, valid_to (timestamps;
//!                             # empty: open); or instead:
//! # object = "reference/watchlist.parquet"   # the same, as a key in [storage] url's store
//! reload = "30s"              # optional, default 30s: how often a running post looks for a new version;
//!                             # entries that leave the list are closed (valid_to set), the API's
//!                             # upserts last until the list changes again
//!
//! [scenario]                  # optional; simulated traffic as a source of reads
//! seed = 42                   # required in [scenario]; 0 or more
//! start = "2026-11-27"        # required in [scenario]; first simulated day (UTC), string or TOML date
//! days = 1                    # optional, default 1; 1 or more
//! traffic_scale = 1.0         # optional, default 1.0; more than 0
//!
//! [[feed]]                    # optional, repeated; plate events from cameras that read plates themselves
//! id = "otaci-anpr"           # required; letters, digits, `-`, `_`; unique among feeds
//! format = "hikvision-isapi"  # required; "hikvision-isapi" (ISAPI EventNotificationAlert XML, alone or
//!                             # as the anpr.xml part of multipart/form-data) or "json" (with [feed.fields])
//! listen = "127.0.0.1:8830"   # required; where the cameras POST their events
//! tokens = "secrets/feed-tokens.toml"   # optional; bearer tokens, as serve.tokens ([[token]] user, sha256)
//! tls_cert = "certs/otaci-feed.pem"     # optional, with tls_key: HTTPS
//! tls_key = "certs/otaci-feed.key"
//! client_ca = "certs/md-cameras-ca.pem" # optional, with TLS: a client certificate signed by it needs no token
//! max_event_kb = 4096         # optional, default 4096: the largest event (with its images) taken
//!
//! [[feed.camera]]             # required, repeated: the cameras that send to this feed
//! device = "1"                # required; what the events call the camera (Hikvision: channelID or
//!                             # ipAddress; json: the `camera` field), unique in the feed
//! id = "otaci-anpr-entry-1"   # required; the camera id reads carry, unique among all cameras
//! lane = 1                    # required, as in [[camera]]
//! direction = "entry"         # required, as in [[camera]]
//! point = "arrival"           # required, as in [[camera]]
//!
//! [feed.fields]               # format = "json" only: JSON Pointers (RFC 6901) into each event
//! event_id = "/id"            # required; the camera's own event id (a repeated event is taken once)
//! camera = "/camera"          # required; matched against [[feed.camera]] device
//! plate = "/plate/text"       # required
//! time = "/time"              # required; RFC 3339 text or milliseconds since the Unix epoch
//! confidence = "/plate/confidence"   # optional; 0-100 or 0-1 (default 1)
//! image = "/plate/jpeg"       # optional; the plate crop, base64 JPEG
//!
//! [[webhook]]                 # optional, repeated; a view's new rows POSTed as JSON, at least once
//! name = "control-room"       # required; letters, digits, `-`, `_`; unique
//! url = "https://127.0.0.1:9443/flags"  # required; http:// or https://
//! view = "risk_flags"         # optional, default "risk_flags"
//! secret = "secrets/webhook.key"        # optional; a file whose contents sign each body (HMAC-SHA256,
//!                             # header X-Borderflow-Signature: sha256=<hex>)
//! timeout = "10s"             # optional, default 10s: one request's limit
//! max_backoff = "5m"          # optional, default 5m: the longest wait between tries
//!
//! [mqtt]                      # optional; a message bus (MQTT 3.1.1, QoS 1)
//! broker = "mqtt://127.0.0.1:1883"      # required
//! client_id = "borderflow-otaci"        # optional, default borderflow-<post id>
//! reads_topic = "borderflow/otaci/reads"            # optional, this default: every new read, as JSON
//! flags_topic = "borderflow/otaci/risk_flags"       # optional, this default: every new risk flag
//! health_topic = "borderflow/otaci/health"          # optional, this default: <topic>/<camera>, retained
//! input_topic = "borderflow/otaci/reads/in"         # optional; reads (the JSON of reads_topic) taken
//!                             # from this topic as another source
//! buffer = 10000              # optional, default 10000: messages held while the broker is away;
//!                             # more are dropped and counted, never blocking the cameras
//! ```
//!
//! Parsing keeps the byte spans of values (private "raw" structs of
//! `toml::Spanned` fields, read through `serde_path_to_error` for the field
//! path), so every error, whether TOML syntax, a type mismatch or a semantic
//! check, is a [`ConfigError`] that names the file, the line and column, and
//! the field. The first error found is returned.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use keys::{parse_exchange_keys, read_exchange_keys};

use crate::{Direction, Point};

mod cameras;
mod integrations;
mod roles;
mod checks;
mod keys;
mod raw;
mod source;

/// A configuration error: what is wrong, and where.
///
/// Displays as `file:line:column: field: message` (`file: field: message`
/// when no place in the file is at fault).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError {
    /// The configuration file, as the caller named it.
    pub file: String,
    /// 1-based line of the offending value (for a missing field: of the table
    /// that lacks it, e.g. its `[[camera]]` header); 0 when the error is not
    /// tied to a place in the file (e.g. the file cannot be read).
    pub line: usize,
    /// 1-based column, in characters; 0 together with `line`.
    pub column: usize,
    /// Dotted path of the field, e.g. `camera[2].uri`. Indices into arrays of
    /// tables are 1-based, counted in file order: `camera[1]` is the first
    /// `[[camera]]` table, `counting_line` points likewise. `(syntax)` for a
    /// TOML syntax error whose key cannot be told, `(file)` when the file
    /// itself is the problem.
    pub field: String,
    /// What is wrong, in plain words.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}: {}", self.file, self.field, self.message),
            line => write!(f, "{}:{line}:{}: {}: {}", self.file, self.column, self.field, self.message),
        }
    }
}

/// `[post]`: which post this is.
#[derive(Clone, Debug, PartialEq)]
pub struct PostSection {
    /// Unique among all posts that exchange data; letters, digits, `-` and `_`.
    pub id: String,
    /// For people.
    pub name: String,
    /// ISO 3166 alpha-2 code of the country the post stands in (`MD`, `UA`).
    pub country: String,
    /// The crossing this post is one side of, e.g. `otaci-mohyliv-podilskyi`.
    pub crossing: String,
}

/// `[peer]`: the neighbour's post across the bridge, which pre-arrival data is
/// exchanged with. Paths are absolute (resolved against the config's folder);
/// their files are not required to exist when the config is read.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerConfig {
    /// The peer's post id; must differ from this post's.
    pub post: String,
    /// The peer's address, an `http(s)://` or `grpc(+tls)://` URL; none: not reachable yet.
    pub endpoint: Option<String>,
    /// Mutual TLS: the certificate authority that signs the peer's certificate.
    pub ca: Option<PathBuf>,
    /// Mutual TLS: this post's certificate.
    pub cert: Option<PathBuf>,
    /// Mutual TLS: this post's private key.
    pub key: Option<PathBuf>,
    /// The versioned HMAC keys the two services share for plate hashes.
    pub hmac_keys: Option<PathBuf>,
}

/// `[serve]`: what `borderflow serve` listens on, and the analysts' limits.
/// Paths are absolute (resolved against the config's folder).
#[derive(Clone, Debug, PartialEq)]
pub struct ServeConfig {
    /// Where the peer's pre-arrival records arrive (`host:port`).
    pub exchange_listen: Option<String>,
    /// Where the Flight SQL server listens (`host:port`).
    pub sql_listen: Option<String>,
    /// Where `/metrics` is served (`host:port`), for Prometheus.
    pub metrics_listen: Option<String>,
    /// Where the operator console is served (`host:port`).
    pub console_listen: Option<String>,
    /// The analysts' bearer tokens (a TOML file of `[[token]] user, sha256`).
    pub tokens: Option<PathBuf>,
    /// TLS for the Flight SQL server.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// With TLS: analysts presenting a certificate signed by this CA are admitted.
    pub client_ca: Option<PathBuf>,
    /// Memory one query may use, in MiB (default 512).
    pub query_memory_mb: u64,
    /// Time one query may run (default 60 s).
    pub query_timeout: Duration,
    /// How long an answer waits for its `DoGet` before it is dropped
    /// (default 5 minutes).
    pub result_ttl: Duration,
    /// Memory all answers waiting for their `DoGet` may hold together, in
    /// MiB (default 2048; at least `query_memory_mb`): a query whose answer
    /// would pass it is refused until answers are fetched or expire.
    pub answers_memory_mb: u64,
    /// `[[serve.role]]`: who may read what. Empty: every admitted analyst
    /// reads every table and view (not the audit log).
    pub roles: Vec<RoleConfig>,
}

/// `[[serve.role]]`: a named set of users and the tables and views they may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleConfig {
    pub name: String,
    /// Table and view names; `*` is every one but the audit log, `prefix*`
    /// those whose name starts with `prefix`.
    pub read: Vec<String>,
    /// Token users and client certificate common names.
    pub users: Vec<String>,
}

/// The table of the Flight SQL audit records, readable only by a role that names it.
pub const AUDIT_LOG_TABLE: &str = "audit_log";

impl RoleConfig {
    /// Whether the role may read `table`.
    pub fn may_read(&self, table: &str) -> bool {
        self.read.iter().any(|grant| match grant.strip_suffix('*') {
            Some("") => table != AUDIT_LOG_TABLE,
            Some(prefix) => table.starts_with(prefix) && table != AUDIT_LOG_TABLE,
            None => grant == table,
        })
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            exchange_listen: None,
            sql_listen: None,
            metrics_listen: None,
            console_listen: None,
            tokens: None,
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            query_memory_mb: 512,
            query_timeout: Duration::from_secs(60),
            result_ttl: Duration::from_secs(300),
            answers_memory_mb: 2048,
            roles: Vec::new(),
        }
    }
}

/// `[storage].retention`: how long stored data is kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Retention {
    /// Plate reads (and the rows derived from them); default 30 days.
    pub reads: Duration,
    /// Risk flags; default 90 days.
    pub flags: Duration,
    /// Plate crop images; default 7 days.
    pub crops: Duration,
    /// Recorded video segments, by the end of each; default 30 days.
    pub video: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY_S: u64 = 24 * 3600;
        Retention {
            reads: Duration::from_secs(30 * DAY_S),
            flags: Duration::from_secs(90 * DAY_S),
            crops: Duration::from_secs(7 * DAY_S),
            video: Duration::from_secs(30 * DAY_S),
        }
    }
}

/// `[storage]`: where reads, view changelogs and crops are written.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageConfig {
    /// Absolute object store URL (`file:///…`, `s3://bucket/prefix`).
    /// Default: the folder `data` beside the configuration file. A relative
    /// `file://` path (`file://./data`) is resolved against the config's folder.
    pub url: String,
    /// Default: [`Retention::default`].
    pub retention: Retention,
    /// `[storage.s3]`: how to reach an `s3://` store (unused for `file://`).
    pub s3: S3Config,
}

/// `[recording]`: where the cameras' video segments are written and how
/// long each is (see [`crate::video`] for the names).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingConfig {
    /// A local folder, absolute (resolved against the configuration's folder).
    pub path: PathBuf,
    /// The length of one segment, 2 s to 1 h; default 60 s.
    pub segment: Duration,
}

impl RecordingConfig {
    pub const DEFAULT_SEGMENT: Duration = Duration::from_secs(60);
    pub const MIN_SEGMENT: Duration = Duration::from_secs(2);
    pub const MAX_SEGMENT: Duration = Duration::from_secs(3600);
}

/// `[storage.s3]`: the S3 endpoint, region, credentials and retries. A field
/// that is `None` is taken from the environment (`AWS_…` variables).
#[derive(Clone, Debug, PartialEq)]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Allow plain `http://` endpoints; default: when the endpoint is http://.
    pub allow_http: bool,
    /// Retries of a failed request (with exponential backoff); default 10.
    pub max_retries: usize,
    /// No retry starts later than this after the first attempt; default 3 minutes.
    pub retry_timeout: Duration,
    /// One request's limit; default 30 seconds.
    pub request_timeout: Duration,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            allow_http: false,
            max_retries: 10,
            retry_timeout: Duration::from_secs(180),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// `camera.from_side`: the side of the counting line that passages come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Top,
    Bottom,
    Left,
    Right,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Top => "top",
            Side::Bottom => "bottom",
            Side::Left => "left",
            Side::Right => "right",
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A line across the lane, in fractions of the frame's width and height
/// (`[x, y]`, origin at the top left, each in 0..=1); `a` and `b` differ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CountingLine {
    pub a: [f32; 2],
    pub b: [f32; 2],
}

/// `[[camera]]`: one camera of the post.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraConfig {
    /// Unique within the file; letters, digits, `-` and `_`.
    pub id: String,
    /// `file://`, `rtsp://`, `http://`, `https://` or `dir://`, as written,
    /// except that a relative `file://` or `dir://` path is made absolute
    /// against the configuration file's folder.
    pub uri: String,
    /// 1 or more.
    pub lane: u16,
    /// Whether vehicles seen here are entering or leaving the post's country.
    pub direction: Direction,
    /// Where the camera stands in the post's control zone.
    pub point: Point,
    pub counting_line: CountingLine,
    /// A track crossing the line from this side is a passage; the other way is not.
    pub from_side: Side,
    /// Frames per second to process at most; none (the default): all frames.
    pub max_fps: Option<u32>,
    /// How the camera's stream is read; each setting left out keeps the reader's default.
    pub source: CameraSourceSettings,
}

/// How RTSP media travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtspTransport {
    Tcp,
    Udp,
}

/// A `[[camera]]`'s settings of its stream reader (see the reference above
/// for what each means and its default); `None`: not set in the file.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CameraSourceSettings {
    pub transport: Option<RtspTransport>,
    pub latency_ms: Option<u32>,
    pub stall_timeout_ms: Option<u64>,
    pub image_interval_ms: Option<u64>,
    pub queue_frames: Option<usize>,
    pub decoder_threads: Option<u32>,
    /// Whether the camera's stream is also recorded (`record`, resolved
    /// with its default); it is, where the reader is given somewhere to
    /// record to (`[recording]`).
    pub record: bool,
}

/// `[[view]]`: a standing SQL view the engine keeps up to date.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewConfig {
    /// An SQL identifier, unique in the file (compared without regard to case).
    pub name: String,
    /// A `SELECT` in DataFusion's dialect (checked when the view is created).
    pub sql: String,
}

/// `[scenario]`: simulated traffic as a source of reads for this post's cameras.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioSourceConfig {
    /// Seed of the generator (required); the same seed gives the same traffic.
    pub seed: u64,
    /// First simulated day (UTC) (required).
    pub start: chrono::NaiveDate,
    /// Days simulated; default 1.
    pub days: u32,
    /// Multiplies the crossing's typical daily traffic; default 1.0.
    pub traffic_scale: f64,
}

/// One post's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct PostConfig {
    /// The file this configuration was read from, if any.
    pub path: Option<PathBuf>,
    pub post: PostSection,
    pub peer: Option<PeerConfig>,
    /// `[serve]`: listeners and limits of `borderflow serve`.
    pub serve: Option<ServeConfig>,
    pub storage: StorageConfig,
    /// `[recording]`: where the cameras' video is recorded; none: not recorded.
    pub recording: Option<RecordingConfig>,
    /// In file order.
    pub cameras: Vec<CameraConfig>,
    /// In file order.
    pub views: Vec<ViewConfig>,
    /// Reference tables views may use besides the engine's own, in file order.
    pub tables: Vec<TableConfig>,
    /// `[watchlist]`: the file (or object) that holds the watchlist.
    pub watchlist: Option<WatchlistConfig>,
    pub scenario: Option<ScenarioSourceConfig>,
    /// `[[feed]]`: listeners for third-party ANPR cameras' plate events, in file order.
    pub feeds: Vec<FeedConfig>,
    /// `[[webhook]]`: where risk flags (or another view's new rows) are posted, in file order.
    pub webhooks: Vec<WebhookConfig>,
    /// `[mqtt]`: the message bus reads, flags and camera health are published on.
    pub mqtt: Option<MqttConfig>,
}

/// `[[feed]]`: an HTTP(S) listener that takes plate events from cameras
/// that read plates themselves. Paths are absolute.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedConfig {
    /// Unique among the feeds; letters, digits, `-` and `_`.
    pub id: String,
    pub format: FeedFormat,
    /// `host:port`.
    pub listen: String,
    /// Bearer tokens (a TOML file of `[[token]] user, sha256`); none and no
    /// `client_ca`: every event is taken (a listener on a closed network).
    pub tokens: Option<PathBuf>,
    /// HTTPS: this listener's certificate and key.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// With HTTPS: a camera presenting a certificate signed by this CA needs no token.
    pub client_ca: Option<PathBuf>,
    /// The largest event (with its images) taken, in bytes; default 4 MiB.
    pub max_event_bytes: usize,
    /// The cameras that send to this feed, by the name their events give.
    pub cameras: Vec<FeedCamera>,
}

/// How a feed's events are written.
#[derive(Clone, Debug, PartialEq)]
pub enum FeedFormat {
    /// Hikvision ISAPI `EventNotificationAlert` with an `<ANPR>` element: as
    /// the XML body, or as the `anpr.xml` part of a `multipart/form-data`
    /// body whose `licensePlatePicture.jpg` part is the plate crop.
    HikvisionIsapi,
    /// A JSON object per event; `[feed.fields]` says where each field is.
    Json(JsonFields),
}

/// `[feed.fields]`: JSON Pointers (RFC 6901, e.g. `/plate/text`) to an
/// event's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonFields {
    /// The camera's own id of the event (deduplication).
    pub event_id: String,
    /// The camera's name, as `[[feed.camera]] device` gives it.
    pub camera: String,
    pub plate: String,
    /// RFC 3339 text, or a number of milliseconds since the Unix epoch.
    pub time: String,
    /// 0–100 or 0–1; none: 1.0.
    pub confidence: Option<String>,
    /// A base64 JPEG of the plate.
    pub image: Option<String>,
}

/// `[[feed.camera]]`: a third-party camera, its place in the post.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedCamera {
    /// What the camera's events call it: Hikvision's `channelID` or
    /// `ipAddress`, the JSON `camera` field.
    pub device: String,
    /// The camera id reads carry; unique among `[[camera]]` and feed cameras.
    pub id: String,
    pub lane: u16,
    pub direction: Direction,
    pub point: Point,
}

/// `[[webhook]]`: a view's new rows posted as JSON to an HTTP endpoint,
/// at least once, from an outbox that survives restarts.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookConfig {
    /// Unique among the webhooks; letters, digits, `-` and `_`.
    pub name: String,
    /// `http://` or `https://`.
    pub url: String,
    /// The view whose new rows are posted; default `risk_flags`.
    pub view: String,
    /// A file whose contents sign each body (HMAC-SHA256 in the
    /// `X-Borderflow-Signature` header); none: unsigned.
    pub secret: Option<PathBuf>,
    /// One request's limit; default 10 s.
    pub timeout: Duration,
    /// The longest wait between two tries; default 5 minutes.
    pub max_backoff: Duration,
}

/// `[mqtt]`: an MQTT 3.1.1 broker reads, risk flags and camera health are
/// published on (QoS 1; health retained), and reads may be taken from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttConfig {
    /// `host:port` of the broker (from `mqtt://host:port`).
    pub host: String,
    pub port: u16,
    /// Default `borderflow-<post id>`.
    pub client_id: String,
    /// Default `borderflow/<post id>/reads`.
    pub reads_topic: String,
    /// Default `borderflow/<post id>/risk_flags`.
    pub flags_topic: String,
    /// Default `borderflow/<post id>/health`; one retained message per camera at `<topic>/<camera>`.
    pub health_topic: String,
    /// Reads in the JSON form published on `reads_topic`, taken as another source; none: not subscribed.
    pub input_topic: Option<String>,
    /// Messages held while the broker is away, at most; more are counted as dropped. Default 10000.
    pub buffer: usize,
}

/// `[watchlist]`: where the post's watchlist is kept (Parquet or CSV with
/// the columns of [`crate::watchlist_schema`]) and how often a running post
/// looks for a new version. The file is the whole list: an entry that
/// leaves it is closed (its `valid_to` set to the time it left), and the
/// API's upserts last until the file changes again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchlistConfig {
    pub from: WatchlistSource,
    pub reload: Duration,
}

impl WatchlistConfig {
    /// How often a running post reads the watchlist again by default.
    pub const DEFAULT_RELOAD: Duration = Duration::from_secs(30);
}

/// Where the watchlist is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchlistSource {
    /// `path`: a local file, resolved against the configuration file's folder.
    File(PathBuf),
    /// `object`: a key in the post's object store (`[storage] url`).
    Object(String),
}

/// A reference table from a file (`[[table]]`): views see it by `name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableConfig {
    pub name: String,
    /// A Parquet (`.parquet`) or CSV with a header row (`.csv`) file,
    /// resolved against the configuration file's folder.
    pub path: PathBuf,
}

/// Table names the engine registers itself; `[[table]]` cannot take them.
pub const ENGINE_TABLES: &[&str] = &["reads", "read_keys", "posts", "post_routes", "watchlist", "pre_arrival"];

impl PostConfig {
    /// Reads and validates a post configuration file.
    pub fn from_file(path: &Path) -> Result<PostConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            field: "(file)".to_string(),
            message: format!("cannot read the configuration file: {e}"),
        })?;
        PostConfig::from_toml(&text, path)
    }

    /// Parses and validates configuration text; `path` names it in errors and
    /// anchors relative paths (the storage folder defaults to `data/` beside it).
    /// `path` need not exist.
    pub fn from_toml(text: &str, path: &Path) -> Result<PostConfig, ConfigError> {
        let source = source::Source::new(text, path);
        let raw = raw::parse(&source)?;
        checks::validate(&source, raw)
    }
}
