//! The sending side: outbox first, then one long-lived `DoPut` to the peer.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{FlightData, FlightDescriptor, SchemaAsIpc};
use borderflow_types::pre_arrival_schema;
use borderflow_engine::storage::Storage;
use tokio::sync::{Mutex, Notify};
use tonic::transport::{Channel, Endpoint};

use super::tls::{TlsFiles, peer_client_config};
use super::{ExchangeError, Outbox, PeerState, StatusHandle};

/// Where and how to send.
#[derive(Clone, Debug)]
pub struct SenderConfig {
    /// This post's id (named in every `DoPut`).
    pub post_id: String,
    /// The peer's post id.
    pub peer_post: String,
    /// `https://host:port` (`grpc+tls://` is taken as https); `http://`
    /// only without TLS (tests).
    pub endpoint: String,
    /// Mutual TLS; `None`: plain text (refused by a peer that requires TLS).
    pub tls: Option<TlsFiles>,
    /// Batches sent and not yet acknowledged, at most.
    pub window: usize,
}

/// The sending half of the exchange (see the module documentation).
#[derive(Clone)]
pub struct ExchangeSender {
    outbox: Arc<Mutex<Outbox>>,
    notify: Arc<Notify>,
    status: StatusHandle,
}

impl ExchangeSender {
    /// Opens the outbox in `storage` and starts sending in the background
    /// (on the current tokio runtime). An unreachable peer is not an error:
    /// it is retried, logged and reported in the status.
    pub async fn start(storage: Storage, config: SenderConfig, status: StatusHandle) -> Result<ExchangeSender, ExchangeError> {
        let outbox = Outbox::open(storage, &config.post_id).await?;
        let pending = outbox.pending().len();
        status.update(|s| {
            s.outbox_batches = pending;
            s.outbox_rows = outbox.pending().iter().map(|r| r.batch.num_rows()).sum();
            s.acked_through = outbox.acked_through();
        });
        if pending > 0 {
            tracing::info!(peer = %config.peer_post, batches = pending, "exchange outbox recovered unacknowledged batches");
        }
        let sender = ExchangeSender { outbox: Arc::new(Mutex::new(outbox)), notify: Arc::new(Notify::new()), status };
        let background = sender.clone();
        tokio::spawn(async move { background.run(config).await });
        Ok(sender)
    }

    /// Puts a batch of pre-arrival records in the outbox; returns once it
    /// is durable (it is sent in the background).
    pub async fn send(&self, batch: RecordBatch) -> Result<u64, ExchangeError> {
        if batch.num_rows() == 0 {
            return Ok(0);
        }
        let rows = batch.num_rows();
        let seq = self.outbox.lock().await.push(batch).await?;
        self.status.update(|s| {
            s.outbox_batches += 1;
            s.outbox_rows += rows;
        });
        self.notify.notify_one();
        Ok(seq)
    }

    /// The exchange's status.
    pub fn status(&self) -> &StatusHandle {
        &self.status
    }

