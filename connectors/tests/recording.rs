//! Recording cameras on rendered clips: the segments cover the clip's time
//! without overlap and meet exactly; an evidence clip cut from them is an
//! MP4 of H.264 that GStreamer's discoverer finds playable and as long as
//! the window, whose SHA-256 is the report's; a segment deleted in the
//! middle is a reported gap; a segment left open by a killed process is
//! closed at the next start; a live camera that drops leaves closed
//! segments and a gap, not a broken file.

use std::path::Path;
use std::sync::mpsc::channel;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use borderflow_connectors::recording::{ClipError, Gap, RecordingOptions, export_clip};
use borderflow_connectors::synthetic_video::{Scene, render_mp4};
use borderflow_connectors::{CameraEvent, CameraSource, CameraSourceOptions};
use borderflow_types::video::{SegmentFile, list_segments};
use borderflow_types::{CameraConfig, CameraState, CountingLine, Direction, Point, Side};
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_pbutils::prelude::*;
use gstreamer_rtsp_server::prelude::*;

const START_MS: i64 = 1_795_000_000_000;

fn camera(id: &str, uri: String) -> CameraConfig {
    let mut camera = CameraConfig {
        id: id.into(),
        uri,
        lane: 1,
        direction: Direction::Entry,
        point: Point::Arrival,
        counting_line: CountingLine { a: [0.0, 0.6], b: [1.0, 0.6] },
        from_side: Side::Top,
        max_fps: None,
        source: Default::default(),
    };
    camera.source.record = true;
    camera
}

/// Reads every frame until the source ends or fails; returns the frames' event times.
fn drain(source: &CameraSource) -> Vec<i64> {
    let mut times = Vec::new();
    loop {
        match source.next_event(Duration::from_secs(60)) {
            Some(CameraEvent::Frame(f)) => times.push(f.captured_at_ms),
            Some(CameraEvent::Ended) | None => return times,
            Some(CameraEvent::Failed(e)) => panic!("{e}"),
        }
    }
}

/// A 60 s clip, 10 frames a second, a key frame every 2 s.
fn sixty_seconds(dir: &Path) -> std::path::PathBuf {
    let scene = Scene::random(320, 180, 10, 60.0, 6, 5);
    let clip = dir.join("lane.mp4");
    render_mp4(&scene, &clip, 0.0, 60.0).expect("the clip renders");
    clip
}

/// What the discoverer says of a file: (playable, duration ms, container caps, video caps, width, height).
fn discover(path: &Path) -> (bool, i64, String, String, u32, u32) {
    gst::init().expect("GStreamer");
    let discoverer = gstreamer_pbutils::Discoverer::new(gst::ClockTime::from_seconds(30)).expect("a discoverer");
    let info = discoverer.discover_uri(&format!("file://{}", path.display())).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ok = info.result() == gstreamer_pbutils::DiscovererResult::Ok;
    let duration = info.duration().map_or(-1, |d| d.mseconds() as i64);
    let container = info.stream_info().and_then(|s| s.caps()).map(|c| c.to_string()).unwrap_or_default();
    let video = info.video_streams();
    let first = video.first().expect("a video stream");
    let video_caps = first.caps().map(|c| c.to_string()).unwrap_or_default();
    (ok, duration, container, video_caps, first.width(), first.height())
}

/// Frames a file decodes to.
fn decoded_frames(path: &Path) -> u64 {
    let pipeline = gst::parse::launch("filesrc name=src ! decodebin ! fakesink name=sink sync=false signal-handoffs=true")
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    pipeline.by_name("src").expect("src").set_property("location", path.to_string_lossy().as_ref());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&count);
    pipeline.by_name("sink").expect("sink").connect("handoff", false, move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        None
    });
    pipeline.set_state(gst::State::Playing).expect("plays");
    let bus = pipeline.bus().expect("bus");
    let message = bus.timed_pop_filtered(gst::ClockTime::from_seconds(60), &[gst::MessageType::Eos, gst::MessageType::Error]).expect("ends");
    if let gst::MessageView::Error(e) = message.view() {
        panic!("{}: {}", path.display(), e.error());
    }
    pipeline.set_state(gst::State::Null).expect("stops");
    count.load(std::sync::atomic::Ordering::Relaxed)
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).expect("file")))
}

