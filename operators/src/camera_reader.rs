//! One camera's frames to plate reads: detect → track → recognise → vote,
//! and the counting line.
//!
//! Detection is the expensive step (about 60 ms a full HD frame at
//! `detector_side` 512 on one core, three quarters of the work), so it runs on every `detect_every`-th
//! frame only, on the camera's region of interest scaled so its longer side
//! is `detector_side` pixels; the tracker's motion model carries boxes over
//! the frames in between. Detected words are joined into plates (see
//! [`crate::plate_crop`]) and handed to the [`Tracker`].
//!
//! Recognition runs only where it pays: on a confirmed track whose box was
//! just detected, whose text is at least `min_text_height_px` tall and sharp
//! enough (variance of the Laplacian), at most every `recognise_every`-th
//! frame of the track, and no more once `enough_votes` readings agree. Each
//! recognition's best reading is a ballot in the track's [vote](crate::plate_vote).
//!
//! A track emits one [`PlateRead`] when its centre crosses the camera's
//! counting line and it has `min_votes_at_crossing` ballots (or as soon as it
//! has them after crossing): crossing from `from_side` gives the camera's
//! direction, the other way the opposite one. A track that ends without
//! crossing emits at its end, with the direction of its motion, after a
//! hold of `hold_ms` during which a read of the same plate (another piece
//! of the same vehicle's track: up to two characters off, O and 0 alike,
//! or without its region letters) cancels it, and only with two readings
//! and some confidence, or one sure reading of a known format. An unsure
//! read at the line is held the same way, and gives way to a surer held
//! read of the same vehicle. A plate this camera has
//! emitted within `repeat_ms` (or one of the same vehicle) is not
//! emitted again: two vehicles in one lane seconds apart rarely carry
//! plates that close, while one vehicle in a queue stays in view long.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use borderflow_types::{BBox, CameraConfig, Direction, Frame, PlateRead, Side, plate_grammar::plate_country};
use borderflow_models::TextBox;
use borderflow_models::image::RgbImage;

use crate::line_crossing::{Crossing, crossing};
use crate::plate_crop::{plate_lines, stacked_lines, union_of};
use crate::plate_reader::{PlateReader, PlateReaderError};
use crate::plate_vote::{Ballot, vote};
use crate::tracker::{Detection, Track, TrackState, Tracker, TrackerOptions};

/// Settings of the video operators.
#[derive(Clone, Debug)]
pub struct VideoOptions {
    /// Run the detector on every n-th frame.
    pub detect_every: u32,
    /// Longer side of the detector's input, pixels.
    pub detector_side: u32,
    /// Region of interest (x, y, width, height in fractions of the frame); default: the whole frame.
    pub region: Option<[f32; 4]>,
    /// Recognise a track at most every n-th frame.
    pub recognise_every: u32,
    /// Plates whose text box is shorter than this (frame pixels) are not recognised.
    pub min_text_height_px: f32,
    /// Plates whose crop's variance of the Laplacian is below this are not recognised.
    pub min_sharpness: f32,
    /// A track with this many agreeing readings is not recognised again.
    pub enough_votes: usize,
    /// Readings a track needs before it is emitted at the line.
    pub min_votes_at_crossing: usize,
    /// How long a track that ended without crossing waits before it is emitted, ms.
    pub hold_ms: i64,
    /// How long a plate this camera emitted keeps another read of it (or
    /// of one two characters from it) from being emitted, ms: in a queue a
    /// vehicle stays in view for 20 s and more, and a piece of its track
    /// lost and found again must not count it twice.
    pub repeat_ms: i64,
    pub tracker: TrackerOptions,
    /// Keep each read's plate crop from its best frame, for
    /// [`CameraReader::take_crop`] (default: no).
    pub keep_crops: bool,
}

