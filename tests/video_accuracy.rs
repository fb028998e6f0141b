//! The video path's accuracy on a rendered 2-minute clip with 40 vehicles
//! (640×360, 10 frames/s, H.264 MP4): at least 39 read exactly once with
//! the right plate and direction, and none read twice.

mod video;

use borderflow::connectors::synthetic_video::Scene;
use borderflow::engine::Runtime;
use borderflow::{VideoSpec, run_video};

#[test]
fn forty_vehicles_in_two_minutes_are_each_read_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scene = Scene::random(640, 360, 10, 120.0, 40, 2026);
    let (clip, truth) = video::render(&scene, dir.path(), "forty.mp4", 0.0, 120.0);
    assert_eq!(truth.len(), 40);
    let camera = video::camera("lane-1", &format!("file://{}", clip.display()));
    let report = run_video(VideoSpec::new("otaci", "MD", vec![camera], Runtime::with_workers(1)));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let score = video::score(&truth, &report.reads);
    eprintln!(
        "40-vehicle clip: {} of {} right; doubles {:?}; missed {:?}; wrong direction {:?}; strays {:?}; {:?} in {:.1} s",
        score.right, score.vehicles, score.doubles, score.missed, score.wrong_direction, score.strays, report.times, report.wall.as_secs_f64()
    );
    assert!(score.right >= 39, "{score:?}");
    assert!(score.doubles.is_empty(), "{score:?}");
}
