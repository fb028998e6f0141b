//! `borderflow run --config post.toml` on the post's cameras: every
//! `[[camera]]` is opened ([`VideoRun`]: detect, track, recognise, vote on
//! timely workers), and the reads they give go into the embedded [`Engine`]
//! the way every read does: in the write-ahead log first, then applied to the
//! views; each commit's reads are then also written to the Parquet history
//! (`reads/<post>/<date>/`). Each read's plate crop (from its best frame)
//! is written before the read is pushed, as a JPEG at
//! `crops/<post>/<date>/<read_id>.jpg`, and the read's `crop_uri` says
//! where; a crop that cannot be written is logged and the read goes without.
//!
//! Reads are committed every `commit_every` of wall time (commit time: the
//! wall clock), so a busy post makes a few commits a second at most, and a
//! quiet one none. A camera that fails never stops the post: a live camera
//! (`rtsp://`, `http(s)://`) reconnects with backoff for ever; a recording
//! (`file://`, `dir://`) that fails is logged and counted, and the other
//! cameras carry on. Each camera's state changes are reported as they
//! happen, and its health is attached to the engine
//! ([`Engine::camera_health`]).
//!
//! The run ends when every camera has ended (recordings) or when `stop` is
//! set (Ctrl-C or SIGTERM for a live post); the reads the cameras gave up to
//! then are committed, the views flushed and the log closed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use borderflow_connectors::CameraSourceOptions;
use borderflow_connectors::synthetic_video::encode_jpegs;
use borderflow_engine::{CameraState, Direction, PlateRead, PostConfig, Runtime, reads_to_batch};
use borderflow_operators::PlateCrop;

use crate::embedded::{Engine, EngineOptions};
use crate::follow::{flush_and_shut_down, push_with_retry};
use crate::video::{VideoReport, VideoRun, VideoSpec};

/// How a post runs on its cameras.
#[derive(Clone, Debug)]
pub struct CameraRunOptions {
    pub engine: EngineOptions,
    /// Timely workers for the cameras (each camera belongs to one).
    pub video_runtime: Runtime,
    /// Stream reader settings; each camera's own `[[camera]]` settings win.
    pub source: CameraSourceOptions,
    /// Wall time between commits of the cameras' reads.
    pub commit_every: Duration,
    /// Report every camera's counters this often (state changes are reported at once).
    pub health_every: Duration,
    /// A push still failing after this long stops the run.
    pub give_up_after: Duration,
}

impl Default for CameraRunOptions {
    fn default() -> Self {
        CameraRunOptions {
            engine: EngineOptions::default(),
            video_runtime: Runtime::default(),
            source: CameraSourceOptions::default(),
            commit_every: Duration::from_secs(1),
            health_every: Duration::from_secs(30),
            give_up_after: Duration::from_secs(600),
        }
    }
}

/// What a run on cameras did.
#[derive(Debug)]
pub struct CameraRunReport {
    /// Every camera's reads, health and failures.
    pub video: VideoReport,
    /// Commits with reads made by this process.
    pub commits: usize,
    /// Reads new to the engine (a read already in the log is not pushed twice).
    pub reads_pushed: usize,
    /// Pushes that failed and were retried.
    pub retries: usize,
    /// Parquet files written to the reads history.
    pub history_files: Vec<String>,
    /// Each view's rows at the end.
    pub views: Vec<(String, usize)>,
    /// Reads the engine took, per camera and direction.
    pub reads_per_camera: std::collections::BTreeMap<(String, Direction), usize>,
}