/// A read's plate crop: the plate box of its best frame with a margin, packed RGB.
#[derive(Clone, Debug, PartialEq)]
pub struct PlateCrop {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl PlateCrop {
    /// The box `[x, y, w, h]` (pixels) of `image`, a quarter of the box's
    /// height added on each side, clipped to the image; `None` if nothing is left.
    fn of(image: &RgbImage, [x, y, w, h]: [f32; 4]) -> Option<PlateCrop> {
        let margin = 0.25 * h;
        let (x0, y0) = ((x - margin).max(0.0) as u32, (y - margin).max(0.0) as u32);
        let x1 = ((x + w + margin).ceil() as u32).min(image.width());
        let y1 = ((y + h + margin).ceil() as u32).min(image.height());
        if x1 <= x0 || y1 <= y0 {
            return None;
        }
        let crop = borderflow_models::image::imageops::crop_imm(image, x0, y0, x1 - x0, y1 - y0).to_image();
        Some(PlateCrop { width: crop.width(), height: crop.height(), rgb: crop.into_raw() })
    }
}

impl Default for VideoOptions {
    fn default() -> Self {
        VideoOptions {
            detect_every: 3,
            detector_side: 512,
            region: None,
            recognise_every: 2,
            min_text_height_px: 9.0,
            min_sharpness: 20.0,
            enough_votes: 6,
            min_votes_at_crossing: 3,
            hold_ms: 4_000,
            repeat_ms: 30_000,
            tracker: TrackerOptions::default(),
            keep_crops: false,
        }
    }
}

/// Time spent per step, and how often each ran.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageTimes {
    pub frames: u64,
    pub detect: Duration,
    pub detections: u64,
    pub recognise: Duration,
    pub recognitions: u64,
    /// Tracking, voting and the counting line.
    pub track: Duration,
}

impl StageTimes {
    pub fn add(&mut self, other: &StageTimes) {
        self.frames += other.frames;
        self.detect += other.detect;
        self.detections += other.detections;
        self.recognise += other.recognise;
        self.recognitions += other.recognitions;
        self.track += other.track;
    }
}

/// Plates shorter than this are pieces of a plate, not plates.
const MIN_PLATE_CHARS: usize = 4;
/// A text no plate grammar accepts needs this confidence to be emitted.
const MIN_UNKNOWN_FORMAT_CONFIDENCE: f32 = 0.5;
/// A track that never crossed the line needs this voted confidence to be emitted.
const MIN_UNCROSSED_CONFIDENCE: f32 = 0.25;
/// Least width of a plate of one line, in heights of its text.
const MIN_LINE_ASPECT: f32 = 2.3;
/// A read at the line below this voted confidence is held like one of a
/// track that did not cross.
const MIN_SURE_CONFIDENCE: f32 = 0.3;
/// A track that never crossed the line and was read once needs this.
const MIN_SINGLE_READING_CONFIDENCE: f32 = 0.9;

/// Whether two reads within the hold are of one vehicle, O and 0 taken as
/// one: of one length, one character apart (a fragment of a track read
/// worse), or two when one of them is `unsure` (a read below
/// [`MIN_SURE_CONFIDENCE`]: a sure read of another plate of the same
/// district, `RIG255` after `RIY254`, is another vehicle); of two lengths,
/// two edits apart, or one the other without its first one or two
/// characters (the region letters beside the country strip, lost or
/// hidden) and one more edit.
fn same_vehicle(a: &str, b: &str, unsure: bool) -> bool {
    let fold = |s: &str| -> Vec<char> { s.chars().map(|c| if c == 'O' { '0' } else { c }).collect() };
    let (a, b) = (fold(a), fold(b));
    if a.len() == b.len() {
        return edit_distance(&a, &b) <= if unsure { 2 } else { 1 };
    }
    let (long, short) = if a.len() > b.len() { (&a, &b) } else { (&b, &a) };
    edit_distance(&a, &b) <= 2 || (1..=2).any(|k| long.len() >= k + MIN_PLATE_CHARS && edit_distance(&long[k..], short) <= 1)
}

