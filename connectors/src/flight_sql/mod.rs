//! Flight SQL for analysts: `borderflow serve`'s `[serve] sql_listen`.
//!
//! Every request is authenticated and audited. A query
//! (`CommandStatementQuery`, or a prepared statement's
//! `CommandPreparedStatementQuery`) and a catalog command (`GetCatalogs`,
//! `GetDbSchemas`, `GetTables`, `GetTableTypes`, `GetSqlInfo`,
//! `GetXdbcTypeInfo`, `GetPrimaryKeys`, `GetExportedKeys`,
//! `GetImportedKeys`, `GetCrossReference`, see [`catalog`]) is answered at
//! `GetFlightInfo`: its result is kept under a one-time ticket that `DoGet`
//! streams back to the same user.
//!
//! - Authentication: a bearer token (`authorization: Bearer …`) whose
//!   SHA-256 is in the `[serve] tokens` file (tokens themselves are never
//!   stored), or, with TLS and `[serve] client_ca`, a client certificate
//!   from that authority (the user is its common name; a certificate from
//!   another authority is refused during the TLS handshake, and logged). Anything else is
//!   refused with `Unauthenticated` and a logged reason.
//! - Roles: a user reads what their role in `[[serve.role]]` grants
//!   ([`roles`]); a user in no role is refused (`PermissionDenied`).
//!   Sessions are read-only: DDL, DML, `COPY` and `SET` are refused
//!   (`PermissionDenied`, the statement's kind named), and so is a query
//!   naming a table the role may not read.
//! - Tables: the engine's tables (`reads`, `read_keys`, `pre_arrival`,
//!   `posts`, `post_routes`, `watchlist`, the config's own) and every
//!   standing view's snapshot, as of the query; the Parquet history in
//!   the post's store: each view's changelog as `<view>_changes`, and the
//!   written reads (`reads/` folder, if any) as `reads_history`; the audit
//!   records as `audit_log`, for a role that names it; `information_schema`
//!   (`SHOW TABLES`, `SHOW COLUMNS`). Each only as the role allows. One
//!   dialect (DataFusion's) with the plate functions ([`session`]).
//! - Prepared statements: `CreatePreparedStatement` plans the SQL and
//!   answers its result schema and its parameters (`$1`, `$2`, …);
//!   `DoPut` binds one row of parameter values; each execution runs the
//!   statement afresh over the tables as they are then; `ClosePreparedStatement`
//!   forgets it. A statement belongs to the user who prepared it.
//! - Limits: each query runs in its own DataFusion session with a memory
//!   pool of `[serve] query_memory_mb` (its answer, held for `DoGet`, must
//!   fit in the same size) and is cancelled after `[serve] query_timeout`.
//!   An answer whose ticket is not fetched within `[serve] result_ttl` is
//!   dropped. The answers waiting for their `DoGet` hold at most
//!   `[serve] answers_memory_mb` together: a query whose answer would pass
//!   it is refused (`ResourceExhausted`, audited), and nothing already
//!   kept is dropped for it.
//! - Audit: every request, answered or refused (a refused TLS handshake
//!   and a refused `DoGet` included), is one JSON object
//!   `audit/<post>/sql/<date>/<ulid>.json` in the object store: which
//!   request, who (their role, how authenticated), from where, when, the SQL or
//!   the catalog command, bound parameters, how many rows, how long, and
//!   the error if any.


use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, CommandGetCatalogs,
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo,
    CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery, CommandStatementQuery, DoPutPreparedStatementResult,
    ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{Action, FlightDescriptor, FlightEndpoint, FlightInfo, IpcMessage, SchemaAsIpc, Ticket};
use crate::exchange::TlsFiles;
use crate::exchange::tls::{OnRefusedHandshake, serve_tls, server_config, subject_common_name};
use borderflow_types::{RoleConfig, ServeConfig};
use borderflow_engine::storage::Storage;
use datafusion::scalar::ScalarValue;
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use tonic::{Request, Response, Status};

pub use tokens::Tokens;

use crate::engine_handle::EngineHandle;
use catalog::KeysOf;
use session::{Limits, Session};

pub mod catalog;
pub mod roles;
pub mod session;
mod tokens;

use roles::Roles;

/// Prepared statements one server keeps open at most (a client that never
/// closes its statements is refused new ones, not given unbounded memory).
const MAX_PREPARED: usize = 4096;