fn closed(segments: &[SegmentFile]) -> Vec<(i64, i64)> {
    segments.iter().map(|s| (s.start_ms, s.end_ms.unwrap_or_else(|| panic!("{} is still open", s.path.display())))).collect()
}

#[test]
fn a_recorded_clip_is_cut_into_meeting_segments_and_a_window_exported_as_a_playable_mp4() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = sixty_seconds(dir.path());
    let rec = dir.path().join("video");
    let options = CameraSourceOptions {
        start_ms: Some(START_MS),
        recording: Some(RecordingOptions::new(&rec, Duration::from_secs(10))),
        ..CameraSourceOptions::default()
    };
    let started = Instant::now();
    let source = CameraSource::open(&camera("lane-1", format!("file://{}", clip.display())), options);
    let times = drain(&source);
    let health = source.stats().health();
    source.stop();
    eprintln!("read and recorded 60 s in {:.1} s: {health:?}", started.elapsed().as_secs_f64());
    assert_eq!(times.len(), 600);
    assert_eq!((times[0], times[599]), (START_MS, START_MS + 59_900));

    // Six segments of ten seconds (split at key frames, one every 2 s), named by the frames' clock, meeting exactly.
    let segments = list_segments(&rec, "lane-1").expect("segments");
    let spans = closed(&segments);
    let expected: Vec<(i64, i64)> = (0..6).map(|i| (START_MS + i * 10_000, START_MS + (i + 1) * 10_000)).collect();
    assert_eq!(spans, expected, "{segments:#?}");
    assert!(segments.iter().all(|s| s.path.starts_with(rec.join("lane-1").join("2026-11-18"))), "{segments:#?}");
    let bytes: u64 = segments.iter().map(|s| std::fs::metadata(&s.path).expect("segment").len()).sum();
    assert_eq!((health.segments_recorded, health.recorded_bytes, health.recording_errors), (6, bytes, 0), "{health:?}");
    assert_eq!(health.state, CameraState::Ended);
    // Each segment plays on its own: MPEG-TS of H.264, ten seconds of it.
    for segment in &segments {
        let (ok, duration, container, video, ..) = discover(&segment.path);
        assert!(ok && container.starts_with("video/mpegts") && video.starts_with("video/x-h264"), "{container} {video}");
        assert!((duration - 10_000).abs() <= 100, "{}: {duration} ms", segment.path.display());
    }

    // A window across the boundary at 30 s: from the key frame at 22 s to 31.2 s.
    let out = dir.path().join("evidence.mp4");
    let report = export_clip(&rec, "lane-1", START_MS + 23_500, START_MS + 31_200, &out).expect("the clip exports");
    eprintln!("{report:#?}");
    assert_eq!((report.start_ms, report.end_ms, report.frames), (START_MS + 22_000, START_MS + 31_200, 92));
    assert!(report.gaps.is_empty(), "{:?}", report.gaps);
    let used: Vec<(i64, i64)> = report.segments.iter().map(|s| (s.start_ms, s.end_ms)).collect();
    assert_eq!(used, expected[2..4].to_vec());
    for segment in &report.segments {
        assert_eq!(segment.sha256, sha256_of(&segment.path), "{}", segment.path.display());
    }
    assert_eq!(report.sha256, sha256_of(&out));
    assert_eq!(report.bytes, std::fs::metadata(&out).expect("clip").len());
    let (ok, duration, container, video, width, height) = discover(&out);
    assert!(ok, "the discoverer cannot play {}", out.display());
    assert!(container.starts_with("video/quicktime"), "{container}");
    assert!(video.starts_with("video/x-h264"), "{video}");
    assert_eq!((width, height), (320, 180));
    assert!((duration - 9_200).abs() <= 100, "the clip lasts {duration} ms");
    assert_eq!(decoded_frames(&out), 92);

    // The segment of 30 to 40 s deleted: the clip holds what there is, and says what is missing.
    std::fs::remove_file(&segments[3].path).expect("delete");
    let out = dir.path().join("with-gap.mp4");
    let report = export_clip(&rec, "lane-1", START_MS + 25_000, START_MS + 45_000, &out).expect("the clip exports");
    assert_eq!(report.gaps, vec![Gap { from_ms: START_MS + 30_000, to_ms: START_MS + 40_000 }]);
    let used: Vec<(i64, i64)> = report.segments.iter().map(|s| (s.start_ms, s.end_ms)).collect();
    assert_eq!(used, vec![expected[2], expected[4]]);
    assert_eq!((report.start_ms, report.end_ms, report.frames), (START_MS + 24_000, START_MS + 45_000, 110));
    let (ok, duration, ..) = discover(&out);
    assert!(ok && (duration - 21_000).abs() <= 100, "{duration} ms");
    assert_eq!(decoded_frames(&out), 110);

    // No video for the window, or for the camera: errors that say what there is.
    let error = export_clip(&rec, "lane-1", START_MS + 100_000, START_MS + 110_000, &dir.path().join("none.mp4")).expect_err("no video");
    assert!(matches!(error, ClipError::NotCovered { before: Some((_, end)), after: None, .. } if end == START_MS + 60_000), "{error:?}");
    assert!(error.to_string().contains("nearest recorded") && error.to_string().contains("40.0 s before"), "{error}");
    assert!(!dir.path().join("none.mp4").exists());
    let error = export_clip(&rec, "lane-2", START_MS, START_MS + 1_000, &dir.path().join("none.mp4")).expect_err("no camera");
    assert!(matches!(error, ClipError::NoRecording { .. }) && error.to_string().contains("lane-2"), "{error}");
}

