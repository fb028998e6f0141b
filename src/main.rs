//! The `borderflow` command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use borderflow::connectors::scenario::ScenarioConfig;
use borderflow::engine::{PostConfig, Runtime, ViewConfig, crossings};
use borderflow::{JobReport, JobSpec, Progress, run_job};
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(name = "borderflow", version, about = "Plate recognition and incremental SQL at road border crossings")]
struct Cli {
    /// Timely worker threads (default: the machine's cores).
    #[arg(long, global = true)]
    workers: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

/// What `run` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum RunSource {
    Auto,
    Cameras,
    Scenario,
}

#[derive(Subcommand)]
enum Command {
    /// The main job: every crossing, both sides, one simulated day.
    Demo {
        /// Where to write (a folder or an object store URL).
        #[arg(long, default_value = "data/demo")]
        out: String,
        /// Scenario seed.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// First simulated day (UTC).
        #[arg(long, default_value = "2026-11-27")]
        date: NaiveDate,
        /// Simulated days.
        #[arg(long, default_value_t = 1)]
        days: u32,
        /// Multiplies each crossing's typical traffic.
        #[arg(long, default_value_t = 1.0)]
        traffic_scale: f64,
        /// Leave out the standard views (cross_border_matches, dwell_times,
        /// risk_flags), which are otherwise maintained, checked and scored
        /// against the ground truth.
        #[arg(long)]
        no_standard_views: bool,
        /// Minutes of traffic between two commits of the SQL views (reads
        /// are ingested every 5 minutes; the views' answers at the end are
        /// the same whatever the interval, fewer commits cost less).
        #[arg(long, default_value_t = 60)]
        view_commit_minutes: u64,
    },
    /// Runs one post from its configuration: on its cameras, or on its
    /// [scenario] (simulated traffic).
    Run {
        #[arg(long)]
        config: PathBuf,
        /// Where the reads come from: the config's [[camera]]s (read until
        /// every recording ends, or until Ctrl-C or SIGTERM), or its
        /// [scenario]; auto: the [scenario] when the config has one, else
        /// the cameras.
        #[arg(long, value_enum, default_value = "auto")]
        source: RunSource,
        /// Write here instead of the config's `storage.url` (a folder or a URL).
        #[arg(long)]
        storage: Option<String>,
        /// Run as a long-lived post on the embedded engine: every read is in
        /// the write-ahead log before it is applied, a restart recovers and
        /// resumes, and retention applies (see README, "Durability").
        #[arg(long)]
        follow: bool,
        /// With --follow: wall-clock milliseconds between commits (default
        /// 0); on cameras: between commits of their reads (default 1000).
        #[arg(long)]
        pace_ms: Option<u64>,
        /// With --follow or on cameras: write the views' changelog parts every N commits.
        #[arg(long, default_value_t = 12)]
        sink_every: u64,
    },
    /// Runs a post as a service: its scenario (as `run --follow`), the
    /// pre-arrival exchange with the peer post ([peer], [serve]
    /// exchange_listen) and Flight SQL for analysts ([serve] sql_listen),
    /// until interrupted (Ctrl-C or SIGTERM).
    Serve {
        #[arg(long)]
        config: PathBuf,
        /// Write here instead of the config's `storage.url` (a folder or a URL).
        #[arg(long)]
        storage: Option<String>,
        /// Wall-clock milliseconds between scenario ticks, or between commits of the cameras' reads.
        #[arg(long, default_value_t = 1000)]
        pace_ms: u64,
        /// Simulated milliseconds per scenario tick.
        #[arg(long, default_value_t = 300_000)]
        tick_ms: u64,
        /// Write the views' changelog parts every N commits.
        #[arg(long, default_value_t = 12)]
        sink_every: u64,
        /// Also maintain the standard views (cross_border_matches, dwell_times, risk_flags).
        #[arg(long)]
        standard_views: bool,
    },
    /// Ad-hoc SQL over a post's data directory, or against `borderflow
    /// serve` (--server), printed as a table, CSV, JSON or Parquet.
    Sql {
        /// The query, in DataFusion's SQL dialect.
        sql: String,
        /// The data directory to query (default: the config's storage folder).
        #[arg(long)]
        data: Option<PathBuf>,
        /// A post configuration: its storage folder and exchange keys.
        #[arg(long)]
        config: Option<PathBuf>,
        /// A Flight SQL server (grpc://host:port or grpc+tls://host:port).
        #[arg(long)]
        server: Option<String>,
        /// Bearer token for --server (default: the BORDERFLOW_TOKEN environment variable).
        #[arg(long)]
        token: Option<String>,
        /// CA certificate for a grpc+tls:// server.
        #[arg(long)]
        ca: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "table")]
        format: borderflow::sql_cli::Format,
        /// Write the result here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Reads recorded video through the plate pipeline (detect, track,
    /// recognise, vote) and writes the reads to Parquet.
    Process {
        /// `CAMERA_ID=PATH`, or `PATH` (given to the config's cameras in order).
        #[arg(required = true)]
        videos: Vec<String>,
        #[arg(long)]
        config: PathBuf,
        /// Write here instead of the config's `storage.url` (a folder or a URL).
        #[arg(long)]
        out: Option<String>,
        /// Event time of each recording's first frame (RFC 3339, e.g. 2026-11-27T08:00:00Z); default: now.
        #[arg(long)]
        start: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Validates a post configuration and says what it describes.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Measures plate recognition on a labelled folder of photographs.
    EvalImages {
        dir: PathBuf,
        /// Per-image CSV (default: eval-images.csv here).
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Only the first N images.
        #[arg(long)]
        limit: Option<usize>,
        /// The text detector's input size (longer side, pixels; smaller images are scaled up to it).
        #[arg(long, default_value_t = 1280)]
        detector_side: u32,
        /// Plate regions read again at a larger scale (0: one pass).
        #[arg(long, default_value_t = 3)]
        refine: usize,
        /// Read a photo again with its contrast normalised locally when no
        /// reading is this confident (0: never).
        #[arg(long, default_value_t = 0.5)]
        enhance_below: f32,
        /// Candidates of each detection read again by the second recognizer,
        /// whose opinion re-ranks their texts (0: one recognizer).
        #[arg(long, default_value_t = 2)]
        second_opinions: usize,
        /// The country the cameras stand in (ISO 3166 alpha-2): its plate formats win ties.
        #[arg(long)]
        country: Option<String>,
    },
    /// Runs sqllogictest files against standing views: each query is kept up
    /// to date and re-checked against DataFusion after every later statement.
    Slt {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Rewrite each query's expected rows with DataFusion's batch answer
        /// (for review) instead of checking them.
        #[arg(long)]
        complete: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BORDERFLOW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = cli.workers.map(Runtime::with_workers).unwrap_or_default();
    let result = match cli.command {
        Command::Demo { out, seed, date, days, traffic_scale, no_standard_views, view_commit_minutes } => {
            demo(runtime, &out, seed, date, days, traffic_scale, !no_standard_views, view_commit_minutes)
        }
        Command::Process { videos, config, out, start } => process(runtime, &videos, &config, out.as_deref(), start),
        Command::Run { config, source, storage, follow, pace_ms, sink_every } => {
            run_post(runtime, &config, source, storage.as_deref(), follow, pace_ms, sink_every)
        }
        Command::Check { config } => check(&config),
        Command::Sql { sql, data, config, server, token, ca, format, output } => {
            sql_command(&sql, data.as_deref(), config.as_deref(), server.as_deref(), token, ca.as_deref(), format, output.as_deref())
        }
        Command::Serve { config, storage, pace_ms, tick_ms, sink_every, standard_views } => {
            serve(runtime, &config, storage.as_deref(), pace_ms, tick_ms, sink_every, standard_views)
        }
        Command::EvalImages { dir, csv, limit, detector_side, refine, enhance_below, second_opinions, country } => {
            let mut options = borderflow::eval_images::EvalOptions { csv, limit, progress: true, ..Default::default() };
            options.reader.detector.max_side = detector_side;
            options.reader.detector.min_side = options.reader.detector.min_side.min(detector_side);
            options.reader.refine_regions = refine;
            options.reader.enhance_below = enhance_below;
            options.reader.second_opinions = second_opinions;
            options.reader.prefer_country = country;
            borderflow::eval_images::run(&dir, &options).map(|summary| println!("{summary}"))
        }
        Command::Slt { files, complete } => slt(&files, complete),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// A folder or an object store URL, as an absolute URL.
fn storage_url(out: &str) -> Result<String, String> {
    if out.contains("://") {
        return Ok(out.to_string());
    }
    let path = Path::new(out);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| format!("current directory: {e}"))?.join(path)
    };
    url::Url::from_directory_path(&absolute)
        .map(|u| u.to_string())
        .map_err(|()| format!("`{out}` is not a usable folder"))
}

struct Spinner(ProgressBar);

impl Spinner {
    fn new() -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"));
        bar.enable_steady_tick(Duration::from_millis(120));
        Spinner(bar)
    }
}

