//! The writer: a camera's compressed video, handed over by the reader's
//! `appsink`, into segment files (see the module documentation of
//! [`crate::recording`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use borderflow_types::video::{self, SegmentFile};
use borderflow_types::{CameraStats, RecordingConfig};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::camera::EventClock;

/// Where and how a camera's video is recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingOptions {
    /// The recording folder (segments go to `<dir>/<camera>/<date>/`).
    pub dir: PathBuf,
    /// A segment ends at the first key frame after this long.
    pub segment: Duration,
    /// Video the writer may hold before it drops the oldest (a slow disk).
    pub max_lag: Duration,
}

impl RecordingOptions {
    pub fn new(dir: impl Into<PathBuf>, segment: Duration) -> RecordingOptions {
        RecordingOptions { dir: dir.into(), segment, max_lag: Duration::from_secs(10) }
    }

    /// The options a post's `[recording]` table gives.
    pub fn from_config(config: &RecordingConfig) -> RecordingOptions {
        RecordingOptions::new(&config.path, config.segment)
    }
}

/// How long a writer that failed waits before another starts.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long closing a writer may wait for its last segment to be written.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// One camera's recording, across the reader's attempts: each attempt at
/// the stream gets a session ([`Recorder::start`]).
pub(crate) struct Recorder {
    camera_id: Arc<str>,
    options: RecordingOptions,
    stats: Arc<CameraStats>,
}

impl Recorder {
    pub(crate) fn new(camera_id: Arc<str>, options: RecordingOptions, stats: Arc<CameraStats>) -> Recorder {
        Recorder { camera_id, options, stats }
    }

    /// Closes the segments a killed process left open (see [`finalise_stale_parts`]).
    pub(crate) fn finalise_stale(&self) {
        match finalise_stale_parts(&self.options.dir, &self.camera_id) {
            Ok(closed) => {
                for segment in closed {
                    let bytes = std::fs::metadata(&segment.path).map(|m| m.len()).unwrap_or(0);
                    tracing::info!(camera = %self.camera_id, segment = %segment.path.display(), "closed a segment left open");
                    self.stats.segment_recorded(bytes);
                }
            }
            Err(e) => self.stats.recording_failed(format!("camera {}: recording: {e}", self.camera_id)),
        }
    }

    /// A session fed by `sink` (the reader's compressed-video appsink),
    /// stamping segments with `clock`.
    pub(crate) fn start(&self, sink: &gst_app::AppSink, clock: Arc<EventClock>) -> RecordingSession {
        let shared = Arc::new(Shared {
            camera_id: Arc::clone(&self.camera_id),
            options: self.options.clone(),
            stats: Arc::clone(&self.stats),
            clock,
            inner: Mutex::new(Inner::default()),
        });
        let feeding = Arc::clone(&shared);
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    if let Ok(sample) = sink.pull_sample() {
                        feeding.take(&sample);
                    }
                    // Whatever becomes of the recording, reading goes on.
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        RecordingSession { shared }
    }
}

/// One attempt's recording. [`finish`](Self::finish) once the reader's
/// pipeline is stopped.
pub(crate) struct RecordingSession {
    shared: Arc<Shared>,
}

impl RecordingSession {
    /// Ends the writer: its last segment is finished and closed with the
    /// last time written.
    pub(crate) fn finish(self) {
        let writer = self.shared.lock().writer.take();
        if let Some(writer) = writer {
            writer.finish(&self.shared);
        }
    }
}

struct Shared {
    camera_id: Arc<str>,
    options: RecordingOptions,
    stats: Arc<CameraStats>,
    clock: Arc<EventClock>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    writer: Option<Writer>,
    /// The stream cannot be recorded as it is: everything is dropped.
    refused: bool,
    /// No writer starts before this (one failed).
    retry_at: Option<Instant>,
    /// When dropped video was last reported.
    drop_reported_at: Option<Instant>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn failed(&self, cause: impl std::fmt::Display) {
        let message = format!("camera {}: recording: {cause}", self.camera_id);
        tracing::warn!(camera = %self.camera_id, "{message}");
        self.stats.recording_failed(message);
    }