/// Levenshtein distance.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// Readings of one recognition that become ballots.
const BALLOTS_PER_READING: usize = 3;
/// A runner-up's ballot counts this share of its confidence. Runners-up are
/// alternatives to the best reading of the same crop, not independent
/// sightings: at full weight the variants without the first letter (taken
/// for a country strip) of every recognition outvoted the whole plate
/// (`AB8888MX` read six times at 0.9–1.0 lost to `B8888MX`, its runner-up).
const RUNNER_UP_WEIGHT: f32 = 0.5;

/// The ballots of one recognition's readings (text, confidence; best
/// first). The runners-up vote too, at a discount (`RUNNER_UP_WEIGHT`): a
/// reading that needed a repair to fit the grammar (O for 0 at a letter
/// position) often comes second to the raw one.
fn ballots(readings: impl IntoIterator<Item = (String, f32)>) -> impl Iterator<Item = Ballot> {
    readings.into_iter().take(BALLOTS_PER_READING).enumerate().map(|(rank, (text, confidence))| Ballot {
        text,
        confidence: confidence * if rank == 0 { 1.0 } else { RUNNER_UP_WEIGHT },
    })
}

/// What the reader keeps per track.
#[derive(Debug, Default)]
struct TrackNotes {
    ballots: Vec<Ballot>,
    /// Recognitions that gave a reading.
    readings: usize,
    /// Confidence, time and box of the best reading.
    best: Option<(f32, i64, [f32; 4])>,
    /// The text of the best reading (what the console labels the track with).
    best_text: Option<String>,
    /// The plate crop of the best reading (with [`VideoOptions::keep_crops`]).
    best_crop: Option<PlateCrop>,
    last_recognised: Option<u64>,
    first_centre: Option<[f32; 2]>,
    last_centre: Option<[f32; 2]>,
    crossed: Option<Crossing>,
    emitted: bool,
    first_frame: u64,
}

/// The video operators for one camera of a post.
pub struct CameraReader {
    post_id: String,
    country: String,
    camera: CameraConfig,
    options: VideoOptions,
    tracker: Option<Tracker>,
    notes: HashMap<u64, TrackNotes>,
    frames: u64,
    pending: Vec<(i64, PlateRead)>,
    recent: Vec<(i64, String)>,
    times: StageTimes,
    /// Crops of reads made and not yet taken, by read id.
    crops: HashMap<String, PlateCrop>,
}

impl CameraReader {
    pub fn new(post_id: &str, country: &str, camera: CameraConfig, options: VideoOptions) -> Self {
        CameraReader {
            post_id: post_id.to_string(),
            country: country.to_string(),
            camera,
            options,
            tracker: None,
            notes: HashMap::new(),
            frames: 0,
            pending: Vec::new(),
            recent: Vec::new(),
            times: StageTimes::default(),
            crops: HashMap::new(),
        }
    }

    pub fn camera(&self) -> &CameraConfig {
        &self.camera
    }

    /// Time spent so far, per step.
    pub fn times(&self) -> &StageTimes {
        &self.times
    }

    /// The plate crop of a read this reader returned (once; with
    /// [`VideoOptions::keep_crops`]).
    pub fn take_crop(&mut self, read_id: &str) -> Option<PlateCrop> {
        self.crops.remove(read_id)
    }

