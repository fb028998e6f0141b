//! The receiving side: a Flight service that takes the peer's `DoPut`.

use std::net::SocketAddr;
use std::pin::Pin;

use arrow::array::RecordBatch;
use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse, PollInfo, PutResult,
    SchemaResult, Ticket,
};
use borderflow_engine::ipc_check::IpcCheck;
use borderflow_types::pre_arrival_schema;
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status, Streaming};

use super::tls::{TlsFiles, serve_tls, server_config, subject_common_name};
use super::{ExchangeError, StatusHandle};

/// Received pre-arrival records, for the engine: `done` gets how many rows
/// were new (repeats dropped by `read_id`) once they are durable.
pub struct Delivery {
    pub from_post: String,
    pub batch: RecordBatch,
    pub done: oneshot::Sender<Result<(usize, usize), String>>,
}

/// The Flight service the peer sends to (see the module documentation).
#[derive(Clone)]
pub struct ExchangeService {
    peer_post: String,
    deliver: Deliver,
    status: StatusHandle,
    /// The key versions this post holds (`None`: take every version).
    key_versions: Option<Vec<u16>>,
}

/// Hands a delivery to the engine; false when the engine is gone.
pub type Deliver = std::sync::Arc<dyn Fn(Delivery) -> bool + Send + Sync>;

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

impl ExchangeService {
    pub fn new(peer_post: &str, deliver: Deliver, status: StatusHandle) -> Self {
        ExchangeService { peer_post: peer_post.to_string(), deliver, status, key_versions: None }
    }

    /// Takes only records hashed under these key versions (the ones this
    /// post holds): a record under another version could never match, so
    /// it is dropped, counted ([`super::ExchangeStatus::unknown_key_rows`])
    /// and logged with the versions on both sides.
    pub fn with_key_versions(mut self, versions: impl IntoIterator<Item = u16>) -> Self {
        self.key_versions = Some(versions.into_iter().collect());
        self
    }

    fn refuse(&self, remote: Option<SocketAddr>, reason: String) -> Status {
        tracing::warn!(remote = ?remote, peer = %self.peer_post, %reason, "exchange call refused");
        self.status.update(|s| s.refused += 1);
        Status::permission_denied(reason)
    }
}

/// Serves `service` on `address` with mutual TLS (`tls.ca` is the peer's
/// authority), or in plain text without `tls` (tests only). Returns the
/// bound address; the server runs on the current tokio runtime.
pub async fn serve_exchange(address: &str, tls: Option<&TlsFiles>, service: ExchangeService) -> Result<SocketAddr, ExchangeError> {
    let listen = |message: String| ExchangeError::Listen { address: address.to_string(), message };
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| listen(e.to_string()))?;
    let bound = listener.local_addr().map_err(|e| listen(e.to_string()))?;
    let refusals = service.status.clone();
    let server = tonic::transport::Server::builder().tcp_nodelay(true).add_service(FlightServiceServer::new(service));
    match tls {
        Some(files) => {
            if files.ca.is_none() {
                return Err(listen("the exchange needs the peer's CA for mutual TLS ([peer] ca)".into()));
            }
            let counted: super::tls::OnRefusedHandshake = std::sync::Arc::new(move |_: SocketAddr, _: String| refusals.update(|s| s.refused += 1));
            let incoming = serve_tls(listener, server_config(files, false)?, "exchange", Some(counted));
            tokio::spawn(async move {
                if let Err(error) = server.serve_with_incoming(incoming).await {
                    tracing::error!(%error, "exchange server stopped");
                }
            });
        }
        None => {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            tokio::spawn(async move {
                if let Err(error) = server.serve_with_incoming(incoming).await {
                    tracing::error!(%error, "exchange server stopped");
                }
            });
        }
    }
    Ok(bound)
}

#[tonic::async_trait]
impl FlightService for ExchangeService {
    type HandshakeStream = Boxed<HandshakeResponse>;
    type ListFlightsStream = Boxed<FlightInfo>;
    type DoGetStream = Boxed<FlightData>;
    type DoPutStream = Boxed<PutResult>;
    type DoActionStream = Boxed<arrow_flight::Result>;
    type ListActionsStream = Boxed<ActionType>;
    type DoExchangeStream = Boxed<FlightData>;

