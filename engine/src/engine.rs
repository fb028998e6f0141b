//! The engine: one post's tables and standing views, kept durable.
//!
//! [`Engine::open`] takes a [`PostConfig`], builds the post's tables and
//! views ([`crate::post::post_views`]), opens the write-ahead log in the
//! post's object store and replays it, so every view is back where it was
//! before any new input is accepted. Then:
//!
//! - [`Engine::push_reads`] (and [`Engine::upsert_watchlist`]) append the
//!   change to the log and return only once it is durable; then the change
//!   is applied and committed at its time. The commit time (ingestion time)
//!   is in the log, so a replay commits the same changes at the same times
//!   and every view goes through the same states. Reads are deduplicated by
//!   `read_id` (retries and replays push nothing twice).
//! - [`Engine::reload_watchlist`] makes the `watchlist` table what the
//!   configured file (`[watchlist]`) says when the file changed: changed
//!   entries upserted, entries gone from the file closed (see
//!   [`crate::watchlist_file`]). `serve` calls it at start and every
//!   `[watchlist] reload`; an embedder calls it when it likes.
//! - Retention of `reads` is part of every commit: reads whose `captured_at`
//!   is older than `storage.retention.reads` before the commit time are
//!   retracted from the `reads` table, so every view drops what was derived
//!   from them.
//! - Each view's changes go to a changelog sink: Parquet parts
//!   `views/<view>/changes/part-<first time>-<last commit time>.parquet`,
//!   written every [`EngineOptions::sink_every_commits`] commits and at
//!   shutdown. A part holds every change up to its last commit time, and
//!   after a restart a sink writes only changes after the newest part's
//!   time: the sink is idempotent, nothing repeats and nothing is skipped.
//! - Every read applied goes to the reads' Parquet history,
//!   `reads/<post>/<date>/part-<first time>-<last commit time>.parquet`,
//!   written with the changelog parts and idempotent the same way
//!   ([`crate::history`]): a read in the log is in the history after
//!   the next flush, whenever the process was killed.
//! - After a flush, at most once per [`EngineOptions::retention_sweep_ms`] of
//!   engine time, the store is swept: expired reads leave the log (whole
//!   segments and date partitions where possible) and from the reads'
//!   history, plate crops older than `storage.retention.crops` go,
//!   changelog parts older than `storage.retention.flags` are deleted,
//!   recorded video segments (`[recording] path`) that ended more than
//!   `storage.retention.video` ago are deleted, and an audit record
//!   `audit/<post>/retention/<time>.json` says what went and when. The sweep
//!   only removes reads already retracted in flushed changelogs, so a
//!   replay after it still reproduces every change not yet written.
//!
//! - Pre-arrival records from the neighbour's post
//!   ([`Engine::push_pre_arrival_at`], the exchange's receiving side) are
//!   logged and applied like reads, deduplicated by `read_id` (the
//!   exchange delivers at least once; the engine applies once), and expire
//!   with the reads' retention. The post's own reads are hashed into
//!   `read_keys` as they are applied, so `cross_border_matches` joins them.
//!
//! - Status: [`Engine::exchange_status`] (the exchange with the neighbour)
//!   and [`Engine::camera_health`] (the cameras feeding the engine, attached
//!   with [`Engine::attach_cameras`]: the `run` and `serve` commands do).
//!
//! [`Engine::shutdown`] flushes the sinks, writes each view's snapshot
//! (`views/<view>/snapshot.parquet`), sweeps and closes the log.


use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use borderflow_queries::{StandingViews, ViewError};
use borderflow_types::{
    CameraHealth, CameraStats, ExchangeKeys, ExchangeStatus, PlateRead, PostConfig, StatusHandle, plate_read_schema,
    watchlist_schema,
};

use borderflow_runtime::Runtime;

use crate::storage::{Storage, StorageError};
use crate::wal::{Wal, WalError, WalOptions};
use crate::history::{HistoryError, HistorySink, parquet_bytes, part_range};
use crate::post::{PostTables, post_exchange_keys, post_views};
use crate::sinks::{Sink, after_time, with_change_columns};