    /// A sample from the reader: into the writer, starting one at a key
    /// frame when there is none. Never blocks.
    fn take(self: &Arc<Self>, sample: &gst::Sample) {
        let mut inner = self.lock();
        if inner.refused {
            return;
        }
        if inner.writer.as_ref().is_some_and(|w| w.broken.load(Ordering::Relaxed)) {
            if let Some(writer) = inner.writer.take() {
                writer.finish(self);
            }
            inner.retry_at = Some(Instant::now() + RETRY_AFTER);
        }
        let Some(buffer) = sample.buffer() else { return };
        // A live stream's clock starts at its first buffer, which this is
        // (the writer names its first segment a GOP later).
        if let Some(pts) = buffer.pts().or(buffer.dts()) {
            self.clock.event_ms(ns_to_ms(pts.nseconds()));
        }
        if inner.writer.is_none() {
            let key_frame = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
            if !key_frame || inner.retry_at.is_some_and(|at| Instant::now() < at) {
                return;
            }
            let Some(caps) = sample.caps() else { return };
            let Some(parser) = parser_for(caps) else {
                let what = caps.structure(0).map_or("a stream without caps".to_string(), |s| s.name().to_string());
                self.failed(format!(
                    "the stream is {what}; recording keeps H.264 or H.265 as the camera sends it, so this camera is not recorded"
                ));
                inner.refused = true;
                return;
            };
            match Writer::start(self, caps, parser) {
                Ok(writer) => inner.writer = Some(writer),
                Err(cause) => {
                    self.failed(cause);
                    inner.retry_at = Some(Instant::now() + RETRY_AFTER);
                    return;
                }
            }
        }
        let Some(src) = inner.writer.as_ref().map(|w| w.src.clone()) else { return };
        // The writer's queue is leaky: when it is full the oldest video goes.
        if u128::from(src.current_level_time().nseconds()) >= self.options.max_lag.as_nanos()
            && inner.drop_reported_at.is_none_or(|at| at.elapsed() > Duration::from_secs(10))
        {
            inner.drop_reported_at = Some(Instant::now());
            self.failed(format!("the disk is behind by {} s of video; the oldest is dropped", self.options.max_lag.as_secs()));
        }
        let _ = src.push_sample(sample);
    }
}

/// The parser that takes `caps` to the muxer, for the codecs recorded.
fn parser_for(caps: &gst::CapsRef) -> Option<&'static str> {
    match caps.structure(0)?.name().as_str() {
        "video/x-h264" => Some("h264parse"),
        "video/x-h265" => Some("h265parse"),
        _ => None,
    }
}

/// What the writer has written of the segment it has open.
#[derive(Debug, Default)]
struct Progress {
    open: Option<OpenSegment>,
    /// End (timestamp plus duration) of the last access unit the muxer took, ns.
    written_end_ns: Option<u64>,
    last_pts_ns: Option<u64>,
    /// Interval between the last two access units, for one without a duration.
    frame_ns: u64,
}

#[derive(Debug)]
struct OpenSegment {
    part: PathBuf,
    start_ms: i64,
}

/// A pipeline `appsrc ! parser ! splitmuxsink` writing segments.
struct Writer {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    progress: Arc<Mutex<Progress>>,
    broken: Arc<AtomicBool>,
}

