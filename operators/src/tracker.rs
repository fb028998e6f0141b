//! A multi-object tracker for plates, after ByteTrack (Zhang et al., 2022).
//!
//! Each track holds a constant-velocity Kalman filter per box coordinate
//! (centre x, centre y, width, height; state: value and rate of change,
//! in pixels and seconds), so boxes keep moving between the frames the
//! detector runs on. Detections are associated in two stages:
//!
//! 1. detections scoring at least `high_score` against every track
//!    (confirmed, tentative or lost), by similarity;
//! 2. the remaining low-score detections (`low_score..high_score`) against
//!    the confirmed tracks left over, with a stricter threshold: a blurred
//!    or half-hidden plate keeps its track alive but starts none.
//!
//! Similarity is the IoU of the predicted box and the detection, plus a
//! bonus for centres close relative to the box size (a plate that moves
//! more than its own height between detections has no IoU left). Matching
//! is greedy, best pair first: a lane holds few plates at once, so the
//! optimal assignment (Hungarian) would rarely differ.
//!
//! Birth: an unmatched high-score detection starts a tentative track,
//! confirmed after `min_hits` matches. Death: a tentative track that misses
//! its next detection, a track not matched for `max_lost_ms`, or one whose
//! predicted box has left the frame. Ended tracks are handed back so the
//! caller can emit what it knows about them.

/// A detected plate in one frame: its box (x, y, width, height in pixels) and score.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub bbox: [f32; 4],
    pub score: f32,
}

/// Settings of the tracker.
#[derive(Clone, Debug)]
pub struct TrackerOptions {
    /// Detections at least this sure start tracks and match in the first stage.
    pub high_score: f32,
    /// Detections below this are ignored.
    pub low_score: f32,
    /// Least similarity for a first-stage match.
    pub match_threshold: f32,
    /// Least similarity for a second-stage (low-score) match.
    pub low_match_threshold: f32,
    /// Matches that confirm a track.
    pub min_hits: u32,
    /// A track not matched for this long ends.
    pub max_lost_ms: i64,
}

impl Default for TrackerOptions {
    fn default() -> Self {
        TrackerOptions {
            high_score: 0.6,
            low_score: 0.3,
            match_threshold: 0.2,
            low_match_threshold: 0.35,
            min_hits: 2,
            max_lost_ms: 1_200,
        }
    }
}

/// A constant-velocity Kalman filter of one coordinate.
#[derive(Clone, Debug)]
struct Kalman1 {
    x: f32,
    v: f32,
    /// Covariance [[pxx, pxv], [pxv, pvv]].
    p: [f32; 3],
}

impl Kalman1 {
    fn new(x: f32, position_sd: f32, velocity_sd: f32) -> Self {
        Kalman1 { x, v: 0.0, p: [position_sd * position_sd, 0.0, velocity_sd * velocity_sd] }
    }

    /// Moves the state `dt` seconds on; `accel_sd` is the process noise (units/s²).
    fn predict(&mut self, dt: f32, accel_sd: f32) {
        let [pxx, pxv, pvv] = self.p;
        let q = accel_sd * accel_sd;
        self.x += self.v * dt;
        self.p = [
            pxx + 2.0 * dt * pxv + dt * dt * pvv + q * dt.powi(4) / 4.0,
            pxv + dt * pvv + q * dt.powi(3) / 2.0,
            pvv + q * dt * dt,
        ];
    }

    /// Folds in a measurement `z` with standard deviation `sd`.
    fn update(&mut self, z: f32, sd: f32) {
        let [pxx, pxv, pvv] = self.p;
        let s = pxx + sd * sd;
        let (kx, kv) = (pxx / s, pxv / s);
        let residual = z - self.x;
        self.x += kx * residual;
        self.v += kv * residual;
        self.p = [(1.0 - kx) * pxx, (1.0 - kx) * pxv, pvv - kv * pxv];
    }
}

/// Where a track is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackState {
    Tentative,
    Confirmed,
    /// Confirmed, but not matched in its last detection frame.
    Lost,
}

/// One tracked plate.
#[derive(Clone, Debug)]
pub struct Track {
    pub id: u64,
    pub state: TrackState,
    /// Matches so far.
    pub hits: u32,
    pub born_ms: i64,
    pub last_matched_ms: i64,
    filters: [Kalman1; 4],
    time_ms: i64,
}

impl Track {
    fn new(id: u64, detection: &Detection, time_ms: i64) -> Self {
        let [x, y, w, h] = detection.bbox;
        let size = h.max(1.0);
        let filters = [
            Kalman1::new(x + w / 2.0, 0.1 * size, 10.0 * size),
            Kalman1::new(y + h / 2.0, 0.1 * size, 10.0 * size),
            Kalman1::new(w, 0.1 * size, 2.0 * size),
            Kalman1::new(h, 0.1 * size, 1.0 * size),
        ];
        Track { id, state: TrackState::Tentative, hits: 1, born_ms: time_ms, last_matched_ms: time_ms, filters, time_ms }
    }