#[test]
fn a_segment_left_open_by_a_killed_process_is_closed_at_the_next_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = sixty_seconds(dir.path());
    let rec = dir.path().join("video");
    let options = CameraSourceOptions {
        start_ms: Some(START_MS),
        recording: Some(RecordingOptions::new(&rec, Duration::from_secs(30))),
        ..CameraSourceOptions::default()
    };
    let source = CameraSource::open(&camera("lane-1", format!("file://{}", clip.display())), options.clone());
    drain(&source);
    source.stop();
    let segments = list_segments(&rec, "lane-1").expect("segments");
    assert_eq!(closed(&segments), vec![(START_MS, START_MS + 30_000), (START_MS + 30_000, START_MS + 60_000)]);

    // As a SIGKILL leaves it: the second segment cut short, still named as open.
    let bytes = std::fs::read(&segments[1].path).expect("segment");
    let part = segments[1].path.with_file_name(format!("{}.part", START_MS + 30_000));
    std::fs::write(&part, &bytes[..bytes.len() * 6 / 10]).expect("part");
    std::fs::remove_file(&segments[1].path).expect("delete");
    // And one killed before any video was written.
    let empty = segments[1].path.with_file_name(format!("{}.part", START_MS + 59_000));
    std::fs::write(&empty, b"").expect("part");

    // The next start (any attempt of this camera) closes it with the time its video ends.
    let other_clip = dir.path().join("missing.mp4");
    let source = CameraSource::open(&camera("lane-1", format!("file://{}", other_clip.display())), options);
    let _ = source.next_event(Duration::from_secs(30));
    let health = source.stats().health();
    source.stop();
    let segments = list_segments(&rec, "lane-1").expect("segments");
    let spans = closed(&segments);
    assert_eq!(spans.len(), 2, "{segments:#?}");
    let (start, end) = spans[1];
    assert_eq!(start, START_MS + 30_000);
    assert!((START_MS + 40_000..START_MS + 56_000).contains(&end), "closed at {} s", (end - START_MS) as f64 / 1000.0);
    assert_eq!(health.segments_recorded, 1, "{health:?}");
    let (ok, ..) = discover(&segments[1].path);
    let frames = decoded_frames(&segments[1].path) as i64;
    assert!(ok && (frames - (end - start) / 100).abs() <= 2, "{frames} frames in {} ms", end - start);
}

/// An RTSP server on 127.0.0.1 serving one clip at `/lane`, on its own main loop.
struct RtspServer {
    server: gstreamer_rtsp_server::RTSPServer,
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
    port: u16,
}