fn lock_progress(progress: &Mutex<Progress>) -> MutexGuard<'_, Progress> {
    progress.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Writer {
    fn start(shared: &Arc<Shared>, caps: &gst::CapsRef, parser: &str) -> Result<Writer, String> {
        let make = |factory: &str| gst::ElementFactory::make(factory).build().map_err(|e| format!("cannot make {factory}: {e}"));
        let src = gst_app::AppSrc::builder()
            .format(gst::Format::Time)
            .caps(&caps.to_owned())
            .is_live(false)
            .block(false)
            .max_bytes(0)
            .max_buffers(0)
            .max_time(gst::ClockTime::from_nseconds(shared.options.max_lag.as_nanos() as u64))
            .leaky_type(gst_app::AppLeakyType::Downstream)
            .build();
        let parse = make(parser)?;
        parse.set_property("config-interval", -1i32);
        let muxer = make("mpegtsmux")?;
        let splitmux = make("splitmuxsink")?;
        splitmux.set_property("muxer", &muxer);
        splitmux.set_property("max-size-time", shared.options.segment.as_nanos() as u64);
        let progress = Arc::new(Mutex::new(Progress::default()));
        let broken = Arc::new(AtomicBool::new(false));
        // The muxer's input: what is written into the open segment. (Its
        // pads are requested when the parser is linked, so before that.)
        let written = Arc::clone(&progress);
        muxer.connect_pad_added(move |_, pad| {
            if pad.direction() != gst::PadDirection::Sink {
                return;
            }
            let written = Arc::clone(&written);
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(buffer) = info.buffer() {
                    lock_progress(&written).took(buffer);
                }
                gst::PadProbeReturn::Ok
            });
        });
        let pipeline = gst::Pipeline::new();
        pipeline.add_many([src.upcast_ref(), &parse, &splitmux]).map_err(|e| e.to_string())?;
        gst::Element::link_many([src.upcast_ref(), &parse, &splitmux]).map_err(|e| format!("cannot link the writer: {e}"))?;
        if muxer.sink_pads().is_empty() {
            return Err("the muxer took no video pad".to_string());
        }
        // A new segment: named by the event time of its first frame.
        let (naming, named) = (Arc::clone(shared), Arc::clone(&progress));
        splitmux.connect("format-location-full", false, move |values| {
            let sample = values.get(2).and_then(|v| v.get::<gst::Sample>().ok());
            let pts_ns = sample.as_ref().and_then(|s| s.buffer()).and_then(|b| b.pts().or(b.dts())).map_or(0, |t| t.nseconds());
            let start_ms = naming.clock.event_ms(ns_to_ms(pts_ns));
            let part = video::open_segment_path(&naming.options.dir, &naming.camera_id, start_ms);
            if let Some(folder) = part.parent()
                && let Err(e) = std::fs::create_dir_all(folder)
            {
                naming.failed(format!("cannot make {}: {e}", folder.display()));
            }
            let mut progress = lock_progress(&named);
            if let Some(open) = progress.open.take() {
                // Not closed by splitmuxsink (it always is): close it here.
                close_part(&naming, &open, progress.written_end_ns);
            }
            progress.open = Some(OpenSegment { part: part.clone(), start_ms });
            progress.written_end_ns = None;
            Some(part.to_string_lossy().to_string().to_value())
        });
        // Closed segments are renamed in the writer's streaming thread,
        // before the next one takes any video: the written end is exact.
        let (closing, closed, breaking) = (Arc::clone(shared), Arc::clone(&progress), Arc::clone(&broken));
        let bus = pipeline.bus().ok_or("the writer has no bus")?;
        bus.set_sync_handler(move |_, message| match message.view() {
            gst::MessageView::Element(element) => {
                if element.structure().is_some_and(|s| s.name() == "splitmuxsink-fragment-closed") {
                    let mut progress = lock_progress(&closed);
                    if let Some(open) = progress.open.take() {
                        close_part(&closing, &open, progress.written_end_ns);
                    }
                    progress.written_end_ns = None;
                }
                gst::BusSyncReply::Drop
            }
            gst::MessageView::Error(error) => {
                breaking.store(true, Ordering::Relaxed);
                let from = message.src().map(|s| s.name().to_string()).unwrap_or_default();
                closing.failed(format!("{from}: {}", error.error()));
                gst::BusSyncReply::Pass
            }
            gst::MessageView::Eos(_) => gst::BusSyncReply::Pass,
            _ => gst::BusSyncReply::Drop,
        });
        pipeline.set_state(gst::State::Playing).map_err(|e| format!("cannot start the writer: {e}"))?;
        Ok(Writer { pipeline, src, progress, broken })
    }

    /// Ends the stream (its last segment written out, unless the writer
    /// failed), stops the pipeline and closes what is still open.
    fn finish(self, shared: &Shared) {
        if !self.broken.load(Ordering::Relaxed) && self.src.end_of_stream().is_ok()
            && let Some(bus) = self.pipeline.bus()
        {
            let timeout = gst::ClockTime::from_nseconds(CLOSE_TIMEOUT.as_nanos() as u64);
            let _ = bus.timed_pop_filtered(timeout, &[gst::MessageType::Eos, gst::MessageType::Error]);
        }
        let _ = self.pipeline.set_state(gst::State::Null);
        let mut progress = lock_progress(&self.progress);
        if let Some(open) = progress.open.take() {
            close_part(shared, &open, progress.written_end_ns);
        }
    }
}