    /// Processes one frame; returns the reads it completes.
    pub fn process(&mut self, frame: &Frame, reader: &mut PlateReader) -> Result<Vec<PlateRead>, PlateReaderError> {
        let started = Instant::now();
        let (mut detect, mut recognise) = (Duration::ZERO, Duration::ZERO);
        let t = frame.captured_at_ms;
        let index = self.frames;
        self.frames += 1;
        self.times.frames += 1;
        let tracker = self.tracker.get_or_insert_with(|| Tracker::new(self.options.tracker.clone(), frame.width, frame.height));
        let mut ended = tracker.predict(t);
        let mut out = Vec::new();

        if index.is_multiple_of(self.options.detect_every.max(1) as u64) {
            let clock = Instant::now();
            let image = RgbImage::from_raw(frame.width, frame.height, frame.rgb.to_vec());
            let Some(image) = image else { return Ok(out) };
            let areas = self.detect(&image, reader)?;
            detect += clock.elapsed();
            self.times.detections += 1;
            let detections: Vec<Detection> = areas
                .iter()
                .map(|a| {
                    let (x0, y0, x1, y1) = a.area.bounds();
                    Detection { bbox: [x0, y0, x1 - x0, y1 - y0], score: a.area.score }
                })
                .collect();
            let tracker = self.tracker.as_mut().expect("created above");
            let (assigned, died) = tracker.update(t, &detections);
            ended.extend(died);
            let confirmed: HashMap<u64, u32> = tracker
                .tracks()
                .iter()
                .filter(|tr| tr.state == TrackState::Confirmed)
                .map(|tr| (tr.id, tr.hits))
                .collect();
            for (area, id) in areas.iter().zip(assigned) {
                let Some(id) = id else { continue };
                let notes = self.notes.entry(id).or_insert_with(|| TrackNotes { first_frame: index, ..Default::default() });
                if !confirmed.contains_key(&id) || !self.options.worth_reading(notes, index, area, frame) {
                    continue;
                }
                let clock = Instant::now();
                let readings = if area.lines.len() > 1 { reader.read_stacked(&image, &area.lines)? } else { reader.read_area(&image, &area.area)? };
                recognise += clock.elapsed();
                self.times.recognitions += 1;
                notes.last_recognised = Some(index);
                if let Some(best) = readings.first() {
                    if notes.best.is_none_or(|(c, _, _)| best.confidence > c) {
                        notes.best = Some((best.confidence, t, best.bbox));
                        notes.best_text = Some(best.text.clone());
                        if self.options.keep_crops {
                            notes.best_crop = PlateCrop::of(&image, best.bbox);
                        }
                    }
                    notes.readings += 1;
                }
                notes.ballots.extend(ballots(readings.into_iter().map(|r| (r.text, r.confidence))));
            }
        }

        // The counting line, for every track that is not tentative.
        let (fw, fh) = (frame.width as f32, frame.height as f32);
        let live: Vec<(u64, [f32; 2])> = self
            .tracker
            .as_ref()
            .map(|tr| tr.tracks().iter().filter(|t| t.state != TrackState::Tentative).map(|t| (t.id, t.centre())).collect())
            .unwrap_or_default();
        let mut ready = Vec::new();
        for (id, centre) in live {
            let here = [centre[0] / fw, centre[1] / fh];
            let notes = self.notes.entry(id).or_insert_with(|| TrackNotes { first_frame: index, ..Default::default() });
            notes.first_centre.get_or_insert(here);
            if let Some(previous) = notes.last_centre {
                let step = crossing(&self.camera.counting_line, self.camera.from_side, previous, here);
                if step != Crossing::None && notes.crossed.is_none() {
                    notes.crossed = Some(step);
                }
            }
            notes.last_centre = Some(here);
            if notes.crossed.is_some() && !notes.emitted && notes.readings >= self.options.min_votes_at_crossing {
                ready.push(id);
            }
        }
        for id in ready {
            if let Some(read) = self.read_of(id) {
                self.emit_or_hold(read, t, &mut out);
            }
        }
        for track in ended {
            self.end_track(&track, t, &mut out);
        }
        self.flush_pending(t, &mut out);
        self.times.detect += detect;
        self.times.recognise += recognise;
        self.times.track += started.elapsed().saturating_sub(detect + recognise);
        Ok(out)
    }

    /// The tracks alive now, as the console draws them (tentative ones too:
    /// what the detector sees).
    pub fn live_tracks(&self) -> Vec<borderflow_types::LiveTrack> {
        let Some(tracker) = &self.tracker else { return Vec::new() };
        tracker
            .tracks()
            .iter()
            .map(|t| {
                let notes = self.notes.get(&t.id);
                borderflow_types::LiveTrack {
                    id: t.id,
                    bbox: t.bbox(),
                    confirmed: t.state != TrackState::Tentative,
                    text: notes.and_then(|n| n.best_text.clone()),
                    read: notes.is_some_and(|n| n.emitted),
                }
            })
            .collect()
    }

