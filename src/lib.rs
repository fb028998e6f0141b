//! Borderflow: video control and number plate recognition at road border
//! crossings, as an incremental dataflow engine.
//!
//! This crate is the embedded API facade and the `borderflow` command. It
//! assembles the workspace's crates: [`engine`] (core types, configuration,
//! timely/differential runtime), [`operators`] (video operators), [`models`]
//! (ONNX models), [`queries`] (SQL) and [`connectors`] (sources and sinks).
//! Reads or frames enter through a job or the engine; views leave as Arrow
//! record batches and as Parquet in the configured object store.

pub use borderflow_connectors as connectors;
pub use borderflow_engine as engine;
pub use borderflow_models as models;
pub use borderflow_operators as operators;
pub use borderflow_queries as queries;

pub use job::{JobError, JobReport, JobSpec, Progress, run_job};
pub use video::{VideoReport, VideoRun, VideoSpec, run_video};

pub mod eval_images;
pub mod job;
pub mod process;
pub mod video;
pub mod video_job;