/// Runs the post on its cameras until they end or `stop` is set (see the module documentation).
pub fn run_cameras(config: PostConfig, options: &CameraRunOptions, stop: Arc<AtomicBool>, progress: &dyn Fn(&str)) -> Result<CameraRunReport, String> {
    if config.cameras.is_empty() {
        return Err(format!("post `{}` has no [[camera]] to read", config.post.id));
    }
    let mut spec = VideoSpec::new(&config.post.id, &config.post.country, config.cameras.clone(), options.video_runtime.clone());
    spec.source = options.source.clone();
    // Reads are taken from the run as they come; the report keeps only the last ones.
    spec.keep_reads = false;
    let mut engine = Engine::open(config, options.engine.clone()).map_err(|e| e.to_string())?;
    let recovery = engine.recovery().clone();
    progress(&format!("recovered {} log records ({} reads) in {:.3}s", recovery.records, recovery.reads, recovery.duration.as_secs_f64()));

    let (run, crops) = VideoRun::start_with_crops(spec);
    let mut pending_crops: HashMap<String, PlateCrop> = HashMap::new();
    engine.attach_cameras(run.camera_stats());
    let mut report = CameraRunReport {
        video: VideoReport::default(),
        commits: 0,
        reads_pushed: 0,
        retries: 0,
        history_files: Vec::new(),
        views: Vec::new(),
        reads_per_camera: Default::default(),
    };
    let mut states: HashMap<String, CameraState> = HashMap::new();
    let mut health_at = Instant::now() + options.health_every;
    loop {
        // Whether the run had finished before this drain: then nothing comes after it.
        let finished = run.is_finished();
        let reads: Vec<PlateRead> = run.reads().try_iter().collect();
        // A read's crop is sent before the read: after this, every drained read's crop is here.
        pending_crops.extend(crops.try_iter());
        commit(&mut engine, reads, &mut pending_crops, options, &mut report)?;
        report_states(&engine, &mut states, progress);
        if Instant::now() >= health_at {
            health_at = Instant::now() + options.health_every;
            for h in engine.camera_health() {
                progress(&format!(
                    "camera {}: {}, {} frames in, {} processed, {} dropped, {} reconnects",
                    h.camera_id,
                    h.state.as_str(),
                    h.frames_in,
                    h.frames_processed,
                    h.frames_dropped,
                    h.reconnects
                ));
            }
        }
        if finished || stop.load(Ordering::Relaxed) {
            break;
        }
        let until = Instant::now() + options.commit_every;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) && !run.is_finished() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let video = if stop.load(Ordering::Relaxed) { run.stop() } else { run.wait() };
    // The reads given after the last drain (the report keeps no others).
    pending_crops.extend(crops.try_iter());
    commit(&mut engine, video.reads.clone(), &mut pending_crops, options, &mut report)?;
    report_states(&engine, &mut states, progress);
    report.video = video;
    for name in engine.view_names() {
        let rows = engine.snapshot(&name).map_err(|e| e.to_string())?.num_rows();
        report.views.push((name, rows));
    }
    flush_and_shut_down(engine)?;
    Ok(report)
}

/// Writes the crops of the reads the engine does not have yet, pushes the
/// reads (durable in the log when this returns), then writes them to the
/// Parquet history.
fn commit(
    engine: &mut Engine,
    reads: Vec<PlateRead>,
    crops: &mut HashMap<String, PlateCrop>,
    options: &CameraRunOptions,
    report: &mut CameraRunReport,
) -> Result<(), String> {
    let mut fresh: Vec<PlateRead> = reads.into_iter().filter(|r| !engine.has_read(&r.read_id)).collect();
    if fresh.is_empty() {
        return Ok(());
    }
    for read in &mut fresh {
        let Some(crop) = crops.remove(&read.read_id) else { continue };
        match write_crop(engine, read, crop) {
            Ok(uri) => read.crop_uri = Some(uri),
            Err(error) => tracing::warn!(camera = %read.camera_id, read = %read.read_id, "plate crop not written: {error}"),
        }
    }
    let batch = reads_to_batch(&fresh);
    let (pushed, retries) = push_with_retry(engine, options.give_up_after, |engine| engine.push_reads(&batch))?;
    report.reads_pushed += pushed;
    report.retries += retries;
    report.commits += 1;
    // Those the engine took (it drops reads older than the reads' retention).
    let taken: Vec<PlateRead> = fresh.into_iter().filter(|r| engine.has_read(&r.read_id)).collect();
    for read in &taken {
        *report.reads_per_camera.entry((read.camera_id.clone(), read.direction)).or_default() += 1;
    }
    let mut files = Vec::new();
    let (_, retries) = push_with_retry(engine, options.give_up_after, |engine| {
        files = engine.write_reads_history(&taken)?;
        Ok(files.len())
    })?;
    report.retries += retries;
    report.history_files.extend(files);
    Ok(())
}

/// A read's crop as a JPEG at `crops/<post>/<date>/<read_id>.jpg`; returns its URL.
fn write_crop(engine: &Engine, read: &PlateRead, crop: PlateCrop) -> Result<String, String> {
    let jpeg = encode_jpegs(crop.width, crop.height, 85, std::iter::once(crop.rgb)).map_err(|e| e.to_string())?;
    let jpeg = jpeg.into_iter().next().ok_or("the encoder gave no image")?;
    let date = chrono::DateTime::from_timestamp_millis(read.captured_at_ms).map_or_else(|| "invalid-date".to_string(), |t| t.date_naive().to_string());
    engine.put_object(&format!("crops/{}/{date}/{}.jpg", read.post_id, read.read_id), jpeg).map_err(|e| e.to_string())
}

/// Reports each camera whose state changed since the last call, with its last error when it is down or failed.
fn report_states(engine: &Engine, states: &mut HashMap<String, CameraState>, progress: &dyn Fn(&str)) {
    for h in engine.camera_health() {
        if states.get(&h.camera_id) == Some(&h.state) {
            continue;
        }
        states.insert(h.camera_id.clone(), h.state);
        match (h.state, &h.last_error) {
            (CameraState::Down | CameraState::Failed, Some(error)) => {
                tracing::warn!(camera = %h.camera_id, state = h.state.as_str(), "{error}");
                progress(&format!("camera {}: {} ({error})", h.camera_id, h.state.as_str()));
            }
            _ => {
                tracing::info!(camera = %h.camera_id, state = h.state.as_str(), "camera state");
                progress(&format!("camera {}: {}", h.camera_id, h.state.as_str()));
            }
        }
    }
}