    /// The stream is over: every track ends and every held read is emitted.
    pub fn finish(&mut self) -> Vec<PlateRead> {
        let mut out = Vec::new();
        let ended = self.tracker.as_mut().map(|t| t.finish()).unwrap_or_default();
        let now = self.recent.last().map_or(0, |r| r.0).max(self.pending.iter().map(|p| p.0).max().unwrap_or(0));
        for track in ended {
            self.end_track(&track, now, &mut out);
        }
        self.flush_pending(i64::MAX, &mut out);
        out
    }

    /// Plate areas in `image`: detected words joined into lines of text
    /// ([`plate_lines`]) of a plate's shape, and lines standing one below
    /// another as on a square plate ([`stacked_lines`]) joined into one
    /// area; the larger of two overlapping areas kept.
    fn detect(&self, image: &RgbImage, reader: &mut PlateReader) -> Result<Vec<PlateArea>, PlateReaderError> {
        let (w, h) = (image.width() as f32, image.height() as f32);
        let words = match self.options.region {
            None => reader.detect_words(image, self.options.detector_side)?,
            Some([rx, ry, rw, rh]) => {
                let (x0, y0) = ((rx * w).clamp(0.0, w - 1.0) as u32, (ry * h).clamp(0.0, h - 1.0) as u32);
                let (cw, ch) = (((rw * w) as u32).clamp(1, image.width() - x0), ((rh * h) as u32).clamp(1, image.height() - y0));
                let region = borderflow_models::image::imageops::crop_imm(image, x0, y0, cw, ch).to_image();
                let mut words = reader.detect_words(&region, self.options.detector_side)?;
                for word in &mut words {
                    word.center_x += x0 as f32;
                    word.center_y += y0 as f32;
                }
                words
            }
        };
        let lines: Vec<TextBox> = plate_lines(&words).into_iter().filter(|l| l.height >= 5.0 && l.width <= 15.0 * l.height).collect();
        let mut found: Vec<PlateArea> = stacked_lines(&lines)
            .into_iter()
            .map(|stack| {
                let parts: Vec<TextBox> = stack.iter().map(|&i| lines[i].clone()).collect();
                PlateArea { area: union_of(&parts.iter().collect::<Vec<_>>()), lines: parts }
            })
            .filter(|p| p.area.width >= 0.8 * p.area.height && p.lines.iter().all(|l| l.width >= 0.8 * l.height))
            .collect();
        // A plate of one line is wider than MIN_LINE_ASPECT heights of its
        // text (three characters of a square plate's line are not a plate).
        found.extend(lines.into_iter().filter(|l| l.width >= MIN_LINE_ASPECT * l.height).map(|l| PlateArea { area: l, lines: Vec::new() }));
        let size = |p: &PlateArea| p.area.width * p.area.height * p.area.score;
        found.sort_by(|a, b| size(b).total_cmp(&size(a)));
        tracing::trace!(
            areas = ?found.iter().map(|p| format!("{:.0},{:.0} {:.0}x{:.0} lines {}", p.area.center_x, p.area.center_y, p.area.width, p.area.height, p.lines.len())).collect::<Vec<_>>(),
            "plate areas"
        );
        let mut plates: Vec<PlateArea> = Vec::new();
        for plate in found {
            let bounds = plate.area.bounds();
            if plates.iter().all(|p| overlap_of_smaller(p.area.bounds(), bounds) < 0.3) {
                plates.push(plate);
            }
        }
        Ok(plates)
    }

