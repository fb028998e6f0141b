//! The `borderflow` command line: one module per command, each with its
//! `command` entry point. The commands assemble the engine, the connectors
//! and the operators; the work itself is in those crates.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::Runtime;
use demo::job::Progress;

pub mod check;
pub mod clip;
pub mod demo;
pub mod eval_images;
pub mod process;
pub mod replay;
pub mod run;
pub mod serve;
pub mod sql;

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
pub enum RunSource {
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
        /// resumes, and retention applies (see docs/operations.md).
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
    /// Runs a post as a service: its scenario (as `run --follow`) or its
    /// cameras, the pre-arrival exchange with the peer post ([peer],
    /// [serve] exchange_listen), Flight SQL for analysts ([serve]
    /// sql_listen), the operator console ([serve] console_listen) and
    /// /metrics ([serve] metrics_listen), until interrupted (Ctrl-C or SIGTERM).
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
    /// Backfill standing views from Parquet tables: feed their rows in
    /// order, commit after every batch, write each view's snapshot, and
    /// print one JSON line of figures.
    Replay {
        /// A table to feed: NAME=PATH, a Parquet file or a folder of them. Repeat for more.
        #[arg(long = "table", value_name = "NAME=PATH", required = true)]
        tables: Vec<String>,
        /// A file of `CREATE VIEW name AS SELECT …;` statements. Repeat for more.
        #[arg(long = "views", value_name = "FILE.sql", required = true)]
        views: Vec<PathBuf>,
        /// Rows fed between two commits.
        #[arg(long, default_value_t = 10_000)]
        batch_rows: usize,
        /// Feed the rows in this column's order (an integer or timestamp column), across tables.
        #[arg(long)]
        order_by: Option<String>,
        /// Write each view's snapshot here, as `<view>.parquet`.
        #[arg(long)]
        out: Option<PathBuf>,
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
        format: sql::Format,
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
    /// Exports the evidence of one read: the recorded video around it as
    /// an MP4, its plate crop, a sidecar JSON with SHA-256 hashes, and an
    /// audit record in the post's store.
    Clip {
        #[arg(long)]
        config: PathBuf,
        /// The read's `read_id` (as the reads' history and the views give it).
        #[arg(long)]
        read_id: String,
        /// Video before the read's `captured_at` (ms, s or m; e.g. 5s).
        #[arg(long, default_value = "5s", value_parser = clip::parse_period)]
        before: Duration,
        /// Video after it.
        #[arg(long, default_value = "5s", value_parser = clip::parse_period)]
        after: Duration,
        /// The MP4 to write (default: READ_ID.mp4 here); the sidecar and the crop go beside it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Who exports, for the sidecar and the audit record (default: the login name).
        #[arg(long)]
        user: Option<String>,
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
        /// Read regions again only when no reading of the first pass is this confident (above 1: always).
        #[arg(long, default_value_t = 0.85)]
        refine_below: f32,
        /// The longer side, in pixels, a region read again is scaled up to for the detector.
        #[arg(long, default_value_t = 640)]
        refine_side: u32,
        /// Plate candidates (words and chains of words) recognised per detection at most.
        #[arg(long, default_value_t = 12)]
        max_candidates: usize,
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
}

/// Runs the command line: parses the arguments, runs the command, and says
/// what went wrong on standard error.
pub fn main() -> ExitCode {
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
            demo::command(runtime, &out, seed, date, days, traffic_scale, !no_standard_views, view_commit_minutes)
        }
        Command::Process { videos, config, out, start } => process::command(runtime, &videos, &config, out.as_deref(), start),
        Command::Run { config, source, storage, follow, pace_ms, sink_every } => {
            run::command(runtime, &config, source, storage.as_deref(), follow, pace_ms, sink_every)
        }
        Command::Replay { tables, views, batch_rows, order_by, out } => {
            replay::command(runtime, replay::ReplayOptions { tables, views, batch_rows, order_by, out })
        }
        Command::Check { config } => check::command(&config),
        Command::Clip { config, read_id, before, after, out, user } => {
            clip::command(clip::ClipRequest { config, read_id, before, after, out, user })
        }
        Command::Sql { sql, data, config, server, token, ca, format, output } => {
            sql::command(&sql, data.as_deref(), config.as_deref(), server.as_deref(), token, ca.as_deref(), format, output.as_deref())
        }
        Command::Serve { config, storage, pace_ms, tick_ms, sink_every, standard_views } => {
            serve::command(runtime, &config, storage.as_deref(), pace_ms, tick_ms, sink_every, standard_views)
        }
        Command::EvalImages { dir, csv, limit, detector_side, refine, refine_below, refine_side, max_candidates, enhance_below, second_opinions, country } => {
            let mut reader = borderflow_operators::PlateReaderOptions::default();
            reader.detector.max_side = detector_side;
            reader.detector.min_side = reader.detector.min_side.min(detector_side);
            reader.refine_regions = refine;
            reader.refine_below = refine_below;
            reader.refine_side = refine_side;
            reader.max_candidates = max_candidates;
            reader.enhance_below = enhance_below;
            reader.second_opinions = second_opinions;
            reader.prefer_country = country;
            let workers = cli.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            eval_images::command(&dir, csv, limit, reader, workers)
        }
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
pub(crate) fn storage_url(out: &str) -> Result<String, String> {
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

pub(crate) struct Spinner(pub(crate) ProgressBar);

impl Spinner {
    pub(crate) fn new() -> Self {
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

static STOP: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicBool>> = std::sync::OnceLock::new();

extern "C" fn on_stop_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    if let Some(stop) = STOP.get() {
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A flag set by SIGINT or SIGTERM, so `serve` stops cleanly (flushes its
/// sinks and writes its snapshots).
pub(crate) fn stop_on_signals() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let stop = STOP.get_or_init(|| std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false))).clone();
    let handler = on_stop_signal as extern "C" fn(libc::c_int);
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
    stop
}
