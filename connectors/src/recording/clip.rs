//! Evidence clips: the segments covering a window joined into one MP4,
//! without re-encoding (see the module documentation of [`crate::recording`]).

use std::io::Read;
use std::path::{Path, PathBuf};

use borderflow_types::video::{self, SegmentFile};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use sha2::Digest;

use super::demux::{AccessUnit, read_units};

/// Why a clip could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("camera {camera}: no recorded video in {}", dir.display())]
    NoRecording { camera: String, dir: PathBuf },
    #[error("{}", not_covered(camera, *from_ms, *to_ms, *before, *after))]
    NotCovered {
        camera: String,
        from_ms: i64,
        to_ms: i64,
        /// The nearest recorded segment ending before the window (start, end).
        before: Option<(i64, i64)>,
        /// The nearest recorded segment starting after it (start, end).
        after: Option<(i64, i64)>,
    },
    #[error("the window ends ({}) before it starts ({})", iso(*to_ms), iso(*from_ms))]
    Window { from_ms: i64, to_ms: i64 },
    #[error("reading {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("writing {}: {message}", path.display())]
    Write { path: PathBuf, message: String },
}

fn not_covered(camera: &str, from_ms: i64, to_ms: i64, before: Option<(i64, i64)>, after: Option<(i64, i64)>) -> String {
    let mut text = format!("camera {camera}: no video recorded between {} and {}", iso(from_ms), iso(to_ms));
    let nearest: Vec<String> = [
        before.map(|(s, e)| format!("{} to {} ({} before)", iso(s), iso(e), seconds(from_ms - e))),
        after.map(|(s, e)| format!("{} to {} ({} after)", iso(s), iso(e), seconds(s - to_ms))),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !nearest.is_empty() {
        text.push_str(&format!("; the nearest recorded: {}", nearest.join(", ")));
    }
    text
}

fn seconds(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// An event time as RFC 3339 with milliseconds.
pub(crate) fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// A segment a clip was cut from.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ClipSegment {
    pub path: PathBuf,
    pub start_ms: i64,
    pub end_ms: i64,
    pub bytes: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

/// A time inside the window with no recorded video.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Gap {
    pub from_ms: i64,
    pub to_ms: i64,
}

/// What [`export_clip`] wrote.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ClipReport {
    pub camera_id: String,
    pub path: PathBuf,
    /// The window asked for.
    pub from_ms: i64,
    pub to_ms: i64,
    /// Event time of the clip's first frame (the key frame at or before `from_ms`).
    pub start_ms: i64,
    /// End of its last frame.
    pub end_ms: i64,
    pub frames: u64,
    pub bytes: u64,
    /// SHA-256 of the MP4, hex.
    pub sha256: String,
    /// The segments it was cut from, in time order.
    pub segments: Vec<ClipSegment>,
    /// Times in the window with no recorded video (the clip holds the last
    /// frame before each).
    pub gaps: Vec<Gap>,
}

/// The longest a segment can be (`[recording] segment` at most), for an
/// open segment whose end its name does not say.
const LONGEST_SEGMENT_MS: i64 = 3_600_000;