    async fn connect(config: &SenderConfig) -> Result<Channel, Failure> {
        let url = config.endpoint.replace("grpc+tls://", "https://").replace("grpc://", "http://");
        let endpoint = Endpoint::from_shared(url.clone()).map_err(|e| format!("endpoint `{url}`: {e}"))?;
        let Some(files) = &config.tls else {
            return Ok(endpoint.connect_timeout(Duration::from_secs(5)).tcp_nodelay(true).connect().await.map_err(|e| error_chain(&e))?);
        };
        // TLS by our own connector: tonic's cannot check that the server's
        // certificate names the peer post. tonic sees plain `http://`.
        let uri = endpoint.uri().clone();
        let host = uri.host().ok_or_else(|| format!("endpoint `{url}`: no host"))?.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(443);
        let server_name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| format!("endpoint `{url}`: host `{host}`: {e}"))?;
        let (tls, refused) = peer_client_config(files, &config.peer_post).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(tls));
        let address = match host.contains(':') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        };
        let plain = Endpoint::from_shared(format!("http://{address}")).map_err(|e| format!("endpoint `{url}`: {e}"))?.connect_timeout(Duration::from_secs(5));
        let connector = tower::service_fn(move |_: tonic::codegen::http::Uri| {
            let (tls, server_name, address) = (tls.clone(), server_name.clone(), address.clone());
            async move {
                let tcp = tokio::net::TcpStream::connect(&address).await?;
                tcp.set_nodelay(true)?;
                let stream = tls.connect(server_name, tcp).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        });
        plain.connect_with_connector(connector).await.map_err(|e| match refused.take() {
            Some(reason) => Failure::Refused(reason),
            None => Failure::Unreachable(error_chain(&e)),
        })
    }

    async fn run(self, config: SenderConfig) {
        let mut delay = None;
        loop {
            let (state, error) = match self.session(&config).await {
                Ok(()) => (PeerState::Unreachable, "the peer closed the stream".to_string()),
                Err(Failure::Unreachable(error)) => (PeerState::Unreachable, error),
                Err(Failure::Refused(error)) => (PeerState::Refused, error),
            };
            let was = self.status.get();
            let outbox_batches = was.outbox_batches;
            match state {
                PeerState::Refused if was.peer_state != PeerState::Refused || was.last_error.as_deref() != Some(error.as_str()) => tracing::warn!(
                    peer = %config.peer_post,
                    endpoint = %config.endpoint,
                    reason = %error,
                    outbox_batches,
                    "exchange peer refused: its certificate is not the peer post's; nothing is sent to it, records wait in the outbox"
                ),
                PeerState::Unreachable if was.peer_state != PeerState::Unreachable => tracing::warn!(
                    peer = %config.peer_post,
                    endpoint = %config.endpoint,
                    reason = %error,
                    outbox_batches,
                    "exchange peer unreachable; retrying, records wait in the outbox"
                ),
                _ => tracing::debug!(peer = %config.peer_post, endpoint = %config.endpoint, state = state.as_str(), reason = %error, "exchange peer still unreachable or refused"),
            }
            self.status.update(|s| {
                s.peer_state = state;
                s.last_error = Some(error);
            });
            // A connection that was up starts the backoff afresh.
            if was.peer_state == PeerState::Connected {
                delay = None;
            }
            let next = reconnect_delay(delay);
            tokio::time::sleep(next).await;
            delay = Some(next);
        }
    }

    /// One connection: sends what is pending, then what arrives, until the
    /// stream fails.
    async fn session(&self, config: &SenderConfig) -> Result<(), Failure> {
        let channel = Self::connect(config).await?;
        let mut client = FlightServiceClient::new(channel);
        let (tx, rx) = tokio::sync::mpsc::channel::<FlightData>(config.window * 2 + 4);
        let schema = pre_arrival_schema();
        let options = IpcWriteOptions::default();
        let descriptor = FlightDescriptor::new_path(vec!["pre_arrival".to_string(), config.post_id.clone()]);
        let first: FlightData = FlightData::from(SchemaAsIpc::new(&schema, &options)).with_descriptor(descriptor);
        tx.send(first).await.map_err(|e| e.to_string())?;
        let response = client.do_put(tokio_stream::wrappers::ReceiverStream::new(rx)).await.map_err(|e| format!("DoPut: {}", status_text(&e)))?;
        let mut acks = response.into_inner();
        tracing::info!(peer = %config.peer_post, endpoint = %config.endpoint, "exchange peer connected");
        self.status.update(|s| {
            s.peer_state = PeerState::Connected;
            s.last_error = None;
        });
        let mut sent_through = self.outbox.lock().await.acked_through();
        let mut in_flight = 0usize;
        let mut compact_at = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut housekeeping = tokio::time::interval(Duration::from_millis(250));
        loop {
            // Send what the window allows.
            {
                let outbox = self.outbox.lock().await;
                let mut sent = 0u64;
                for record in outbox.after(sent_through).take(config.window.saturating_sub(in_flight)) {
                    let (_, data) = arrow_flight::utils::batches_to_flight_data(&schema, vec![record.batch.clone()])
                        .map(|all| (0, all))
                        .map_err(|e| format!("encoding outbox batch {}: {e}", record.seq))?;
                    let count = data.len();
                    for (i, mut message) in data.into_iter().enumerate().skip(1) {
                        if i + 1 == count {
                            message = message.with_app_metadata(record.seq.to_string().into_bytes());
                        }
                        tx.send(message).await.map_err(|_| "the request stream closed".to_string())?;
                    }
                    sent_through = record.seq;
                    in_flight += 1;
                    sent += 1;
                }
                if sent > 0 {
                    self.status.update(|s| s.sent_batches += sent);
                }
                let oldest = outbox.pending().front().map(|r| wall_ms().saturating_sub(r.queued_at_ms)).unwrap_or(0);
                self.status.update(|s| s.oldest_pending_ms = oldest);
            }
            tokio::select! {
                ack = acks.message() => {
                    let ack = ack.map_err(|e| format!("acknowledgements: {}", status_text(&e)))?;
                    let Some(ack) = ack else { return Ok(()) };
                    let seq: u64 = std::str::from_utf8(&ack.app_metadata).ok().and_then(|t| t.parse().ok())
                        .ok_or_else(|| "an acknowledgement without an outbox number".to_string())?;
                    let mut outbox = self.outbox.lock().await;
                    let lag = outbox.pending().iter().find(|r| r.seq == seq).map(|r| wall_ms().saturating_sub(r.queued_at_ms));
                    let before = outbox.pending().len();
                    outbox.ack(seq);
                    in_flight = in_flight.saturating_sub(before - outbox.pending().len());
                    let (batches, rows) = (outbox.pending().len(), outbox.pending().iter().map(|r| r.batch.num_rows()).sum());
                    self.status.update(|s| {
                        s.acked_through = seq;
                        s.outbox_batches = batches;
                        s.outbox_rows = rows;
                        if lag.is_some() { s.last_ack_lag_ms = lag; }
                    });
                }
                _ = self.notify.notified() => {}
                _ = housekeeping.tick() => {
                    let mut outbox = self.outbox.lock().await;
                    if let Err(error) = outbox.flush_ack().await {
                        tracing::warn!(%error, "writing the outbox acknowledgement failed; records may be sent again");
                    }
                    if tokio::time::Instant::now() >= compact_at {
                        compact_at = tokio::time::Instant::now() + Duration::from_secs(60);
                        match outbox.compact().await {
                            Ok(rows) if rows > 0 => tracing::debug!(rows, "exchange outbox compacted"),
                            Ok(_) => {}
                            Err(error) => tracing::warn!(%error, "compacting the exchange outbox failed"),
                        }
                    }
                }
            }
        }
    }
}

