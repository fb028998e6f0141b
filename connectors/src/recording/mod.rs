//! Recording: a camera's own video kept in segment files beside its frames,
//! and evidence clips cut from them.
//!
//! # Writing
//!
//! A recording camera's pipeline (see [`crate::camera`]) parses the stream
//! once and splits it with a `tee`: one branch decodes frames for the plate
//! reader as before, the other ends in an `appsink` whose samples (the
//! compressed access units, as the camera sent them) go to a second,
//! separate pipeline, the writer:
//!
//! ```text
//! reader:  src ! parsebin ! tee ! queue ! decodebin ! … ! appsink (frames)
//!                               tee ! queue (leaky) ! appsink (compressed video) ──┐
//! writer:  appsrc (leaky, 10 s) ! h264parse|h265parse ! splitmuxsink (mpegtsmux) ◀─┘
//! ```
//!
//! The writer never slows reading: the hand-over is a push into the
//! writer's `appsrc`, whose queue drops the oldest video when the disk falls
//! behind (counted as a recording error), and an error in the writer (a
//! full disk, a folder it may not write) stops the writer only: it is
//! counted, and a new writer starts at a key frame a few seconds later.
//! Nothing is re-encoded: H.264 and H.265 streams are stored as they come
//! (the parser only repeats the parameter sets before every key frame, so
//! each segment decodes on its own). Other codecs are refused with an error
//! naming the camera; an MJPEG camera (`http(s)://`) and an image folder
//! (`dir://`) are not recorded (the configuration refuses `record =
//! "continuous"` on them): storing them would mean encoding every frame,
//! about a core per 720p camera.
//!
//! Segments are MPEG transport streams (`mpegtsmux`). A transport stream is
//! a sequence of self-contained 188-byte packets with no index to write at
//! the end, so a segment is readable up to its last packet whatever stops
//! the process: a SIGKILL or a power cut loses at most the writer's last
//! buffer, where an MP4 without its closing `moov` box would be unreadable.
//! Evidence clips are MP4 (what every player and court system opens); they
//! are written whole, on demand, from the segments.
//!
//! A segment is split at the first key frame after `[recording] segment`,
//! and named by the event time of its first frame and the end of its last
//! (the contract is [`borderflow_types::video`]): `<start_ms>.part` while it
//! is written, renamed `<start_ms>-<end_ms>.ts` when `splitmuxsink` closes
//! it. The times are the camera's frame clock: a recording's start plus the
//! stream's timestamps, or for a live stream the wall clock at its first
//! buffer plus the stream's timestamps, shared by both branches, so a read's
//! `captured_at` falls where its frame is in the segments. The end is the
//! last access unit the muxer took (its timestamp plus its duration),
//! observed on the muxer's input, so consecutive segments of one stream
//! meet exactly. When a camera drops (a pipeline error, the end of a
//! recording, a reconnect) the writer is ended and its open segment closed
//! with the last time written: the next attempt starts a new segment, and
//! the names show the gap. At start a stale `.part` left by a killed process
//! is closed the same way, its end found by demuxing it
//! ([`finalise_stale_parts`]); one with no video in it is removed.
//!
//! # Clips
//!
//! [`export_clip`] joins the segments covering a window into one MP4
//! without re-encoding: each segment is demuxed (`tsdemux`, the parser) to
//! its access units, which are re-stamped on one timeline (a segment's
//! start from its name plus the unit's offset in the segment) and pushed
//! through `appsrc ! h264parse ! mp4mux`. The clip starts at the key frame at
//! or before the window's start and ends with the window; its timeline is
//! the wall clock's, so a gap in the recording stays a gap in time (the
//! last frame before it is held) and is reported. The report gives the
//! SHA-256 of every segment used and of the clip.

mod clip;
mod demux;
mod writer;

pub use clip::{ClipError, ClipReport, ClipSegment, Gap, export_clip};
pub use writer::{RecordingOptions, finalise_stale_parts};
pub(crate) use writer::Recorder;