    async fn do_put(&self, request: Request<Streaming<FlightData>>) -> Result<Response<Self::DoPutStream>, Status> {
        let remote = request.remote_addr();
        // With TLS, the handshake has checked the chain to the peer's
        // authority; the certificate must also be the peer post's own.
        let certificate = match request.peer_certs() {
            Some(certs) => match certs.first().and_then(subject_common_name) {
                Some(name) if name == self.peer_post => Some(name),
                Some(name) => {
                    return Err(self.refuse(remote, format!("the client certificate is for `{name}`, not for the peer post `{}`", self.peer_post)));
                }
                None => return Err(self.refuse(remote, format!("the client certificate names no post (no common name); expected `{}`", self.peer_post))),
            },
            None => None,
        };
        let mut decoder = FlightDataDecoder::new(checked_flight_data(request.into_inner().map_err(FlightError::from)));
        // The first message names the sender and carries the schema.
        let first = decoder.next().await.ok_or_else(|| self.refuse(remote, "an empty DoPut".into()))?;
        let first = first.map_err(|e| self.refuse(remote, format!("DoPut: {e}")))?;
        let from_post = first
            .inner
            .flight_descriptor
            .as_ref()
            .filter(|d| d.path.len() == 2 && d.path[0] == "pre_arrival")
            .map(|d| d.path[1].clone())
            .ok_or_else(|| self.refuse(remote, "DoPut without a `pre_arrival/<post>` descriptor".into()))?;
        if from_post != self.peer_post {
            return Err(self.refuse(remote, format!("post `{from_post}` is not this post's peer (`{}`)", self.peer_post)));
        }
        match &first.payload {
            DecodedPayload::Schema(schema) if schema.fields() == pre_arrival_schema().fields() => {}
            other => {
                let what = match other {
                    DecodedPayload::Schema(_) => "a schema other than the pre-arrival schema",
                    _ => "data before the schema",
                };
                return Err(self.refuse(remote, format!("post `{from_post}` sent {what}")));
            }
        }
        tracing::info!(peer = %from_post, remote = ?remote, certificate = ?certificate, "exchange peer streaming pre-arrival records");
        let (acks, receiver) = tokio::sync::mpsc::channel::<Result<PutResult, Status>>(64);
        let deliver = self.deliver.clone();
        let status = self.status.clone();
        // Deliveries go to the engine as they arrive (it may apply many in
        // one commit); their outcomes are awaited in order, and acknowledged.
        // A batch that cannot be taken ends the stream: its refusal goes
        // to the peer after the acknowledgements of the batches before it.
        let (pending, mut outcomes) = tokio::sync::mpsc::channel::<Result<(bytes::Bytes, oneshot::Receiver<Result<(usize, usize), String>>), Status>>(1024);
        let peer = from_post.clone();
        let key_versions = self.key_versions.clone();
        let refusals = self.status.clone();
        tokio::spawn(async move {
            while let Some(next) = outcomes.recv().await {
                let (seq, outcome) = match next {
                    Ok(next) => next,
                    Err(refusal) => {
                        let _ = acks.send(Err(refusal)).await;
                        return;
                    }
                };
                match outcome.await {
                    Ok(Ok((new, duplicate))) => {
                        status.update(|s| {
                            s.received_batches += 1;
                            s.received_rows += new as u64;
                            s.duplicate_rows += duplicate as u64;
                        });
                        if acks.send(Ok(PutResult { app_metadata: seq })).await.is_err() {
                            return;
                        }
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(peer = %peer, %error, "the engine could not take pre-arrival records; the peer will send them again");
                        let _ = acks.send(Err(Status::unavailable(error))).await;
                        return;
                    }
                    Err(_) => {
                        let _ = acks.send(Err(Status::unavailable("the engine is shutting down"))).await;
                        return;
                    }
                }
            }
        });
        tokio::spawn(async move {
            let mut batches = 0u64;
            while let Some(message) = decoder.next().await {
                let refused = match &message {
                    Err(FlightError::Tonic(error)) => {
                        tracing::warn!(peer = %from_post, %error, "exchange stream from the peer ended");
                        return;
                    }
                    Err(error) => Some(format!("message after batch {batches}: {error}")),
                    Ok(message) => match &message.payload {
                        DecodedPayload::Schema(_) => Some(format!("a second schema after batch {batches}; the pre-arrival schema is sent once")),
                        DecodedPayload::RecordBatch(batch) if batch.schema().fields() != pre_arrival_schema().fields() => {
                            Some(format!("batch {}: not the pre-arrival schema", batches + 1))
                        }
                        _ => None,
                    },
                };
                if let Some(reason) = refused {
                    tracing::warn!(peer = %from_post, %reason, "exchange stream from the peer refused");
                    refusals.update(|s| s.refused += 1);
                    let _ = pending.send(Err(Status::invalid_argument(format!("pre-arrival records refused: {reason}")))).await;
                    return;
                }
                let Ok(message) = message else { return };
                let DecodedPayload::RecordBatch(batch) = message.payload else { continue };
                batches += 1;
                let batch = match &key_versions {
                    Some(held) => held_versions_only(batch, held, &from_post, &refusals),
                    None => batch,
                };
                let (done, outcome) = oneshot::channel();
                if batch.num_rows() == 0 {
                    // Nothing to apply: acknowledged at its turn.
                    let _ = done.send(Ok((0, 0)));
                } else if !deliver(Delivery { from_post: from_post.clone(), batch, done }) {
                    return;
                }
                if pending.send(Ok((message.inner.app_metadata.clone(), outcome))).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))))
    }

    async fn handshake(&self, _: Request<Streaming<HandshakeRequest>>) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(Status::unimplemented("the exchange takes DoPut only"))
    }
    async fn list_flights(&self, _: Request<Criteria>) -> Result<Response<Self::ListFlightsStream>, Status> {
        Err(Status::unimplemented("the exchange takes DoPut only"))
    }
    async fn get_flight_info(&self, _: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        Err(Status::unimplemented("the exchange takes DoPut only"))
    }
    async fn poll_flight_info(&self, _: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented("the exchange takes DoPut only"))
    }
    async fn get_schema(&self, _: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        Err(Status::unimplemented("the exchange takes DoPut only"))
    }
    async fn do_get(&self, _: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        Err(Status::unimplemented("the exchange takes DoPut only"))
    }
    async fn do_action(&self, _: Request<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        Err(Status::unimplemented("the exchange takes DoPut only"))
    }
    async fn list_actions(&self, _: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        Err(Status::unimplemented("the exchange takes DoPut only"))
    }
    async fn do_exchange(&self, _: Request<Streaming<FlightData>>) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented("the exchange takes DoPut only"))
    }
}