impl Progress for Spinner {
    fn stage(&self, name: &str) {
        self.0.set_message(name.to_string());
    }
}

/// The demo's own SQL view, beside the standard views of `queries/sql/`.
const DEMO_VIEWS: &[(&str, &str)] = &[
    (
        "hourly_arrivals",
        "SELECT post_id, date_trunc('hour', captured_at) AS hour, count(*) AS vehicles \
         FROM reads WHERE point = 'arrival' GROUP BY post_id, date_trunc('hour', captured_at)",
    ),
];

#[allow(clippy::too_many_arguments)]
fn demo(
    runtime: Runtime,
    out: &str,
    seed: u64,
    date: NaiveDate,
    days: u32,
    scale: f64,
    standard_views: bool,
    view_commit_minutes: u64,
) -> Result<(), String> {
    let spec = JobSpec {
        scenario: ScenarioConfig { seed, start: date, days, traffic_scale: scale, ..ScenarioConfig::default() },
        posts: None,
        storage_url: storage_url(out)?,
        runtime,
        tick_ms: 300_000,
        view_tick_ms: view_commit_minutes.max(1) * 60_000,
        views: DEMO_VIEWS.iter().map(|(name, sql)| ViewConfig { name: name.to_string(), sql: sql.to_string() }).collect(),
        tables: Vec::new(),
        watchlist: None,
        exchange_keys: borderflow::job::demo_exchange_keys(),
        standard_views,
        video_lanes: true,
    };
    println!(
        "Borderflow demo: {} crossings, both sides, {days} simulated day(s) from {date}, seed {seed}",
        crossings::CROSSINGS.len()
    );
    let spinner = Spinner::new();
    let report = run_job(&spec, &spinner).map_err(|e| e.to_string());
    spinner.0.finish_and_clear();
    print_report(&report?);
    Ok(())
}

