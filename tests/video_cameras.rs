//! Cameras end to end: an in-process RTSP server (gstreamer-rtsp-server on
//! 127.0.0.1) serves a rendered clip, is stopped mid-stream and restarted,
//! and the camera source reconnects; recordings that are corrupt or not
//! video fail with the camera and the cause named while the other cameras
//! carry on; a `dir://` folder of rendered JPEG frames and an MJPEG stream
//! (multipart/x-mixed-replace from a small HTTP server on 127.0.0.1) give
//! timed frames and their vehicles' plates. Ground truth comes from the
//! renderer.

mod video;

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use borderflow::connectors::synthetic_video::{Scene, render_jpegs};
use borderflow::connectors::{CameraEvent, CameraSource, CameraSourceOptions};
use borderflow::engine::{CameraState, Runtime};
use borderflow::{camera_video, run_video};
use video::rtsp::RtspServer;

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rtsp_camera_reconnects_after_a_server_restart_and_reads_every_vehicle_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scene = video::four_vehicles_one_leaving();
    // The camera's picture goes on while the server is down: the second
    // segment starts two seconds after the first ends.
    let (first, mut truth) = video::render(&scene, dir.path(), "first.mp4", 0.0, 10.0);
    let (second, truth_second) = video::render(&scene, dir.path(), "second.mp4", 12.0, 24.0);
    truth.extend(truth_second);
    assert_eq!(truth.len(), 4);

    let server = RtspServer::start(&first, 0);
    let port = server.port;
    let camera = video::camera("lane-rtsp", &format!("rtsp://127.0.0.1:{port}/lane"));
    // A queue as long as the clip: on a test machine busy with other builds
    // the engine falls behind real time, and this test is about reconnecting,
    // not about dropping (connectors/tests/camera.rs covers the leaky queue).
    let source = CameraSourceOptions { backoff_initial_ms: 300, queue_frames: 250, ..CameraSourceOptions::default() };
    let spec = camera_video("otaci", "MD", vec![camera], source, Runtime::with_workers(1));
    let run = borderflow::VideoRun::start(spec);
    let frames_in = |run: &borderflow::VideoRun| run.camera_health()[0].frames_in;

    // Mid-stream (the first segment is 100 frames): stop the server, restart it.
    wait_for("the first segment", Duration::from_secs(120), || frames_in(&run) >= 75);
    server.stop();
    wait_for("the camera to notice", Duration::from_secs(30), || run.camera_health()[0].state != CameraState::Up);
    std::thread::sleep(Duration::from_millis(800));
    let server = RtspServer::start(&second, port);
    wait_for("the reconnection", Duration::from_secs(60), || run.camera_health()[0].reconnects >= 1 && run.camera_health()[0].state == CameraState::Up);
    let before = frames_in(&run);
    // The second segment plays to its end; stop before the camera reconnects again.
    wait_for("the second segment", Duration::from_secs(120), || {
        let health = &run.camera_health()[0];
        health.frames_in >= before + 100 || (health.frames_in > before + 50 && health.state != CameraState::Up)
    });
    server.stop();
    wait_for("the queued frames", Duration::from_secs(120), || {
        let health = &run.camera_health()[0];
        health.frames_processed + health.frames_dropped >= health.frames_in
    });
    let report = run.stop();
    let health = &report.health[0];
    eprintln!("{health:?}\n{:?}", report.reads.iter().map(|r| (&r.plate_norm, r.direction)).collect::<Vec<_>>());
    assert!(health.reconnects >= 1, "{health:?}");
    assert!(health.frames_processed > 150, "{health:?}");
    let score = video::score(&truth, &report.reads);
    assert_eq!(score.right, truth.len(), "{score:?}");
    assert!(score.strays.is_empty(), "{score:?}");
}

