//! Evidence clips through the real binary: `borderflow run` on a rendered
//! clip with `[recording]` records the camera while it reads plates; then
//! `borderflow clip --read-id` writes an MP4 that GStreamer's discoverer
//! plays and that spans the read's `captured_at` ± the window, a sidecar
//! whose SHA-256s are those of the files, the crop beside it, and an audit
//! record in the post's store; a read or video that is missing is a clear
//! error. A post killed with SIGKILL while recording leaves its open
//! segment readable, and the next run closes it and records the rest.
//! Retention: `run --follow` deletes the segments that ended before
//! `retention.video`, and the audit record lists them.

mod common;
mod video;

use std::path::{Path, PathBuf};
use std::process::Command;

use borderflow::engine::reads_from_batch;
use gstreamer as gst;
use gstreamer_pbutils::prelude::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))))
}

/// Every read in a storage folder's history.
fn stored_reads(root: &Path) -> Vec<borderflow::engine::PlateRead> {
    let mut reads = Vec::new();
    for file in common::files_under(&root.join("reads")) {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).expect("file")).expect("parquet").build().expect("reader");
        for batch in reader {
            reads.extend(reads_from_batch(&batch.expect("batch")).expect("contract schema"));
        }
    }
    reads
}

/// (playable, duration ms, container caps, video caps) by GStreamer's discoverer.
fn discover(path: &Path) -> (bool, i64, String, String) {
    gst::init().expect("GStreamer");
    let discoverer = gstreamer_pbutils::Discoverer::new(gst::ClockTime::from_seconds(30)).expect("a discoverer");
    let info = discoverer.discover_uri(&format!("file://{}", path.display())).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let video = info.video_streams().first().and_then(|v| v.caps()).map(|c| c.to_string()).unwrap_or_default();
    let container = info.stream_info().and_then(|s| s.caps()).map(|c| c.to_string()).unwrap_or_default();
    (info.result() == gstreamer_pbutils::DiscovererResult::Ok, info.duration().map_or(-1, |d| d.mseconds() as i64), container, video)
}