/// `run`: picks the source (and says which), then runs the post on it.
fn run_post(
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
        (_, false) => run(runtime, config_path, config),
        (_, true) => self::follow(runtime, config_path, config, pace_ms.unwrap_or(0), sink_every),
    }
}

fn run_cameras(runtime: Runtime, config_path: &Path, config: PostConfig, commit_ms: u64, sink_every: u64) -> Result<(), String> {
    use borderflow::post_cameras::{CameraRunOptions, run_cameras};
    let mut options = CameraRunOptions { commit_every: Duration::from_millis(commit_ms.max(1)), ..CameraRunOptions::default() };
    options.engine.workers = runtime.workers();
    options.video_runtime = runtime;
    options.engine.sink_every_commits = sink_every.max(1);
    println!("Borderflow post {} ({}) reading {} camera(s), storage {}", config.post.id, config.post.name, config.cameras.len(), config.storage.url);
    let stop = stop_on_signals();
    let report = run_cameras(config, &options, stop, &|line| println!("{line}")).map_err(|e| format!("{}: {e}", config_path.display()))?;
    let per_camera = |camera: &str, d| report.reads_per_camera.get(&(camera.to_string(), d)).copied().unwrap_or(0);
    print!("{}", borderflow::process::camera_table_with(&report.video, &per_camera));
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
    let storage = borderflow::engine::Storage::open(&config.storage).map_err(|e| e.to_string())?;
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let file = tokio.block_on(borderflow::watchlist_file::fetch(&watchlist.from, &storage))?;
    borderflow::watchlist_file::parse(&file).map(Some)
}