#[test]
fn corrupt_and_non_video_recordings_fail_with_camera_and_cause_while_others_carry_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scene = Scene::random(640, 360, 10, 10.0, 2, 11);
    let (good, truth) = video::render(&scene, dir.path(), "good.mp4", 0.0, 10.0);
    // The same clip with its middle third overwritten.
    let mut bytes = std::fs::read(&good).expect("clip");
    let (from, to) = (bytes.len() / 3, 2 * bytes.len() / 3);
    for (i, b) in bytes[from..to].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1];
    }
    let corrupt = dir.path().join("corrupt.mp4");
    std::fs::write(&corrupt, &bytes).expect("write");
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "this is a shift report, not a video\n".repeat(200)).expect("write");

    let cameras = vec![
        video::camera("lane-good", &format!("file://{}", good.display())),
        video::camera("lane-corrupt", &format!("file://{}", corrupt.display())),
        video::camera("lane-notes", &format!("file://{}", text.display())),
        video::camera("lane-missing", &format!("file://{}", dir.path().join("missing.mp4").display())),
    ];
    let report = run_video(camera_video("otaci", "MD", cameras, CameraSourceOptions::default(), Runtime::with_workers(2)));
    eprintln!("errors: {:#?}\nhealth: {:#?}", report.errors, report.health);

    let error_of = |camera: &str| report.errors.iter().find(|e| e.contains(&format!("camera {camera} "))).cloned();
    let notes = error_of("lane-notes").expect("the text file is an error naming its camera");
    assert!(notes.contains("notes.mp4") && notes.to_lowercase().contains("type"), "{notes}");
    let missing = error_of("lane-missing").expect("the missing file is an error naming its camera");
    assert!(missing.contains("no such file"), "{missing}");
    let corrupt_health = report.health.iter().find(|h| h.camera_id == "lane-corrupt").expect("health");
    let corrupt_said = error_of("lane-corrupt").or(corrupt_health.last_error.clone()).expect("the corrupt file is reported");
    assert!(corrupt_said.contains("lane-corrupt") && corrupt_said.contains("corrupt or missing data"), "{corrupt_said}");

    let good_reads: Vec<_> = report.reads.iter().filter(|r| r.camera_id == "lane-good").cloned().collect();
    let score = video::score(&truth, &good_reads);
    assert_eq!(score.right, truth.len(), "{score:?}");
    let good_health = report.health.iter().find(|h| h.camera_id == "lane-good").expect("health");
    assert_eq!(good_health.state, CameraState::Ended);
    assert_eq!(good_health.frames_processed, 100);
}

/// Every frame a source gives until it ends or goes quiet: (index, event time).
fn frame_times(source: &CameraSource, quiet: Duration) -> Vec<(u64, i64)> {
    let mut frames = Vec::new();
    while let Some(event) = source.next_event(quiet) {
        match event {
            CameraEvent::Frame(frame) => frames.push((frame.index, frame.captured_at_ms)),
            CameraEvent::Ended => break,
            CameraEvent::Failed(error) => panic!("{error}"),
        }
    }
    frames
}

