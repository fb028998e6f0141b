//! Borderflow's core types and Arrow schemas, shared by every crate of the
//! workspace without depending on the engine.
//!
//! A [`PlateRead`] is what the video operators, third-party feeds, the peer
//! post and the scenario generator produce; a [`Frame`] is what a camera
//! delivers. Reads cross into Arrow with [`reads_to_batch`] and back with
//! [`reads_from_batch`]. A post is described by a [`PostConfig`] read from
//! TOML (errors name the file, line and key). Plates are normalised to keys
//! ([`plate_norm`], [`plate_fuzzy`]), checked against national formats
//! ([`plate_grammar`]) and, before anything crosses the border, hashed with
//! the pair of posts' HMAC key ([`plate_hash`]). [`crossings`] lists the road
//! crossings and their posts. [`video`] says where recorded video segments
//! are kept and how they are named.

pub use camera_health::{CameraHealth, CameraState, CameraStats, WalStats};
pub use config::{
    CameraConfig, CameraSourceSettings, ConfigError, RecordingConfig, CountingLine, PeerConfig, PostConfig, PostSection, Retention, S3Config,
    AUDIT_LOG_TABLE, ENGINE_TABLES, RoleConfig, RtspTransport, ScenarioSourceConfig, ServeConfig, Side, StorageConfig, TableConfig, ViewConfig, WatchlistConfig,
    WatchlistSource, FeedCamera, FeedConfig, FeedFormat, JsonFields, MqttConfig, WebhookConfig,
};
pub use crossings::{CROSSINGS, CrossingInfo, PostInfo};
pub use error::SchemaError;
pub use exchange_status::{ExchangeStatus, PeerState, StatusHandle};
pub use frame::{CameraOpener, Frame, FrameEvent, FrameSource};
pub use live::{LiveFrame, LiveFrames, LiveTrack, WatchGuard};
pub use watchlist::{conform_watchlist, watchlist_schema};
pub use plate_key::{plate_fuzzy, plate_norm};
pub use plate_hash::{ExchangeKeys, key_variants, pre_arrival_records, pre_arrival_schema, read_keys_batch, read_keys_schema};
pub use read::{BBox, Direction, PlateRead, Point, plate_read_schema, reads_from_batch, reads_history_parts, reads_to_batch};

mod camera_health;
pub mod config;
pub mod crossings;
mod error;
pub mod exchange_status;
mod frame;
pub mod live;
pub mod plate_grammar;
pub mod plate_hash;
mod plate_key;
mod read;
pub mod video;
pub mod watchlist;
