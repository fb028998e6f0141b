//! Borderflow's connectors: where frames and reads come from and where results go.
//!
//! Sources: [`camera`] turns a camera URI (`file://`, `rtsp://`, `http(s)://`
//! MJPEG, `dir://` image folders) into a queue of RGB
//! [`borderflow_types::Frame`]s with event times, reconnecting live streams
//! and counting what it drops ([`CameraSource`]); the deterministic traffic
//! [`scenario`] produces [`borderflow_types::PlateRead`]s (simulated
//! crossings with planted anomalies and ground truth); [`synthetic_video`]
//! renders lane video with known vehicles to H.264 MP4, for tests, the demo
//! and benchmarks. Sinks take reads and view changes as Arrow record batches
//! and write them out: [`ParquetStore`] writes Parquet to any `object_store` URL.
//! Between posts, [`exchange`] sends exit reads as hashed pre-arrival
//! records to the neighbour over Arrow Flight with mutual TLS, from a
//! durable outbox, and receives the neighbour's. For analysts, [`flight_sql`]
//! answers SQL over Arrow Flight SQL (mutual TLS or tokens, every request
//! audited), asking the engine thread through an [`engine_handle`].
//! Beside the post's own video: [`feed`] takes plate events from
//! third-party ANPR cameras over HTTP(S) (Hikvision ISAPI, JSON), [`mqtt`]
//! publishes reads, risk flags and camera health on a message bus and takes
//! reads from it, and [`webhook`] posts risk flags to HTTP endpoints at least
//! once (rows as JSON by [`outbound`]); [`metrics`] serves the post's
//! `/metrics` for Prometheus. A camera that records keeps its own video in
//! segment files beside its frames, and [`recording`] cuts evidence clips
//! (MP4) from them.

pub use camera::{CameraError, CameraEvent, CameraSource, CameraSourceOptions, Pacing, RtspTransport, camera_opener};
pub use parquet_store::{ParquetStore, StoreError, WrittenFile};

pub mod camera;
pub mod console;
pub mod engine_handle;
pub mod exchange;
pub mod feed;
pub mod flight_sql;
pub mod metrics;
pub mod mqtt;
pub mod outbound;
mod parquet_store;
pub mod recording;
pub mod scenario;
pub mod synthetic_video;
pub mod webhook;