    /// The voted read of track `id`, marking it emitted; `None` without ballots.
    fn read_of(&mut self, id: u64) -> Option<PlateRead> {
        let notes = self.notes.get_mut(&id)?;
        if notes.emitted {
            return None;
        }
        let voted = vote(&notes.ballots, Some(&self.country))?;
        tracing::debug!(
            camera = %self.camera.id,
            track = id,
            voted = %voted.text,
            confidence = voted.confidence,
            ballots = ?notes.ballots.iter().map(|b| format!("{}:{:.2}", b.text, b.confidence)).collect::<Vec<_>>(),
            "track voted"
        );
        notes.emitted = true;
        let (_, captured_at_ms, [x, y, w, h]) = notes.best?;
        let read_id = read_id(&self.camera.id, notes.first_frame, captured_at_ms);
        if let Some(crop) = notes.best_crop.take() {
            self.crops.insert(read_id.clone(), crop);
        }
        let forward = match notes.crossed {
            Some(Crossing::Forward) => true,
            Some(Crossing::Backward) => false,
            _ => {
                let (a, b) = (notes.first_centre?, notes.last_centre?);
                let motion = [b[0] - a[0], b[1] - a[1]];
                let towards = match self.camera.from_side {
                    Side::Top => [0.0, 1.0],
                    Side::Bottom => [0.0, -1.0],
                    Side::Left => [1.0, 0.0],
                    Side::Right => [-1.0, 0.0],
                };
                motion[0] * towards[0] + motion[1] * towards[1] >= 0.0
            }
        };
        let direction = match (forward, self.camera.direction) {
            (true, d) => d,
            (false, Direction::Entry) => Direction::Exit,
            (false, Direction::Exit) => Direction::Entry,
        };
        Some(PlateRead {
            read_id,
            post_id: self.post_id.clone(),
            camera_id: self.camera.id.clone(),
            country: self.country.clone(),
            lane: self.camera.lane,
            direction,
            point: self.camera.point,
            captured_at_ms,
            plate_country: plate_country(&voted.text, Some(&self.country)).map(str::to_string),
            plate_text: voted.text.clone(),
            plate_norm: borderflow_types::plate_norm(&voted.text),
            confidence: voted.confidence,
            frames: notes.readings.min(u16::MAX as usize) as u16,
            bbox: Some(BBox { x, y, w, h }),
            crop_uri: None,
        })
    }

    fn end_track(&mut self, track: &Track, now_ms: i64, out: &mut Vec<PlateRead>) {
        let crossed = self.notes.get(&track.id).is_some_and(|n| n.crossed.is_some());
        let readings = self.notes.get(&track.id).map_or(0, |n| n.readings);
        if let Some(read) = self.read_of(track.id) {
            // One look is enough only for a plate of a known format read
            // surely (fast traffic, a blurred approach): a single reading
            // of anything else is as likely a sign or a piece of a plate.
            let known = read.plate_country.is_some();
            if crossed && (readings >= 2 || known) {
                self.emit_or_hold(read, now_ms, out);
            } else if !crossed
                && ((readings >= 2 && read.confidence >= MIN_UNCROSSED_CONFIDENCE) || (known && read.confidence >= MIN_SINGLE_READING_CONFIDENCE))
            {
                self.pending.push((now_ms + self.options.hold_ms, read));
            }
        }
        self.notes.remove(&track.id);
    }

    /// A sure read is emitted now; an unsure one (a track that drifted
    /// between two plates, a piece of a plate) is held for `hold_ms`, so
    /// that a sure read of the same vehicle takes its place.
    fn emit_or_hold(&mut self, read: PlateRead, now_ms: i64, out: &mut Vec<PlateRead>) {
        if read.confidence >= MIN_SURE_CONFIDENCE {
            self.emit(read, now_ms, out);
        } else {
            self.pending.push((now_ms + self.options.hold_ms, read));
        }
    }

