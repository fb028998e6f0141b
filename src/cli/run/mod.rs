//! `borderflow run --config post.toml`: a post on its source. The source is
//! its `[scenario]` (simulated traffic: a batch run through the views, or,
//! with `--follow`, a long-running engine fed tick by tick, [`follow`]) or
//! its `[[camera]]`s ([`cameras`]: the video workers feeding the engine).

use std::path::Path;
use std::time::Duration;

use crate::cli::demo::job::{JobSpec, run_job};
use crate::cli::demo::print_report;
use crate::cli::{RunSource, Spinner, stop_on_signals, storage_url};
use crate::engine::{PostConfig, Runtime};

pub mod cameras;
pub mod follow;

/// `run`: picks the source (and says which), then runs the post on it.
pub fn command(
    runtime: Runtime,
    config_path: &Path,
    source: RunSource,
    storage: Option<&str>,
    follow: bool,
    pace_ms: Option<u64>,
    sink_every: u64,
) -> Result<(), String> {
    let mut config = PostConfig::from_file(config_path).map_err(|e| e.to_string())?;
    if let Some(storage) = storage {
        config.storage.url = storage_url(storage)?;
    }
    let where_ = config_path.display();
    let cameras = config.cameras.len();
    let source = match source {
        RunSource::Auto if config.scenario.is_some() => {
            let note = if cameras > 0 { format!("; its {cameras} camera(s) are not opened (`--source cameras` reads them)") } else { String::new() };
            println!("{where_}: replaying [scenario] (simulated traffic){note}");
            RunSource::Scenario
        }
        RunSource::Auto if cameras > 0 => {
            println!("{where_}: reading {cameras} camera(s) (the config has no [scenario])");
            RunSource::Cameras
        }
        RunSource::Auto | RunSource::Scenario if config.scenario.is_none() => {
            return Err(format!(
                "{where_}: post `{}` has no source `run` can read: add [[camera]] tables, or a [scenario] section to run it on simulated traffic",
                config.post.id
            ));
        }
        RunSource::Cameras if cameras == 0 => return Err(format!("{where_}: post `{}` has no [[camera]] to read", config.post.id)),
        chosen => chosen,
    };
    match (source, follow) {
        (RunSource::Cameras, _) => run_cameras(runtime, config_path, config, pace_ms.unwrap_or(1000), sink_every),
        (_, false) => batch(runtime, config_path, config),
        (_, true) => follow_scenario(runtime, config_path, config, pace_ms.unwrap_or(0), sink_every),
    }
}

fn run_cameras(runtime: Runtime, config_path: &Path, config: PostConfig, commit_ms: u64, sink_every: u64) -> Result<(), String> {
    use crate::cli::run::cameras::{CameraRunOptions, run_cameras};
    let mut options = CameraRunOptions { commit_every: Duration::from_millis(commit_ms.max(1)), ..CameraRunOptions::default() };
    options.engine.runtime = runtime.clone();
    options.video_runtime = runtime;
    options.engine.sink_every_commits = sink_every.max(1);
    println!("Borderflow post {} ({}) reading {} camera(s), storage {}", config.post.id, config.post.name, config.cameras.len(), config.storage.url);
    let stop = stop_on_signals();
    let config_recording = config.recording.clone();
    let report = run_cameras(config, &options, stop, &|line| println!("{line}")).map_err(|e| format!("{}: {e}", config_path.display()))?;
    let per_camera = |camera: &str, d| report.reads_per_camera.get(&(camera.to_string(), d)).copied().unwrap_or(0);
    print!("{}", crate::cli::process::camera_table_with(&report.video, &per_camera));
    if let Some(recording) = &config_recording {
        for h in report.video.health.iter().filter(|h| h.segments_recorded + h.recording_errors > 0) {
            println!(
                "camera {}: {} video segment(s) recorded ({:.1} MB) under {}, {} recording error(s)",
                h.camera_id,
                h.segments_recorded,
                h.recorded_bytes as f64 / 1e6,
                recording.path.display(),
                h.recording_errors
            );
        }
    }
    println!(
        "{} commits, {} reads pushed ({} pushes retried), {} Parquet file(s) of reads; views: {}",
        report.commits,
        report.reads_pushed,
        report.retries,
        report.history_files,
        report.views.iter().map(|(v, n)| format!("{v} {n} rows")).collect::<Vec<_>>().join(", ")
    );
    for error in &report.video.errors {
        eprintln!("error: {error}");
    }
    match report.video.errors.len() {
        0 => Ok(()),
        n => Err(format!("{n} camera(s) failed (the post carried on; the reads of the others were committed)")),
    }
}

/// The entries of the post's `[watchlist]` file, if it has one.
fn post_watchlist(config: &PostConfig) -> Result<Option<arrow::array::RecordBatch>, String> {
    let Some(watchlist) = &config.watchlist else { return Ok(None) };
    let storage = crate::engine::Storage::open(&config.storage).map_err(|e| e.to_string())?;
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let file = tokio.block_on(crate::engine::watchlist_file::fetch(&watchlist.from, &storage))?;
    crate::engine::watchlist_file::parse(&file).map(Some)
}

fn batch(runtime: Runtime, config_path: &Path, config: PostConfig) -> Result<(), String> {
    let scenario = crate::cli::demo::job::post_scenario(&config).map_err(|e| format!("{}: {e}", config_path.display()))?;
    let exchange_keys = crate::engine::post_exchange_keys(&config)?;
    let seed = scenario.seed;
    let spec = JobSpec {
        scenario,
        posts: Some(vec![config.post.id.clone()]),
        storage_url: config.storage.url.clone(),
        runtime,
        tick_ms: 300_000,
        view_tick_ms: 300_000,
        views: config.views.clone(),
        tables: config.tables.clone(),
        watchlist: post_watchlist(&config)?,
        exchange_keys,
        standard_views: false,
        video_lanes: false,
    };
    println!("Borderflow post {} ({}), {} camera(s), scenario seed {seed}", config.post.id, config.post.name, config.cameras.len());
    let spinner = Spinner::new();
    let report = run_job(&spec, &spinner).map_err(|e| e.to_string());
    spinner.0.finish_and_clear();
    print_report(&report?);
    Ok(())
}

fn follow_scenario(runtime: Runtime, config_path: &Path, config: PostConfig, pace_ms: u64, sink_every: u64) -> Result<(), String> {
    use follow::{FollowOptions, follow};
    let mut options = FollowOptions { pace: Duration::from_millis(pace_ms), ..FollowOptions::default() };
    options.engine.runtime = runtime.clone();
    options.engine.sink_every_commits = sink_every.max(1);
    println!("Borderflow post {} ({}) following its scenario, storage {}", config.post.id, config.post.name, config.storage.url);
    let report = follow(config, &options, &|line| println!("{line}")).map_err(|e| format!("{}: {e}", config_path.display()))?;
    println!(
        "{} commits, {} reads pushed ({} pushes retried); views: {}",
        report.commits,
        report.reads_pushed,
        report.retries,
        report.views.iter().map(|(v, n)| format!("{v} {n} rows")).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}
