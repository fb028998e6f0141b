//! `borderflow run --config post.toml` on the post's cameras: every
//! `[[camera]]` is opened ([`VideoRun`]: detect, track, recognise, vote on
//! timely workers), and the reads they give go into the embedded [`Engine`]
//! the way every read does: in the write-ahead log first, then applied to the
//! views and, with the views' changelogs, written to the Parquet history
//! (`reads/<post>/<date>/`, see [`borderflow_engine::history`]). Each read's plate crop (from its best frame)
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
//! Recordings (`file://`, `dir://`) are stamped from one start time kept in
//! the store (`cameras/<post>/recordings.json`): a run started again over
//! the same recordings (after a crash, or to finish) stamps every frame as
//! the first run did, so each read comes out with the same `read_id` and
//! the engine takes none twice; only the reads it lacks are pushed.
//!
//! With a `[recording]` table, the cameras that record keep their video in
//! segments under its folder (see [`borderflow_connectors::recording`]);
//! `borderflow clip` cuts a read's evidence from them.
//!
//! The run ends when every camera has ended (recordings) or when `stop` is
//! set (Ctrl-C or SIGTERM for a live post); the reads the cameras gave up to
//! then are committed, the views flushed and the log closed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use borderflow_connectors::CameraSourceOptions;
use borderflow_connectors::recording::RecordingOptions;
use borderflow_connectors::synthetic_video::encode_jpegs;
use borderflow_engine::{CameraState, Direction, PlateRead, PostConfig, Runtime, reads_to_batch};
use borderflow_operators::PlateCrop;

use borderflow_engine::{Engine, EngineOptions};
use crate::cli::run::follow::{flush_and_shut_down, push_with_retry};
use borderflow_operators::{VideoReport, VideoRun};

use crate::camera_video;

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
    /// Parquet files written to the reads' history by this process.
    pub history_files: usize,
    /// Each view's rows at the end.
    pub views: Vec<(String, usize)>,
    /// Reads the engine took, per camera and direction.
    pub reads_per_camera: std::collections::BTreeMap<(String, Direction), usize>,
}

/// A post's cameras feeding an engine: the video run, the plate crops it
/// gives, and the cameras' states as last reported. `run_cameras` and
/// `serve` take reads from it.
pub struct CameraFeed {
    run: Option<VideoRun>,
    crops: Receiver<(String, PlateCrop)>,
    /// A read's crop comes before the read: crops of reads not taken yet.
    pending_crops: HashMap<String, PlateCrop>,
    states: HashMap<String, CameraState>,
    health_every: Duration,
    health_at: Instant,
}

impl CameraFeed {
    /// Opens the post's cameras (recordings stamped as the module
    /// documentation says) and attaches their health to `engine`.
    /// With `live`, each processed frame and its tracks go there while
    /// someone watches (the operator console).
    pub fn start(
        engine: &mut Engine,
        runtime: Runtime,
        source: CameraSourceOptions,
        health_every: Duration,
        live: Option<Arc<borderflow_engine::LiveFrames>>,
        progress: &dyn Fn(&str),
    ) -> Result<CameraFeed, String> {
        let config = engine.config();
        if config.cameras.is_empty() {
            return Err(format!("post `{}` has no [[camera]] to read", config.post.id));
        }
        let mut source = source;
        if source.start_ms.is_none() {
            source.start_ms = recordings_start(engine, progress)?;
        }
        if source.recording.is_none() {
            source.recording = engine.config().recording.as_ref().map(RecordingOptions::from_config);
        }
        let config = engine.config();
        let mut spec = camera_video(&config.post.id, &config.post.country, config.cameras.clone(), source, runtime);
        // Reads are taken from the run as they come; the run keeps none.
        spec.keep_reads = false;
        spec.live = live;
        let (run, crops) = VideoRun::start_with_crops(spec);
        engine.attach_cameras(run.camera_stats());
        Ok(CameraFeed { run: Some(run), crops, pending_crops: HashMap::new(), states: HashMap::new(), health_every, health_at: Instant::now() + health_every })
    }

