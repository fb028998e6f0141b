//! Per-camera health: whether a camera is delivering frames, and how many it
//! delivered, how many the engine processed and how many it had to drop;
//! for a recording camera, the segments and bytes it recorded and its
//! recording errors.
//!
//! A camera source and the operators that consume its frames share one
//! [`CameraStats`] (atomic counters, cheap to update per frame); anyone may
//! take a [`CameraHealth`] snapshot of it at any time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// The state of a camera's connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraState {
    /// Opening the stream (first time or after a failure).
    Connecting,
    /// Frames are arriving.
    Up,
    /// The stream failed or ended; a live camera is waiting to reconnect.
    Down,
    /// A recorded source reached its end.
    Ended,
    /// A recorded source failed and will not be retried.
    Failed,
}

impl CameraState {
    pub fn as_str(self) -> &'static str {
        match self {
            CameraState::Connecting => "connecting",
            CameraState::Up => "up",
            CameraState::Down => "down",
            CameraState::Ended => "ended",
            CameraState::Failed => "failed",
        }
    }
}

/// A snapshot of one camera's health.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CameraHealth {
    pub camera_id: String,
    pub state: CameraState,
    /// Frames decoded from the camera (after the frame-rate cap).
    pub frames_in: u64,
    /// Frames the operators have processed.
    pub frames_processed: u64,
    /// Frames dropped because the engine was behind (the leaky queue was full).
    pub frames_dropped: u64,
    /// Frames skipped by the camera's `max_fps` cap.
    pub frames_skipped: u64,
    /// Connection attempts after the first.
    pub reconnects: u64,
    /// Event time of the last frame, ms since the epoch (0: none yet).
    pub last_frame_ms: i64,
    /// Video segments closed (recording cameras; see [`crate::video`]).
    pub segments_recorded: u64,
    /// Bytes of the segments closed.
    pub recorded_bytes: u64,
    /// Recording failures: a segment that could not be written, named or
    /// finalised, a stream that cannot be stored as it is, video dropped
    /// because the disk fell behind. Reading goes on regardless.
    pub recording_errors: u64,
    /// The last error or warning, naming its cause.
    pub last_error: Option<String>,
}

/// The live counters behind [`CameraHealth`], shared by a source and its consumers.
#[derive(Debug)]
pub struct CameraStats {
    camera_id: String,
    state: Mutex<(CameraState, Option<String>)>,
    frames_in: AtomicU64,
    frames_processed: AtomicU64,
    frames_dropped: AtomicU64,
    frames_skipped: AtomicU64,
    reconnects: AtomicU64,
    last_frame_ms: AtomicI64,
    segments_recorded: AtomicU64,
    recorded_bytes: AtomicU64,
    recording_errors: AtomicU64,
    /// Seconds the text detector took per detected frame (`/metrics`).
    pub detect_seconds: Histogram,
    /// Seconds recognition took per frame with plates to read (`/metrics`).
    pub recognise_seconds: Histogram,
}

/// Buckets from 1 ms to about 4 s.
fn stage_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 13))
}

impl CameraStats {
    pub fn new(camera_id: &str) -> Self {
        CameraStats {
            camera_id: camera_id.to_string(),
            state: Mutex::new((CameraState::Connecting, None)),
            frames_in: AtomicU64::new(0),
            frames_processed: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            frames_skipped: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            last_frame_ms: AtomicI64::new(0),
            segments_recorded: AtomicU64::new(0),
            recorded_bytes: AtomicU64::new(0),
            recording_errors: AtomicU64::new(0),
            detect_seconds: stage_histogram(),
            recognise_seconds: stage_histogram(),
        }
    }

    pub fn camera_id(&self) -> &str {
        &self.camera_id
    }

    pub fn set_state(&self, state: CameraState) {
        if let Ok(mut guard) = self.state.lock() {
            guard.0 = state;
        }
    }

    /// Records an error or warning (its message names the cause).
    pub fn set_error(&self, message: String) {
        if let Ok(mut guard) = self.state.lock() {
            guard.1 = Some(message);
        }
    }

    pub fn frame_in(&self) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
    }
    pub fn frame_processed(&self) {
        self.frames_processed.fetch_add(1, Ordering::Relaxed);
    }
    pub fn frame_dropped(&self) {
        self.frames_dropped.fetch_add(1, Ordering::Relaxed);
    }
    pub fn frame_skipped(&self) {
        self.frames_skipped.fetch_add(1, Ordering::Relaxed);
    }
    pub fn set_last_frame_ms(&self, ms: i64) {
        self.last_frame_ms.store(ms, Ordering::Relaxed);
    }
    pub fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }
    /// A video segment of `bytes` closed.
    pub fn segment_recorded(&self, bytes: u64) {
        self.segments_recorded.fetch_add(1, Ordering::Relaxed);
        self.recorded_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    /// A recording failure; `message` names the camera and the cause.
    pub fn recording_failed(&self, message: String) {
        self.recording_errors.fetch_add(1, Ordering::Relaxed);
        self.set_error(message);
    }

    pub fn health(&self) -> CameraHealth {
        let (state, last_error) = self.state.lock().map(|g| g.clone()).unwrap_or((CameraState::Down, None));
        CameraHealth {
            camera_id: self.camera_id.clone(),
            state,
            frames_in: self.frames_in.load(Ordering::Relaxed),
            frames_processed: self.frames_processed.load(Ordering::Relaxed),
            frames_dropped: self.frames_dropped.load(Ordering::Relaxed),
            frames_skipped: self.frames_skipped.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            last_frame_ms: self.last_frame_ms.load(Ordering::Relaxed),
            segments_recorded: self.segments_recorded.load(Ordering::Relaxed),
            recorded_bytes: self.recorded_bytes.load(Ordering::Relaxed),
            recording_errors: self.recording_errors.load(Ordering::Relaxed),
            last_error,
        }
    }
}

/// What the write-ahead log has written since the process started, for
/// `/metrics`: shared by the log and whoever reports it.
#[derive(Debug)]
pub struct WalStats {
    /// Bytes appended (records as encoded).
    pub bytes: AtomicU64,
    /// Records appended.
    pub records: AtomicU64,
    /// Seconds each append took to be durable (write and fsync, or the object store's put).
    pub sync_seconds: Histogram,
}

impl Default for WalStats {
    fn default() -> Self {
        WalStats { bytes: AtomicU64::new(0), records: AtomicU64::new(0), sync_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)) }
    }
}