    /// The estimated box now: x, y, width, height (pixels).
    pub fn bbox(&self) -> [f32; 4] {
        let [cx, cy, w, h] = [0, 1, 2, 3].map(|i| self.filters[i].x);
        let (w, h) = (w.max(1.0), h.max(1.0));
        [cx - w / 2.0, cy - h / 2.0, w, h]
    }

    /// The estimated centre (pixels).
    pub fn centre(&self) -> [f32; 2] {
        [self.filters[0].x, self.filters[1].x]
    }

    /// The estimated velocity of the centre (pixels per second).
    pub fn velocity(&self) -> [f32; 2] {
        [self.filters[0].v, self.filters[1].v]
    }

    fn predict(&mut self, time_ms: i64) {
        let dt = ((time_ms - self.time_ms) as f32 / 1000.0).max(0.0);
        if dt > 0.0 {
            let size = self.filters[3].x.max(1.0);
            for (i, f) in self.filters.iter_mut().enumerate() {
                // Plates speed up and grow on screen as they approach: allow for it.
                let accel = if i < 2 { 4.0 * size } else { 1.0 * size };
                f.predict(dt, accel);
            }
            self.time_ms = time_ms;
        }
    }

    fn update(&mut self, detection: &Detection, time_ms: i64) {
        let [x, y, w, h] = detection.bbox;
        let sd = 0.05 * h.max(1.0);
        for (f, z) in self.filters.iter_mut().zip([x + w / 2.0, y + h / 2.0, w, h]) {
            f.update(z, sd);
        }
        self.hits += 1;
        self.last_matched_ms = time_ms;
    }
}

/// Intersection over union of two x, y, w, h boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let iy = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    let inter = ix.max(0.0) * iy.max(0.0);
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// How well a detection fits a predicted box: IoU plus closeness of centres
/// in units of the predicted box's height, with sizes that agree. `reach`
/// is the distance, in heights, at which closeness counts for nothing: a
/// track seen once has no velocity yet, so it reaches further.
fn similarity(predicted: &[f32; 4], detection: &[f32; 4], reach: f32) -> f32 {
    let (pc, dc) = (
        [predicted[0] + predicted[2] / 2.0, predicted[1] + predicted[3] / 2.0],
        [detection[0] + detection[2] / 2.0, detection[1] + detection[3] / 2.0],
    );
    let distance = ((pc[0] - dc[0]).powi(2) + (pc[1] - dc[1]).powi(2)).sqrt() / predicted[3].max(1.0);
    let size_ratio = (detection[2] / predicted[2].max(1.0)).max(predicted[2] / detection[2].max(1.0));
    if size_ratio > 2.0 {
        return 0.0;
    }
    iou(predicted, detection) + 0.5 * (1.0 - distance / reach).max(0.0)
}

/// Distance (in box heights) at which a detection no longer counts as close
/// to a track's predicted box; further for a track seen only once.
const REACH_HEIGHTS: f32 = 2.5;
const NEWBORN_REACH_HEIGHTS: f32 = 6.0;

/// The tracker of one camera.
#[derive(Debug)]
pub struct Tracker {
    options: TrackerOptions,
    tracks: Vec<Track>,
    next_id: u64,
    frame_size: (f32, f32),
}

impl Tracker {
    pub fn new(options: TrackerOptions, frame_width: u32, frame_height: u32) -> Self {
        Tracker { options, tracks: Vec::new(), next_id: 1, frame_size: (frame_width as f32, frame_height as f32) }
    }

    /// The live tracks.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// Moves every track to `time_ms` and ends those that are gone; returns the ended tracks.
    pub fn predict(&mut self, time_ms: i64) -> Vec<Track> {
        for track in &mut self.tracks {
            track.predict(time_ms);
        }
        let (fw, fh) = self.frame_size;
        let max_lost = self.options.max_lost_ms;
        let mut ended = Vec::new();
        self.tracks.retain(|t| {
            let [x, y, w, h] = t.bbox();
            let outside = x + w < 0.0 || y + h < 0.0 || x > fw || y > fh;
            let gone = time_ms - t.last_matched_ms > max_lost;
            if outside || gone {
                ended.push(t.clone());
                false
            } else {
                true
            }
        });
        ended
    }

    /// Associates `detections` (made at `time_ms`, after [`predict`](Self::predict)
    /// to the same time) with the tracks; returns, for each detection, the id of
    /// the track it now belongs to (none for an ignored one), and the tentative
    /// tracks that died.
    pub fn update(&mut self, time_ms: i64, detections: &[Detection]) -> (Vec<Option<u64>>, Vec<Track>) {
        let o = self.options.clone();
        let mut assigned: Vec<Option<u64>> = vec![None; detections.len()];
        let mut matched = vec![false; self.tracks.len()];
        let high: Vec<usize> = (0..detections.len()).filter(|&i| detections[i].score >= o.high_score).collect();
        let low: Vec<usize> = (0..detections.len())
            .filter(|&i| detections[i].score >= o.low_score && detections[i].score < o.high_score)
            .collect();
        // Stage 1: confident detections, every track.
        self.associate(&high, detections, &mut assigned, &mut matched, o.match_threshold, time_ms, |_| true);
        // Stage 2: weak detections, confirmed tracks still unmatched.
        self.associate(&low, detections, &mut assigned, &mut matched, o.low_match_threshold, time_ms, |t| t.state != TrackState::Tentative);
        // Unmatched tracks: tentative ones die, confirmed ones are lost for now.
        let mut ended = Vec::new();
        let mut keep = Vec::with_capacity(self.tracks.len());
        for (track, was_matched) in self.tracks.drain(..).zip(matched) {
            match (was_matched, track.state) {
                (false, TrackState::Tentative) => ended.push(track),
                (false, _) => keep.push(Track { state: TrackState::Lost, ..track }),
                (true, _) => keep.push(track),
            }
        }
        self.tracks = keep;
        // Births.
        for &i in &high {
            if assigned[i].is_none() {
                let track = Track::new(self.next_id, &detections[i], time_ms);
                assigned[i] = Some(track.id);
                self.next_id += 1;
                self.tracks.push(track);
            }
        }
        (assigned, ended)
    }