    /// Each camera's live counters (for `/metrics`).
    pub fn camera_stats(&self) -> Vec<Arc<borderflow_engine::CameraStats>> {
        self.run.as_ref().map(VideoRun::camera_stats).unwrap_or_default()
    }

    /// Whether every camera has ended (recordings; live cameras never end).
    pub fn is_finished(&self) -> bool {
        self.run.as_ref().is_none_or(VideoRun::is_finished)
    }

    /// The reads given since the last call that the engine does not have,
    /// each with its crop written (see [`write_crop`]).
    pub fn take(&mut self, engine: &Engine) -> Vec<PlateRead> {
        let reads: Vec<PlateRead> = self.run.as_ref().map(|run| run.reads().try_iter().collect()).unwrap_or_default();
        self.fresh_with_crops(engine, reads)
    }

    /// Stops the cameras (`stop`) or waits for the recordings to end;
    /// returns the reads given after the last [`take`](Self::take), as it
    /// does, and the run's report.
    pub fn finish(&mut self, engine: &Engine, stop: bool) -> (Vec<PlateRead>, VideoReport) {
        let Some(run) = self.run.take() else { return (Vec::new(), VideoReport::default()) };
        let video = if stop { run.stop() } else { run.wait() };
        let reads = self.fresh_with_crops(engine, video.reads.clone());
        (reads, video)
    }

    fn fresh_with_crops(&mut self, engine: &Engine, reads: Vec<PlateRead>) -> Vec<PlateRead> {
        // A read's crop is sent before the read: after this, every drained read's crop is here.
        self.pending_crops.extend(self.crops.try_iter());
        let mut fresh: Vec<PlateRead> = reads.into_iter().filter(|r| !engine.has_read(&r.read_id)).collect();
        for read in &mut fresh {
            let Some(crop) = self.pending_crops.remove(&read.read_id) else { continue };
            match write_crop(engine, read, crop) {
                Ok(uri) => read.crop_uri = Some(uri),
                Err(error) => tracing::warn!(camera = %read.camera_id, read = %read.read_id, "plate crop not written: {error}"),
            }
        }
        fresh
    }