/// Writes the video of `camera_id` between `from_ms` and `to_ms` (event
/// times, ms), recorded under `recording_dir`, as one MP4 at `out`: from the
/// key frame at or before `from_ms` to the end of the last frame before
/// `to_ms`, the segments' H.264 or H.265 as recorded. A window only partly
/// recorded gives what there is, its gaps reported.
pub fn export_clip(recording_dir: &Path, camera_id: &str, from_ms: i64, to_ms: i64, out: &Path) -> Result<ClipReport, ClipError> {
    if to_ms <= from_ms {
        return Err(ClipError::Window { from_ms, to_ms });
    }
    let segments = video::list_segments(recording_dir, camera_id)
        .map_err(|e| ClipError::Read { path: video::camera_dir(recording_dir, camera_id), message: e.to_string() })?;
    if segments.is_empty() {
        return Err(ClipError::NoRecording { camera: camera_id.to_string(), dir: video::camera_dir(recording_dir, camera_id) });
    }
    let end_of = |s: &SegmentFile| s.end_ms.unwrap_or(s.start_ms + LONGEST_SEGMENT_MS);
    let covering: Vec<&SegmentFile> = segments.iter().filter(|s| s.start_ms < to_ms && end_of(s) > from_ms).collect();
    if covering.is_empty() {
        let before = segments.iter().filter(|s| end_of(s) <= from_ms).max_by_key(|s| end_of(s)).map(|s| (s.start_ms, end_of(s)));
        let after = segments.iter().filter(|s| s.start_ms >= to_ms).min_by_key(|s| s.start_ms).map(|s| (s.start_ms, end_of(s)));
        return Err(ClipError::NotCovered { camera: camera_id.to_string(), from_ms, to_ms, before, after });
    }
    let result = cut(&covering, from_ms, to_ms, out);
    let (cut, used) = match result {
        Ok(done) => done,
        Err(error) => {
            let _ = std::fs::remove_file(out);
            return Err(error);
        }
    };
    let (bytes, sha256) = file_sha256(out).map_err(|message| ClipError::Read { path: out.to_path_buf(), message })?;
    let mut clip_segments = Vec::new();
    for (segment, end_ms) in &used {
        let (bytes, sha256) = file_sha256(&segment.path).map_err(|message| ClipError::Read { path: segment.path.clone(), message })?;
        clip_segments.push(ClipSegment { path: segment.path.clone(), start_ms: segment.start_ms, end_ms: *end_ms, bytes, sha256 });
    }
    let spans: Vec<(i64, i64)> = cut.spans.clone();
    let gaps = gaps(&spans, from_ms, to_ms, cut.tolerance_ms());
    Ok(ClipReport {
        camera_id: camera_id.to_string(),
        path: out.to_path_buf(),
        from_ms,
        to_ms,
        start_ms: ns_to_ms_floor(cut.start_ns),
        end_ms: ns_to_ms_ceil(cut.end_ns),
        frames: cut.frames,
        bytes,
        sha256,
        segments: clip_segments,
        gaps,
    })
}

/// The times in `from_ms..to_ms` that `spans` (sorted recorded spans) leave
/// out, ignoring breaks shorter than `tolerance_ms`.
fn gaps(spans: &[(i64, i64)], from_ms: i64, to_ms: i64, tolerance_ms: i64) -> Vec<Gap> {
    let mut gaps = Vec::new();
    let mut covered_to = from_ms;
    for &(start, end) in spans {
        if start >= to_ms {
            break;
        }
        if start > covered_to + tolerance_ms {
            gaps.push(Gap { from_ms: covered_to, to_ms: start });
        }
        covered_to = covered_to.max(end);
    }
    if covered_to + tolerance_ms < to_ms {
        gaps.push(Gap { from_ms: covered_to, to_ms });
    }
    gaps
}

fn ns_to_ms_floor(ns: i64) -> i64 {
    ns.div_euclid(1_000_000)
}

fn ns_to_ms_ceil(ns: i64) -> i64 {
    -(-ns).div_euclid(1_000_000)
}

/// An access unit on the event-time line (ns since the epoch).
struct Timed {
    pts_ns: i64,
    dts_ns: Option<i64>,
    own_duration_ns: Option<i64>,
    caps: gst::Caps,
    buffer: gst::Buffer,
}

/// What cutting wrote.
struct Cut {
    start_ns: i64,
    end_ns: i64,
    frames: u64,
    /// Recorded spans (start, end) of the segments read, ms.
    spans: Vec<(i64, i64)>,
    /// The shortest interval between two frames, ns.
    frame_ns: i64,
}

impl Cut {
    /// Breaks in the recording shorter than one and a half frames are not gaps.
    fn tolerance_ms(&self) -> i64 {
        (self.frame_ns * 3 / 2 / 1_000_000).max(1)
    }
}

/// The output: `appsrc ! parser ! mp4mux ! filesink`, made at the first unit.
struct Output {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    /// Event time of the clip's first frame, ns.
    start_ns: i64,
    /// Added to every timestamp so that decode times are not negative.
    shift_ns: i64,
    /// The unit waiting for the next one (which gives its duration).
    held: Option<Timed>,
    frames: u64,
    end_ns: i64,
    frame_ns: i64,
}

