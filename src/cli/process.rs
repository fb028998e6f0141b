//! `borderflow process VIDEO… --config post.toml`: recorded video through
//! the video operators into Parquet, offline.
//!
//! Each VIDEO is `CAMERA_ID=PATH`, or a bare `PATH` given to the config's
//! cameras in file order. Recordings are read frame by frame (nothing is
//! dropped), stamped from `start_ms` (the recording's first frame), processed
//! on timely workers, and the reads are written like any post's.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::storage_url;

use borderflow_connectors::camera::recording_duration_ms;
use borderflow_connectors::{CameraSourceOptions, ParquetStore, Pacing, WrittenFile};
use borderflow_engine::{CameraConfig, CameraHealth, Direction, PostConfig, Runtime};

use borderflow_operators::{VideoReport, VideoRun};

use crate::camera_video;

/// The cameras of `config` that `videos` (`ID=PATH` or `PATH`) feed, with
/// their URIs replaced by the files.
pub fn cameras_for_videos(config: &PostConfig, videos: &[String]) -> Result<Vec<CameraConfig>, String> {
    let mut next = config.cameras.iter();
    let mut cameras: Vec<CameraConfig> = Vec::new();
    for video in videos {
        let (camera, path) = match video.split_once('=') {
            Some((id, path)) if config.cameras.iter().any(|c| c.id == id) => {
                (config.cameras.iter().find(|c| c.id == id).cloned(), path)
            }
            Some((id, _)) if !PathBuf::from(video).exists() => {
                return Err(format!("`{video}`: the configuration has no camera `{id}`"));
            }
            _ => (next.by_ref().find(|c| !cameras.iter().any(|used| used.id == c.id)).cloned(), video.as_str()),
        };
        let Some(mut camera) = camera else {
            return Err(format!("`{video}`: more videos than cameras in the configuration ({})", config.cameras.len()));
        };
        if cameras.iter().any(|c| c.id == camera.id) {
            return Err(format!("`{video}`: camera `{}` already has a video", camera.id));
        }
        let absolute = std::path::absolute(path).map_err(|e| format!("{path}: {e}"))?;
        camera.uri = format!("file://{}", absolute.display());
        cameras.push(camera);
    }
    if cameras.is_empty() {
        return Err("no video to process".to_string());
    }
    Ok(cameras)
}

/// What `process` did.
pub struct ProcessReport {
    pub video: VideoReport,
    pub files: Vec<WrittenFile>,
    pub storage_url: String,
}

/// Processes `cameras` (file URIs) of `config`'s post and writes the reads
/// under `storage_url`; `progress` is called every 200 ms with the share
/// done (0..1) and the reads so far.
pub fn process(
    config: &PostConfig,
    cameras: Vec<CameraConfig>,
    storage_url: &str,
    runtime: Runtime,
    start_ms: i64,
    progress: &dyn Fn(f64, usize),
) -> Result<ProcessReport, String> {
    let durations: Vec<Option<u64>> =
        cameras.iter().map(|c| recording_duration_ms(&borderflow_connectors::camera::path_of(&c.uri))).collect();
    let total_ms: u64 = durations.iter().map(|d| d.unwrap_or(0)).sum();
    // With [recording], the cameras that record keep the video they read, stamped as their reads.
    let source = CameraSourceOptions {
        pacing: Some(Pacing::Recorded),
        start_ms: Some(start_ms),
        recording: config.recording.as_ref().map(borderflow_connectors::recording::RecordingOptions::from_config),
        ..CameraSourceOptions::default()
    };
    let spec = camera_video(&config.post.id, &config.post.country, cameras, source, runtime);
    let run = VideoRun::start(spec);
    let mut reads = 0;
    while !run.is_finished() {
        std::thread::sleep(std::time::Duration::from_millis(200));
        reads += run.reads().try_iter().count();
        let done: u64 = run
            .camera_health()
            .iter()
            .zip(&durations)
            .map(|(h, d)| if h.frames_in == 0 { 0 } else { ((h.last_frame_ms - start_ms).max(0) as u64).min(d.unwrap_or(0)) })
            .sum();
        progress(if total_ms == 0 { 0.0 } else { done as f64 / total_ms as f64 }, reads);
    }
    let video = run.wait();
    progress(1.0, video.reads.len());
    let store = ParquetStore::open(storage_url).map_err(|e| e.to_string())?;
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("tokio runtime: {e}"))?;
    let files = tokio.block_on(store.write_reads(&video.reads)).map_err(|e| e.to_string())?;
    Ok(ProcessReport { video, files, storage_url: store.url().to_string() })
}

