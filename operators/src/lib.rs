//! Borderflow's video operators: the steps that turn a camera's frames into
//! plate reads (detect, track, recognise, vote) and the counting line that
//! decides when a tracked vehicle has passed and in which direction.
//!
//! Frames ([`borderflow_engine::Frame`]) enter a [`CameraReader`] (one per
//! camera, on the worker that owns the camera) through
//! [`CameraReader::process`]; [`borderflow_engine::PlateRead`]s leave, one
//! per vehicle passage. Inside: the text detector on a subset of frames
//! ([`camera_reader`]), the plate [`tracker`] (ByteTrack-style two-stage
//! association, Kalman motion), recognition of tracked plates by the
//! still-image [`PlateReader`] (word grouping and crops of [`plate_crop`],
//! grammar scoring of [`plate_text`]), per-character voting over a track's
//! readings ([`plate_vote`]) and the counting-line geometry ([`line_crossing`]).

pub use camera_reader::{CameraReader, PlateCrop, StageTimes, VideoOptions};
pub use line_crossing::{Crossing, crossing};
pub use plate_reader::{PlateReader, PlateReaderError, PlateReaderOptions, PlateReading, load_rgb};
pub use plate_vote::{Ballot, Voted, vote};
pub use tracker::{Detection, Track, TrackState, Tracker, TrackerOptions};

pub mod camera_reader;
pub mod line_crossing;
pub mod plate_crop;
mod plate_reader;
pub mod plate_text;
pub mod plate_vote;
pub mod tracker;