impl Output {
    fn open(out: &Path, first: &Timed) -> Result<Output, String> {
        let parser = match first.caps.structure(0).map(|s| s.name().as_str()) {
            Some("video/x-h264") => "h264parse",
            Some("video/x-h265") => "h265parse",
            other => return Err(format!("the recording is {}, not H.264 or H.265", other.unwrap_or("unknown"))),
        };
        let description = format!("appsrc name=src format=time block=true ! {parser} ! mp4mux ! filesink name=sink");
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| format!("cannot build the clip's pipeline: {e}"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "not a pipeline".to_string())?;
        let sink = pipeline.by_name("sink").ok_or("no filesink")?;
        sink.set_property("location", out.to_string_lossy().as_ref());
        let src = pipeline.by_name("src").and_then(|e| e.downcast::<gst_app::AppSrc>().ok()).ok_or("no appsrc")?;
        src.set_caps(Some(&first.caps));
        src.set_max_bytes(32 << 20);
        pipeline.set_state(gst::State::Playing).map_err(|e| format!("cannot start the clip's pipeline: {e}"))?;
        let shift_ns = first.dts_ns.map_or(0, |d| (first.pts_ns - d).max(0));
        Ok(Output { pipeline, src, start_ns: first.pts_ns, shift_ns, held: None, frames: 0, end_ns: first.pts_ns, frame_ns: i64::MAX })
    }

    /// Queues `unit`; the one before it goes out with its duration.
    fn push(&mut self, unit: Timed) -> Result<(), String> {
        if let Some(held) = self.held.take() {
            let gap = unit.pts_ns - held.pts_ns;
            if gap > 0 {
                self.frame_ns = self.frame_ns.min(gap);
            }
            let duration = if gap > 0 { gap } else { held.own_duration_ns.unwrap_or(0) };
            self.send(held, duration)?;
        }
        self.held = Some(unit);
        Ok(())
    }

    fn send(&mut self, unit: Timed, duration_ns: i64) -> Result<(), String> {
        let at = |t: i64| gst::ClockTime::from_nseconds((t - self.start_ns + self.shift_ns).max(0) as u64);
        let mut buffer = unit.buffer.copy();
        {
            let buffer = buffer.get_mut().ok_or("a buffer that cannot be re-stamped")?;
            buffer.set_pts(at(unit.pts_ns));
            buffer.set_dts(unit.dts_ns.map(at));
            buffer.set_duration(gst::ClockTime::from_nseconds(duration_ns.max(0) as u64));
        }
        let sample = gst::Sample::builder().buffer(&buffer).caps(&unit.caps).build();
        self.src.push_sample(&sample).map_err(|e| format!("the muxer refused a frame ({e:?}){}", self.bus_error()))?;
        self.frames += 1;
        self.end_ns = self.end_ns.max(unit.pts_ns + duration_ns);
        Ok(())
    }

    /// Sends the last unit (lasting as long as `last_duration_ns`, or its
    /// own duration) and waits for the file to be written.
    fn finish(mut self, last_duration_ns: Option<i64>) -> Result<(i64, i64, u64, i64), String> {
        if let Some(held) = self.held.take() {
            let fallback = if self.frame_ns == i64::MAX { 0 } else { self.frame_ns };
            let duration = last_duration_ns.filter(|d| *d > 0).or(held.own_duration_ns).unwrap_or(fallback);
            self.send(held, duration)?;
        }
        let _ = self.src.end_of_stream();
        let bus = self.pipeline.bus().ok_or("no bus")?;
        let result = match bus.timed_pop_filtered(gst::ClockTime::from_seconds(120), &[gst::MessageType::Eos, gst::MessageType::Error]) {
            Some(message) => match message.view() {
                gst::MessageView::Eos(_) => Ok((self.start_ns, self.end_ns, self.frames, self.frame_ns)),
                gst::MessageView::Error(e) => Err(e.error().to_string()),
                _ => Err("unexpected message".to_string()),
            },
            None => Err("the muxer did not finish within 120 s".to_string()),
        };
        let _ = self.pipeline.set_state(gst::State::Null);
        result
    }

