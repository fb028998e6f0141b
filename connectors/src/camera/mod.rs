//! Camera sources: live video or recordings decoded by GStreamer into RGB
//! [`Frame`]s with their event times.
//!
//! One thread per camera runs a GStreamer pipeline (see [`pipeline`]) that
//! ends in an `appsink`, pulls decoded frames and hands them to the engine
//! through a bounded queue. What happens when the queue is full depends on
//! [`Pacing`]: a live camera drops the frame and counts it (a slow engine
//! never stalls a camera), a recording waits (offline processing reads every
//! frame). A `max_fps` cap skips frames by their timestamps before they are
//! queued.
//!
//! A live stream (`rtsp://`, `http(s)://`) that fails, ends or stalls is
//! reopened with exponential backoff, for ever, each attempt logged; a
//! recording (`file://`, `dir://`) that fails ends with a [`CameraError`]
//! naming the camera and the cause. Either way only that camera's thread is
//! affected. Health ([`CameraStats`]) is shared with whoever processes the frames.
//!
//! A camera that records (`record` in its configuration and
//! [`CameraSourceOptions::recording`] set) also keeps its compressed video
//! in segment files, on the same clock as its frames' event times (see
//! [`crate::recording`]); each attempt at the stream is one recording
//! session, closed when the attempt ends.

mod clock;
mod pipeline;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use borderflow_types::{CameraConfig, CameraOpener, CameraSourceSettings, CameraState, CameraStats, Frame, FrameEvent, FrameSource};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::recording::{Recorder, RecordingOptions};

pub(crate) use clock::EventClock;

pub use borderflow_types::RtspTransport;
pub use pipeline::{SourceKind, path_of, pipeline_description, recording_duration_ms};

/// What a full queue means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pacing {
    /// Drop the frame and count it: the camera keeps its pace.
    Live,
    /// Wait for room: every frame of a recording is processed.
    Recorded,
}

/// Settings of a camera source. A camera's own settings in its `[[camera]]`
/// table ([`CameraSourceSettings`]) win over these ([`with_camera`](Self::with_camera)).
#[derive(Clone, Debug)]
pub struct CameraSourceOptions {
    pub rtsp_transport: RtspTransport,
    /// Jitter buffer of `rtspsrc`, milliseconds.
    pub latency_ms: u32,
    /// Frames the queue to the engine holds.
    pub queue_frames: usize,
    /// Default: [`Pacing::Live`] for `rtsp://` and `http(s)://`, [`Pacing::Recorded`] otherwise.
    pub pacing: Option<Pacing>,
    /// First wait before reopening a live stream; doubled after each failed attempt.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// A live stream that delivers no frame for this long is reopened.
    pub stall_timeout_ms: u64,
    /// Event time of a recording's first frame (ms since the epoch); default: when it is opened.
    /// Live streams are stamped with the wall clock.
    pub start_ms: Option<i64>,
    /// Time between the images of a `dir://` folder, milliseconds.
    pub image_interval_ms: u64,
    /// Decoder threads (`avdec_*` `max-threads`); 0: the decoder decides.
    pub decoder_threads: u32,
    /// Where the cameras that record (`record`) keep their video; none: no camera records.
    pub recording: Option<RecordingOptions>,
}

impl Default for CameraSourceOptions {
    fn default() -> Self {
        CameraSourceOptions {
            rtsp_transport: RtspTransport::Tcp,
            latency_ms: 200,
            queue_frames: 8,
            pacing: None,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
            stall_timeout_ms: 5_000,
            start_ms: None,
            image_interval_ms: 1_000,
            decoder_threads: 0,
            recording: None,
        }
    }
}

impl CameraSourceOptions {
    /// These options with the settings the camera's configuration gives.
    pub fn with_camera(mut self, settings: &CameraSourceSettings) -> Self {
        // `record` is the camera's own: whether its source gets a recorder.
        let CameraSourceSettings { transport, latency_ms, stall_timeout_ms, image_interval_ms, queue_frames, decoder_threads, record: _ } = *settings;
        self.rtsp_transport = transport.unwrap_or(self.rtsp_transport);
        self.latency_ms = latency_ms.unwrap_or(self.latency_ms);
        self.stall_timeout_ms = stall_timeout_ms.unwrap_or(self.stall_timeout_ms);
        self.image_interval_ms = image_interval_ms.unwrap_or(self.image_interval_ms);
        self.queue_frames = queue_frames.unwrap_or(self.queue_frames);
        self.decoder_threads = decoder_threads.unwrap_or(self.decoder_threads);
        self
    }
}