fn run(runtime: Runtime, config_path: &Path, config: PostConfig) -> Result<(), String> {
    let scenario = borderflow::job::post_scenario(&config).map_err(|e| format!("{}: {e}", config_path.display()))?;
    let exchange_keys = borderflow::job::post_exchange_keys(&config)?;
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

fn process(
    runtime: Runtime,
    videos: &[String],
    config_path: &Path,
    out: Option<&str>,
    start: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), String> {
    use borderflow::process;
    let config = PostConfig::from_file(config_path).map_err(|e| e.to_string())?;
    let cameras = process::cameras_for_videos(&config, videos)?;
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
    let report = process::process(&config, cameras, &storage, runtime, start_ms, &|done, reads| {
        bar.set_position((done * 1000.0) as u64);
        bar.set_message(format!("{reads} reads"));
    });
    bar.finish_and_clear();
    let report = report?;
    print!("{}", process::summary(&report));
    match report.video.errors.len() {
        0 => Ok(()),
        n => Err(format!("{n} camera(s) failed (reads of the others were written)")),
    }
}

fn follow(runtime: Runtime, config_path: &Path, config: PostConfig, pace_ms: u64, sink_every: u64) -> Result<(), String> {
    use borderflow::follow::{FollowOptions, follow};
    let mut options = FollowOptions { pace: Duration::from_millis(pace_ms), ..FollowOptions::default() };
    options.engine.workers = runtime.workers();
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

fn serve(runtime: Runtime, config_path: &Path, storage: Option<&str>, pace_ms: u64, tick_ms: u64, sink_every: u64, standard_views: bool) -> Result<(), String> {
    use borderflow::serve::{ServeOptions, serve};
    let mut config = PostConfig::from_file(config_path).map_err(|e| e.to_string())?;
    if let Some(storage) = storage {
        config.storage.url = storage_url(storage)?;
    }
    let mut options = ServeOptions::default();
    options.follow.pace = Duration::from_millis(pace_ms);
    options.follow.tick_ms = tick_ms.max(1);
    options.follow.engine.workers = runtime.workers();
    options.follow.engine.sink_every_commits = sink_every.max(1);
    options.follow.engine.standard_views = standard_views;
    options.video_runtime = runtime;
    let stop = stop_on_signals();
    println!("Borderflow post {} ({}) serving, storage {}", config.post.id, config.post.name, config.storage.url);
    serve(config, &options, stop, &|line| println!("{line}")).map_err(|e| format!("{}: {e}", config_path.display()))?;
    println!("stopped");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn sql_command(
    sql: &str,
    data: Option<&Path>,
    config: Option<&Path>,
    server: Option<&str>,
    token: Option<String>,
    ca: Option<&Path>,
    format: borderflow::sql_cli::Format,
    output: Option<&Path>,
) -> Result<(), String> {
    use borderflow::sql_cli::{query_local, query_server, write_result};
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| e.to_string())?;
    let batches = match server {
        Some(url) => {
            let token = token.or_else(|| std::env::var("BORDERFLOW_TOKEN").ok());
            tokio.block_on(query_server(url, token.as_deref(), ca, sql))?
        }
        None => {
            let post = config.map(|c| PostConfig::from_file(c).map_err(|e| e.to_string())).transpose()?;
            let keys = match post.as_ref().and_then(|p| p.peer.as_ref()).and_then(|p| p.hmac_keys.as_ref()) {
                Some(path) => borderflow::engine::config::read_exchange_keys(path).map_err(|e| e.to_string())?,
                None => borderflow::job::demo_exchange_keys(),
            };
            let root = match (data, &post) {
                (Some(data), _) => data.to_path_buf(),
                (None, Some(post)) => {
                    let url = url::Url::parse(&post.storage.url).map_err(|e| format!("storage.url: {e}"))?;
                    url.to_file_path().map_err(|()| format!("storage.url `{}` is not a local folder; query it through `serve`", post.storage.url))?
                }
                (None, None) => return Err("say what to query: --data DIR, --config post.toml or --server URL".into()),
            };
            tokio.block_on(query_local(&root, sql, keys))?
        }
    };
    match output {
        Some(path) => {
            let mut file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
            write_result(&batches, format, &mut file)
        }
        None => write_result(&batches, format, &mut std::io::stdout().lock()),
    }
}

static STOP: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicBool>> = std::sync::OnceLock::new();

extern "C" fn on_stop_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    if let Some(stop) = STOP.get() {
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A flag set by SIGINT or SIGTERM, so `serve` stops cleanly (flushes its
/// sinks and writes its snapshots).
fn stop_on_signals() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let stop = STOP.get_or_init(|| std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false))).clone();
    let handler = on_stop_signal as extern "C" fn(libc::c_int);
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
    stop
}

fn check(config_path: &Path) -> Result<(), String> {
    let config = PostConfig::from_file(config_path).map_err(|e| e.to_string())?;
    println!("{}: valid", config_path.display());
    println!("  post     {} ({}, {}), crossing {}", config.post.id, config.post.name, config.post.country, config.post.crossing);
    if let Some(peer) = &config.peer {
        println!("  peer     {}", peer.post);
    }
    println!("  storage  {}", config.storage.url);
    println!("  cameras  {}", config.cameras.len());
    for camera in &config.cameras {
        println!("    {:<36} lane {:<2} {:<5} {:<9} {}", camera.id, camera.lane, camera.direction, camera.point, camera.uri);
    }
    println!("  views    {}", config.views.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", "));
    Ok(())
}