#[test]
fn an_image_folder_gives_frames_in_name_order_with_times_and_its_plates_are_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scene = Scene::random(640, 360, 10, 10.0, 2, 23);
    let (images, truth) = render_jpegs(&scene, 0.0, 10.0).expect("the frames render");
    assert_eq!((images.len(), truth.len()), (100, 2));
    let folder = dir.path().join("lane");
    std::fs::create_dir(&folder).expect("folder");
    for (i, jpeg) in images.iter().enumerate() {
        std::fs::write(folder.join(format!("frame-{i:04}.jpg")), jpeg).expect("write");
    }
    // Not an image (left out) and an image that does not decode (skipped, reported).
    std::fs::write(folder.join("notes.txt"), "shift report").expect("write");
    std::fs::write(folder.join("zz-broken.jpg"), "not a JPEG at all").expect("write");

    // The interval between images is the camera's own setting (as `[[camera]] image_interval_ms`).
    let mut camera = video::camera("lane-dir", &format!("dir://{}", folder.display()));
    camera.source.image_interval_ms = Some(100);
    let start_ms = 1_795_000_000_000;
    let options = CameraSourceOptions { start_ms: Some(start_ms), ..Default::default() };
    let source = CameraSource::open(&camera, options.clone());
    let frames = frame_times(&source, Duration::from_secs(30));
    let expected: Vec<(u64, i64)> = (0..100).map(|i| (i, start_ms + 100 * i as i64)).collect();
    assert_eq!(frames, expected);
    let health = source.stats().health();
    assert_eq!((health.state, health.frames_in, health.last_frame_ms), (CameraState::Ended, 100, start_ms + 9_900), "{health:?}");
    assert!(health.last_error.as_deref().is_some_and(|e| e.contains("zz-broken.jpg")), "{health:?}");
    drop(source);

    let spec = camera_video("otaci", "MD", vec![camera], options, Runtime::with_workers(1));
    let report = run_video(spec);
    eprintln!("{:?}", report.reads.iter().map(|r| (&r.plate_norm, r.direction, r.captured_at_ms - start_ms)).collect::<Vec<_>>());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let score = video::score(&truth, &report.reads);
    assert_eq!(score.right, truth.len(), "{score:?}");
    assert!(score.strays.is_empty(), "{score:?}");
    // Each read is timed by its images: near when its vehicle crosses the line.
    for vehicle in &truth {
        let read = report.reads.iter().find(|r| r.plate_norm == vehicle.plate_norm).expect("read");
        assert!((read.captured_at_ms - start_ms - vehicle.crosses_at_ms).abs() <= 2_000, "{read:?} {vehicle:?}");
    }
}

/// An MJPEG camera on 127.0.0.1: each of the first `clients` clients, one
/// at a time, gets the images as `multipart/x-mixed-replace` JPEG parts at
/// `fps`, then the connection closes; later clients are refused.
struct MjpegServer {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Wall-clock time (ms) each client's stream began, in order.
    started: std::sync::Arc<std::sync::Mutex<Vec<i64>>>,
    thread: Option<JoinHandle<()>>,
}

impl MjpegServer {
    fn start(images: Vec<Vec<u8>>, fps: u32, clients: usize) -> MjpegServer {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port on 127.0.0.1");
        let port = listener.local_addr().expect("address").port();
        listener.set_nonblocking(true).expect("non-blocking");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let started_ms = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let starts = std::sync::Arc::clone(&started_ms);
        let thread = std::thread::spawn(move || {
            let mut served = 0;
            while !flag.load(Ordering::Relaxed) && served < clients {
                let Ok((mut client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                served += 1;
                client.set_nonblocking(false).expect("blocking");
                // The request: read up to the blank line.
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") && client.read(&mut byte).is_ok_and(|n| n == 1) {
                    request.push(byte[0]);
                }
                let head = "HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\nCache-Control: no-cache\r\n\r\n";
                if client.write_all(head.as_bytes()).is_err() {
                    continue;
                }
                let started = std::time::Instant::now();
                starts.lock().expect("not poisoned").push(chrono::Utc::now().timestamp_millis());
                for (i, jpeg) in images.iter().enumerate() {
                    let due = started + Duration::from_millis(i as u64 * 1000 / fps as u64);
                    std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
                    let part = format!("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.len());
                    if flag.load(Ordering::Relaxed)
                        || client.write_all(part.as_bytes()).and_then(|()| client.write_all(jpeg)).and_then(|()| client.write_all(b"\r\n")).is_err()
                    {
                        break;
                    }
                }
            }
        });
        MjpegServer { port, stop, started: started_ms, thread: Some(thread) }
    }

    /// Stops serving; returns when each client's stream began (ms).
    fn stop(mut self) -> Vec<i64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the server thread ends");
        }
        std::mem::take(&mut *self.started.lock().expect("not poisoned"))
    }
}