/// The Flight SQL service (see the module documentation).
#[derive(Clone)]
pub struct AnalystSql {
    post_id: String,
    engine: EngineHandle,
    storage: Storage,
    tokens: Tokens,
    roles: Roles,
    limits: Limits,
    /// Answers waiting for their `DoGet`, by ticket.
    results: Arc<Mutex<HashMap<String, Kept>>>,
    /// How long an answer waits for its `DoGet`.
    result_ttl: Duration,
    /// Bytes the answers in `results` may hold together.
    answers_memory: usize,
    /// Open prepared statements, by handle.
    prepared: Arc<Mutex<HashMap<String, Prepared>>>,
    /// Requests by kind and outcome, for `/metrics` (counted where they are audited).
    requests: RequestCounts,
}

/// Requests counted by `request` (`StatementQuery`, `DoGet`, …) and
/// `outcome` (`ok`, `refused`: not admitted, `error`).
pub type RequestCounts = prometheus_client::metrics::family::Family<Vec<(String, String)>, prometheus_client::metrics::counter::Counter>;

/// An answer waiting for its `DoGet`: its owner, rows, their memory and
/// when it was made.
struct Kept {
    user: String,
    batch: RecordBatch,
    bytes: usize,
    at: Instant,
}

/// A prepared statement: its owner, SQL, parameters and bound values.
struct Prepared {
    user: String,
    sql: String,
    parameters: SchemaRef,
    values: Option<Vec<ScalarValue>>,
}

/// Who is asking, and how they proved it.
struct Caller {
    user: String,
    /// What the user may read; `None` for a refused request.
    role: Option<Arc<RoleConfig>>,
    /// `token` or `certificate`.
    auth: &'static str,
    remote: Option<SocketAddr>,
}

/// One audit record's content (see [`AnalystSql::audit`]).
struct Audit<'a> {
    /// The Flight SQL request: `StatementQuery`, `GetTables`, …
    request: &'a str,
    sql: Option<&'a str>,
    /// A catalog command's arguments.
    command: Option<String>,
    parameters: Option<&'a [ScalarValue]>,
    rows: Option<usize>,
    /// The answer's size in memory, for a fetch (`DoGet`).
    bytes: Option<usize>,
    error: Option<&'a str>,
    took: Duration,
}

impl<'a> Audit<'a> {
    fn new(request: &'a str) -> Self {
        Audit { request, sql: None, command: None, parameters: None, rows: None, bytes: None, error: None, took: Duration::ZERO }
    }
}