/// A camera that failed, and why.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("camera {camera} ({uri}): {cause}")]
pub struct CameraError {
    pub camera: String,
    /// The camera's URI without credentials.
    pub uri: String,
    pub cause: String,
}

/// What a camera source delivers.
#[derive(Debug)]
pub enum CameraEvent {
    Frame(Frame),
    /// A recording failed; nothing more comes.
    Failed(CameraError),
    /// A recording ended; nothing more comes.
    Ended,
}

/// Opens each camera with `options` (over the camera's own settings), for
/// the video workers (`borderflow_operators::camera_workers`).
pub fn camera_opener(options: CameraSourceOptions) -> CameraOpener {
    Arc::new(move |camera: &CameraConfig, stats: Arc<CameraStats>| -> Box<dyn FrameSource> {
        Box::new(CameraSource::open_with_stats(camera, options.clone(), stats))
    })
}

impl FrameSource for CameraSource {
    fn camera_id(&self) -> &str {
        &self.camera_id
    }

    fn try_next_event(&self) -> Option<FrameEvent> {
        self.receiver.try_recv().ok().map(|event| match event {
            CameraEvent::Frame(frame) => FrameEvent::Frame(frame),
            CameraEvent::Failed(error) => FrameEvent::Failed(error.to_string()),
            CameraEvent::Ended => FrameEvent::Ended,
        })
    }

    fn is_finished(&self) -> bool {
        CameraSource::is_finished(self)
    }
}

/// A running camera source: its thread, its queue and its health.
pub struct CameraSource {
    camera_id: String,
    stats: Arc<CameraStats>,
    stop: Arc<AtomicBool>,
    receiver: Receiver<CameraEvent>,
    thread: Option<JoinHandle<()>>,
}

impl CameraSource {
    /// Starts reading `camera` (its configured settings over `options`). Never fails: a camera that cannot be opened
    /// reports it through its events (a recording) or keeps retrying (live).
    pub fn open(camera: &CameraConfig, options: CameraSourceOptions) -> CameraSource {
        CameraSource::open_with_stats(camera, options, Arc::new(CameraStats::new(&camera.id)))
    }

    /// [`open`](Self::open), counting into `stats` (made beforehand, so health
    /// can be reported before the source starts).
    pub fn open_with_stats(camera: &CameraConfig, options: CameraSourceOptions, stats: Arc<CameraStats>) -> CameraSource {
        let options = options.with_camera(&camera.source);
        let stop = Arc::new(AtomicBool::new(false));
        let (sender, receiver) = sync_channel(options.queue_frames.max(1));
        let camera_id: Arc<str> = Arc::from(camera.id.as_str());
        let recorder = match &options.recording {
            Some(recording) if camera.source.record => Some(Recorder::new(Arc::clone(&camera_id), recording.clone(), Arc::clone(&stats))),
            _ => None,
        };
        let reader = Reader {
            camera_id,
            recorder,
            uri: camera.uri.clone(),
            max_fps: camera.max_fps,
            kind: SourceKind::of(&camera.uri),
            options,
            stats: Arc::clone(&stats),
            stop: Arc::clone(&stop),
            sender,
            next_index: 0,
        };
        let thread = std::thread::Builder::new()
            .name(format!("camera-{}", camera.id))
            .spawn(move || reader.run())
            .ok();
        if thread.is_none() {
            stats.set_state(CameraState::Failed);
            stats.set_error(format!("camera {}: cannot start its thread", camera.id));
        }
        CameraSource { camera_id: camera.id.clone(), stats, stop, receiver, thread }
    }

    pub fn camera_id(&self) -> &str {
        &self.camera_id
    }

    /// The camera's counters, shared with the source thread.
    pub fn stats(&self) -> &Arc<CameraStats> {
        &self.stats
    }

    /// The next event, waiting at most `timeout`; `None` on timeout or when
    /// the source has finished and its queue is empty.
    pub fn next_event(&self, timeout: Duration) -> Option<CameraEvent> {
        self.receiver.recv_timeout(timeout).ok()
    }

    /// The next event if one is queued.
    pub fn try_next_event(&self) -> Option<CameraEvent> {
        self.receiver.try_recv().ok()
    }

    /// Whether the source thread has finished (a recording's end or failure, or [`stop`](Self::stop)).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops the source and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Unblock a recording waiting for room in the queue.
        while self.receiver.try_recv().is_ok() {}
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() {
                while self.receiver.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = thread.join();
        }
    }
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// `uri` with any `user:password@` removed, for logs and errors.
pub fn redact_uri(uri: &str) -> String {
    match (uri.find("://"), uri.find('@')) {
        (Some(scheme), Some(at)) if at > scheme && !uri[scheme + 3..at].contains('/') => {
            format!("{}://{}", &uri[..scheme], &uri[at + 1..])
        }
        _ => uri.to_string(),
    }
}