/// Frames a file decodes to, every one of them.
fn decoded_frames(path: &Path) -> u64 {
    use gstreamer::prelude::*;
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

fn borderflow(args: &[&str], cwd: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_borderflow")).args(args).current_dir(cwd).output().expect("borderflow runs");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A post recording one camera, which watches `clip`, in 5 s segments; the config's path.
fn recording_post(dir: &Path, clip: &Path) -> PathBuf {
    let config = format!(
        "[post]\nid = \"otaci\"\nname = \"Otaci\"\ncountry = \"MD\"\ncrossing = \"otaci-mohyliv-podilskyi\"\n\n\
         [storage]\nurl = \"file://./data\"\n\n[recording]\nsegment = \"5s\"\n\n\
         [[camera]]\nid = \"otaci-entry-arrival-1\"\nuri = \"file://{}\"\nlane = 1\ndirection = \"entry\"\npoint = \"arrival\"\n\
         counting_line = [[0.0, 0.6], [1.0, 0.6]]\nfrom_side = \"top\"\n",
        clip.display()
    );
    let config_path = dir.join("post.toml");
    std::fs::write(&config_path, config).expect("config");
    config_path
}

#[test]
fn a_reads_clip_plays_spans_its_window_and_its_hashes_and_audit_record_hold() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scene = video::four_vehicles_one_leaving();
    let (clip, truth) = video::render(&scene, dir.path(), "lane1.mp4", 0.0, 24.0);
    assert_eq!(truth.len(), 4);
    let config_path = recording_post(dir.path(), &clip);
    let config_arg = config_path.to_str().expect("UTF-8 path");
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = borderflow(&["--workers", "2", "run", "--config", config_arg, "--pace-ms", "200"], dir.path());
    eprintln!("run took {:.1} s\n{stdout}\n{stderr}", started.elapsed().as_secs_f64());
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("video segment(s) recorded"), "{stdout}");

    // The recording: 24 s in segments of about 5 s (a key frame every 2 s), meeting exactly, named on the reads' clock.
    let data = dir.path().join("data");
    let segments = borderflow::engine::video::list_segments(&data.join("video"), "otaci-entry-arrival-1").expect("segments");
    let spans: Vec<(i64, i64)> = segments.iter().map(|s| (s.start_ms, s.end_ms.expect("closed"))).collect();
    assert!(spans.len() >= 4 && spans.windows(2).all(|w| w[0].1 == w[1].0), "{spans:?}");
    assert_eq!(spans.last().expect("a segment").1 - spans[0].0, 24_000, "{spans:?}");
    let reads = stored_reads(&data);
    assert_eq!(reads.len(), 4, "{reads:?}");
    assert!(reads.iter().all(|r| (spans[0].0..spans.last().expect("segment").1).contains(&r.captured_at_ms)), "{reads:?} {spans:?}");

    // A read in the middle of the recording, so that its whole window is recorded.
    let read = reads
        .iter()
        .find(|r| (spans[0].0 + 7_000..spans[0].0 + 17_000).contains(&r.captured_at_ms))
        .unwrap_or_else(|| panic!("no read 7 to 17 s in: {reads:?}"));
    let export = dir.path().join("export");
    std::fs::create_dir(&export).expect("folder");
    let (code, stdout, stderr) =
        borderflow(&["clip", "--config", config_arg, "--read-id", &read.read_id, "--before", "5s", "--after", "4.5s", "--user", "inspector-7"], &export);
    eprintln!("{stdout}\n{stderr}");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let mp4 = export.join(format!("{}.mp4", read.read_id));
    let sidecar_path = export.join(format!("{}.json", read.read_id));
    let crop = export.join(format!("{}.jpg", read.read_id));
    for path in [&mp4, &sidecar_path, &crop] {
        assert!(path.is_file() && stdout.contains(&path.display().to_string()), "{} not written or not printed:\n{stdout}", path.display());
    }

    // The MP4 plays and spans the window: from the key frame at or before captured_at − 5 s to captured_at + 4.5 s.
    let sidecar: serde_json::Value = serde_json::from_slice(&std::fs::read(&sidecar_path).expect("sidecar")).expect("JSON");
    let (start, end) = (sidecar["clip"]["start_ms"].as_i64().expect("start"), sidecar["clip"]["end_ms"].as_i64().expect("end"));
    assert!(start <= read.captured_at_ms - 5_000 && start > read.captured_at_ms - 7_100, "clip starts {} ms before the read", read.captured_at_ms - start);
    // Frames are 100 ms apart on the reads' clock: the last one before the window's end ends with it.
    assert_eq!(end, read.captured_at_ms + 4_500, "the clip ends with the window");
    let (playable, duration, container, video) = discover(&mp4);
    assert!(playable && container.starts_with("video/quicktime") && video.starts_with("video/x-h264"), "{container} {video}");
    assert!((duration - (end - start)).abs() <= 100, "the MP4 lasts {duration} ms, the clip {} ms", end - start);

    // The sidecar: the read, the window, and the hashes of the files as they are.
    assert_eq!(sidecar["read"]["read_id"], read.read_id.as_str());
    assert_eq!(sidecar["read"]["plate_norm"], read.plate_norm.as_str());
    assert_eq!(sidecar["camera_id"], "otaci-entry-arrival-1");
    assert_eq!(sidecar["window"]["from_ms"].as_i64(), Some(read.captured_at_ms - 5_000));
    assert_eq!(sidecar["window"]["to_ms"].as_i64(), Some(read.captured_at_ms + 4_500));
    assert_eq!(sidecar["exported_by"], "inspector-7");
    assert!(sidecar["exported_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{sidecar}");
    assert_eq!(sidecar["clip"]["sha256"].as_str(), Some(sha256_of(&mp4).as_str()));
    assert_eq!(sidecar["crop"]["sha256"].as_str(), Some(sha256_of(&crop).as_str()));
    let stored_crop = data.join(borderflow::engine::history::crop_path("otaci", read.captured_at_ms, &read.read_id));
    assert_eq!(sha256_of(&crop), sha256_of(&stored_crop), "the crop is the stored one");
    let used = sidecar["segments"].as_array().expect("segments");
    assert!(used.len() >= 2, "a 9.5 s window spans more than one 5 s segment: {used:?}");
    for segment in used {
        let path = PathBuf::from(segment["path"].as_str().expect("path"));
        assert!(path.starts_with(data.join("video/otaci-entry-arrival-1")), "{}", path.display());
        assert_eq!(segment["sha256"].as_str(), Some(sha256_of(&path).as_str()), "{}", path.display());
    }
    assert_eq!(sidecar["gaps"].as_array().map(Vec::len), Some(0));

    // The audit record in the post's store: who, when, which read, every file with its hash.
    let audits = common::files_under(&data.join("audit/otaci/clips"));
    assert_eq!(audits.len(), 1, "{audits:?}");
    assert!(audits[0].file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(&format!("-{}.json", read.read_id))), "{audits:?}");
    assert!(stdout.contains(&audits[0].display().to_string()), "{stdout}");
    let audit: serde_json::Value = serde_json::from_slice(&std::fs::read(&audits[0]).expect("audit")).expect("JSON");
    assert_eq!((audit["read_id"].as_str(), audit["exported_by"].as_str()), (Some(read.read_id.as_str()), Some("inspector-7")));
    let files = audit["files"].as_array().expect("files");
    for (kind, path) in [("clip", &mp4), ("sidecar", &sidecar_path), ("crop", &crop)] {
        let file = files.iter().find(|f| f["kind"] == kind).unwrap_or_else(|| panic!("no {kind} in {audit}"));
        assert_eq!(file["sha256"].as_str(), Some(sha256_of(path).as_str()), "{kind}");
    }
    assert_eq!(audit["segments"], sidecar["segments"]);

    // --out elsewhere, the default window.
    let elsewhere = dir.path().join("case-17/clip.mp4");
    let (code, stdout, stderr) = borderflow(&["clip", "--config", config_arg, "--read-id", &read.read_id, "--out", elsewhere.to_str().expect("UTF-8")], dir.path());
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(elsewhere.is_file() && elsewhere.with_extension("json").is_file() && elsewhere.with_extension("jpg").is_file());

    // A read that is not there, and video that is gone: non-zero, and said plainly.
    let (code, _, stderr) = borderflow(&["clip", "--config", config_arg, "--read-id", "01JZZZZZZZZZZZZZZZZZZZZZZZ"], &export);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("01JZZZZZZZZZZZZZZZZZZZZZZZ is not in post `otaci`'s history"), "{stderr}");
    std::fs::remove_dir_all(data.join("video/otaci-entry-arrival-1")).expect("video removed");
    let (code, _, stderr) = borderflow(&["clip", "--config", config_arg, "--read-id", &read.read_id], &export);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no recorded video") && stderr.contains("otaci-entry-arrival-1"), "{stderr}");
}