/// The first wait before reconnecting to an unreachable peer, and the
/// longest: a peer that was down for an hour is retried within
/// `RECONNECT_MAX` of its return (plus the 5 s connect timeout when its
/// address drops packets instead of refusing them).
pub const RECONNECT_FIRST: Duration = Duration::from_millis(200);
pub const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// The wait before the next attempt, after waiting `previous` before the
/// last one (`None`: the first failure): doubling from [`RECONNECT_FIRST`],
/// never above [`RECONNECT_MAX`].
pub fn reconnect_delay(previous: Option<Duration>) -> Duration {
    match previous {
        None => RECONNECT_FIRST,
        Some(previous) => previous.saturating_mul(2).clamp(RECONNECT_FIRST, RECONNECT_MAX),
    }
}

/// Why a session ended.
enum Failure {
    /// Not reachable, or the connection broke: retried.
    Unreachable(String),
    /// The server is not the peer post (its certificate names another):
    /// retried too (the peer may fix its certificate), but reported apart.
    Refused(String),
}

impl From<String> for Failure {
    fn from(error: String) -> Self {
        Failure::Unreachable(error)
    }
}

fn wall_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

/// A status's message and code, in words.
pub(crate) fn status_text(status: &tonic::Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if let Some(source) = std::error::Error::source(status) {
        text.push_str(&format!(" ({})", error_chain(source)));
    }
    text
}

/// An error and its sources, joined (rustls' reason is deep in the chain).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let next = inner.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = inner.source();
    }
    text
}
