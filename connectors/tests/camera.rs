//! Camera sources on rendered clips (no models): frames arrive as RGB with
//! their event times; the frame-rate cap skips and the leaky queue drops
//! frames, counted; the renderer's ground truth fits the plate grammars.

use std::time::Duration;

use borderflow_connectors::synthetic_video::{Scene, render_mp4};
use borderflow_connectors::{CameraEvent, CameraSource, CameraSourceOptions, Pacing};
use borderflow_types::plate_grammar::matching_formats;
use borderflow_types::{CameraConfig, CameraState, CountingLine, Direction, Point, Side};

fn camera(uri: String, max_fps: Option<u32>) -> CameraConfig {
    CameraConfig {
        id: "lane-test".into(),
        uri,
        lane: 1,
        direction: Direction::Entry,
        point: Point::Arrival,
        counting_line: CountingLine { a: [0.0, 0.6], b: [1.0, 0.6] },
        from_side: Side::Top,
        max_fps,
        source: Default::default(),
    }
}

/// Every frame until the end, with a pause per frame.
fn drain(source: &CameraSource, pause: Duration) -> (Vec<(u64, i64, u32, u32)>, bool) {
    let mut frames = Vec::new();
    loop {
        match source.next_event(Duration::from_secs(30)) {
            Some(CameraEvent::Frame(f)) => {
                frames.push((f.index, f.captured_at_ms, f.width, f.height));
                std::thread::sleep(pause);
            }
            Some(CameraEvent::Ended) => return (frames, true),
            Some(CameraEvent::Failed(e)) => panic!("{e}"),
            None => return (frames, false),
        }
    }
}

#[test]
fn a_rendered_clip_is_read_back_frame_by_frame_with_times_capped_and_dropped_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scene = Scene::random(320, 180, 10, 3.0, 1, 3);
    let clip = dir.path().join("clip.mp4");
    render_mp4(&scene, &clip, 0.0, 3.0).expect("renders");
    let uri = format!("file://{}", clip.display());

    let options = CameraSourceOptions { start_ms: Some(1_000_000), ..Default::default() };
    let source = CameraSource::open(&camera(uri.clone(), None), options.clone());
    let (frames, ended) = drain(&source, Duration::ZERO);
    assert!(ended);
    assert_eq!(frames.len(), 30);
    assert_eq!(frames[0], (0, 1_000_000, 320, 180));
    assert_eq!(frames[29].1, 1_002_900);
    assert_eq!(source.stats().health().state, CameraState::Ended);

    // 5 frames per second of 10: every other frame skipped.
    let source = CameraSource::open(&camera(uri.clone(), Some(5)), options.clone());
    let (frames, _) = drain(&source, Duration::ZERO);
    let health = source.stats().health();
    assert_eq!((frames.len(), health.frames_skipped), (15, 15), "{health:?}");
    assert!(frames.windows(2).all(|w| w[1].1 - w[0].1 == 200), "{frames:?}");

    // A slow consumer of a live-paced source: frames are dropped, not queued.
    let live = CameraSourceOptions { pacing: Some(Pacing::Live), queue_frames: 1, ..options };
    let source = CameraSource::open(&camera(uri, None), live);
    let (frames, _) = drain(&source, Duration::from_millis(40));
    let health = source.stats().health();
    assert!(health.frames_dropped > 0, "{health:?}");
    assert_eq!(frames.len() as u64 + health.frames_dropped, 30, "{health:?}");
}

#[test]
fn the_renderers_vehicles_carry_grammatical_plates_and_cross_in_order() {
    let scene = Scene::random(640, 360, 10, 120.0, 40, 2026);
    let truth = scene.truth(0.0, 120.0);
    assert_eq!(truth.len(), 40);
    for vehicle in &truth {
        assert!(matching_formats(&vehicle.plate_norm).any(|f| f.country == vehicle.country), "{vehicle:?}");
    }
    assert!(truth.windows(2).all(|w| w[1].crosses_at_ms - w[0].crosses_at_ms >= 2_400), "{truth:?}");
    assert!(truth.iter().any(|v| !v.from_top) && truth.iter().any(|v| v.from_top));
}