/// How one attempt at reading the stream ended.
enum Outcome {
    Ended,
    Failed(String),
    Stopped,
}

/// The source thread's state.
struct Reader {
    camera_id: Arc<str>,
    /// The camera's recording, if it records.
    recorder: Option<Recorder>,
    uri: String,
    max_fps: Option<u32>,
    kind: SourceKind,
    options: CameraSourceOptions,
    stats: Arc<CameraStats>,
    stop: Arc<AtomicBool>,
    sender: SyncSender<CameraEvent>,
    next_index: u64,
}

impl Reader {
    fn pacing(&self) -> Pacing {
        self.options.pacing.unwrap_or(if self.kind.is_live() { Pacing::Live } else { Pacing::Recorded })
    }

    fn error(&self, cause: String) -> CameraError {
        CameraError { camera: self.camera_id.to_string(), uri: redact_uri(&self.uri), cause }
    }

    fn run(mut self) {
        let live = self.kind.is_live();
        if let Some(recorder) = &self.recorder {
            if self.kind.is_recordable() {
                recorder.finalise_stale();
            } else {
                let what = if self.kind == SourceKind::ImageFolder { "still images" } else { "MJPEG" };
                self.stats.recording_failed(format!(
                    "camera {}: not recorded: recording keeps a camera's own H.264 or H.265 stream, and this camera gives {what}",
                    self.camera_id
                ));
                self.recorder = None;
            }
        }
        let mut backoff_ms = self.options.backoff_initial_ms.max(1);
        let mut attempt = 0u64;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            self.stats.set_state(CameraState::Connecting);
            if attempt > 0 {
                self.stats.reconnected();
            }
            attempt += 1;
            tracing::info!(camera = %self.camera_id, uri = %redact_uri(&self.uri), attempt, "opening camera");
            let frames_before = self.next_index;
            let outcome = match gst::init() {
                Err(e) => Outcome::Failed(format!("GStreamer cannot start: {e}")),
                Ok(()) => match self.kind {
                    SourceKind::ImageFolder => self.read_folder(),
                    _ => self.read_stream(),
                },
            };
            let cause = match outcome {
                Outcome::Stopped => return,
                Outcome::Ended if !live => {
                    self.stats.set_state(CameraState::Ended);
                    tracing::info!(camera = %self.camera_id, frames = self.next_index, "recording ended");
                    let _ = self.sender.send(CameraEvent::Ended);
                    return;
                }
                Outcome::Failed(cause) if !live => {
                    let error = self.error(cause);
                    tracing::error!(%error, "camera failed");
                    self.stats.set_state(CameraState::Failed);
                    self.stats.set_error(error.to_string());
                    let _ = self.sender.send(CameraEvent::Failed(error));
                    return;
                }
                Outcome::Ended => "the stream ended".to_string(),
                Outcome::Failed(cause) => cause,
            };
            // A live stream: reopen it after a pause that doubles while attempts fail.
            if self.next_index > frames_before {
                backoff_ms = self.options.backoff_initial_ms.max(1);
            }
            let error = self.error(cause);
            self.stats.set_state(CameraState::Down);
            self.stats.set_error(error.to_string());
            tracing::warn!(%error, attempt, retry_in_ms = backoff_ms, "camera down; reconnecting");
            let until = Instant::now() + Duration::from_millis(backoff_ms);
            while Instant::now() < until {
                if self.stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            backoff_ms = (backoff_ms * 2).min(self.options.backoff_max_ms.max(1));
        }
    }

    /// One attempt at a GStreamer stream (a file, RTSP or MJPEG over HTTP).
    fn read_stream(&mut self) -> Outcome {
        let built = pipeline::build(&self.uri, self.kind, &self.options, self.recorder.is_some());
        let (pipeline, sink, recorded) = match built {
            Ok(parts) => parts,
            Err(cause) => return Outcome::Failed(cause),
        };
        // The frames' clock, which the recording shares.
        let clock = Arc::new(if self.kind.is_live() {
            EventClock::live()
        } else {
            EventClock::from(self.options.start_ms.unwrap_or_else(now_ms))
        });
        let session = match (&self.recorder, &recorded) {
            (Some(recorder), Some(recorded)) => Some(recorder.start(recorded, Arc::clone(&clock))),
            _ => None,
        };
        let outcome = self.pull_frames(&pipeline, &sink, &clock);
        let _ = pipeline.set_state(gst::State::Null);
        // The stream is over for this attempt: so is its last segment.
        if let Some(session) = session {
            session.finish();
        }
        outcome
    }

