//! What recording costs: one camera's CPU with and without its recording
//! branch, the disk it takes, and the export of an evidence clip.
//!
//! Renders a 1280×720 clip of `BENCH_RECORDING_SECONDS` (default 30) at 25
//! frames/s (H.264, a key frame every 2 s), then reads it as a camera does
//! (decoded to RGB, one decoder thread, every frame), alternately without
//! and with recording into 10 s segments, three times each, and takes each
//! one's least CPU time (user + system of the whole process, `getrusage`).
//! Then cuts a 10 s clip out of the segments. Prints one JSON object: CPU
//! seconds per video second with and without recording and the share the
//! recording adds, the clip's and the segments' bitrates, bytes per
//! camera-hour, and the clip export's wall and CPU time.
//!
//! `cargo bench --bench recording` (add `--profile dev` for a quick run: the
//! connectors are optimised in the dev profile).

use std::path::Path;
use std::time::{Duration, Instant};

use borderflow::connectors::recording::{RecordingOptions, export_clip};
use borderflow::connectors::synthetic_video::{LINE_Y, Scene, render_mp4};
use borderflow::connectors::{CameraEvent, CameraSource, CameraSourceOptions, Pacing};
use borderflow::engine::video::list_segments;
use borderflow::engine::{CameraConfig, CountingLine, Direction, Point, Side};

const START_MS: i64 = 1_795_000_000_000;

fn camera(uri: String) -> CameraConfig {
    let mut camera = CameraConfig {
        id: "bench-lane".into(),
        uri,
        lane: 1,
        direction: Direction::Entry,
        point: Point::Arrival,
        counting_line: CountingLine { a: [0.0, LINE_Y], b: [1.0, LINE_Y] },
        from_side: Side::Top,
        max_fps: None,
        source: Default::default(),
    };
    camera.source.record = true;
    camera
}

/// CPU seconds (user + system) of this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Reads the clip to its end as a camera; (CPU s, wall s, frames).
fn read(camera: &CameraConfig, recording: Option<&Path>) -> (f64, f64, u64) {
    let options = CameraSourceOptions {
        pacing: Some(Pacing::Recorded),
        decoder_threads: 1,
        start_ms: Some(START_MS),
        recording: recording.map(|dir| RecordingOptions::new(dir, Duration::from_secs(10))),
        ..Default::default()
    };
    let (cpu, wall) = (cpu_seconds(), Instant::now());
    let source = CameraSource::open(camera, options);
    let mut frames = 0;
    while let Some(event) = source.next_event(Duration::from_secs(120)) {
        match event {
            CameraEvent::Frame(_) => frames += 1,
            CameraEvent::Ended => break,
            CameraEvent::Failed(e) => panic!("{e}"),
        }
    }
    source.stop();
    (cpu_seconds() - cpu, wall.elapsed().as_secs_f64(), frames)
}

fn main() {
    let seconds: f64 = std::env::var("BENCH_RECORDING_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(30.0);
    let dir = std::env::temp_dir().join(format!("borderflow-bench-recording-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (width, height, fps) = (1280u32, 720u32, 25u32);
    let vehicles = ((seconds - 2.0) / 2.5).max(1.0) as usize;
    let scene = Scene::random(width, height, fps, seconds, vehicles, 2026);
    let clip = dir.join("lane-720p.mp4");
    let rendering = Instant::now();
    render_mp4(&scene, &clip, 0.0, seconds).expect("the clip renders");
    eprintln!("rendered {seconds} s of {width}×{height} in {:.1} s", rendering.elapsed().as_secs_f64());
    let camera = camera(format!("file://{}", clip.display()));
    let rec = dir.join("video");

    let (mut plain, mut recorded) = (f64::MAX, f64::MAX);
    let (mut plain_wall, mut recorded_wall) = (f64::MAX, f64::MAX);
    for round in 0..3 {
        let (cpu, wall, frames) = read(&camera, None);
        assert_eq!(frames, (seconds * fps as f64).round() as u64);
        (plain, plain_wall) = (plain.min(cpu), plain_wall.min(wall));
        let _ = std::fs::remove_dir_all(&rec);
        let (cpu, wall, frames) = read(&camera, Some(&rec));
        assert_eq!(frames, (seconds * fps as f64).round() as u64);
        (recorded, recorded_wall) = (recorded.min(cpu), recorded_wall.min(wall));
        eprintln!("round {round}: without {plain:.2} s CPU, with recording {recorded:.2} s CPU (least so far)");
    }

    let segments = list_segments(&rec, "bench-lane").expect("segments");
    let recorded_ms: i64 = segments.iter().map(|s| s.end_ms.expect("closed") - s.start_ms).sum();
    let segment_bytes: u64 = segments.iter().map(|s| std::fs::metadata(&s.path).expect("segment").len()).sum();
    let clip_bytes = std::fs::metadata(&clip).expect("clip").len();
    let bytes_per_s = segment_bytes as f64 / (recorded_ms as f64 / 1000.0);

    let out = dir.join("evidence.mp4");
    let from = START_MS + (seconds as i64 * 1000) / 2 - 5_000;
    let (cpu, wall) = (cpu_seconds(), Instant::now());
    let report = export_clip(&rec, "bench-lane", from, from + 10_000, &out).expect("the clip exports");
    let (export_cpu, export_wall) = (cpu_seconds() - cpu, wall.elapsed().as_secs_f64());

    let result = serde_json::json!({
        "bench": "recording",
        "video": format!("{width}x{height} H.264, {fps} frames/s, key frame every 2 s, {seconds} s"),
        "read_cpu_s_per_video_s": plain / seconds,
        "read_and_record_cpu_s_per_video_s": recorded / seconds,
        "recording_cpu_s_per_video_s": (recorded - plain) / seconds,
        "recording_share_of_a_core": (recorded - plain) / seconds,
        "recording_adds_percent": 100.0 * (recorded - plain) / plain,
        "read_wall_s": plain_wall,
        "read_and_record_wall_s": recorded_wall,
        "segments": segments.len(),
        "source_mbit_s": clip_bytes as f64 * 8.0 / seconds / 1e6,
        "segments_mbit_s": bytes_per_s * 8.0 / 1e6,
        "segment_bytes_per_s": bytes_per_s,
        "gb_per_camera_hour": bytes_per_s * 3600.0 / 1e9,
        "gb_per_camera_30_days": bytes_per_s * 86_400.0 * 30.0 / 1e9,
        "clip_10s_export_wall_s": export_wall,
        "clip_10s_export_cpu_s": export_cpu,
        "clip_10s_frames": report.frames,
        "clip_10s_bytes": report.bytes,
    });
    println!("{result}");
    let _ = std::fs::remove_dir_all(&dir);
}