/// Why the engine could not start or take a change.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    View(#[from] ViewError),
    #[error(transparent)]
    Query(#[from] borderflow_queries::QueryError),
    /// A configured reference table could not be read.
    #[error("{0}")]
    Table(String),
    #[error("{0}")]
    Input(String),
    #[error("sink `{path}`: {message}")]
    Sink { path: String, message: String },
}

impl From<HistoryError> for EngineError {
    fn from(error: HistoryError) -> Self {
        match error {
            HistoryError::Storage(error) => EngineError::Storage(error),
            HistoryError::File { path, message } => EngineError::Sink { path, message },
        }
    }
}

/// How the engine runs.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// The timely workers the views run on (shared with the process's
    /// other dataflows, e.g. its cameras).
    pub runtime: Runtime,
    /// Write the views' changelog parts every this many commits (and at shutdown).
    pub sink_every_commits: u64,
    /// Sweep the store for expired data at most this often, in engine time.
    pub retention_sweep_ms: u64,
    /// Also maintain the standard views of `queries/sql/`
    /// (`cross_border_matches`, `dwell_times`, `risk_flags`).
    pub standard_views: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { runtime: Runtime::with_workers(1), sink_every_commits: 12, retention_sweep_ms: 3_600_000, standard_views: false }
    }
}

/// What recovery found and how long it took.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    pub segments: usize,
    pub records: usize,
    pub reads: usize,
    /// A torn append cut back: the segment and the bytes dropped.
    pub cut_back: Option<(String, u64)>,
    /// Reading the log and replaying it into the views.
    pub duration: Duration,
}

/// One post's engine (see the module documentation).
pub struct Engine {
    pub(crate) config: PostConfig,
    pub(crate) options: EngineOptions,
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) storage: Storage,
    pub(crate) wal: Wal,
    pub(crate) views: StandingViews,
    /// Reads in the `reads` table, by (captured_at, read_id), for retention.
    pub(crate) reads: BTreeMap<(i64, String), PlateRead>,
    pub(crate) read_ids: HashSet<String>,
    /// Pre-arrival rows by (captured_at, read_id), for retention, and their read ids.
    pub(crate) pre_arrival: BTreeMap<(i64, String), RecordBatch>,
    pub(crate) pre_arrival_ids: HashSet<String>,
    pub(crate) keys: ExchangeKeys,
    pub(crate) exchange: Option<StatusHandle>,
    /// The counters of the cameras feeding the engine, for [`camera_health`](Self::camera_health).
    pub(crate) cameras: Vec<Arc<CameraStats>>,
    /// The watchlist's rows by plate (its first column), for upserts.
    pub(crate) watchlist: BTreeMap<String, Vec<RecordBatch>>,
    /// The digest of the watchlist file last applied (`[watchlist]`).
    pub(crate) watchlist_digest: Option<[u8; 32]>,
    /// The last watchlist file refused (its digest, when it could be read)
    /// and why: a refusal is logged once, and the same bytes are not
    /// parsed again at every reload.
    pub(crate) watchlist_refusal: Option<(Option<[u8; 32]>, String)>,
    pub(crate) sinks: BTreeMap<String, Sink>,
    /// The reads' Parquet history (`reads/<post>/<date>/`).
    pub(crate) history: HistorySink,
    pub(crate) commits_since_flush: u64,
    /// Every view's changes up to this commit time are in the store.
    pub(crate) flushed_through: u64,
    pub(crate) last_sweep_ms: u64,
    pub(crate) recovery: RecoveryReport,
}

pub(crate) const READS: &str = "reads";
pub(crate) const DAY_MS: i64 = 86_400_000;
pub(crate) const WATCHLIST: &str = "watchlist";
pub(crate) const PRE_ARRIVAL: &str = "pre_arrival";
pub(crate) const READ_KEYS: &str = "read_keys";

