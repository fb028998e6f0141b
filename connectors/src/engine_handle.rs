//! The network side's handle to the engine thread of `serve`: the engine is
//! owned by one thread that does everything that changes it, in order; the
//! exchange receiver and the Flight SQL server send it [`EngineRequest`]s and
//! await the answers.

use std::sync::mpsc::Sender;

use arrow::array::RecordBatch;
use borderflow_types::ExchangeKeys;
use tokio::sync::oneshot;

use crate::exchange::Delivery;

/// What the engine thread is asked to do.
pub enum EngineRequest {
    /// Pre-arrival records from the peer.
    Deliver(Delivery),
    /// An ad-hoc query over the tables and the views' snapshots.
    Sql { sql: String, reply: oneshot::Sender<Result<RecordBatch, String>> },
    /// Every table's contents and every view's snapshot, and the exchange keys.
    Tables { reply: oneshot::Sender<Result<EngineTables, String>> },
    /// Reads from another source than the post's own cameras (a feed, the
    /// message bus): answered once they are in the write-ahead log.
    PushReads { push: FeedPush, reply: oneshot::Sender<Result<Taken, String>> },
}

/// Reads to push, and their plate crops (JPEG, by read id).
pub struct FeedPush {
    /// Who sent them, for the log (e.g. "feed `otaci-anpr`").
    pub source: String,
    pub reads: Vec<borderflow_types::PlateRead>,
    pub crops: Vec<(String, Vec<u8>)>,
}

/// What the engine did with pushed reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Taken {
    /// Reads it did not hold.
    pub new: usize,
    /// Reads it held already (sent again).
    pub repeated: usize,
}

/// What the engine holds now, for the analysts' queries and catalog.
pub struct EngineTables {
    /// The engine's tables (`reads`, `pre_arrival`, …), by name.
    pub tables: Vec<(String, RecordBatch)>,
    /// Every standing view's snapshot, by the view's name.
    pub views: Vec<(String, RecordBatch)>,
    /// The keys plates are hashed with (for the plate functions).
    pub keys: ExchangeKeys,
}

/// A handle to the engine thread, for the network side.
#[derive(Clone)]
pub struct EngineHandle {
    requests: Sender<EngineRequest>,
}

impl EngineHandle {
    /// A handle that sends its requests to the engine thread, which answers
    /// them between commits.
    pub fn new(requests: Sender<EngineRequest>) -> Self {
        EngineHandle { requests }
    }

    /// Runs `sql` on the engine thread.
    pub async fn sql(&self, sql: &str) -> Result<RecordBatch, String> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(EngineRequest::Sql { sql: sql.to_string(), reply }).map_err(|_| "the engine has stopped".to_string())?;
        answer.await.map_err(|_| "the engine has stopped".to_string())?
    }

    /// Pushes reads into the engine; answered once they are logged.
    pub async fn push_reads(&self, push: FeedPush) -> Result<Taken, String> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(EngineRequest::PushReads { push, reply }).map_err(|_| "the engine has stopped".to_string())?;
        answer.await.map_err(|_| "the engine has stopped".to_string())?
    }

    /// Every table's contents and every view's snapshot, by name, and
    /// the keys plates are hashed with (for the plate functions).
    pub async fn tables(&self) -> Result<EngineTables, String> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(EngineRequest::Tables { reply }).map_err(|_| "the engine has stopped".to_string())?;
        answer.await.map_err(|_| "the engine has stopped".to_string())?
    }
}