/// Starts the Flight SQL server on `listen` (on the current runtime);
/// returns the bound address.
pub async fn start(listen: &str, config: &ServeConfig, storage: Storage, post_id: &str, engine: EngineHandle, requests: RequestCounts) -> Result<SocketAddr, String> {
    let tokens = match &config.tokens {
        Some(path) => Tokens::from_file(path)?,
        None => Tokens::default(),
    };
    let service = AnalystSql {
        post_id: post_id.to_string(),
        engine,
        storage,
        tokens,
        roles: Roles::new(&config.roles),
        limits: Limits { memory_bytes: (config.query_memory_mb as usize) << 20, timeout: config.query_timeout },
        results: Arc::new(Mutex::new(HashMap::new())),
        result_ttl: config.result_ttl,
        answers_memory: (config.answers_memory_mb as usize) << 20,
        prepared: Arc::new(Mutex::new(HashMap::new())),
        requests,
    };
    // Answers never fetched expire (checked every few seconds, and at each query).
    let sweeper = service.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(sweeper.result_ttl.clamp(Duration::from_millis(500), Duration::from_secs(10)));
        loop {
            every.tick().await;
            sweeper.drop_expired();
        }
    });
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("Flight SQL listener {listen}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| format!("Flight SQL listener {listen}: {e}"))?;
    let service_for_audit = service.clone();
    let server = tonic::transport::Server::builder().add_service(FlightServiceServer::new(service));
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let files = TlsFiles { cert: cert.clone(), key: key.clone(), ca: config.client_ca.clone() };
            let tls = server_config(&files, true).map_err(|e| e.to_string())?;
            // A refused handshake (a certificate from another authority,
            // an expired one) is audited like a refused request.
            let auditor = service_for_audit;
            let audit_refusal: OnRefusedHandshake = Arc::new(move |remote: SocketAddr, reason: String| {
                let auditor = auditor.clone();
                tokio::spawn(async move {
                    let refused = Caller { user: "(refused)".into(), role: None, auth: "none", remote: Some(remote) };
                    auditor.audit(&refused, Audit { error: Some(&reason), ..Audit::new("TLSHandshake") }).await;
                });
            });
            let incoming = serve_tls(listener, tls, "flight-sql", Some(audit_refusal));
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
    /// Who is asking: a client certificate's common name (the TLS
    /// handshake has checked it against `[serve] client_ca`), or a known
    /// token's user; and the user's role.
    fn authenticate<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let remote = request.remote_addr();
        let refused = |reason: &str| {
            tracing::warn!(remote = ?remote, %reason, "Flight SQL request refused");
            Status::unauthenticated(reason.to_string())
        };
        let (user, auth) = match request.peer_certs().and_then(|certs| certs.first().and_then(subject_common_name)) {
            Some(name) => (name, "certificate"),
            None => {
                let Some(header) = request.metadata().get("authorization") else {
                    return Err(refused("no bearer token and no client certificate"));
                };
                let header = header.to_str().map_err(|_| refused("the authorization header is not text"))?;
                let token = header
                    .strip_prefix("Bearer ")
                    .or_else(|| header.strip_prefix("bearer "))
                    .ok_or_else(|| refused("the authorization header is not `Bearer <token>`"))?;
                match self.tokens.user(token.trim()) {
                    Some(user) => (user.to_string(), "token"),
                    None => return Err(refused("unknown bearer token")),
                }
            }
        };
        match self.roles.of(&user) {
            Some(role) => Ok(Caller { user, role: Some(role), auth, remote }),
            None => {
                let reason = format!("user `{user}` is in no role of the post's `[[serve.role]]`");
                tracing::warn!(remote = ?remote, %reason, "Flight SQL request refused");
                Err(Status::permission_denied(reason))
            }
        }
    }

    /// Authenticates a request; a refusal is audited as `what`.
    async fn admit<T>(&self, request: &Request<T>, what: Audit<'_>) -> Result<Caller, Status> {
        match self.authenticate(request) {
            Ok(caller) => Ok(caller),
            Err(status) => {
                let refused = Caller { user: "(refused)".into(), role: None, auth: "none", remote: request.remote_addr() };
                self.audit(&refused, Audit { error: Some(status.message()), ..what }).await;
                Err(status)
            }
        }
    }

    /// A new session over the engine's tables now, holding what the
    /// caller's role may read (see [`session::open`]).
    async fn session(&self, caller: &Caller) -> Result<Session, String> {
        let role = caller.role.as_deref().ok_or("a refused request has no session")?;
        session::open(&self.engine, &self.storage, &self.post_id, role, self.limits).await
    }

    /// Writes one audit record: `audit/<post>/sql/<date>/<ulid>.json`.
    async fn audit(&self, caller: &Caller, entry: Audit<'_>) {
        let outcome = match (&caller.role, entry.error) {
            (None, _) => "refused",
            (Some(_), Some(_)) => "error",
            (Some(_), None) => "ok",
        };
        self.requests.get_or_create(&vec![("request".to_string(), entry.request.to_string()), ("outcome".to_string(), outcome.to_string())]).inc();
        let now = chrono::Utc::now();
        let id = ulid::Ulid::new().to_string();
        let record = serde_json::json!({
            "post_id": self.post_id,
            "request": entry.request,
            "user": caller.user,
            "role": caller.role.as_ref().map(|role| role.name.as_str()),
            "auth": caller.auth,
            "remote": caller.remote.map(|r| r.to_string()),
            "at": now.to_rfc3339(),
            "sql": entry.sql,
            "command": entry.command,
            "parameters": entry.parameters.map(|values| values.iter().map(ToString::to_string).collect::<Vec<_>>()),
            "rows": entry.rows,
            "bytes": entry.bytes,
            "error": entry.error,
            "duration_ms": entry.took.as_millis() as u64,
        });
        let path = format!("audit/{}/sql/{}/{id}.json", self.post_id, now.format("%Y-%m-%d"));
        // One line of JSON a file, so the `audit_log` table reads them as
        // newline-delimited JSON.
        let mut bytes = serde_json::to_vec(&record).unwrap_or_default();
        bytes.push(b'\n');
        if let Err(error) = self.storage.put(&path, bytes).await {
            tracing::warn!(%error, %path, "writing the SQL audit record failed");
        }
    }

    /// Runs `sql` (with bound `values`) for `caller`, audits it as
    /// `request`, and answers a `FlightInfo` with a one-time ticket.
    async fn answer_query(
        &self,
        caller: &Caller,
        request: &str,
        sql: &str,
        values: Option<&[ScalarValue]>,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let started = Instant::now();
        let result = match self.session(caller).await {
            Ok(session) => session::run(&session, sql, values, self.limits).await,
            Err(error) => Err(error),
        };
        let took = started.elapsed();
        let audit = Audit { sql: Some(sql), parameters: values, took, ..Audit::new(request) };
        let batch = match result {
            Ok(batch) => batch,
            Err(error) if error.starts_with("refused:") => {
                self.audit(caller, Audit { error: Some(&error), ..audit }).await;
                tracing::warn!(user = %caller.user, remote = ?caller.remote, %sql, %error, "Flight SQL statement refused");
                return Err(Status::permission_denied(error));
            }
            Err(error) => {
                self.audit(caller, Audit { error: Some(&error), ..audit }).await;
                tracing::info!(user = %caller.user, %error, "Flight SQL query failed");
                return Err(Status::invalid_argument(error));
            }
        };
        let rows = batch.num_rows();
        let info = self.keep_audited(caller, batch, descriptor, audit).await?;
        tracing::info!(user = %caller.user, request, rows, ms = took.as_millis() as u64, "Flight SQL query");
        Ok(info)
    }

    /// Answers a catalog command: authenticated, computed over a session
    /// if it needs one, audited, kept under a one-time ticket.
    async fn answer_catalog<T: std::fmt::Debug>(
        &self,
        request: Request<FlightDescriptor>,
        name: &str,
        command: T,
        needs_session: bool,
        build: impl FnOnce(T, Option<&Session>) -> Result<RecordBatch, String>,
    ) -> Result<Response<FlightInfo>, Status> {
        let described = format!("{command:?}");
        let caller = self.admit(&request, Audit { command: Some(described.clone()), ..Audit::new(name) }).await?;
        let started = Instant::now();
        let result = match needs_session {
            true => match self.session(&caller).await {
                Ok(session) => build(command, Some(&session)),
                Err(error) => Err(error),
            },
            false => build(command, None),
        };
        let audit = Audit { command: Some(described), took: started.elapsed(), ..Audit::new(name) };
        match result {
            Ok(batch) => self.keep_audited(&caller, batch, request.into_inner(), audit).await,
            Err(error) => {
                self.audit(&caller, Audit { error: Some(&error), ..audit }).await;
                Err(Status::internal(error))
            }
        }
    }

    /// [`AnalystSql::answer_catalog`] for a command computed over a session
    /// and the post's catalog name.
    async fn answer_over_session<T: std::fmt::Debug>(
        &self,
        request: Request<FlightDescriptor>,
        name: &'static str,
        command: T,
        build: impl FnOnce(T, &str, &Session) -> Result<RecordBatch, String>,
    ) -> Result<Response<FlightInfo>, Status> {
        let catalog = self.post_id.clone();
        self.answer_catalog(request, name, command, true, move |q, session| match session {
            Some(session) => build(q, &catalog, session),
            None => Err(format!("{name}: no session")),
        })
        .await
    }

    /// [`AnalystSql::keep`], audited as `audit` with the answer's rows, or
    /// with the refusal.
    async fn keep_audited(&self, caller: &Caller, batch: RecordBatch, descriptor: FlightDescriptor, audit: Audit<'_>) -> Result<Response<FlightInfo>, Status> {
        let rows = batch.num_rows();
        match self.keep(caller, batch, descriptor) {
            Ok(info) => {
                self.audit(caller, Audit { rows: Some(rows), ..audit }).await;
                Ok(info)
            }
            Err(status) => {
                self.audit(caller, Audit { error: Some(status.message()), ..audit }).await;
                Err(status)
            }
        }
    }

    /// Keeps an answer for its owner's `DoGet`; its `FlightInfo`. Refused
    /// (`ResourceExhausted`) when the answers already waiting and this one
    /// would hold more than `answers_memory` together.
    fn keep(&self, caller: &Caller, batch: RecordBatch, descriptor: FlightDescriptor) -> Result<Response<FlightInfo>, Status> {
        let handle = ulid::Ulid::new().to_string();
        let ticket = TicketStatementQuery { statement_handle: handle.clone().into_bytes().into() };
        let info = FlightInfo::new()
            .try_with_schema(&batch.schema())
            .map_err(|e| Status::internal(e.to_string()))?
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec())))
            .with_descriptor(descriptor)
            .with_total_records(batch.num_rows() as i64);
        self.drop_expired();
        let bytes = batch.get_array_memory_size();
        let mut results = self.results.lock().map_err(|_| Status::internal("the answers' table is unavailable"))?;
        let held: usize = results.values().map(|kept| kept.bytes).sum();
        if held + bytes > self.answers_memory {
            let mib = |b: usize| b as f64 / (1u64 << 20) as f64;
            let message = format!(
                "the server holds {:.1} MiB of answers waiting for their DoGet, and this one ({:.1} MiB) would pass the limit of {:.0} MiB (`[serve] answers_memory_mb`): fetch the answers of earlier queries, or try again when they expire ({:?}, `[serve] result_ttl`)",
                mib(held),
                mib(bytes),
                mib(self.answers_memory),
                self.result_ttl
            );
            tracing::warn!(user = %caller.user, answers = results.len(), held, bytes, limit = self.answers_memory, "Flight SQL answer refused: the answers' memory is full");
            return Err(Status::resource_exhausted(message));
        }
        results.insert(handle, Kept { user: caller.user.clone(), batch, bytes, at: Instant::now() });
        Ok(Response::new(info))
    }

    /// Drops the answers that waited longer than `result_ttl` for their `DoGet`.
    fn drop_expired(&self) {
        let Ok(mut results) = self.results.lock() else { return };
        let before = results.len();
        results.retain(|_, kept| kept.at.elapsed() <= self.result_ttl);
        if results.len() < before {
            tracing::info!(answers = before - results.len(), ttl = ?self.result_ttl, "Flight SQL answers never fetched expired");
        }
    }

    /// The open prepared statement `handle` of `caller`: its SQL, parameters and values.
    fn prepared_statement(&self, caller: &Caller, handle: &[u8]) -> Result<(String, SchemaRef, Option<Vec<ScalarValue>>), String> {
        let handle = String::from_utf8_lossy(handle);
        let prepared = self.prepared.lock().map_err(|_| "prepared statements unavailable".to_string())?;
        match prepared.get(handle.as_ref()) {
            Some(statement) if statement.user == caller.user => Ok((statement.sql.clone(), statement.parameters.clone(), statement.values.clone())),
            Some(_) => Err(format!("prepared statement {handle} belongs to another user")),
            None => Err(format!("no open prepared statement {handle} (closed, or prepared before a restart)")),
        }
    }
}