    fn bus_error(&self) -> String {
        let Some(bus) = self.pipeline.bus() else { return String::new() };
        while let Some(message) = bus.pop() {
            if let gst::MessageView::Error(e) = message.view() {
                return format!(": {}", e.error());
            }
        }
        String::new()
    }
}

/// A segment the clip took a frame from, with its recorded end (ms).
type UsedSegment<'s> = (&'s SegmentFile, i64);

/// Why the reading of a segment stopped early.
enum Stop {
    /// A unit past the window's end: nothing more is needed.
    PastTheWindow,
    /// The MP4 could not take a unit.
    Write(String),
}

/// The units on their way into the clip.
struct Cutter<'o> {
    out: &'o Path,
    from_ns: i64,
    to_ns: i64,
    output: Option<Output>,
    /// Before the clip starts: the units since the last key frame at or
    /// before the window's start, with the index of their segment.
    pending: Vec<(usize, Timed)>,
    /// Per segment: whether it gave the clip a frame.
    gave_frame: Vec<bool>,
    /// The first unit past the window (it ends the clip's last frame).
    next_after_window_ns: Option<i64>,
}

impl Cutter<'_> {
    /// Takes the next unit of segment `index`; `Ok(false)` once past the window.
    fn take(&mut self, index: usize, unit: Timed, key_frame: bool) -> Result<bool, String> {
        if unit.pts_ns >= self.to_ns {
            self.next_after_window_ns = Some(unit.pts_ns);
            return Ok(false);
        }
        if let Some(output) = self.output.as_mut() {
            self.gave_frame[index] = true;
            output.push(unit)?;
            return Ok(true);
        }
        if key_frame && unit.pts_ns <= self.from_ns {
            self.pending.clear();
        }
        if self.pending.is_empty() && !key_frame {
            return Ok(true);
        }
        let starts = unit.pts_ns >= self.from_ns;
        self.pending.push((index, unit));
        if starts {
            self.start()?;
        }
        Ok(true)
    }

    /// Opens the MP4 with what is pending (from its key frame on).
    fn start(&mut self) -> Result<(), String> {
        let Some((_, first)) = self.pending.first() else { return Ok(()) };
        let mut output = Output::open(self.out, first)?;
        for (index, unit) in self.pending.drain(..) {
            self.gave_frame[index] = true;
            output.push(unit)?;
        }
        self.output = Some(output);
        Ok(())
    }
}

