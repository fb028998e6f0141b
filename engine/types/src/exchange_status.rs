//! What the pre-arrival exchange with the neighbour's post is doing: shared
//! by the exchange's sender and receiver (in `borderflow-connectors`), which
//! update it, and the engine, which reports it.

use std::sync::{Arc, Mutex};

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

    /// Changes the status in place (the exchange's sender and receiver do).
    pub fn update(&self, f: impl FnOnce(&mut ExchangeStatus)) {
        match self.0.lock() {
            Ok(mut status) => f(&mut status),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}
