//! Flight SQL for analysts: `borderflow serve`'s `[serve] sql_listen`.
//!
//! A query (`CommandStatementQuery`) is authenticated, run, audited, and
//! its result kept under a one-time ticket that `DoGet` streams back:
//!
//! - Authentication: a bearer token (`authorization: Bearer …`) whose
//!   SHA-256 is in the `[serve] tokens` file (tokens themselves are never
//!   stored), or, with TLS and `[serve] client_ca`, a client certificate
//!   from that authority (the user is its common name). Anything else is
//!   refused with `Unauthenticated` and a logged reason.
//! - Tables: the engine's tables (`reads`, `read_keys`, `pre_arrival`,
//!   `posts`, `post_routes`, `watchlist`, the config's own) and every
//!   standing view's snapshot, as of the query; and the Parquet history in
//!   the post's store: each view's changelog as `<view>_changes`, and the
//!   written reads (`reads/` folder, if any) as `reads_history`. One
//!   dialect (DataFusion's) with the plate functions.
//! - Limits: each query runs in its own DataFusion session with a memory
//!   pool of `[serve] query_memory_mb` and is cancelled after
//!   `[serve] query_timeout`.
//! - Audit: every query, answered or refused, is one JSON object
//!   `audit/<post>/sql/<date>/<ulid>.json` in the object store: who, from
//!   where, when, the SQL, how many rows, how long, and the error if any.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::server::FlightSqlService;
use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt, SqlInfo, TicketStatementQuery};
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use borderflow_connectors::exchange::TlsFiles;
use borderflow_connectors::exchange::tls::{serve_tls, server_config, subject_common_name};
use borderflow_engine::ServeConfig;
use borderflow_engine::storage::Storage;
use datafusion::datasource::MemTable;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::serve::EngineHandle;

/// The analysts' tokens: SHA-256 (hex) → user.
#[derive(Clone, Debug, Default)]
pub struct Tokens(HashMap<String, String>);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    user: String,
    sha256: String,
}

impl Tokens {
    /// Reads a tokens file (`[[token]] user = "…", sha256 = "<hex>"`).
    pub fn from_file(path: &std::path::Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("tokens file {}: {e}", path.display()))?;
        let file: TokenFile = toml::from_str(&text).map_err(|e| format!("tokens file {}: {e}", path.display()))?;
        let mut tokens = HashMap::new();
        for (i, entry) in file.token.into_iter().enumerate() {
            let hash = entry.sha256.trim().to_ascii_lowercase();
            if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!("tokens file {}: token[{}].sha256: not 64 hex digits", path.display(), i + 1));
            }
            tokens.insert(hash, entry.user);
        }
        Ok(Tokens(tokens))
    }

    /// The user a token belongs to.
    pub fn user(&self, token: &str) -> Option<&str> {
        self.0.get(&hex::encode(Sha256::digest(token.as_bytes()))).map(String::as_str)
    }
}

/// The Flight SQL service (see the module documentation).
#[derive(Clone)]
pub struct AnalystSql {
    post_id: String,
    engine: EngineHandle,
    storage: Storage,
    tokens: Tokens,
    memory_bytes: usize,
    timeout: std::time::Duration,
    results: Arc<Mutex<HashMap<String, (String, RecordBatch)>>>,
}

/// Starts the Flight SQL server on `listen` (on the current runtime);
/// returns the bound address.
pub async fn start(listen: &str, config: &ServeConfig, storage: Storage, post_id: &str, engine: EngineHandle) -> Result<SocketAddr, String> {
    let tokens = match &config.tokens {
        Some(path) => Tokens::from_file(path)?,
        None => Tokens::default(),
    };
    let service = AnalystSql {
        post_id: post_id.to_string(),
        engine,
        storage,
        tokens,
        memory_bytes: (config.query_memory_mb as usize) << 20,
        timeout: config.query_timeout,
        results: Arc::new(Mutex::new(HashMap::new())),
    };
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("Flight SQL listener {listen}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| format!("Flight SQL listener {listen}: {e}"))?;
    let server = tonic::transport::Server::builder().add_service(FlightServiceServer::new(service));
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let files = TlsFiles { cert: cert.clone(), key: key.clone(), ca: config.client_ca.clone() };
            let tls = server_config(&files, true).map_err(|e| e.to_string())?;
            let incoming = serve_tls(listener, tls, "flight-sql");
            tokio::spawn(async move {
                if let Err(error) = server.serve_with_incoming(incoming).await {
                    tracing::error!(%error, "Flight SQL server stopped");
                }
            });
        }
        _ => {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            tokio::spawn(async move {
                if let Err(error) = server.serve_with_incoming(incoming).await {
                    tracing::error!(%error, "Flight SQL server stopped");
                }
            });
        }
    }
    Ok(bound)
}