#[test]
fn an_mjpeg_stream_over_http_gives_timed_frames_and_its_plates_are_read() {
    // The image folder's scene. (Seed 31 gave TRBN709 read as RBN709: the
    // reader's doing, not the stream's.)
    let scene = Scene::random(640, 360, 10, 10.0, 2, 23);
    let (images, truth) = render_jpegs(&scene, 0.0, 10.0).expect("the frames render");
    assert_eq!(truth.len(), 2);
    let server = MjpegServer::start(images, 10, 2);
    let mut camera = video::camera("lane-mjpeg", &format!("http://127.0.0.1:{}/video.mjpg", server.port));
    // A queue as long as the stream: a test machine busy with builds may
    // fall behind real time, and this test is about MJPEG, not dropping.
    camera.source.queue_frames = Some(200);
    // No reconnecting within the test: the stream ends after its images.
    let options = CameraSourceOptions { backoff_initial_ms: 60_000, ..Default::default() };

    // The frames: stamped when they arrive (multipart parts carry no time), 100 ms apart.
    let source = CameraSource::open(&camera, options.clone());
    let mut times = Vec::new();
    while times.len() < 100 {
        match source.next_event(Duration::from_secs(30)) {
            Some(CameraEvent::Frame(frame)) => times.push(frame.captured_at_ms),
            Some(other) => panic!("{other:?}"),
            None => break,
        }
    }
    source.stop();
    assert_eq!(times.len(), 100);
    assert!(times.windows(2).all(|w| w[1] > w[0]), "{times:?}");
    assert!((8_000..=12_500).contains(&(times[99] - times[0])), "{times:?}");

    // The second client: the plate pipeline.
    let spec = camera_video("otaci", "MD", vec![camera], options, Runtime::with_workers(1));
    let opened_ms = chrono::Utc::now().timestamp_millis();
    let run = borderflow::VideoRun::start(spec);
    wait_for("the stream", Duration::from_secs(120), || {
        let health = &run.camera_health()[0];
        health.frames_in >= 100 || (health.frames_in > 0 && health.state != CameraState::Up)
    });
    wait_for("the queued frames", Duration::from_secs(120), || {
        let health = &run.camera_health()[0];
        health.frames_processed + health.frames_dropped >= health.frames_in
    });
    let report = run.stop();
    let starts = server.stop();
    assert_eq!(starts.len(), 2, "{starts:?}");
    // The pipeline's stream began when its client connected, after the
    // models loaded: a busy machine takes seconds over that, so the reads'
    // times are measured from the stream's start, not from `start()`.
    let streamed_ms = starts[1];
    assert!(streamed_ms >= opened_ms, "{streamed_ms} {opened_ms}");
    let health = &report.health[0];
    eprintln!("{health:?}\n{:?}", report.reads.iter().map(|r| (&r.plate_norm, r.direction, r.captured_at_ms - streamed_ms)).collect::<Vec<_>>());
    assert_eq!((health.frames_in, health.frames_dropped), (100, 0), "{health:?}");
    // Live frames carry wall-clock times: the stream lasts 10 s.
    assert!(health.last_frame_ms >= streamed_ms + 8_000, "{health:?} streamed from {streamed_ms}");
    assert!(health.last_frame_ms <= chrono::Utc::now().timestamp_millis(), "{health:?}");
    let score = video::score(&truth, &report.reads);
    assert_eq!(score.right, truth.len(), "{score:?}");
    assert!(score.strays.is_empty(), "{score:?}");
    for vehicle in &truth {
        let read = report.reads.iter().find(|r| r.plate_norm == vehicle.plate_norm).expect("read");
        assert!((read.captured_at_ms - streamed_ms - vehicle.crosses_at_ms).abs() <= 3_000, "{read:?} {vehicle:?}");
    }
}
