//! The video path end to end on rendered clips: H.264 MP4 decoded by
//! GStreamer, then detect → track → recognise → vote on one timely worker.
//! For each size (1280×720 and 1920×1080) it renders a clip of
//! `BENCH_VIDEO_SECONDS` (default 8) at 25 frames/s with a vehicle every
//! 2.5 s, measures decoding alone (one decoder thread), then the whole
//! pipeline, and prints one JSON object: frames per second per core (frames
//! over the CPU time of decoding plus the operators), wall-clock frames per
//! second, the share of time in decoding, detection, recognition and
//! tracking (with voting and the counting line), and the vehicles read right.
//!
//! `cargo bench --bench video` (add `--profile dev` for a quick run; the
//! operators and models are optimised in the dev profile too).

use std::time::{Duration, Instant};

use borderflow::connectors::synthetic_video::{LINE_Y, Scene, render_mp4};
use borderflow::connectors::{CameraEvent, CameraSource, CameraSourceOptions, Pacing};
use borderflow::engine::{CameraConfig, CountingLine, Direction, Point, Runtime, Side};
use borderflow::{camera_video, run_video};

fn camera(uri: String) -> CameraConfig {
    CameraConfig {
        id: "bench-lane".into(),
        uri,
        lane: 1,
        direction: Direction::Entry,
        point: Point::Arrival,
        counting_line: CountingLine { a: [0.0, LINE_Y], b: [1.0, LINE_Y] },
        from_side: Side::Top,
        max_fps: None,
        source: Default::default(),
    }
}

fn source_options() -> CameraSourceOptions {
    CameraSourceOptions { pacing: Some(Pacing::Recorded), decoder_threads: 1, start_ms: Some(0), ..Default::default() }
}

/// Seconds to decode every frame of the clip to RGB, and the frames.
fn decode_only(camera: &CameraConfig) -> (f64, u64) {
    let started = Instant::now();
    let source = CameraSource::open(camera, source_options());
    let mut frames = 0;
    while let Some(event) = source.next_event(Duration::from_secs(60)) {
        match event {
            CameraEvent::Frame(_) => frames += 1,
            CameraEvent::Ended => break,
            CameraEvent::Failed(e) => panic!("{e}"),
        }
    }
    (started.elapsed().as_secs_f64(), frames)
}

fn main() {
    let seconds: f64 = std::env::var("BENCH_VIDEO_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(8.0);
    let dir = std::env::temp_dir().join(format!("borderflow-bench-video-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut results = Vec::new();
    for (width, height) in [(1280u32, 720u32), (1920, 1080)] {
        let vehicles = ((seconds - 2.0) / 2.5).max(1.0) as usize;
        let scene = Scene::random(width, height, 25, seconds, vehicles, 99);
        let clip = dir.join(format!("clip-{height}p.mp4"));
        let truth = render_mp4(&scene, &clip, 0.0, seconds).expect("the clip renders");
        let camera = camera(format!("file://{}", clip.display()));
        let (decode_s, frames) = decode_only(&camera);

        let spec = camera_video("bench", "MD", vec![camera], source_options(), Runtime::with_workers(1));
        let report = run_video(spec);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let t = &report.times;
        let (detect, recognise, track) = (t.detect.as_secs_f64(), t.recognise.as_secs_f64(), t.track.as_secs_f64());
        let cpu = decode_s + detect + recognise + track;
        let right = truth
            .iter()
            .filter(|v| report.reads.iter().filter(|r| r.plate_norm == v.plate_norm).count() == 1)
            .count();
        let share = |s: f64| (1000.0 * s / cpu).round() / 10.0;
        results.push(format!(
            concat!(
                "{{\"size\":\"{}x{}\",\"frames\":{},\"fps_per_core\":{:.1},\"wall_fps\":{:.1},",
                "\"share_percent\":{{\"decode\":{},\"detect\":{},\"recognise\":{},\"track\":{}}},",
                "\"ms_per_frame\":{{\"decode\":{:.2},\"detect\":{:.2},\"recognise\":{:.2},\"track\":{:.2}}},",
                "\"detector_runs\":{},\"recognitions\":{},\"vehicles\":{},\"read_once_right_plate\":{}}}"
            ),
            width,
            height,
            frames,
            frames as f64 / cpu,
            frames as f64 / report.wall.as_secs_f64(),
            share(decode_s),
            share(detect),
            share(recognise),
            share(track),
            1000.0 * decode_s / frames as f64,
            1000.0 * detect / frames as f64,
            1000.0 * recognise / frames as f64,
            1000.0 * track / frames as f64,
            t.detections,
            t.recognitions,
            truth.len(),
            right,
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("{{\"bench\":\"video\",\"profile\":\"{}\",\"results\":[{}]}}", if cfg!(debug_assertions) { "dev" } else { "release" }, results.join(","));
}
