//! Borderflow: video control and number plate recognition at road border
//! crossings, as an incremental dataflow engine.
//!
//! This crate is the facade an agency backend depends on, and the
//! `borderflow` command ([`cli`]). It re-exports the workspace's crates:
//! [`engine`] (the [`Engine`]: durable inputs, the timely runtime, standing
//! views; with the core types of `borderflow-types`), [`queries`] (SQL to
//! differential dataflow), [`operators`] (frames to plate reads),
//! [`models`] (the ONNX models) and [`connectors`] (cameras, the exchange
//! between posts, object storage, Flight SQL, the traffic scenario).
//!
//! Embedding: open a post's engine, push reads, watch a view change, ask
//! ad-hoc SQL (`cargo run --example embed` runs the full example):
//!
//! ```no_run
//! use borderflow::{Engine, EngineOptions, engine::{PostConfig, reads_to_batch}};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = PostConfig::from_file("examples/otaci-md.toml".as_ref())?;
//! let mut engine = Engine::open(config, EngineOptions { standard_views: true, ..Default::default() })?;
//! let flags = engine.subscribe("risk_flags")?;
//! # let reads = Vec::new();
//! engine.push_reads(&reads_to_batch(&reads))?; // durable in the log, then applied
//! for change in flags.try_iter() {
//!     println!("{change:?}"); // the view's rows with `_diff` and `_time`
//! }
//! let answer = engine.sql("SELECT count(*) FROM reads")?;
//! # let _ = answer;
//! engine.shutdown()?; // changelogs, snapshots, retention sweep
//! # Ok(())
//! # }
//! ```
//!
//! A post's cameras run on the video workers with [`camera_video`] and
//! [`VideoRun`]; their reads are pushed into the engine as above.

pub use borderflow_connectors as connectors;
pub use borderflow_engine as engine;
pub use borderflow_models as models;
pub use borderflow_operators as operators;
pub use borderflow_queries as queries;

pub use borderflow_engine::{Engine, EngineError, EngineOptions, RecoveryReport};
pub use borderflow_operators::{VideoReport, VideoRun, VideoSpec, run_video};

pub mod cli;

/// A post's cameras on the process's video workers, their sources opened
/// with `source` (over each camera's own settings): [`VideoSpec::new`] with
/// the connectors' camera sources.
pub fn camera_video(
    post_id: &str,
    country: &str,
    cameras: Vec<engine::CameraConfig>,
    source: connectors::CameraSourceOptions,
    runtime: engine::Runtime,
) -> VideoSpec {
    VideoSpec::new(post_id, country, cameras, connectors::camera_opener(source), runtime)
}