fn slt(files: &[PathBuf], complete: bool) -> Result<(), String> {
    use borderflow::queries::slt;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    if complete {
        for file in files {
            let changed = runtime.block_on(slt::complete_file(file)).map_err(|e| e.to_string())?;
            println!("{}: {changed} queries' expected rows rewritten from DataFusion's batch answer", file.display());
        }
        return Ok(());
    }
    let (mut passed, mut failed, mut refused, mut unsuccessful) = (0, 0, 0, 0);
    for file in files {
        let report = runtime.block_on(slt::run_file(file)).map_err(|e| e.to_string())?;
        println!("{report}");
        passed += report.passed;
        failed += report.failed;
        refused += report.refused;
        unsuccessful += usize::from(!report.is_success());
    }
    if files.len() > 1 {
        println!("{passed} passed, {failed} failed, {refused} refused");
    }
    match unsuccessful {
        0 => Ok(()),
        n => Err(format!("{n} of {} file(s) did not pass", files.len())),
    }
}

/// The three standard views: counts, top rows, and their scores against
/// the ground truth.
fn print_standard_views(report: &JobReport) {
    use borderflow::scoring::column_values;
    let top = |name: &str, sort: &[(&str, bool)], columns: &[&str], n: usize| -> String {
        let Some(batch) = report.standard.get(name) else { return String::new() };
        let options = arrow::compute::SortOptions::default();
        let sort_columns: Vec<arrow::compute::SortColumn> = sort
            .iter()
            .filter_map(|(c, descending)| {
                batch.column_by_name(c).map(|values| arrow::compute::SortColumn {
                    values: values.clone(),
                    options: Some(arrow::compute::SortOptions { descending: *descending, ..options }),
                })
            })
            .collect();
        let rows = arrow::compute::lexsort_to_indices(&sort_columns, Some(n)).ok();
        let picked = rows.and_then(|rows| {
            let batch = batch.project(&columns.iter().filter_map(|c| batch.schema().index_of(c).ok()).collect::<Vec<_>>()).ok()?;
            arrow::compute::take_record_batch(&batch, &rows).ok()
        });
        picked.and_then(|b| arrow::util::pretty::pretty_format_batches(&[b]).ok()).map_or(String::new(), |t| t.to_string())
    };
    let rows = |name: &str| report.standard.get(name).map_or(0, |b| b.num_rows());
    println!();
    println!("cross_border_matches: {} matches", rows("cross_border_matches"));
    if let Some(score) = &report.match_score {
        println!("  against the ground truth: {score}");
    }
    println!("{}", top("cross_border_matches", &[("entry_at", true)], &["crossing", "exit_post_id", "entry_post_id", "plate_norm", "exit_at", "entry_at", "transit_s", "match"], 5));
    println!("dwell_times: {} passages through a post; dwell_percentiles: {} post-hours; transit_percentiles: {} post-hours", rows("dwell_times"), rows("dwell_percentiles"), rows("transit_percentiles"));
    println!("{}", top("dwell_percentiles", &[("passages", true)], &["post_id", "direction", "hour", "passages", "p50_s", "p90_s", "p99_s"], 5));
    if let Some(flags) = report.standard.get("risk_flags") {
        let mut per_rule: BTreeMap<String, usize> = BTreeMap::new();
        for rule in column_values(flags, "rule") {
            *per_rule.entry(rule).or_default() += 1;
        }
        println!(
            "risk_flags: {} flags ({})",
            flags.num_rows(),
            per_rule.iter().map(|(r, n)| format!("{r} {n}")).collect::<Vec<_>>().join(", ")
        );
        for score in &report.flag_scores {
            println!("  {score}");
        }
        println!("{}", top("risk_flags", &[("severity", true), ("flagged_at", true)], &["rule", "plate_norm", "post_id", "flagged_at", "severity", "detail"], 8));
    }
}

