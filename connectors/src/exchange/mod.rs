//! The pre-arrival exchange between neighbouring posts, over Arrow Flight
//! with mutual TLS.
//!
//! A post hashes its exit reads into pre-arrival records
//! ([`borderflow_types::pre_arrival_records`]: keyed hashes of the plate,
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
//! dropped and logged ([`ExchangeService::with_key_versions`]). Each Flight
//! message is checked against the bytes it brings before arrow decodes it
//! ([`borderflow_engine::ipc_check`]); a message that does not pass, a
//! second schema or a batch of another schema ends the call with
//! `InvalidArgument`, after the acknowledgements of the batches before it,
//! saying which batch and why. Received batches go
//! to the engine through a [`Delivery`] channel, and are acknowledged when
//! the engine says they are durable.
//!
//! Both sides report in one [`ExchangeStatus`]: peer state, outbox depth,
//! records sent, acknowledged, received and dropped as repeats, and the lag.

use arrow::array::RecordBatch;

pub use borderflow_types::exchange_status::{ExchangeStatus, PeerState, StatusHandle};
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

/// The read ids in a pre-arrival batch, once each, in order.
pub fn batch_read_ids(batch: &RecordBatch) -> Vec<String> {
    let Some(ids) = batch.column_by_name("read_id").and_then(|c| c.as_any().downcast_ref::<arrow::array::StringArray>()) else {
        return Vec::new();
    };
    let mut seen = std::collections::HashSet::new();
    ids.iter().flatten().filter(|id| seen.insert(*id)).map(str::to_string).collect()
}