    #[allow(clippy::too_many_arguments)]
    fn associate(
        &mut self,
        candidates: &[usize],
        detections: &[Detection],
        assigned: &mut [Option<u64>],
        matched: &mut [bool],
        threshold: f32,
        time_ms: i64,
        eligible: impl Fn(&Track) -> bool,
    ) {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (t, track) in self.tracks.iter().enumerate() {
            if matched[t] || !eligible(track) {
                continue;
            }
            let predicted = track.bbox();
            let reach = if track.hits < 2 { NEWBORN_REACH_HEIGHTS } else { REACH_HEIGHTS };
            for &d in candidates {
                let s = similarity(&predicted, &detections[d].bbox, reach);
                if s >= threshold {
                    pairs.push((s, t, d));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (_, t, d) in pairs {
            if matched[t] || assigned[d].is_some() {
                continue;
            }
            matched[t] = true;
            assigned[d] = Some(self.tracks[t].id);
            let track = &mut self.tracks[t];
            track.update(&detections[d], time_ms);
            if track.hits >= self.options.min_hits {
                track.state = TrackState::Confirmed;
            }
        }
    }

    /// Ends every track (the stream is over).
    pub fn finish(&mut self) -> Vec<Track> {
        std::mem::take(&mut self.tracks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, y: f32, score: f32) -> Detection {
        Detection { bbox: [x, y, 100.0, 22.0], score }
    }

    #[test]
    fn a_moving_plate_keeps_one_track_across_gaps_between_detections() {
        let mut tracker = Tracker::new(TrackerOptions::default(), 1280, 720);
        let mut ids = Vec::new();
        for step in 0..20 {
            let t = step * 100;
            tracker.predict(t);
            // Detected every other frame, moving 30 px (more than its height) per frame.
            if step % 2 == 0 {
                let (assigned, _) = tracker.update(t, &[det(500.0, 50.0 + 30.0 * step as f32, 0.9)]);
                ids.push(assigned[0].expect("assigned"));
            }
        }
        assert!(ids.iter().all(|&id| id == ids[0]), "{ids:?}");
        assert_eq!(tracker.tracks().len(), 1);
        assert_eq!(tracker.tracks()[0].state, TrackState::Confirmed);
    }

    #[test]
    fn low_score_detections_extend_tracks_but_start_none() {
        let mut tracker = Tracker::new(TrackerOptions::default(), 1280, 720);
        tracker.predict(0);
        tracker.update(0, &[det(100.0, 100.0, 0.9)]);
        tracker.predict(100);
        tracker.update(100, &[det(100.0, 110.0, 0.9)]);
        tracker.predict(200);
        let (assigned, _) = tracker.update(200, &[det(100.0, 120.0, 0.4), det(900.0, 500.0, 0.4)]);
        assert_eq!(assigned[0], Some(1));
        assert_eq!(assigned[1], None);
        assert_eq!(tracker.tracks().len(), 1);
    }

    #[test]
    fn tracks_die_when_lost_too_long_or_out_of_frame() {
        let mut tracker = Tracker::new(TrackerOptions::default(), 1280, 720);
        for t in [0, 100] {
            tracker.predict(t);
            tracker.update(t, &[det(600.0, 300.0, 0.9)]);
        }
        let mut ended = Vec::new();
        for t in (200..3000).step_by(100) {
            ended.extend(tracker.predict(t));
            tracker.update(t, &[]);
        }
        assert_eq!(ended.len(), 1);
        assert!(tracker.tracks().is_empty());
    }

    #[test]
    fn two_plates_side_by_side_keep_their_own_tracks() {
        let mut tracker = Tracker::new(TrackerOptions::default(), 1280, 720);
        let mut pairs = Vec::new();
        for step in 0..10 {
            let t = step * 100;
            tracker.predict(t);
            let y = 100.0 + 20.0 * step as f32;
            let (assigned, _) = tracker.update(t, &[det(200.0, y, 0.9), det(800.0, 600.0 - y, 0.9)]);
            pairs.push((assigned[0], assigned[1]));
        }
        assert!(pairs.iter().all(|p| *p == pairs[0]), "{pairs:?}");
    }
}