    fn emit(&mut self, read: PlateRead, now_ms: i64, out: &mut Vec<PlateRead>) {
        let window = self.options.repeat_ms.max(2 * self.options.hold_ms);
        self.recent.retain(|(at, _)| now_ms - at <= window);
        if read.plate_norm.len() < MIN_PLATE_CHARS || (read.plate_country.is_none() && read.confidence < MIN_UNKNOWN_FORMAT_CONFIDENCE) {
            tracing::debug!(camera = %self.camera.id, plate = %read.plate_norm, confidence = read.confidence, "too short or unsure of an unknown format: dropped");
            self.crops.remove(&read.read_id);
            return;
        }
        let unsure = read.confidence < MIN_SURE_CONFIDENCE;
        if self.recent.iter().any(|(_, plate)| same_vehicle(plate, &read.plate_norm, unsure)) {
            tracing::debug!(camera = %self.camera.id, plate = %read.plate_norm, "read again within the hold: dropped");
            self.crops.remove(&read.read_id);
            return;
        }
        // A surer held read of the same vehicle waits to be emitted: this
        // one gives way to it.
        if self.pending.iter().any(|(_, p)| p.confidence > read.confidence && same_vehicle(&p.plate_norm, &read.plate_norm, unsure)) {
            tracing::debug!(camera = %self.camera.id, plate = %read.plate_norm, "a surer held read of the same vehicle waits: dropped");
            self.crops.remove(&read.read_id);
            return;
        }
        // Held pieces of the same vehicle's track give way.
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending).into_iter().partition(|(_, p)| same_vehicle(&p.plate_norm, &read.plate_norm, p.confidence < MIN_SURE_CONFIDENCE));
        self.pending = kept;
        for (_, held) in gone {
            tracing::debug!(camera = %self.camera.id, held = %held.plate_norm, plate = %read.plate_norm, "held read gives way");
            self.crops.remove(&held.read_id);
        }
        self.recent.push((now_ms, read.plate_norm.clone()));
        out.push(read);
    }

    fn flush_pending(&mut self, now_ms: i64, out: &mut Vec<PlateRead>) {
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending).into_iter().partition(|(at, _)| *at <= now_ms);
        self.pending = keep;
        for (at, read) in due {
            self.emit(read, at.min(now_ms), out);
        }
    }
}

/// A plate found in a frame: its area and, for a square plate, its lines
/// of text, top first (empty for a plate of one line).
struct PlateArea {
    area: TextBox,
    lines: Vec<TextBox>,
}

impl PlateArea {
    /// The height of its text: of its one line, or of its shortest line.
    fn text_height(&self) -> f32 {
        self.lines.iter().map(|l| l.height).reduce(f32::min).unwrap_or(self.area.height)
    }
}

impl VideoOptions {
    /// Whether a track's freshly detected `area` is worth recognising now.
    fn worth_reading(&self, notes: &TrackNotes, index: u64, area: &PlateArea, frame: &Frame) -> bool {
        if notes.last_recognised.is_some_and(|last| index - last < self.recognise_every.max(1) as u64) {
            return false;
        }
        if notes.readings >= self.enough_votes
            && let Some(voted) = vote(&notes.ballots, None)
        {
            let agreeing = notes.ballots.iter().filter(|b| b.text == voted.text).count();
            if agreeing >= self.enough_votes {
                return false;
            }
        }
        area.text_height() >= self.min_text_height_px && sharpness(frame, area.area.bounds()) >= self.min_sharpness
    }
}

/// Variance of the Laplacian of the grey levels inside `bounds` (x0, y0, x1, y1).
pub fn sharpness(frame: &Frame, bounds: (f32, f32, f32, f32)) -> f32 {
    let (w, h) = (frame.width as i64, frame.height as i64);
    let x0 = (bounds.0.floor() as i64).clamp(1, w - 2);
    let x1 = (bounds.2.ceil() as i64).clamp(1, w - 2);
    let y0 = (bounds.1.floor() as i64).clamp(1, h - 2);
    let y1 = (bounds.3.ceil() as i64).clamp(1, h - 2);
    if x1 <= x0 || y1 <= y0 {
        return 0.0;
    }
    let grey = |x: i64, y: i64| {
        let i = ((y * w + x) * 3) as usize;
        frame.rgb[i] as f32 * 0.299 + frame.rgb[i + 1] as f32 * 0.587 + frame.rgb[i + 2] as f32 * 0.114
    };
    let (mut sum, mut sum2, mut n) = (0f64, 0f64, 0f64);
    for y in y0..y1 {
        for x in x0..x1 {
            let l = (grey(x - 1, y) + grey(x + 1, y) + grey(x, y - 1) + grey(x, y + 1) - 4.0 * grey(x, y)) as f64;
            sum += l;
            sum2 += l * l;
            n += 1.0;
        }
    }
    ((sum2 / n) - (sum / n).powi(2)).max(0.0) as f32
}

