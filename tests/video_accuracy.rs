//! The video path's accuracy on a rendered 2-minute clip with 40 vehicles
//! (640×360, 10 frames/s, H.264 MP4): at least 39 read exactly once with
//! the right plate and direction, and none read twice.

mod video;

use borderflow::connectors::synthetic_video::Scene;
use borderflow::engine::Runtime;
use borderflow::{camera_video, run_video};

/// `BORDERFLOW_VIDEO_SEEDS=2026,7,11` scores the scenes of other seeds too
/// (the default is the one scene of seed 2026), to see how the reader
/// fares beyond the one clip the test checks.
#[test]
fn forty_vehicles_in_two_minutes_are_each_read_once() {
    let seeds: Vec<u64> = std::env::var("BORDERFLOW_VIDEO_SEEDS")
        .map(|s| s.split(',').map(|x| x.trim().parse().expect("BORDERFLOW_VIDEO_SEEDS: comma-separated numbers")).collect())
        .unwrap_or_else(|_| vec![2026]);
    let mut failures = Vec::new();
    for seed in seeds {
        let dir = tempfile::tempdir().expect("temp dir");
        let scene = Scene::random(640, 360, 10, 120.0, 40, seed);
        let (clip, truth) = video::render(&scene, dir.path(), &format!("forty-{seed}.mp4"), 0.0, 120.0);
        assert_eq!(truth.len(), 40);
        let camera = video::camera("lane-1", &format!("file://{}", clip.display()));
        let report = run_video(camera_video("otaci", "MD", vec![camera], Default::default(), Runtime::with_workers(1)));
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let score = video::score(&truth, &report.reads);
        eprintln!(
            "40-vehicle clip, seed {seed}: {} of {} right; doubles {:?}; missed {:?}; wrong direction {:?}; strays {:?}; {:?} in {:.1} s",
            score.right, score.vehicles, score.doubles, score.missed, score.wrong_direction, score.strays, report.times, report.wall.as_secs_f64()
        );
        if score.right < 39 || !score.doubles.is_empty() {
            failures.push((seed, score));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}
