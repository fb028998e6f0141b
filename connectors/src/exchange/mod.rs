//! The pre-arrival exchange between neighbouring posts, over Arrow Flight
//! with mutual TLS.
//!
//! A post hashes its exit reads into pre-arrival records
//! ([`borderflow_engine::pre_arrival_records`]: keyed hashes of the plate,
//! post, direction, point, capture time, confidence, key version; never the
//! plate text) and hands them to its [`ExchangeSender`]. The sender puts
//! them in the durable [`Outbox`] first, then streams them to the peer in
//! one long-lived `DoPut` call: the descriptor names the sending post, each
//! batch carries its outbox number as `app_metadata`, and the peer answers
//! each batch with a `PutResult` carrying the same number once the records
//! are durable on its side. Acknowledged records leave the outbox. The
//! sender checks the peer as the peer checks it: the server's certificate
//! must chain to the peer's authority and name the peer post (its common
//! name); a server that names another post is refused
//! ([`PeerState::Refused`], logged with the reason). When the peer is
//! unreachable the sender retries with backoff (from 200 ms, doubling, at
//! most every 5 s: [`reconnect_delay`]) and the outbox grows; when it returns, everything not acknowledged is
//! sent again, in order. A record may thus arrive twice (sent, then the
//! acknowledgement lost); the receiving engine drops repeats by `read_id`,
//! so every record is applied exactly once.
//!
//! The receiving side is [`ExchangeService`], a Flight service that accepts
//! only `DoPut` from the configured peer post, over TLS whose client
//! certificate must chain to the peer's authority ([`tls`]) and name the
//! peer post (its common name); a refused handshake, a certificate for
//! another post or a wrong post in the descriptor is logged with the
//! reason. Records hashed under a key version this post does not hold are
//! dropped and logged ([`ExchangeService::with_key_versions`]). Received batches go
//! to the engine through a [`Delivery`] channel, and are acknowledged when
//! the engine says they are durable.
//!
//! Both sides report in one [`ExchangeStatus`]: peer state, outbox depth,
//! records sent, acknowledged, received and dropped as repeats, and the lag.

use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;

pub use outbox::{Outbox, OutboxRecord};
pub use receiver::{Deliver, Delivery, ExchangeService, serve_exchange};
pub use sender::{ExchangeSender, RECONNECT_FIRST, RECONNECT_MAX, SenderConfig, reconnect_delay};
pub use tls::TlsFiles;

mod outbox;
mod receiver;
mod sender;
pub mod tls;

/// Why the exchange could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("exchange TLS: {0}")]
    Tls(String),
    #[error("exchange outbox: {0}")]
    Outbox(#[from] borderflow_engine::WalError),
    #[error("exchange with peer `{peer}` at {endpoint}: {message}")]
    Peer { peer: String, endpoint: String, message: String },
    #[error("exchange listener {address}: {message}")]
    Listen { address: String, message: String },
}

/// Whether the neighbour is reachable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PeerState {
    /// No attempt yet.
    #[default]
    Unknown,
    /// Connected: records flow.
    Connected,
    /// The last attempt failed (see [`ExchangeStatus::last_error`]).
    Unreachable,
    /// The server at the endpoint is not the peer post: its certificate
    /// (from the peer's authority) names another post. Nothing is sent to
    /// it; the reason is in [`ExchangeStatus::last_error`].
    Refused,
}

impl PeerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Unknown => "unknown",
            PeerState::Connected => "connected",
            PeerState::Unreachable => "unreachable",
            PeerState::Refused => "refused",
        }
    }
}

/// What the exchange is doing, for the engine API, metrics and logs.
#[derive(Clone, Debug, Default)]
pub struct ExchangeStatus {
    /// The neighbour's post id.
    pub peer: String,
    pub peer_state: PeerState,
    /// Why the peer was last unreachable or a connection ended.
    pub last_error: Option<String>,
    /// Batches in the outbox, not yet acknowledged.
    pub outbox_batches: usize,
    /// Pre-arrival rows in the outbox.
    pub outbox_rows: usize,
    /// Batches sent (again after a reconnect included).
    pub sent_batches: u64,
    /// The last acknowledged outbox number.
    pub acked_through: u64,
    /// Wall time from a batch entering the outbox to its acknowledgement,
    /// for the last acknowledged batch.
    pub last_ack_lag_ms: Option<u64>,
    /// Age of the oldest unacknowledged batch (0: none waiting).
    pub oldest_pending_ms: u64,
    /// Receiving side: batches received, rows new, and rows dropped as repeats.
    pub received_batches: u64,
    pub received_rows: u64,
    pub duplicate_rows: u64,
    /// Receiving side: handshakes or calls refused (sending side: see
    /// [`PeerState::Refused`]).
    pub refused: u64,
    /// Receiving side: rows dropped because they were hashed under a key
    /// version this post does not hold.
    pub unknown_key_rows: u64,
}

/// The status shared by the sender, the receiver and the engine.
#[derive(Clone, Debug, Default)]
pub struct StatusHandle(Arc<Mutex<ExchangeStatus>>);

impl StatusHandle {
    pub fn new(peer: &str) -> Self {
        StatusHandle(Arc::new(Mutex::new(ExchangeStatus { peer: peer.to_string(), ..ExchangeStatus::default() })))
    }

    /// A copy of the current status.
    pub fn get(&self) -> ExchangeStatus {
        self.0.lock().map(|s| s.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut ExchangeStatus)) {
        match self.0.lock() {
            Ok(mut status) => f(&mut status),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

/// The read ids in a pre-arrival batch, once each, in order.
pub fn batch_read_ids(batch: &RecordBatch) -> Vec<String> {
    let Some(ids) = batch.column_by_name("read_id").and_then(|c| c.as_any().downcast_ref::<arrow::array::StringArray>()) else {
        return Vec::new();
    };
    let mut seen = std::collections::HashSet::new();
    ids.iter().flatten().filter(|id| seen.insert(*id)).map(str::to_string).collect()
}