    fn pull_frames(&mut self, pipeline: &gst::Pipeline, sink: &gst_app::AppSink, clock: &EventClock) -> Outcome {
        if let Err(e) = pipeline.set_state(gst::State::Playing) {
            let bus_cause = pipeline.bus().and_then(|bus| first_error(&bus));
            return Outcome::Failed(bus_cause.unwrap_or_else(|| format!("cannot start the pipeline: {e}")));
        }
        let Some(bus) = pipeline.bus() else { return Outcome::Failed("the pipeline has no bus".into()) };
        let mut last_frame = Instant::now();
        let mut next_due_ms: Option<i64> = None;
        let (mut last_pts_ms, mut min_interval_ms): (Option<i64>, i64) = (None, i64::MAX);
        let interval_ms = self.max_fps.filter(|f| *f > 0).map(|f| 1000.0 / f as f64);
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Outcome::Stopped;
            }
            while let Some(message) = bus.pop() {
                match message.view() {
                    gst::MessageView::Error(e) => {
                        let source = message.src().map(|s| s.name().to_string()).unwrap_or_default();
                        let debug = e.debug().map(|d| format!(" ({d})")).unwrap_or_default();
                        return Outcome::Failed(format!("{source}: {}{debug}", e.error()));
                    }
                    gst::MessageView::Warning(w) => {
                        let source = message.src().map(|s| s.name().to_string()).unwrap_or_default();
                        let warning = format!("camera {}: {source}: {}", self.camera_id, w.error());
                        tracing::warn!(camera = %self.camera_id, "{warning}");
                        self.stats.set_error(warning);
                    }
                    gst::MessageView::Eos(_) => return Outcome::Ended,
                    _ => {}
                }
            }
            let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) else {
                if sink.is_eos() {
                    return Outcome::Ended;
                }
                if self.kind.is_live() && last_frame.elapsed() > Duration::from_millis(self.options.stall_timeout_ms) {
                    return Outcome::Failed(format!("no frame for {} ms", self.options.stall_timeout_ms));
                }
                continue;
            };
            last_frame = Instant::now();
            let pts_ms = sample.buffer().and_then(|b| b.pts()).map(|t| t.mseconds() as i64).unwrap_or(0);
            if let Some(last) = last_pts_ms {
                let interval = pts_ms - last;
                if interval > 0 && min_interval_ms != i64::MAX && interval > (4 * min_interval_ms).max(400) {
                    // The decoder skipped what it could not decode.
                    let warning = format!(
                        "camera {}: no decodable video between {:.1} s and {:.1} s of the stream (corrupt or missing data)",
                        self.camera_id,
                        last as f64 / 1000.0,
                        pts_ms as f64 / 1000.0
                    );
                    tracing::warn!("{warning}");
                    self.stats.set_error(warning);
                }
                if interval > 0 {
                    min_interval_ms = min_interval_ms.min(interval);
                }
            }
            last_pts_ms = Some(pts_ms);
            if let Some(interval) = interval_ms {
                if next_due_ms.is_some_and(|due| pts_ms < due) {
                    self.stats.frame_skipped();
                    continue;
                }
                let due = next_due_ms.map_or(pts_ms as f64, |d| (d as f64).max(pts_ms as f64 - interval)) + interval;
                next_due_ms = Some(due.round() as i64 - 1);
            }
            let captured_at_ms = clock.event_ms(pts_ms);
            let frame = match frame_from_sample(&self.camera_id, self.next_index, captured_at_ms, &sample) {
                Ok(frame) => frame,
                Err(cause) => {
                    tracing::warn!(camera = %self.camera_id, "{cause}");
                    self.stats.set_error(format!("camera {}: {cause}", self.camera_id));
                    continue;
                }
            };
            self.stats.set_state(CameraState::Up);
            self.stats.set_last_frame_ms(captured_at_ms);
            if let Some(outcome) = self.deliver(frame) {
                return outcome;
            }
        }
    }

    /// Queues a frame; `Some` when the source must stop.
    fn deliver(&mut self, frame: Frame) -> Option<Outcome> {
        self.next_index += 1;
        self.stats.frame_in();
        match self.pacing() {
            Pacing::Live => match self.sender.try_send(CameraEvent::Frame(frame)) {
                Ok(()) => None,
                Err(TrySendError::Full(_)) => {
                    self.stats.frame_dropped();
                    None
                }
                Err(TrySendError::Disconnected(_)) => Some(Outcome::Stopped),
            },
            Pacing::Recorded => {
                let mut event = CameraEvent::Frame(frame);
                loop {
                    match self.sender.try_send(event) {
                        Ok(()) => return None,
                        Err(TrySendError::Disconnected(_)) => return Some(Outcome::Stopped),
                        Err(TrySendError::Full(back)) => {
                            if self.stop.load(Ordering::Relaxed) {
                                return Some(Outcome::Stopped);
                            }
                            event = back;
                            std::thread::sleep(Duration::from_millis(2));
                        }
                    }
                }
            }
        }
    }

    /// A `dir://` folder: its images in name order, one frame each; an image
    /// that does not decode is logged and skipped.
    fn read_folder(&mut self) -> Outcome {
        let folder = pipeline::path_of(&self.uri);
        let mut images: Vec<std::path::PathBuf> = match std::fs::read_dir(&folder) {
            Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| pipeline::is_image(p)).collect(),
            Err(e) => return Outcome::Failed(format!("cannot read the folder {}: {e}", folder.display())),
        };
        images.sort();
        if images.is_empty() {
            return Outcome::Failed(format!("no images (.jpg, .jpeg, .png, .bmp) in {}", folder.display()));
        }
        let start_ms = self.options.start_ms.unwrap_or_else(now_ms);
        for (i, image) in images.iter().enumerate() {
            if self.stop.load(Ordering::Relaxed) {
                return Outcome::Stopped;
            }
            let captured_at_ms = start_ms + i as i64 * self.options.image_interval_ms as i64;
            match self.decode_image(image, captured_at_ms) {
                Ok(frame) => {
                    self.stats.set_state(CameraState::Up);
                    self.stats.set_last_frame_ms(captured_at_ms);
                    if let Some(outcome) = self.deliver(frame) {
                        return outcome;
                    }
                }
                Err(cause) => {
                    let message = format!("camera {}: {}: {cause}", self.camera_id, image.display());
                    tracing::warn!("{message}");
                    self.stats.set_error(message);
                }
            }
        }
        Outcome::Ended
    }

    fn decode_image(&self, path: &std::path::Path, captured_at_ms: i64) -> Result<Frame, String> {
        let (pipeline, sink) = pipeline::build_image(path)?;
        let result = (|| {
            pipeline.set_state(gst::State::Playing).map_err(|e| format!("cannot start: {e}"))?;
            let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(10));
            match sample {
                Some(sample) => frame_from_sample(&self.camera_id, self.next_index, captured_at_ms, &sample),
                None => Err(pipeline.bus().and_then(|b| first_error(&b)).unwrap_or_else(|| "no image decoded".into())),
            }
        })();
        let _ = pipeline.set_state(gst::State::Null);
        result
    }
}

