//! The demo's video lanes: for one lane per crossing, the scenario's first
//! passages are rendered as video (see
//! [`borderflow_connectors::synthetic_video`]), read back through the
//! cameras and the video operators on timely workers, and the reads the
//! video gives replace the scenario's reads of those passages.
//!
//! The clip is a time-lapse: vehicle `i` crosses the line at
//! `LEAD_IN_S + i · SPACING_S` in the clip; a read is matched to its
//! passage by plate (or, failing that, by its slot in time), takes the
//! passage's read id (so the ground truth still accounts for every read)
//! and its event time (offset by where in its slot it was seen), and keeps
//! everything the video decided: text, confidence, box, direction. A
//! passage the video misses keeps its scenario read and is counted.
//!
//! `job.rs` calls [`replace_with_video_reads`] once, after generating the
//! reads; nothing else of the job depends on this module.

use borderflow_connectors::synthetic_video::{LINE_Y, Scene, render_mp4};
use borderflow_engine::plate_grammar::plate_country;
use borderflow_engine::{CROSSINGS, CameraConfig, CountingLine, PlateRead, Point, Runtime, Side};

use borderflow_connectors::CameraSourceOptions;
use borderflow_operators::run_video;

use crate::camera_video;

/// Passages rendered per video lane.
pub const VEHICLES_PER_LANE: usize = 4;
const LEAD_IN_S: f64 = 2.5;
const SPACING_S: f64 = 3.0;
const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;
const FPS: u32 = 10;

/// What the video lanes did.
#[derive(Clone, Debug, Default)]
pub struct VideoLanesReport {
    /// Per lane: camera, passages rendered, passages read from video.
    pub lanes: Vec<(String, usize, usize)>,
    pub errors: Vec<String>,
    pub seconds: f64,
}

impl VideoLanesReport {
    pub fn summary(&self) -> String {
        let rendered: usize = self.lanes.iter().map(|l| l.1).sum();
        let read: usize = self.lanes.iter().map(|l| l.2).sum();
        format!(
            "{read} of {rendered} passages on {} lanes read from rendered video ({}) in {:.1} s{}",
            self.lanes.len(),
            self.lanes.iter().map(|l| format!("{} {}/{}", l.0, l.2, l.1)).collect::<Vec<_>>().join(", "),
            self.seconds,
            if self.errors.is_empty() { String::new() } else { format!("; errors: {}", self.errors.join("; ")) }
        )
    }
}

/// One camera per crossing: the first (by id) arrival camera with enough reads.
fn video_lanes(reads: &[PlateRead]) -> Vec<(String, Vec<usize>)> {
    let mut lanes = Vec::new();
    for crossing in CROSSINGS {
        let posts: Vec<&str> = crossing.posts().map(|p| p.id).to_vec();
        let mut cameras: Vec<&str> = reads
            .iter()
            .filter(|r| r.point == Point::Arrival && posts.contains(&r.post_id.as_str()))
            .map(|r| r.camera_id.as_str())
            .collect();
        cameras.sort();
        cameras.dedup();
        for camera in cameras {
            let mut slots: Vec<usize> = (0..reads.len()).filter(|&i| reads[i].camera_id == camera).collect();
            slots.sort_by_key(|&i| (reads[i].captured_at_ms, i));
            if slots.len() >= VEHICLES_PER_LANE {
                slots.truncate(VEHICLES_PER_LANE);
                lanes.push((camera.to_string(), slots));
                break;
            }
        }
    }
    lanes
}

/// Renders, reads and substitutes the video lanes' passages in `reads`
/// (which stay sorted by event time).
pub fn replace_with_video_reads(reads: &mut [PlateRead], runtime: &Runtime) -> VideoLanesReport {
    let started = std::time::Instant::now();
    let mut report = VideoLanesReport::default();
    let dir = std::env::temp_dir().join(format!("borderflow-demo-video-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        report.errors.push(format!("{}: {e}", dir.display()));
        return report;
    }
    let lanes = video_lanes(reads);
    let mut cameras = Vec::new();
    for (seed, (camera_id, slots)) in lanes.iter().enumerate() {
        let duration = LEAD_IN_S + SPACING_S * slots.len() as f64 + 1.5;
        let mut scene = Scene::random(WIDTH, HEIGHT, FPS, duration, slots.len(), seed as u64 + 1);
        for (i, (vehicle, &slot)) in scene.vehicles.iter_mut().zip(slots).enumerate() {
            let read = &reads[slot];
            vehicle.plate_text = read.plate_text.clone();
            vehicle.plate_norm = read.plate_norm.clone();
            vehicle.country = plate_country(&read.plate_norm, Some(&read.country)).unwrap_or("MD");
            vehicle.crosses_at_s = LEAD_IN_S + SPACING_S * i as f64;
            vehicle.approaching = true;
        }
        let clip = dir.join(format!("{camera_id}.mp4"));
        if let Err(e) = render_mp4(&scene, &clip, 0.0, duration) {
            report.errors.push(format!("camera {camera_id}: {e}"));
            continue;
        }
        let first = &reads[slots[0]];
        cameras.push(CameraConfig {
            id: camera_id.clone(),
            uri: format!("file://{}", clip.display()),
            lane: first.lane,
            direction: first.direction,
            point: first.point,
            counting_line: CountingLine { a: [0.0, LINE_Y], b: [1.0, LINE_Y] },
            from_side: Side::Top,
            max_fps: None,
            source: Default::default(),
        });
    }
    let source = CameraSourceOptions { start_ms: Some(0), ..CameraSourceOptions::default() };
    let spec = camera_video("demo", "MD", cameras, source, runtime.clone());
    let video = run_video(spec);
    report.errors.extend(video.errors);

    for (camera_id, slots) in &lanes {
        let mut taken = vec![false; slots.len()];
        let mut found: Vec<PlateRead> = video.reads.iter().filter(|r| &r.camera_id == camera_id).cloned().collect();
        // Plate matches first, then the rest by time slot.
        found.sort_by_key(|r| !slots.iter().any(|&s| reads[s].plate_norm == r.plate_norm));
        let mut replacements: Vec<(usize, PlateRead)> = Vec::new();
        for video_read in found {
            let by_plate = (0..slots.len()).find(|&k| !taken[k] && reads[slots[k]].plate_norm == video_read.plate_norm);
            let by_time = || {
                let k = ((video_read.captured_at_ms as f64 / 1000.0 - LEAD_IN_S) / SPACING_S).round();
                let k = k.clamp(0.0, slots.len() as f64 - 1.0) as usize;
                (!taken[k]).then_some(k)
            };
            let Some(k) = by_plate.or_else(by_time) else { continue };
            taken[k] = true;
            let passage = &reads[slots[k]];
            let slot_ms = ((LEAD_IN_S + SPACING_S * k as f64) * 1000.0) as i64;
            let offset = (video_read.captured_at_ms - slot_ms).clamp(-2_000, 2_000);
            replacements.push((
                slots[k],
                PlateRead {
                    read_id: passage.read_id.clone(),
                    post_id: passage.post_id.clone(),
                    country: passage.country.clone(),
                    captured_at_ms: passage.captured_at_ms + offset,
                    ..video_read
                },
            ));
        }
        report.lanes.push((camera_id.clone(), slots.len(), replacements.len()));
        for (index, read) in replacements {
            reads[index] = read;
        }
    }
    reads.sort_by(|a, b| (a.captured_at_ms, &a.read_id).cmp(&(b.captured_at_ms, &b.read_id)));
    let _ = std::fs::remove_dir_all(&dir);
    report.seconds = started.elapsed().as_secs_f64();
    report
}