    /// Reports each camera whose state changed since the last call (with
    /// its last error when it is down or failed), and every camera's
    /// counters every `health_every`.
    pub fn report(&mut self, engine: &Engine, progress: &dyn Fn(&str)) {
        for h in engine.camera_health() {
            if self.states.get(&h.camera_id) == Some(&h.state) {
                continue;
            }
            self.states.insert(h.camera_id.clone(), h.state);
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
        if Instant::now() >= self.health_at {
            self.health_at = Instant::now() + self.health_every;
            for h in engine.camera_health() {
                let recorded = if h.segments_recorded + h.recording_errors > 0 {
                    format!(", {} segments recorded ({:.1} MB), {} recording errors", h.segments_recorded, h.recorded_bytes as f64 / 1e6, h.recording_errors)
                } else {
                    String::new()
                };
                progress(&format!(
                    "camera {}: {}, {} frames in, {} processed, {} dropped, {} reconnects{recorded}",
                    h.camera_id,
                    h.state.as_str(),
                    h.frames_in,
                    h.frames_processed,
                    h.frames_dropped,
                    h.reconnects
                ));
            }
        }
    }
}

/// Runs the post on its cameras until they end or `stop` is set (see the module documentation).
pub fn run_cameras(config: PostConfig, options: &CameraRunOptions, stop: Arc<AtomicBool>, progress: &dyn Fn(&str)) -> Result<CameraRunReport, String> {
    if config.cameras.is_empty() {
        return Err(format!("post `{}` has no [[camera]] to read", config.post.id));
    }
    let mut engine = Engine::open(config, options.engine.clone()).map_err(|e| e.to_string())?;
    let recovery = engine.recovery().clone();
    progress(&format!("recovered {} log records ({} reads) in {:.3}s", recovery.records, recovery.reads, recovery.duration.as_secs_f64()));
    let mut feed = CameraFeed::start(&mut engine, options.video_runtime.clone(), options.source.clone(), options.health_every, None, progress)?;
    let mut report = CameraRunReport {
        video: VideoReport::default(),
        commits: 0,
        reads_pushed: 0,
        retries: 0,
        history_files: 0,
        views: Vec::new(),
        reads_per_camera: Default::default(),
    };
    loop {
        // Whether the run had finished before this drain: then nothing comes after it.
        let finished = feed.is_finished();
        let reads = feed.take(&engine);
        commit(&mut engine, reads, options, &mut report)?;
        feed.report(&engine, progress);
        if finished || stop.load(Ordering::Relaxed) {
            break;
        }
        let until = Instant::now() + options.commit_every;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) && !feed.is_finished() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let (reads, video) = feed.finish(&engine, stop.load(Ordering::Relaxed));
    commit(&mut engine, reads, options, &mut report)?;
    feed.report(&engine, progress);
    report.video = video;
    for name in engine.view_names() {
        let rows = engine.snapshot(&name).map_err(|e| e.to_string())?.num_rows();
        report.views.push((name, rows));
    }
    report.history_files = flush_and_shut_down(engine)?;
    Ok(report)
}

/// Pushes fresh reads (durable in the log when this returns).
fn commit(engine: &mut Engine, fresh: Vec<PlateRead>, options: &CameraRunOptions, report: &mut CameraRunReport) -> Result<(), String> {
    if fresh.is_empty() {
        return Ok(());
    }
    let batch = reads_to_batch(&fresh);
    let (pushed, retries) = push_with_retry(engine, options.give_up_after, |engine| engine.push_reads(&batch))?;
    report.reads_pushed += pushed;
    report.retries += retries;
    report.commits += 1;
    // Those the engine took (it drops reads older than the reads' retention).
    for read in fresh.iter().filter(|r| engine.has_read(&r.read_id)) {
        *report.reads_per_camera.entry((read.camera_id.clone(), read.direction)).or_default() += 1;
    }
    Ok(())
}

/// A read's crop as a JPEG at `crops/<post>/<date>/<read_id>.jpg`; returns its URL.
fn write_crop(engine: &Engine, read: &PlateRead, crop: PlateCrop) -> Result<String, String> {
    let jpeg = encode_jpegs(crop.width, crop.height, 85, std::iter::once(crop.rgb)).map_err(|e| e.to_string())?;
    let jpeg = jpeg.into_iter().next().ok_or("the encoder gave no image")?;
    engine.put_object(&borderflow_engine::history::crop_path(&read.post_id, read.captured_at_ms, &read.read_id), jpeg).map_err(|e| e.to_string())
}

/// The event time of the recordings' first frames (see the module
/// documentation): the one kept in the store when the post's recordings
/// are the same as then, else now (and kept). `None` without recordings.
fn recordings_start(engine: &Engine, progress: &dyn Fn(&str)) -> Result<Option<i64>, String> {
    let config = engine.config();
    let recordings: BTreeMap<&str, &str> = config
        .cameras
        .iter()
        .filter(|c| c.uri.starts_with("file://") || c.uri.starts_with("dir://"))
        .map(|c| (c.id.as_str(), c.uri.as_str()))
        .collect();
    if recordings.is_empty() {
        return Ok(None);
    }
    let path = format!("cameras/{}/recordings.json", config.post.id);
    let kept = engine.get_object(&path).map_err(|e| e.to_string())?;
    if let Some(bytes) = kept {
        let record: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| format!("{path}: {e}"))?;
        let same = record["recordings"].as_object().is_some_and(|r| {
            r.len() == recordings.len() && recordings.iter().all(|(id, uri)| r.get(*id).and_then(|u| u.as_str()) == Some(*uri))
        });
        if same && let Some(start) = record["started_at_ms"].as_i64() {
            let at = chrono::DateTime::from_timestamp_millis(start).map_or_else(|| start.to_string(), |t| t.to_rfc3339());
            progress(&format!("recordings already started at {at}: reads the engine has are not pushed again"));
            return Ok(Some(start));
        }
    }
    let start = chrono::Utc::now().timestamp_millis();
    let record = serde_json::json!({ "started_at_ms": start, "recordings": recordings });
    engine.put_object(&path, serde_json::to_vec_pretty(&record).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    Ok(Some(start))
}