/// A schema as an IPC message, as prepared statements answer it.
fn schema_bytes(schema: &Schema) -> Result<prost::bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default()).try_into().map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}

#[tonic::async_trait]
impl FlightSqlService for AnalystSql {
    type FlightService = AnalystSql;

    async fn get_flight_info_statement(&self, query: CommandStatementQuery, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        let caller = self.admit(&request, Audit { sql: Some(&query.query), ..Audit::new("StatementQuery") }).await?;
        self.answer_query(&caller, "StatementQuery", &query.query, None, request.into_inner()).await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        const REQUEST: &str = "PreparedStatementQuery";
        let caller = self.admit(&request, Audit::new(REQUEST)).await?;
        let (sql, parameters, values) = match self.prepared_statement(&caller, &query.prepared_statement_handle) {
            Ok(statement) => statement,
            Err(error) => {
                self.audit(&caller, Audit { error: Some(&error), ..Audit::new(REQUEST) }).await;
                return Err(Status::not_found(error));
            }
        };
        if values.is_none() && !parameters.fields().is_empty() {
            let error = format!("the prepared statement has {} parameters and none are bound", parameters.fields().len());
            self.audit(&caller, Audit { sql: Some(&sql), error: Some(&error), ..Audit::new(REQUEST) }).await;
            return Err(Status::invalid_argument(error));
        }
        self.answer_query(&caller, REQUEST, &sql, values.as_deref(), request.into_inner()).await
    }

