//! Borderflow's video operators: the steps that turn a camera's frames into
//! plate reads (detect, track, recognise, vote) and the counting line that
//! decides when a tracked vehicle has passed and in which direction.
//!
//! Frames ([`borderflow_engine::Frame`]) enter on the worker that owns their
//! camera; [`borderflow_engine::PlateRead`]s leave, one per vehicle passage.
//! So far this crate holds the counting-line geometry ([`line_crossing`]) and
//! the still-image plate reader ([`PlateReader`]: an RGB image in, plate
//! readings with country, confidence and the raw reading out), built from the
//! models crate's text detector and recognizer, the word grouping and
//! cropping of [`plate_crop`] and the grammar scoring of [`plate_text`].

pub use line_crossing::{Crossing, crossing};
pub use plate_reader::{PlateReader, PlateReaderError, PlateReaderOptions, PlateReading, load_rgb};

pub mod line_crossing;
pub mod plate_crop;
mod plate_reader;
pub mod plate_text;
