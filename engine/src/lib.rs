//! The Borderflow engine, as an agency backend links it: durable inputs, the
//! timely runtime, and the dataflows that keep a post's results up to date.
//!
//! Data enters an [`Engine`] as [`PlateRead`]s (pushed by cameras, feeds or
//! an embedding backend), pre-arrival records from the neighbour's post and
//! watchlist entries, and leaves as each standing view's changes (Arrow
//! batches to subscribers, Parquet changelog parts in the post's store),
//! snapshots, and answers to ad-hoc SQL. The engine is split by concern:
//! [`Engine::open`] and recovery (`engine.rs`), applying changes (`apply.rs`),
//! the changelog sinks (`sinks.rs`) and the reads' history ([`history`]),
//! retention (`retention.rs`) and the watchlist (`watchlist_updates.rs`,
//! [`watchlist_file`]); [`post_views`] builds a post's tables and views. The core types ([`borderflow_types`]) are re-exported
//! here, so a backend depends on this crate alone.
//!
//! Durability: every input change is appended to the post's write-ahead log
//! ([`Wal`], Arrow IPC records with checksums, partitioned by post and date)
//! in the post's object store ([`Storage`]: `file://` with fsync, or `s3://`)
//! before it is applied; on start the log is read back and replayed, and
//! retention removes expired rows from it. [`Runtime`] runs N timely workers.
//! Arrow IPC read back from the log or received from the peer is checked
//! against the bytes in hand before arrow decodes it ([`ipc_check`]).

pub use borderflow_queries as queries;
pub use borderflow_types as types;
pub use borderflow_types::*;
pub use engine::{Engine, EngineError, EngineOptions, RecoveryReport, reads_schema};
pub use post::{PostTables, demo_exchange_keys, feed_reads, post_exchange_keys, post_views};
pub use watchlist_updates::WatchlistChange;
pub use passage_counts::{PassageCountChange, PassageKey, replay_passage_counts};
pub use borderflow_runtime::Runtime;
pub use storage::{Storage, StorageError};
pub use wal::{Wal, WalError, WalOp, WalOptions, WalRecord};

mod apply;
mod engine;
pub mod history;
pub mod ipc_check;
pub mod passage_counts;
mod post;
mod retention;
mod sinks;
pub mod storage;
pub mod wal;
mod watchlist_updates;
pub mod watchlist_file;