    async fn get_flight_info_catalogs(&self, query: CommandGetCatalogs, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        let catalog = self.post_id.clone();
        self.answer_catalog(request, "GetCatalogs", query, false, move |q, _| catalog::get_catalogs(q, &catalog)).await
    }

    async fn get_flight_info_schemas(&self, query: CommandGetDbSchemas, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        let catalog = self.post_id.clone();
        self.answer_catalog(request, "GetDbSchemas", query, false, move |q, _| catalog::get_db_schemas(q, &catalog)).await
    }

    async fn get_flight_info_tables(&self, query: CommandGetTables, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.answer_over_session(request, "GetTables", query, catalog::get_tables).await
    }

    async fn get_flight_info_table_types(&self, query: CommandGetTableTypes, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.answer_catalog(request, "GetTableTypes", query, false, |q, _| catalog::get_table_types(q)).await
    }

    async fn get_flight_info_sql_info(&self, query: CommandGetSqlInfo, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.answer_catalog(request, "GetSqlInfo", query, false, |q, _| catalog::get_sql_info(q)).await
    }

    async fn get_flight_info_primary_keys(&self, query: CommandGetPrimaryKeys, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.answer_over_session(request, "GetPrimaryKeys", query, catalog::get_primary_keys).await
    }

    async fn get_flight_info_exported_keys(&self, query: CommandGetExportedKeys, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.answer_over_session(request, "GetExportedKeys", query, |q, post, session| catalog::get_foreign_keys(KeysOf::Exported(&q.table), post, session)).await
    }