/// The first error message waiting on `bus`, as text.
fn first_error(bus: &gst::Bus) -> Option<String> {
    while let Some(message) = bus.pop() {
        if let gst::MessageView::Error(e) = message.view() {
            let source = message.src().map(|s| s.name().to_string()).unwrap_or_default();
            return Some(format!("{source}: {}", e.error()));
        }
    }
    None
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A frame from an `appsink` sample of `video/x-raw,format=RGB` (rows may be padded).
fn frame_from_sample(camera_id: &Arc<str>, index: u64, captured_at_ms: i64, sample: &gst::Sample) -> Result<Frame, String> {
    let caps = sample.caps().ok_or("a frame without caps")?;
    let structure = caps.structure(0).ok_or("a frame without a caps structure")?;
    let width = structure.get::<i32>("width").map_err(|e| e.to_string())?.max(0) as usize;
    let height = structure.get::<i32>("height").map_err(|e| e.to_string())?.max(0) as usize;
    let buffer = sample.buffer().ok_or("a frame without a buffer")?;
    let map = buffer.map_readable().map_err(|e| e.to_string())?;
    let data = map.as_slice();
    let row = width * 3;
    if width == 0 || height == 0 || data.len() < row * height {
        return Err(format!("frame {index}: {} bytes for {width}×{height} RGB", data.len()));
    }
    let stride = data.len() / height;
    let rgb: Arc<[u8]> = if stride == row {
        Arc::from(&data[..row * height])
    } else {
        let mut packed = Vec::with_capacity(row * height);
        for y in 0..height {
            packed.extend_from_slice(&data[y * stride..y * stride + row]);
        }
        Arc::from(packed)
    };
    Frame::new(Arc::clone(camera_id), index, captured_at_ms, width as u32, height as u32, rgb)
}