fn print_report(report: &JobReport) {
    use borderflow::engine::{Direction, Point};
    println!();
    println!("Passages per post (standing view passages_per_post, {} workers):", report.workers);
    println!("  {:<20} {:>7} {:>9} {:>7} {:>9}", "post", "entry", "", "exit", "");
    println!("  {:<20} {:>7} {:>9} {:>7} {:>9}", "", "arrival", "departure", "arrival", "departure");
    let mut posts: Vec<&str> = report.counts.keys().map(|k| k.post_id.as_str()).collect();
    posts.dedup();
    for post in posts {
        let count = |direction, point| {
            report
                .counts
                .iter()
                .find(|(k, _)| k.post_id == post && k.direction == direction && k.point == point)
                .map_or(0, |(_, n)| *n)
        };
        println!(
            "  {:<20} {:>7} {:>9} {:>7} {:>9}",
            post,
            count(Direction::Entry, Point::Arrival),
            count(Direction::Entry, Point::Departure),
            count(Direction::Exit, Point::Arrival),
            count(Direction::Exit, Point::Departure),
        );
    }
    println!();
    println!("{} reads of {} simulated passages; {} view changes.", report.reads, report.passages, report.view_changes);
    println!(
        "Anomalies in the ground truth (planted, and produced by chance): {}",
        report.anomalies.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
    );
    if let Some(video) = &report.video_lanes {
        println!("Video: {}.", video.summary());
    }
    println!(
        "SQL views: {}.",
        report.sql_views.iter().map(|(name, rows, changes)| format!("{name} {rows} rows ({changes} changes)")).collect::<Vec<_>>().join(", ")
    );
    println!("Checked: DataFusion over the written Parquet gives the same counts as the standing view,");
    println!("         and DataFusion's batch answer equals every SQL view's incremental result.");
    let bytes: usize = report.files.iter().map(|f| f.bytes).sum();
    println!();
    println!("Wrote {} Parquet files ({:.1} MB) under {}", report.files.len(), bytes as f64 / 1e6, report.storage_url);
    println!("  reads/<post>/<date>/*.parquet, views/<view>/{{changes,snapshot}}, ground_truth/*.parquet");
    let timings: Vec<String> =
        report.timings.iter().map(|(stage, d)| format!("{stage} {:.2}s", d.as_secs_f64())).collect();
    println!("Timings: {}", timings.join(", "));
    if !report.standard.is_empty() {
        print_standard_views(report);
        let names: Vec<&str> = report.standard.keys().map(String::as_str).collect();
        println!(
            "The standard views are written to {}/views/{{{}}}/{{snapshot,changes/part-0}}.parquet",
            report.storage_url.trim_end_matches('/'),
            names.join(",")
        );
    }
}