/// The peer's Flight data, each message checked against the bytes it
/// brings before arrow decodes it ([`borderflow_engine::ipc_check`]): a
/// damaged or hostile message is an error, not a panic or a huge allocation.
fn checked_flight_data(
    data: impl Stream<Item = Result<FlightData, FlightError>> + Send + 'static,
) -> impl Stream<Item = Result<FlightData, FlightError>> + Send + 'static {
    let mut check = IpcCheck::new();
    data.map(move |data| {
        let data = data?;
        match check.message(&data.data_header, data.data_body.len()) {
            Ok(_) => Ok(data),
            Err(error) => Err(FlightError::DecodeError(error)),
        }
    })
}

/// The rows of `batch` hashed under a key version in `held`; the others are
/// counted and logged (once a batch, with the versions on both sides).
fn held_versions_only(batch: RecordBatch, held: &[u16], from_post: &str, status: &StatusHandle) -> RecordBatch {
    let Some(versions) = batch.column_by_name("key_version").and_then(|c| c.as_any().downcast_ref::<arrow::array::UInt16Array>()) else {
        return batch;
    };
    let keep: arrow::array::BooleanArray = versions.iter().map(|v| Some(v.is_some_and(|v| held.contains(&v)))).collect();
    let dropped = keep.false_count();
    if dropped == 0 {
        return batch;
    }
    let mut unknown: Vec<u16> = versions.iter().flatten().filter(|v| !held.contains(v)).collect();
    unknown.sort_unstable();
    unknown.dedup();
    tracing::warn!(
        peer = %from_post,
        rows = dropped,
        versions = ?unknown,
        held = ?held,
        "pre-arrival records refused: hashed under a key version this post does not hold (add it to [peer] hmac_keys)"
    );
    status.update(|s| s.unknown_key_rows += dropped as u64);
    arrow::compute::filter_record_batch(&batch, &keep).unwrap_or_else(|_| batch.slice(0, 0))
}