/// Streams the units of `covering` into the MP4; returns what was cut and
/// the segments that gave it a frame, with their recorded ends.
fn cut<'s>(covering: &[&'s SegmentFile], from_ms: i64, to_ms: i64, out: &Path) -> Result<(Cut, Vec<UsedSegment<'s>>), ClipError> {
    let write_error = |message: String| ClipError::Write { path: out.to_path_buf(), message };
    gst::init().map_err(|e| write_error(format!("GStreamer cannot start: {e}")))?;
    let mut cutter = Cutter {
        out,
        from_ns: from_ms.saturating_mul(1_000_000),
        to_ns: to_ms.saturating_mul(1_000_000),
        output: None,
        pending: Vec::new(),
        gave_frame: vec![false; covering.len()],
        next_after_window_ns: None,
    };
    let mut spans: Vec<(i64, i64)> = Vec::new();
    let mut frame_ns = i64::MAX;
    for (index, segment) in covering.iter().enumerate() {
        let base_ns = segment.start_ms * 1_000_000;
        let mut first_pts: Option<u64> = None;
        let (mut last_pts, mut seg_end_ns) = (None::<i64>, base_ns);
        let mut stop: Option<Stop> = None;
        let read = read_units(&segment.path, |caps, unit: AccessUnit| {
            // On the event-time line: the segment's start plus the unit's offset in it.
            let first = *first_pts.get_or_insert(unit.pts_ns);
            let offset = |t: u64| t as i64 - first as i64;
            let timed = Timed {
                pts_ns: base_ns + offset(unit.pts_ns),
                dts_ns: unit.dts_ns.map(|d| base_ns + offset(d)),
                own_duration_ns: unit.duration_ns.map(|d| d as i64),
                caps: caps.clone(),
                buffer: unit.buffer,
            };
            if let Some(last) = last_pts
                && timed.pts_ns > last
            {
                frame_ns = frame_ns.min(timed.pts_ns - last);
            }
            last_pts = Some(last_pts.map_or(timed.pts_ns, |l| l.max(timed.pts_ns)));
            seg_end_ns = seg_end_ns.max(timed.pts_ns + timed.own_duration_ns.unwrap_or(if frame_ns == i64::MAX { 0 } else { frame_ns }));
            match cutter.take(index, timed, unit.key_frame) {
                Ok(true) => Ok(()),
                Ok(false) => {
                    stop = Some(Stop::PastTheWindow);
                    Err(String::new())
                }
                Err(message) => {
                    stop = Some(Stop::Write(message));
                    Err(String::new())
                }
            }
        });
        match (stop, read) {
            (Some(Stop::Write(message)), _) => return Err(write_error(message)),
            (None, Err(message)) => return Err(ClipError::Read { path: segment.path.clone(), message }),
            (past, _) => {
                // A closed segment's end is in its name; an open one's is where its video ends.
                spans.push((segment.start_ms, segment.end_ms.unwrap_or_else(|| ns_to_ms_ceil(seg_end_ns))));
                if past.is_some() {
                    break;
                }
            }
        }
    }
    // A window that starts in the last GOP of the recording: what is pending is the clip.
    if cutter.output.is_none() {
        cutter.start().map_err(write_error)?;
    }
    let used: Vec<UsedSegment<'s>> =
        covering.iter().zip(&spans).zip(&cutter.gave_frame).filter(|(_, gave)| **gave).map(|((segment, span), _)| (*segment, span.1)).collect();
    let Some(output) = cutter.output else {
        return Err(ClipError::NotCovered {
            camera: covering[0].camera_id.clone(),
            from_ms,
            to_ms,
            before: spans.iter().filter(|(_, e)| *e <= from_ms).max_by_key(|(_, e)| *e).copied(),
            after: spans.iter().filter(|(s, _)| *s >= to_ms).min_by_key(|(s, _)| *s).copied(),
        });
    };
    // The last frame lasts until the next one (past the window) or the end of its segment.
    let last_duration = match (&output.held, cutter.next_after_window_ns) {
        (Some(held), Some(next)) => Some(next - held.pts_ns),
        (Some(held), None) => spans.last().map(|(_, end)| end * 1_000_000 - held.pts_ns),
        _ => None,
    };
    let (start_ns, end_ns, frames, written_frame_ns) = output.finish(last_duration).map_err(write_error)?;
    let frame_ns = frame_ns.min(written_frame_ns);
    Ok((Cut { start_ns, end_ns, frames, spans, frame_ns: if frame_ns == i64::MAX { 100_000_000 } else { frame_ns } }, used))
}

/// The size and SHA-256 (hex) of a file.
pub(crate) fn file_sha256(path: &Path) -> Result<(u64, String), String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_the_uncovered_parts_of_the_window() {
        assert_eq!(gaps(&[(0, 10), (10, 20)], 2, 18, 1), vec![]);
        assert_eq!(gaps(&[(0, 10), (13, 20)], 2, 18, 1), vec![Gap { from_ms: 10, to_ms: 13 }]);
        assert_eq!(gaps(&[(5, 10)], 0, 20, 1), vec![Gap { from_ms: 0, to_ms: 5 }, Gap { from_ms: 10, to_ms: 20 }]);
        // A break shorter than the tolerance is not a gap.
        assert_eq!(gaps(&[(0, 10), (11, 20)], 0, 20, 2), vec![]);
    }

    #[test]
    fn a_window_with_no_video_names_the_nearest_recorded() {
        let text = not_covered("lane-1", 10_000, 20_000, Some((0, 5_000)), Some((30_000, 40_000)));
        assert!(text.contains("lane-1") && text.contains("1970-01-01T00:00:10.000Z"), "{text}");
        assert!(text.contains("(5.0 s before)") && text.contains("(10.0 s after)"), "{text}");
    }
}
