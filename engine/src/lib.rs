//! The Borderflow runtime: core types, plate keys, post configuration and the
//! timely/differential execution that keeps results up to date.
//!
//! Data enters as [`PlateRead`]s (from the video operators, third-party feeds,
//! the peer post or the scenario generator) and [`Frame`]s (from cameras); a
//! post is described by a [`PostConfig`] read from TOML. Reads cross into Arrow
//! with [`reads_to_batch`] and back with [`reads_from_batch`]. [`Runtime`]
//! runs N timely workers; the dataflows it builds leave as changes
//! `(row, time, diff)` that sinks write out.
//!
//! Durability: every input change is appended to the post's write-ahead log
//! ([`Wal`], Arrow IPC records with checksums, partitioned by post and date)
//! in the post's object store ([`Storage`]: `file://` with fsync, or `s3://`)
//! before it is applied; on start the log is read back and replayed, and
//! retention removes expired rows from it.

pub use camera_health::{CameraHealth, CameraState, CameraStats};
pub use config::{
    CameraConfig, CameraSourceSettings, ConfigError, CountingLine, PeerConfig, PostConfig, PostSection, Retention, S3Config,
    ENGINE_TABLES, RtspTransport, ScenarioSourceConfig, ServeConfig, Side, StorageConfig, TableConfig, ViewConfig, WatchlistConfig,
    WatchlistSource,
};
pub use crossings::{CROSSINGS, CrossingInfo, PostInfo};
pub use error::SchemaError;
pub use passage_counts::{PassageCountChange, PassageKey, replay_passage_counts};
pub use runtime::Runtime;
pub use storage::{Storage, StorageError};
pub use wal::{Wal, WalError, WalOp, WalOptions, WalRecord};
pub use frame::Frame;
pub use watchlist::{conform_watchlist, watchlist_schema};
pub use plate_key::{plate_fuzzy, plate_norm};
pub use exchange::{ExchangeKeys, key_variants, pre_arrival_records, pre_arrival_schema, read_keys_batch, read_keys_schema};
pub use read::{BBox, Direction, PlateRead, Point, plate_read_schema, reads_from_batch, reads_history_parts, reads_to_batch};

mod camera_health;
pub mod config;
pub mod crossings;
mod error;
pub mod exchange;
mod frame;
pub mod passage_counts;
pub mod plate_grammar;
mod plate_key;
mod read;
mod runtime;
pub mod watchlist;
pub mod storage;
pub mod wal;
