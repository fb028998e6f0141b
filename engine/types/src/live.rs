//! What the operators saw last, per camera, for people watching: the
//! latest processed frame with its tracked plates and the lane's counting
//! line ([`LiveFrame`]), kept in one slot per camera ([`LiveFrames`]).
//!
//! The camera's worker puts each processed frame in its camera's slot
//! (an `Arc` swap: the pixels are shared, not copied); a viewer (the
//! operator console) takes the newest whenever it is ready for one, so a
//! slow viewer skips frames and never holds the worker back. Frames are
//! put only while someone watches ([`LiveFrames::watching`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::Frame;
use crate::config::CountingLine;

/// A tracked plate in a live frame.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LiveTrack {
    pub id: u64,
    /// Pixels: x, y, width, height.
    pub bbox: [f32; 4],
    /// Seen often enough to be a vehicle (a tentative track is not drawn as one).
    pub confirmed: bool,
    /// The best reading so far, if any.
    pub text: Option<String>,
    /// The track has crossed the counting line and its read was emitted.
    pub read: bool,
}

/// One processed frame with what the operators made of it.
#[derive(Clone, Debug)]
pub struct LiveFrame {
    pub frame: Frame,
    pub tracks: Vec<LiveTrack>,
    pub counting_line: CountingLine,
    /// Wall clock when processing finished, ms since the epoch.
    pub processed_wall_ms: i64,
    /// Position in the sequence of all frames put (any camera), from 1.
    pub seq: u64,
}

/// The latest [`LiveFrame`] of every camera.
#[derive(Debug, Default)]
pub struct LiveFrames {
    slots: Mutex<HashMap<String, Arc<LiveFrame>>>,
    seq: AtomicU64,
    watchers: AtomicUsize,
}

impl LiveFrames {
    pub fn new() -> Arc<LiveFrames> {
        Arc::new(LiveFrames::default())
    }

    /// Whether anyone watches (frames are put only then).
    pub fn watching(&self) -> bool {
        self.watchers.load(Ordering::Relaxed) > 0
    }

    /// Counts a viewer until the guard is dropped.
    pub fn watch(self: &Arc<Self>) -> WatchGuard {
        self.watchers.fetch_add(1, Ordering::Relaxed);
        WatchGuard(Arc::clone(self))
    }

    /// Puts `frame` in its camera's slot.
    pub fn put(&self, mut frame: LiveFrame) {
        frame.seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        if let Ok(mut slots) = self.slots.lock() {
            slots.insert(frame.frame.camera_id.to_string(), Arc::new(frame));
        }
    }

    /// The newest frame of `camera`, if newer than `after` (a `seq`).
    pub fn latest(&self, camera: &str, after: u64) -> Option<Arc<LiveFrame>> {
        let slots = self.slots.lock().ok()?;
        slots.get(camera).filter(|f| f.seq > after).cloned()
    }
}

/// A viewer of [`LiveFrames`]; dropping it stops counting the viewer.
pub struct WatchGuard(Arc<LiveFrames>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}