#[test]
fn a_post_killed_while_recording_leaves_a_readable_segment_that_the_next_run_closes() {
    use borderflow::engine::video::list_segments;
    let dir = tempfile::tempdir().expect("temp dir");
    let scene = video::four_vehicles_one_leaving();
    let (clip, _) = video::render(&scene, dir.path(), "lane1.mp4", 0.0, 24.0);
    let config_path = recording_post(dir.path(), &clip);
    let video_dir = dir.path().join("data/video");
    let mut run = Command::new(env!("CARGO_BIN_EXE_borderflow"))
        .args(["--workers", "2", "run", "--config"])
        .arg(&config_path)
        .args(["--pace-ms", "200"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("borderflow starts");
    // SIGKILL once a segment is closed and the next one is being written.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let segments = list_segments(&video_dir, "otaci-entry-arrival-1").unwrap_or_default();
        let open = segments.iter().filter(|s| !s.is_closed() && std::fs::metadata(&s.path).is_ok_and(|m| m.len() > 100_000)).count();
        if open == 1 && segments.iter().any(|s| s.is_closed()) {
            break;
        }
        assert!(run.try_wait().expect("try_wait").is_none(), "the run ended before it could be killed mid-segment");
        assert!(std::time::Instant::now() < until, "no segment was being written within 2 minutes");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    run.kill().expect("SIGKILL");
    run.wait().expect("reaped");
    let killed = list_segments(&video_dir, "otaci-entry-arrival-1").expect("segments");
    let part = killed.iter().find(|s| !s.is_closed()).expect("the segment being written is left open");

    // What the kill left is readable video up to where it was cut: closed as the next start closes it, it plays.
    let copy = dir.path().join("copy");
    let copied = copy.join("otaci-entry-arrival-1").join(part.path.parent().and_then(|p| p.file_name()).expect("date folder"));
    std::fs::create_dir_all(&copied).expect("folder");
    std::fs::copy(&part.path, copied.join(part.path.file_name().expect("name"))).expect("copy");
    let closed = borderflow::connectors::recording::finalise_stale_parts(&copy, "otaci-entry-arrival-1").expect("closed");
    assert_eq!(closed.len(), 1, "{closed:?}");
    let end = closed[0].end_ms.expect("closed");
    assert!(end > part.start_ms + 500, "{closed:?}");
    let (playable, _, container, video) = discover(&closed[0].path);
    assert!(playable && container.starts_with("video/mpegts") && video.starts_with("video/x-h264"), "{container} {video}");
    let frames = decoded_frames(&closed[0].path) as i64;
    assert!((frames - (end - part.start_ms) / 100).abs() <= 2, "{frames} frames decode from {} ms of video", end - part.start_ms);

    // The post started again: the recording is whole, every segment closed, meeting exactly.
    let (code, stdout, stderr) = borderflow(&["--workers", "2", "run", "--config", config_path.to_str().expect("UTF-8"), "--pace-ms", "200"], dir.path());
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let segments = list_segments(&video_dir, "otaci-entry-arrival-1").expect("segments");
    let spans: Vec<(i64, i64)> = segments.iter().map(|s| (s.start_ms, s.end_ms.unwrap_or_else(|| panic!("{} left open", s.path.display())))).collect();
    assert!(spans.windows(2).all(|w| w[0].1 == w[1].0), "{spans:?}");
    assert_eq!(spans.last().expect("segments").1 - spans[0].0, 24_000, "{spans:?}");
}

#[test]
fn retention_deletes_the_segments_that_ended_before_the_video_period_and_the_audit_lists_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = common::write_config(dir.path(), "post.toml", "url = \"file://./store\"\nretention = { video = \"2d\" }", 1, 0.05);
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("\n[recording]\npath = \"rec\"\n");
    std::fs::write(&config, text).expect("config");
    // Segments as recorders leave them: two cameras, old and recent, closed and one left open.
    let rec = dir.path().join("rec");
    let at = |text: &str| chrono::DateTime::parse_from_rfc3339(text).expect("time").timestamp_millis();
    let plant = |path: PathBuf, bytes: usize| {
        std::fs::create_dir_all(path.parent().expect("folder")).expect("folder");
        std::fs::write(&path, vec![0x47u8; bytes]).expect("segment");
        path
    };
    use borderflow::engine::video::{open_segment_path, segment_path};
    let old = plant(segment_path(&rec, "lane-1", at("2026-11-20T10:00:00Z"), at("2026-11-20T10:01:00Z")), 1880);
    let old_open = plant(open_segment_path(&rec, "lane-1", at("2026-11-20T11:00:00Z")), 188);
    let older = plant(segment_path(&rec, "lane-2", at("2026-11-01T08:00:00Z"), at("2026-11-01T08:01:00Z")), 376);
    let recent = plant(segment_path(&rec, "lane-1", at("2026-11-27T12:00:00Z"), at("2026-11-27T12:01:00Z")), 940);

    common::follow_to_end(&config, &[]);
    for path in [&old, &old_open, &older] {
        assert!(!path.exists(), "{} was kept", path.display());
    }
    assert!(recent.exists(), "a segment inside the period was deleted");
    assert!(!rec.join("lane-1/2026-11-20").exists() && !rec.join("lane-2/2026-11-01").exists(), "empty date folders are left");

    let audits = common::files_under(&dir.path().join("store/audit/otaci/retention"));
    let mut deleted: Vec<String> = Vec::new();
    let mut bytes = 0;
    for audit in &audits {
        let record: serde_json::Value = serde_json::from_slice(&std::fs::read(audit).expect("audit")).expect("JSON");
        let video = &record["video"];
        assert_eq!(video["retention_s"].as_u64(), Some(2 * 86_400), "{video}");
        bytes += video["bytes_deleted"].as_u64().expect("bytes_deleted");
        for (camera, swept) in video["cameras"].as_object().expect("cameras") {
            for path in swept["segments_deleted"].as_array().expect("segments") {
                deleted.push(format!("{camera} {}", path.as_str().expect("path")));
            }
        }
    }
    deleted.sort();
    let mut expected = vec![
        format!("lane-1 {}", old.display()),
        format!("lane-1 {}", old_open.display()),
        format!("lane-2 {}", older.display()),
    ];
    expected.sort();
    assert_eq!(deleted, expected);
    assert_eq!(bytes, 1880 + 188 + 376);
}