    async fn get_flight_info_imported_keys(&self, query: CommandGetImportedKeys, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.answer_over_session(request, "GetImportedKeys", query, |q, post, session| catalog::get_foreign_keys(KeysOf::Imported(&q.table), post, session)).await
    }

    async fn get_flight_info_cross_reference(&self, query: CommandGetCrossReference, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.answer_over_session(request, "GetCrossReference", query, |q, post, session| catalog::get_foreign_keys(KeysOf::Between(&q.pk_table, &q.fk_table), post, session)).await
    }

    async fn get_flight_info_xdbc_type_info(&self, query: CommandGetXdbcTypeInfo, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.answer_catalog(request, "GetXdbcTypeInfo", query, false, |q, _| catalog::get_xdbc_type_info(q)).await
    }

    async fn do_get_statement(&self, ticket: TicketStatementQuery, request: Request<Ticket>) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let caller = self.admit(&request, Audit::new("DoGet")).await?;
        let handle = String::from_utf8_lossy(&ticket.statement_handle).to_string();
        let entry = self.results.lock().ok().and_then(|mut r| r.remove(&handle));
        let kept = match entry {
            None => Err(Status::not_found(format!(
                "no such result {handle}: each ticket is good for one DoGet, within {:?} of the query (`[serve] result_ttl`)",
                self.result_ttl
            ))),
            Some(kept) if kept.at.elapsed() > self.result_ttl => {
                Err(Status::not_found(format!("the result {handle} expired: it waited longer than {:?} (`[serve] result_ttl`) for its DoGet", self.result_ttl)))
            }
            Some(kept) if kept.user != caller.user => {
                // Not this caller's: it stays for its owner.
                if let Ok(mut results) = self.results.lock() {
                    results.insert(handle.clone(), kept);
                }
                Err(Status::permission_denied(format!("the result {handle} belongs to another user")))
            }
            Some(kept) => Ok(kept),
        };
        let batch = match kept {
            Ok(kept) => {
                let (rows, bytes) = (kept.batch.num_rows(), kept.bytes);
                self.audit(&caller, Audit { command: Some(format!("ticket {handle}")), rows: Some(rows), bytes: Some(bytes), ..Audit::new("DoGet") }).await;
                tracing::info!(user = %caller.user, ticket = %handle, rows, bytes, "Flight SQL answer fetched");
                kept.batch
            }
            Err(status) => {
                tracing::warn!(user = %caller.user, remote = ?caller.remote, reason = %status.message(), "Flight SQL DoGet refused");
                self.audit(&caller, Audit { command: Some(format!("ticket {handle}")), error: Some(status.message()), ..Audit::new("DoGet") }).await;
                return Err(status);
            }
        };
        let schema = batch.schema();
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::once(async move { Ok(batch) }))
            .map_err(|e| Status::internal(e.to_string()));
        Ok(Response::new(stream.boxed() as Pin<Box<dyn futures::Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>>))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        const REQUEST: &str = "CreatePreparedStatement";
        let caller = self.admit(&request, Audit { sql: Some(&query.query), ..Audit::new(REQUEST) }).await?;
        let started = Instant::now();
        let planned = match self.session(&caller).await {
            Ok(session) => session::plan(&session, &query.query).await,
            Err(error) => Err(error),
        };
        let audit = Audit { sql: Some(&query.query), took: started.elapsed(), ..Audit::new(REQUEST) };
        let planned = match planned {
            Ok(planned) => planned,
            Err(error) => {
                self.audit(&caller, Audit { error: Some(&error), ..audit }).await;
                return Err(Status::invalid_argument(error));
            }
        };
        let handle = ulid::Ulid::new().to_string();
        let result = ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.clone().into_bytes().into(),
            dataset_schema: schema_bytes(&planned.schema)?,
            parameter_schema: schema_bytes(&planned.parameters)?,
        };
        let opened = match self.prepared.lock() {
            Ok(mut prepared) if prepared.len() < MAX_PREPARED => {
                let statement = Prepared { user: caller.user.clone(), sql: query.query.clone(), parameters: planned.parameters, values: None };
                prepared.insert(handle, statement);
                Ok(())
            }
            Ok(_) => Err(format!("{MAX_PREPARED} prepared statements are open: close some first")),
            Err(_) => Err("prepared statements unavailable".to_string()),
        };
        match opened {
            Ok(()) => {
                self.audit(&caller, audit).await;
                Ok(result)
            }
            Err(error) => {
                self.audit(&caller, Audit { error: Some(&error), ..audit }).await;
                Err(Status::resource_exhausted(error))
            }
        }
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        const REQUEST: &str = "BindParameters";
        let caller = self.admit(&request, Audit::new(REQUEST)).await?;
        let started = Instant::now();
        let bound = async {
            let (sql, parameters, _) = self.prepared_statement(&caller, &query.prepared_statement_handle)?;
            let stream = FlightRecordBatchStream::new_from_flight_data(request.into_inner().map_err(FlightError::from));
            let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(|e| format!("bound parameters: {e}"))?;
            let batch = match batches.as_slice() {
                [] => return Err(format!("bound parameters: no values sent for `{sql}`")),
                [batch] => batch.clone(),
                _ => arrow::compute::concat_batches(&batches[0].schema(), &batches).map_err(|e| format!("bound parameters: {e}"))?,
            };
            let values = session::bind(&batch, &parameters).map_err(|e| format!("{e} (for `{sql}`)"))?;
            Ok((sql, values))
        };
        match bound.await {
            Ok((sql, values)) => {
                self.audit(&caller, Audit { sql: Some(&sql), parameters: Some(&values), took: started.elapsed(), ..Audit::new(REQUEST) }).await;
                let handle = String::from_utf8_lossy(&query.prepared_statement_handle).to_string();
                if let Ok(mut prepared) = self.prepared.lock()
                    && let Some(statement) = prepared.get_mut(&handle)
                {
                    statement.values = Some(values);
                }
                Ok(DoPutPreparedStatementResult { prepared_statement_handle: Some(query.prepared_statement_handle) })
            }
            Err(error) => {
                self.audit(&caller, Audit { error: Some(&error), took: started.elapsed(), ..Audit::new(REQUEST) }).await;
                Err(Status::invalid_argument(error))
            }
        }
    }

    async fn do_action_close_prepared_statement(&self, query: ActionClosePreparedStatementRequest, request: Request<Action>) -> Result<(), Status> {
        const REQUEST: &str = "ClosePreparedStatement";
        let caller = self.admit(&request, Audit::new(REQUEST)).await?;
        let closed = self.prepared_statement(&caller, &query.prepared_statement_handle).map(|(sql, _, _)| {
            if let Ok(mut prepared) = self.prepared.lock() {
                prepared.remove(String::from_utf8_lossy(&query.prepared_statement_handle).as_ref());
            }
            sql
        });
        match closed {
            Ok(sql) => {
                self.audit(&caller, Audit { sql: Some(&sql), ..Audit::new(REQUEST) }).await;
                Ok(())
            }
            Err(error) => {
                self.audit(&caller, Audit { error: Some(&error), ..Audit::new(REQUEST) }).await;
                Err(Status::not_found(error))
            }
        }
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