/// Per camera: frames in, processed and dropped, reads each way, state.
pub fn camera_table(video: &VideoReport) -> String {
    camera_table_with(video, &|camera, d| video.reads.iter().filter(|r| r.camera_id == camera && r.direction == d).count())
}

/// [`camera_table`] with the reads per camera and direction counted by `count`.
pub fn camera_table_with(video: &VideoReport, count: &dyn Fn(&str, Direction) -> usize) -> String {
    let mut out = String::new();
    out.push_str(&format!("{:<28} {:>8} {:>10} {:>8} {:>6} {:>6}  state\n", "camera", "frames", "processed", "dropped", "entry", "exit"));
    for CameraHealth { camera_id, state, frames_in, frames_processed, frames_dropped, .. } in &video.health {
        let count = |d: Direction| count(camera_id, d);
        out.push_str(&format!(
            "{camera_id:<28} {frames_in:>8} {frames_processed:>10} {frames_dropped:>8} {:>6} {:>6}  {}\n",
            count(Direction::Entry),
            count(Direction::Exit),
            state.as_str()
        ));
    }
    out
}

/// The summary `process` prints: per camera, then the time per step.
pub fn summary(report: &ProcessReport) -> String {
    let video = &report.video;
    let mut out = camera_table(video);
    let t = &video.times;
    let busy = (t.detect + t.recognise + t.track).as_secs_f64().max(1e-9);
    let frames: u64 = video.health.iter().map(|h| h.frames_processed).sum();
    out.push_str(&format!(
        "{} reads from {frames} frames in {:.1} s ({:.1} frames/s); detection {:.0} % ({} runs), recognition {:.0} % ({} crops), tracking and voting {:.0} %\n",
        video.reads.len(),
        video.wall.as_secs_f64(),
        frames as f64 / video.wall.as_secs_f64().max(1e-9),
        100.0 * t.detect.as_secs_f64() / busy,
        t.detections,
        100.0 * t.recognise.as_secs_f64() / busy,
        t.recognitions,
        100.0 * t.track.as_secs_f64() / busy,
    ));
    let bytes: usize = report.files.iter().map(|f| f.bytes).sum();
    out.push_str(&format!("Wrote {} Parquet file(s) ({:.1} kB) under {}\n", report.files.len(), bytes as f64 / 1e3, report.storage_url));
    for error in &video.errors {
        out.push_str(&format!("error: {error}\n"));
    }
    out
}

/// `borderflow process`: recorded videos of a post's lanes into reads.
pub fn command(
    runtime: Runtime,
    videos: &[String],
    config_path: &Path,
    out: Option<&str>,
    start: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), String> {
    let config = PostConfig::from_file(config_path).map_err(|e| e.to_string())?;
    let cameras = cameras_for_videos(&config, videos)?;
    let storage = match out {
        Some(out) => storage_url(out)?,
        None => config.storage.url.clone(),
    };
    let start_ms = start.unwrap_or_else(chrono::Utc::now).timestamp_millis();
    println!("Borderflow post {} ({}): {} video(s)", config.post.id, config.post.name, cameras.len());
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {percent:>3}% {msg} ({elapsed}, {eta} left)").expect("valid template"),
    );
    let report = process(&config, cameras, &storage, runtime, start_ms, &|done, reads| {
        bar.set_position((done * 1000.0) as u64);
        bar.set_message(format!("{reads} reads"));
    });
    bar.finish_and_clear();
    let report = report?;
    print!("{}", summary(&report));
    match report.video.errors.len() {
        0 => Ok(()),
        n => Err(format!("{n} camera(s) failed (reads of the others were written)")),
    }
}
