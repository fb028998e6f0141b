//! Borderflow's video operators: everything between a decoded frame and a
//! plate read.
//!
//! ```text
//!  camera source (connectors) ──Frame──▶ camera_workers.rs: the camera's worker
//!                                          │
//!                                          ▼
//!                      camera_reader.rs: CameraReader::process(frame)
//!     detect (text detector, a subset of frames, inside the lane's region)
//!       → track (tracker.rs: ByteTrack-style association, Kalman motion)
//!       → recognise tracked plates (plate_reader.rs, plate_crop.rs, plate_text.rs)
//!       → vote per character over a track's readings (plate_vote.rs)
//!       → the track crosses the counting line (line_crossing.rs)
//!                                          │
//!                                          ▼
//!                               PlateRead ──▶ the engine
//! ```
//!
//! A frame becomes a read in `camera_reader.rs` ([`CameraReader::process`],
//! and [`CameraReader::finish`] at the end of a stream): one read per vehicle
//! passage, when its track crosses the counting line. [`camera_workers`] runs
//! a post's cameras on the process's timely workers: each camera belongs to
//! one worker, which opens its source ([`borderflow_types::FrameSource`],
//! from `borderflow-connectors`), feeds its frames to the camera's reader and
//! never hands a frame to another worker ([`VideoRun`]).

pub use camera_reader::{CameraReader, PlateCrop, StageTimes, VideoOptions};
pub use camera_workers::{VideoReport, VideoRun, VideoSpec, run_video};
pub use line_crossing::{Crossing, crossing};
pub use plate_reader::{PlateReader, PlateReaderError, PlateReaderOptions, PlateReading, load_rgb};
pub use plate_vote::{Ballot, Voted, vote};
pub use tracker::{Detection, Track, TrackState, Tracker, TrackerOptions};

pub mod camera_reader;
pub mod camera_workers;
pub mod line_crossing;
pub mod plate_crop;
mod plate_reader;
pub mod plate_text;
pub mod plate_vote;
pub mod tracker;