impl Engine {
    /// Builds the post's views, opens its log and replays it (see the module
    /// documentation). Returns once every view is recovered.
    pub fn open(config: PostConfig, options: EngineOptions) -> Result<Engine, EngineError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| EngineError::Input(format!("starting the async runtime: {e}")))?;
        let storage = Storage::open(&config.storage)?;
        let empty_watchlist = RecordBatch::new_empty(watchlist_schema());
        let keys = post_exchange_keys(&config).map_err(EngineError::Input)?;
        let post = PostTables { views: &config.views, tables: &config.tables, watchlist: &empty_watchlist, keys: &keys, standard: options.standard_views };
        let mut views = runtime.block_on(post_views(&post, &options.runtime))?;
        // Changes leave through the sinks' subscriptions; memory holds the
        // views' contents, not their history.
        views.keep_changelogs(false);
        let started = Instant::now();
        let mut wal_options = WalOptions::new(&config.post.id);
        wal_options.event_columns.insert(READS.to_string(), "captured_at".to_string());
        wal_options.event_columns.insert(PRE_ARRIVAL.to_string(), "captured_at".to_string());
        let (wal, records, recovered) = runtime.block_on(Wal::open(storage.clone(), wal_options))?;

        // Sinks: what each view's parts already hold, and the view's first
        // contents (from reference tables) as changes at the setup time.
        let mut sinks = BTreeMap::new();
        let listed = runtime.block_on(storage.list("views"))?;
        for name in views.view_names() {
            let prefix = format!("views/{name}/changes/");
            let written_through = listed
                .iter()
                .filter_map(|o| o.path.strip_prefix(&prefix))
                .filter_map(part_range)
                .map(|(_, to)| to)
                .max()
                .unwrap_or(0);
            let initial = with_change_columns(&views.snapshot(&name)?, 1, views.now())?;
            let pending = after_time(&initial, written_through).into_iter().collect();
            sinks.insert(name.clone(), Sink { changes: views.subscribe(&name)?, pending, written_through });
        }
        let flushed_through = sinks.values().map(|s| s.written_through).min().unwrap_or(0);
        let history = runtime.block_on(HistorySink::open(&storage, &config.post.id))?;
        let mut engine = Engine {
            config,
            options,
            runtime,
            storage,
            wal,
            views,
            reads: BTreeMap::new(),
            read_ids: HashSet::new(),
            pre_arrival: BTreeMap::new(),
            pre_arrival_ids: HashSet::new(),
            keys,
            exchange: None,
            cameras: Vec::new(),
            watchlist: BTreeMap::new(),
            watchlist_digest: None,
            watchlist_refusal: None,
            sinks,
            history,
            commits_since_flush: 0,
            flushed_through,
            last_sweep_ms: 0,
            recovery: RecoveryReport::default(),
        };
        let mut reads = 0;
        for record in &records {
            reads += if record.table == READS { record.batch.num_rows() } else { 0 };
            engine.apply(record)?;
        }
        engine.drain_sinks();
        engine.recovery = RecoveryReport {
            segments: recovered.segments,
            records: recovered.records,
            reads,
            cut_back: recovered.cut_back,
            duration: started.elapsed(),
        };
        Ok(engine)
    }

    /// What recovery found when the engine opened.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The post's configuration.
    pub fn config(&self) -> &PostConfig {
        &self.config
    }

    /// The commit time of the last change in the log (0: the log is empty).
    /// A source resumes after it.
    pub fn log_time_ms(&self) -> u64 {
        self.wal.last_time_ms()
    }

    /// The last committed time of the views.
    pub fn now(&self) -> u64 {
        self.views.now()
    }

    /// Reads in the `reads` table now (within retention).
    pub fn live_reads(&self) -> usize {
        self.reads.len()
    }

    /// Whether a read (by `read_id`) is in the `reads` table.
    pub fn has_read(&self, read_id: &str) -> bool {
        self.read_ids.contains(read_id)
    }

    /// The keys plates are hashed with for the exchange.
    pub fn exchange_keys(&self) -> &ExchangeKeys {
        &self.keys
    }

    /// Distinct read ids of the pre-arrival records in the table now.
    pub fn pre_arrival_reads(&self) -> usize {
        self.pre_arrival_ids.len()
    }

    /// Attaches the exchange's status, reported by [`exchange_status`](Self::exchange_status).
    pub fn attach_exchange(&mut self, status: StatusHandle) {
        self.exchange = Some(status);
    }

    /// The exchange with the neighbour's post: peer state, outbox depth,
    /// lag, records received (`None`: no exchange attached).
    pub fn exchange_status(&self) -> Option<ExchangeStatus> {
        self.exchange.as_ref().map(|s| s.get())
    }

    /// What the write-ahead log has appended since the engine opened:
    /// bytes, records, and how long each took to be durable.
    pub fn wal_stats(&self) -> Arc<borderflow_types::WalStats> {
        self.wal.stats()
    }

    /// Attaches the counters of the cameras whose reads are pushed, reported
    /// by [`camera_health`](Self::camera_health).
    pub fn attach_cameras(&mut self, cameras: Vec<Arc<CameraStats>>) {
        self.cameras = cameras;
    }

    /// Each attached camera's health now: state, frames in, processed,
    /// dropped and skipped, reconnects, its last error (empty: no cameras).
    pub fn camera_health(&self) -> Vec<CameraHealth> {
        self.cameras.iter().map(|c| c.health()).collect()
    }

    /// Writes an object (a plate crop, …) at `path` in the post's store;
    /// returns its URL.
    pub fn put_object(&self, path: &str, bytes: Vec<u8>) -> Result<String, EngineError> {
        self.runtime.block_on(self.storage.put(path, bytes))?;
        Ok(format!("{}/{path}", self.storage.url().trim_end_matches('/')))
    }

    /// The object at `path` in the post's store; `None` when there is none.
    pub fn get_object(&self, path: &str) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.runtime.block_on(self.storage.get_if_exists(path))?)
    }

    /// Commits whose view changes and reads are not yet written to the store
    /// (see [`flush`](Self::flush)).
    pub fn unflushed_commits(&self) -> u64 {
        self.commits_since_flush
    }

    /// Files of the reads' history this engine has written since it opened.
    pub fn history_files_written(&self) -> usize {
        self.history.files_written()
    }

    /// Every later commit's changes to a view (its columns, `_diff`, `_time`).
    pub fn subscribe(&mut self, view: &str) -> Result<Receiver<RecordBatch>, EngineError> {
        Ok(self.views.subscribe(view)?)
    }

    /// A view's current contents.
    pub fn snapshot(&self, view: &str) -> Result<RecordBatch, EngineError> {
        Ok(self.views.snapshot(view)?)
    }

    /// The names of the post's tables: the engine's own and the config's.
    pub fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = borderflow_types::ENGINE_TABLES.iter().map(|t| t.to_string()).collect();
        names.extend(self.config.tables.iter().map(|t| t.name.clone()));
        names
    }

    /// A table's current contents.
    pub fn table(&self, name: &str) -> Result<RecordBatch, EngineError> {
        Ok(self.views.table(name)?)
    }

    /// The names of the post's views.
    pub fn view_names(&self) -> Vec<String> {
        self.views.view_names()
    }

    /// Ad-hoc SQL over the tables and the views' snapshots, `now()` at the last commit.
    pub fn sql(&mut self, sql: &str) -> Result<RecordBatch, EngineError> {
        Ok(self.runtime.block_on(self.views.query(sql))?)
    }

    /// The post's object store.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Flushes the sinks, writes the views' snapshots, sweeps and closes the log.
    pub fn shutdown(mut self) -> Result<(), EngineError> {
        self.flush()?;
        for name in self.views.view_names() {
            let snapshot = self.views.snapshot(&name)?;
            let path = format!("views/{name}/snapshot.parquet");
            let bytes = parquet_bytes(&snapshot).map_err(|message| EngineError::Sink { path: path.clone(), message })?;
            self.runtime.block_on(self.storage.put(&path, bytes))?;
        }
        self.sweep()?;
        self.wal.seal();
        Ok(())
    }
}

/// The schema of pushed reads.
pub fn reads_schema() -> arrow::datatypes::SchemaRef {
    plate_read_schema()
}