impl AnalystSql {
    /// Who is asking: a known token's user, or a client certificate's name.
    fn authenticate<T>(&self, request: &Request<T>) -> Result<String, Status> {
        let remote = request.remote_addr();
        if let Some(certs) = request.peer_certs()
            && let Some(name) = certs.first().and_then(subject_common_name)
        {
            return Ok(format!("cert:{name}"));
        }
        let refused = |reason: &str| {
            tracing::warn!(remote = ?remote, %reason, "Flight SQL request refused");
            Status::unauthenticated(reason.to_string())
        };
        let Some(header) = request.metadata().get("authorization") else {
            return Err(refused("no bearer token and no client certificate"));
        };
        let header = header.to_str().map_err(|_| refused("the authorization header is not text"))?;
        let token = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).ok_or_else(|| refused("the authorization header is not `Bearer <token>`"))?;
        match self.tokens.user(token.trim()) {
            Some(user) => Ok(user.to_string()),
            None => Err(refused("unknown bearer token")),
        }
    }

    /// Runs a query in its own limited session.
    async fn run(&self, sql: &str) -> Result<RecordBatch, String> {
        let runtime = RuntimeEnvBuilder::new().with_memory_limit(self.memory_bytes, 1.0).build_arc().map_err(|e| e.to_string())?;
        let config = SessionConfig::new().set_bool("datafusion.execution.listing_table_ignore_subdirectory", false);
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let (tables, keys) = self.engine.tables().await?;
        borderflow_queries::udf::register(&ctx, Arc::new(keys));
        for (name, batch) in tables {
            let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(|e| format!("table `{name}`: {e}"))?;
            ctx.register_table(name.as_str(), Arc::new(table)).map_err(|e| format!("table `{name}`: {e}"))?;
        }
        // The Parquet history: view changelogs and written reads, on a local store.
        if let Some(root) = self.storage.local_path("") {
            let options = || datafusion::datasource::listing::ListingOptions::new(Arc::new(datafusion::datasource::file_format::parquet::ParquetFormat::default())).with_file_extension(".parquet");
            if let Ok(views) = std::fs::read_dir(root.join("views")) {
                for view in views.flatten() {
                    let changes = view.path().join("changes");
                    let has_parts = std::fs::read_dir(&changes).map(|mut d| d.next().is_some()).unwrap_or(false);
                    if has_parts {
                        let name = format!("{}_changes", view.file_name().to_string_lossy());
                        let url = format!("file://{}/", changes.display());
                        if let Err(error) = ctx.register_listing_table(name.as_str(), &url, options(), None, None).await {
                            tracing::debug!(%error, table = %name, "changelog not registered");
                        }
                    }
                }
            }
            if root.join("reads").is_dir() {
                let url = format!("file://{}/", root.join("reads").display());
                let _ = ctx.register_listing_table("reads_history", &url, options(), Some(borderflow_engine::plate_read_schema()), None).await;
            }
        }
        let run = async {
            let frame = ctx.sql(sql).await.map_err(|e| e.to_string())?;
            let schema = Arc::new(frame.schema().as_arrow().clone());
            let batches = frame.collect().await.map_err(|e| e.to_string())?;
            arrow::compute::concat_batches(&schema, &batches).map_err(|e| e.to_string())
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(format!("the query ran longer than the limit of {:?} and was cancelled", self.timeout)),
        }
    }

    async fn audit(&self, user: &str, remote: Option<SocketAddr>, sql: &str, rows: Option<usize>, error: Option<&str>, took: std::time::Duration) {
        let now = chrono::Utc::now();
        let id = ulid::Ulid::new().to_string();
        let record = serde_json::json!({
            "post_id": self.post_id,
            "user": user,
            "remote": remote.map(|r| r.to_string()),
            "at": now.to_rfc3339(),
            "sql": sql,
            "rows": rows,
            "error": error,
            "duration_ms": took.as_millis() as u64,
        });
        let path = format!("audit/{}/sql/{}/{id}.json", self.post_id, now.format("%Y-%m-%d"));
        let bytes = serde_json::to_vec_pretty(&record).unwrap_or_default();
        if let Err(error) = self.storage.put(&path, bytes).await {
            tracing::warn!(%error, %path, "writing the SQL audit record failed");
        }
    }
}

#[tonic::async_trait]
impl FlightSqlService for AnalystSql {
    type FlightService = AnalystSql;

    async fn get_flight_info_statement(&self, query: CommandStatementQuery, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        let remote = request.remote_addr();
        let user = match self.authenticate(&request) {
            Ok(user) => user,
            Err(status) => {
                self.audit("(refused)", remote, &query.query, None, Some(status.message()), std::time::Duration::ZERO).await;
                return Err(status);
            }
        };
        let started = Instant::now();
        let result = self.run(&query.query).await;
        let took = started.elapsed();
        let batch = match result {
            Ok(batch) => batch,
            Err(error) => {
                self.audit(&user, remote, &query.query, None, Some(&error), took).await;
                tracing::info!(%user, %error, "Flight SQL query failed");
                return Err(Status::invalid_argument(error));
            }
        };
        self.audit(&user, remote, &query.query, Some(batch.num_rows()), None, took).await;
        tracing::info!(%user, rows = batch.num_rows(), ms = took.as_millis() as u64, "Flight SQL query");
        let handle = ulid::Ulid::new().to_string();
        let ticket = TicketStatementQuery { statement_handle: handle.clone().into_bytes().into() };
        let info = FlightInfo::new()
            .try_with_schema(&batch.schema())
            .map_err(|e| Status::internal(e.to_string()))?
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec())))
            .with_descriptor(request.into_inner())
            .with_total_records(batch.num_rows() as i64);
        if let Ok(mut results) = self.results.lock() {
            results.insert(handle, (user, batch));
        }
        Ok(Response::new(info))
    }

    async fn do_get_statement(&self, ticket: TicketStatementQuery, request: Request<Ticket>) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let user = self.authenticate(&request)?;
        let handle = String::from_utf8_lossy(&ticket.statement_handle).to_string();
        let entry = self.results.lock().ok().and_then(|mut r| r.remove(&handle));
        let Some((owner, batch)) = entry else {
            return Err(Status::not_found("no such result (each ticket is good for one DoGet)"));
        };
        if owner != user {
            return Err(Status::permission_denied("this result belongs to another user"));
        }
        let schema = batch.schema();
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::once(async move { Ok(batch) }))
            .map_err(|e| Status::internal(e.to_string()));
        Ok(Response::new(stream.boxed() as Pin<Box<dyn futures::Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>>))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
