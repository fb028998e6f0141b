//! Cameras end to end: an in-process RTSP server (gstreamer-rtsp-server on
//! 127.0.0.1) serves a rendered clip, is stopped mid-stream and restarted,
//! and the camera source reconnects; recordings that are corrupt or not
//! video fail with the camera and the cause named while the other cameras
//! carry on. Ground truth comes from the renderer.

mod video;

use std::path::Path;
use std::sync::mpsc::channel;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use borderflow::connectors::synthetic_video::Scene;
use borderflow::engine::{CameraState, Runtime};
use borderflow::{VideoSpec, run_video};
use gstreamer as gst;
use gstreamer::glib;
use gstreamer_rtsp_server::prelude::*;
use gstreamer_rtsp_server::{RTSPClient, RTSPFilterResult, RTSPMediaFactory, RTSPServer};

/// An RTSP server on 127.0.0.1 serving one clip at `/lane`, on its own main loop.
struct RtspServer {
    port: u16,
    server: RTSPServer,
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
}

impl RtspServer {
    /// Serves `clip` on `port` (0: a free port).
    fn start(clip: &Path, port: u16) -> RtspServer {
        gst::init().expect("GStreamer initialises");
        let launch = format!(
            "( filesrc location={} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )",
            clip.display()
        );
        let (sender, receiver) = channel();
        let thread = std::thread::spawn(move || {
            let context = glib::MainContext::new();
            let main_loop = glib::MainLoop::new(Some(&context), false);
            let server = RTSPServer::new();
            server.set_address("127.0.0.1");
            server.set_service(&port.to_string());
            let factory = RTSPMediaFactory::new();
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
        RtspServer { port, server, main_loop, thread: Some(thread) }
    }

    /// Disconnects every client and closes the listening socket.
    fn stop(mut self) {
        self.server.client_filter(Some(&mut |_: &RTSPServer, _: &RTSPClient| RTSPFilterResult::Remove));
        self.main_loop.quit();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the server thread ends");
        }
    }
}

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
    let mut scene = Scene::random(960, 540, 10, 24.0, 4, 7);
    for (vehicle, at) in scene.vehicles.iter_mut().zip([2.5, 5.0, 15.0, 18.5]) {
        vehicle.crosses_at_s = at;
        vehicle.approaching = true;
    }
    scene.vehicles[3].approaching = false;
    // The camera's picture goes on while the server is down: the second
    // segment starts two seconds after the first ends.
    let (first, mut truth) = video::render(&scene, dir.path(), "first.mp4", 0.0, 10.0);
    let (second, truth_second) = video::render(&scene, dir.path(), "second.mp4", 12.0, 24.0);
    truth.extend(truth_second);
    assert_eq!(truth.len(), 4);

    let server = RtspServer::start(&first, 0);
    let port = server.port;
    let camera = video::camera("lane-rtsp", &format!("rtsp://127.0.0.1:{port}/lane"));
    let mut spec = VideoSpec::new("otaci", "MD", vec![camera], Runtime::with_workers(1));
    spec.source.backoff_initial_ms = 300;
    // A queue as long as the clip: on a test machine busy with other builds
    // the engine falls behind real time, and this test is about reconnecting,
    // not about dropping (connectors/tests/camera.rs covers the leaky queue).
    spec.source.queue_frames = 250;
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
    let report = run_video(VideoSpec::new("otaci", "MD", cameras, Runtime::with_workers(2)));
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