impl Progress {
    /// An access unit the muxer took.
    fn took(&mut self, buffer: &gst::BufferRef) {
        let Some(pts) = buffer.pts().or(buffer.dts()).map(|t| t.nseconds()) else { return };
        if let Some(last) = self.last_pts_ns
            && pts > last
        {
            self.frame_ns = pts - last;
        }
        self.last_pts_ns = Some(self.last_pts_ns.map_or(pts, |last| last.max(pts)));
        let end = pts + buffer.duration().map_or(self.frame_ns, |d| d.nseconds());
        self.written_end_ns = Some(self.written_end_ns.map_or(end, |e| e.max(end)));
    }
}

fn ns_to_ms(ns: u64) -> i64 {
    (ns / 1_000_000) as i64
}

/// Renames an open segment to its closed name, ending at `written_end_ns`
/// (the stream's time); one with nothing written is removed.
fn close_part(shared: &Shared, open: &OpenSegment, written_end_ns: Option<u64>) {
    let bytes = std::fs::metadata(&open.part).map(|m| m.len()).unwrap_or(0);
    let Some(end_ns) = written_end_ns.filter(|_| bytes > 0) else {
        let _ = std::fs::remove_file(&open.part);
        return;
    };
    let end_ms = shared.clock.event_ms(ns_to_ms(end_ns)).max(open.start_ms);
    match close_as(&shared.options.dir, &shared.camera_id, &open.part, open.start_ms, end_ms) {
        Ok(Some(_)) => shared.stats.segment_recorded(bytes),
        Ok(None) => {}
        Err(e) => shared.failed(format!("cannot close {}: {e}", open.part.display())),
    }
}

/// Renames `part` to the closed segment `start_ms`..`end_ms`. A closed
/// segment of the camera with the same start (the same recording written
/// again, after a restart) is the same video: the longer of the two is
/// kept. `None` when `part` was the shorter and is removed.
fn close_as(root: &Path, camera_id: &str, part: &Path, start_ms: i64, end_ms: i64) -> std::io::Result<Option<PathBuf>> {
    let closed = video::segment_path(root, camera_id, start_ms, end_ms);
    let folder = closed.parent().map(Path::to_path_buf).unwrap_or_default();
    for entry in std::fs::read_dir(&folder)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let Some((start, Some(end))) = video::parse_segment_name(name)
            && start == start_ms
            && path != closed
        {
            if end > end_ms {
                std::fs::remove_file(part)?;
                return Ok(None);
            }
            std::fs::remove_file(&path)?;
        }
    }
    std::fs::rename(part, &closed)?;
    Ok(Some(closed))
}

/// Closes every open segment (`.part`) of `camera_id` under `root`: a
/// process killed while recording leaves one. Its end is found by demuxing
/// it (its first and last access units); one with no video is removed.
/// Returns the segments closed. Not for a camera being recorded now.
pub fn finalise_stale_parts(root: &Path, camera_id: &str) -> std::io::Result<Vec<SegmentFile>> {
    let mut closed = Vec::new();
    for segment in video::list_segments(root, camera_id)? {
        if segment.is_closed() {
            continue;
        }
        let span = super::demux::time_span(&segment.path);
        match span {
            Ok(Some((first_ns, end_ns))) => {
                let end_ms = segment.start_ms + ns_to_ms(end_ns.saturating_sub(first_ns));
                if let Some(path) = close_as(root, camera_id, &segment.path, segment.start_ms, end_ms)? {
                    closed.push(SegmentFile { path, camera_id: camera_id.to_string(), start_ms: segment.start_ms, end_ms: Some(end_ms) });
                }
            }
            Ok(None) => {
                tracing::warn!(camera = camera_id, segment = %segment.path.display(), "a segment left open holds no video; removed");
                std::fs::remove_file(&segment.path)?;
            }
            // Kept as it is (and said): it may still be read by hand.
            Err(cause) => return Err(std::io::Error::other(format!("cannot close {}: {cause}", segment.path.display()))),
        }
    }
    Ok(closed)
}