fn overlap_of_smaller(a: (f32, f32, f32, f32), b: (f32, f32, f32, f32)) -> f32 {
    let ix = a.2.min(b.2) - a.0.max(b.0);
    let iy = a.3.min(b.3) - a.1.max(b.1);
    let smaller = ((a.2 - a.0) * (a.3 - a.1)).min((b.2 - b.0) * (b.3 - b.1));
    if smaller <= 0.0 { 0.0 } else { ix.max(0.0) * iy.max(0.0) / smaller }
}

/// A ULID from the best frame's time and a hash of the camera and the track's
/// first frame: the same recording replayed gives the same ids.
fn read_id(camera_id: &str, first_frame: u64, captured_at_ms: i64) -> String {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in camera_id.bytes().chain(first_frame.to_le_bytes()) {
        hash ^= byte as u128;
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
    }
    ulid::Ulid::from_parts(captured_at_ms.max(0) as u64, hash).to_string()
}

#[cfg(test)]
mod tests {
    use super::{ballots, same_vehicle};
    use crate::plate_vote::vote;

    /// A Ukrainian plate's track on the 40-vehicle clip (seed 2026), as the
    /// reader read it: each recognition's best reading and its runners-up,
    /// the letters at the front dropped as if they were a country strip.
    #[test]
    fn runners_up_without_the_first_letters_do_not_outvote_the_plate() {
        let recognitions: [&[(&str, f32)]; 7] = [
            &[("AB8888MX", 0.94), ("B8888MX", 0.85), ("8888MX", 0.78)],
            &[("AB8888X", 0.95), ("AB888BX", 0.62), ("AB88BBX", 0.41)],
            &[("AB8888MX", 0.87), ("B8888MX", 0.78), ("8888MX", 0.72)],
            &[("AB8888MX", 0.99), ("B8888MX", 0.90), ("8888MX", 0.84)],
            &[("AB8888MX", 0.99), ("B8888MX", 0.90), ("8888MX", 0.83)],
            &[("AB8888MX", 0.99), ("B8888MX", 0.91), ("8888MX", 0.84)],
            &[("AB8888MX", 1.00), ("B8888MX", 0.91), ("8888MX", 0.85)],
        ];
        let all: Vec<_> = recognitions.iter().flat_map(|r| ballots(r.iter().map(|(t, c)| (t.to_string(), *c)))).collect();
        assert_eq!(all.len(), 21);
        let voted = vote(&all, Some("MD")).expect("a vote");
        assert_eq!(voted.text, "AB8888MX");
        assert_eq!(voted.country, Some("UA"));
    }

    #[test]
    fn reads_of_one_vehicle_are_told_from_reads_of_two() {
        assert!(same_vehicle("RSAR518", "BSAR518", false));
        assert!(same_vehicle("RSAR518", "RSA558", false));
        assert!(!same_vehicle("ABC123", "XYZ123", true));
        assert!(!same_vehicle("AA1234BB", "KB3333IO", true));
        // O and 0 as one; the region letters lost, and one more edit.
        assert!(same_vehicle("AB7107OO", "7107O0", false));
        assert!(same_vehicle("HH6857HE", "6887HE", false));
        assert!(!same_vehicle("AB1234CE", "5678CE", true));
        // Two plates of one district are two vehicles, unless one was read unsurely.
        assert!(!same_vehicle("RIG255", "RIY254", false));
        assert!(same_vehicle("CTTH037", "HCTH037", true));
    }
}