impl RtspServer {
    fn start(clip: &Path, port: u16) -> RtspServer {
        gst::init().expect("GStreamer initialises");
        let launch = format!("( filesrc location={} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )", clip.display());
        let (sender, receiver) = channel();
        let thread = std::thread::spawn(move || {
            let context = glib::MainContext::new();
            let main_loop = glib::MainLoop::new(Some(&context), false);
            let server = gstreamer_rtsp_server::RTSPServer::new();
            server.set_address("127.0.0.1");
            server.set_service(&port.to_string());
            let factory = gstreamer_rtsp_server::RTSPMediaFactory::new();
            factory.set_launch(&launch);
            factory.set_shared(false);
            server.mount_points().expect("mount points").add_factory("/lane", factory);
            let source = server.attach(Some(&context)).expect("the server binds 127.0.0.1");
            sender.send((server.bound_port() as u16, server.clone(), main_loop.clone())).expect("test waits");
            main_loop.run();
            if let Some(source) = context.find_source_by_id(&source) {
                source.destroy();
            }
            while context.iteration(false) {}
        });
        let (port, server, main_loop) = receiver.recv().expect("the server starts");
        RtspServer { server, main_loop, thread: Some(thread), port }
    }

    fn stop(mut self) {
        use gstreamer_rtsp_server::{RTSPClient, RTSPFilterResult, RTSPServer};
        self.server.client_filter(Some(&mut |_: &RTSPServer, _: &RTSPClient| RTSPFilterResult::Remove));
        self.main_loop.quit();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the server thread ends");
        }
    }
}

#[test]
fn a_live_camera_that_drops_leaves_closed_segments_and_a_gap() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scene = Scene::random(320, 180, 10, 8.0, 1, 9);
    let clip = dir.path().join("lane.mp4");
    render_mp4(&scene, &clip, 0.0, 8.0).expect("renders");
    let rec = dir.path().join("video");
    let server = RtspServer::start(&clip, 0);
    let port = server.port;
    let options = CameraSourceOptions {
        backoff_initial_ms: 300,
        queue_frames: 200,
        recording: Some(RecordingOptions::new(&rec, Duration::from_secs(4))),
        ..CameraSourceOptions::default()
    };
    let source = CameraSource::open(&camera("lane-rtsp", format!("rtsp://127.0.0.1:{port}/lane")), options);
    let frames_until = |source: &CameraSource, n: u64, timeout: Duration| {
        let until = Instant::now() + timeout;
        while source.stats().health().frames_in < n {
            assert!(Instant::now() < until, "timed out at {:?}", source.stats().health());
            while source.try_next_event().is_some() {}
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Mid-stream the server goes away; the camera drops, then comes back to a new server.
    frames_until(&source, 50, Duration::from_secs(60));
    server.stop();
    let until = Instant::now() + Duration::from_secs(30);
    while source.stats().health().state == CameraState::Up {
        assert!(Instant::now() < until, "the camera did not notice");
        while source.try_next_event().is_some() {}
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(2000));
    // While the camera is down, nothing is open: its segment was closed when it dropped.
    let down = list_segments(&rec, "lane-rtsp").expect("segments");
    assert!(!down.is_empty() && down.iter().all(SegmentFile::is_closed), "{down:#?}");
    let server = RtspServer::start(&clip, port);
    let before = source.stats().health().frames_in;
    frames_until(&source, before + 40, Duration::from_secs(60));
    let stats = std::sync::Arc::clone(source.stats());
    source.stop();
    server.stop();

    let segments = list_segments(&rec, "lane-rtsp").expect("segments");
    let spans = closed(&segments);
    eprintln!("{spans:?}");
    assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "segments overlap: {spans:?}");
    let largest_break = spans.windows(2).map(|w| w[1].0 - w[0].1).max().unwrap_or(0);
    assert!(largest_break >= 1_000, "no gap where the camera was down: {spans:?}");
    // Each plays, every frame of it: 10 a second.
    for segment in &segments {
        let (ok, ..) = discover(&segment.path);
        let (start, end) = (segment.start_ms, segment.end_ms.unwrap_or_default());
        let frames = decoded_frames(&segment.path) as i64;
        assert!(ok && (frames - (end - start) / 100).abs() <= 2, "{}: {frames} frames in {} ms", segment.path.display(), end - start);
    }
    let health = stats.health();
    assert_eq!((health.segments_recorded, health.recording_errors), (segments.len() as u64, 0), "{health:?}");
    assert!(health.reconnects >= 1, "{health:?}");
}
