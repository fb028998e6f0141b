//! Borderflow: video control and number plate recognition at road border
//! crossings, as an incremental dataflow engine.
//!
//! This crate is the embedded API facade and the `borderflow` command. It
//! assembles the workspace's crates: [`engine`] (core types, configuration,
//! timely/differential runtime), [`operators`] (video operators), [`models`]
//! (ONNX models), [`queries`] (SQL) and [`connectors`] (sources and sinks).
//! Reads or frames enter through a job (`run_job`, a batch run) or the
//! embedded [`Engine`] (a long-running post: every input is durable in the
//! write-ahead log before it is applied, and a restart replays it); views
//! leave as Arrow record batches and as Parquet in the configured object
//! store. [`follow`] runs a post's scenario through the engine as a
//! long-running process (`borderflow run --config … --follow`);
//! [`post_cameras`] runs it on its cameras (`borderflow run --config` with
//! `[[camera]]`s); [`serve`]
//! runs it as a service that exchanges pre-arrival records with the
//! neighbour's post and answers analysts over Flight SQL ([`flight_sql`]).

pub use borderflow_connectors as connectors;
pub use borderflow_engine as engine;
pub use borderflow_models as models;
pub use borderflow_operators as operators;
pub use borderflow_queries as queries;

pub use embedded::{Engine, EngineError, EngineOptions, RecoveryReport};
pub use job::{JobError, JobReport, JobSpec, Progress, run_job};
pub use video::{VideoReport, VideoRun, VideoSpec, run_video};

pub mod embedded;
pub mod eval_images;
pub mod flight_sql;
pub mod follow;
pub mod job;
pub mod scoring;
pub mod serve;
pub mod sql_cli;
pub mod post_cameras;
pub mod process;
pub mod reads_history;
pub mod video;
pub mod video_job;
pub mod watchlist_file;
