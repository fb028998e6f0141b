//! The embedded engine: one post's tables and standing views, kept durable.
//!
//! [`Engine::open`] takes a [`PostConfig`], builds the post's tables and
//! views ([`crate::job::post_views`]), opens the write-ahead log in the
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
//!   ([`crate::reads_history`]): a read in the log is in the history after
//!   the next flush, whenever the process was killed.
//! - After a flush, at most once per [`EngineOptions::retention_sweep_ms`] of
//!   engine time, the store is swept: expired reads leave the log (whole
//!   segments and date partitions where possible) and from the reads'
//!   history, plate crops older than `storage.retention.crops` go,
//!   changelog parts older than `storage.retention.flags` are deleted, and
//!   an audit record
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
//!   with [`Engine::attach_cameras`]: `crate::post_cameras` does).
//!
//! [`Engine::shutdown`] flushes the sinks, writes each view's snapshot
//! (`views/<view>/snapshot.parquet`), sweeps and closes the log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use borderflow_engine::storage::{Storage, StorageError};
use borderflow_engine::wal::{Wal, WalError, WalOp, WalOptions, WalRecord};
use borderflow_engine::{
    CameraHealth, CameraStats, ExchangeKeys, PlateRead, PostConfig, conform_watchlist, plate_read_schema, pre_arrival_schema, read_keys_batch, reads_from_batch, reads_to_batch,
    watchlist_schema,
};
use borderflow_queries::{StandingViews, ViewError};

use crate::job::{JobError, PostTables, post_exchange_keys, post_views};
use crate::reads_history::{HistoryError, HistorySink, parquet_bytes, part_range, sweep_crops, sweep_history};

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
    Setup(#[from] JobError),
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

/// What a watchlist reload changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchlistChange {
    /// Entries in the file.
    pub entries: usize,
    /// Entries new or changed, upserted.
    pub upserted: usize,
    /// Entries that left the file, closed.
    pub closed: usize,
}

/// How the engine runs.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Timely worker threads for the views.
    pub workers: usize,
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
        EngineOptions { workers: 1, sink_every_commits: 12, retention_sweep_ms: 3_600_000, standard_views: false }
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

/// One view's changelog sink.
struct Sink {
    changes: Receiver<RecordBatch>,
    pending: Vec<RecordBatch>,
    /// Changes up to this time are in the store already.
    written_through: u64,
}

/// One post's engine (see the module documentation).
pub struct Engine {
    config: PostConfig,
    options: EngineOptions,
    runtime: tokio::runtime::Runtime,
    storage: Storage,
    wal: Wal,
    views: StandingViews,
    /// Reads in the `reads` table, by (captured_at, read_id), for retention.
    reads: BTreeMap<(i64, String), PlateRead>,
    read_ids: HashSet<String>,
    /// Pre-arrival rows by (captured_at, read_id), for retention, and their read ids.
    pre_arrival: BTreeMap<(i64, String), RecordBatch>,
    pre_arrival_ids: HashSet<String>,
    keys: ExchangeKeys,
    exchange: Option<borderflow_connectors::exchange::StatusHandle>,
    /// The counters of the cameras feeding the engine, for [`camera_health`](Self::camera_health).
    cameras: Vec<Arc<CameraStats>>,
    /// The watchlist's rows by plate (its first column), for upserts.
    watchlist: BTreeMap<String, Vec<RecordBatch>>,
    /// The digest of the watchlist file last applied (`[watchlist]`).
    watchlist_digest: Option<[u8; 32]>,
    /// The last watchlist file refused (its digest, when it could be read)
    /// and why: a refusal is logged once, and the same bytes are not
    /// parsed again at every reload.
    watchlist_refusal: Option<(Option<[u8; 32]>, String)>,
    sinks: BTreeMap<String, Sink>,
    /// The reads' Parquet history (`reads/<post>/<date>/`).
    history: HistorySink,
    commits_since_flush: u64,
    /// Every view's changes up to this commit time are in the store.
    flushed_through: u64,
    last_sweep_ms: u64,
    recovery: RecoveryReport,
}

const READS: &str = "reads";
const DAY_MS: i64 = 86_400_000;
const WATCHLIST: &str = "watchlist";
const PRE_ARRIVAL: &str = "pre_arrival";
const READ_KEYS: &str = "read_keys";

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
        let mut views = runtime.block_on(post_views(&post, options.workers))?;
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

    /// Pushes reads (the plate read schema) at the current wall-clock time;
    /// returns once they are durable and applied. See [`push_reads_at`](Self::push_reads_at).
    pub fn push_reads(&mut self, batch: &RecordBatch) -> Result<usize, EngineError> {
        let wall = chrono::Utc::now().timestamp_millis().max(0) as u64;
        self.push_reads_at(batch, wall.max(self.log_time_ms() + 1))
    }

    /// Pushes reads committed at `time_ms` (after the last commit): reads
    /// already in the table (by `read_id`) or already expired are dropped,
    /// the rest appended to the log; the call returns once they are durable,
    /// then commits them. Returns how many reads were new. On an error
    /// nothing was applied, and pushing the same batch again is safe.
    pub fn push_reads_at(&mut self, batch: &RecordBatch, time_ms: u64) -> Result<usize, EngineError> {
        self.check_time(time_ms)?;
        let reads = reads_from_batch(batch).map_err(|e| EngineError::Input(format!("reads batch: {e}")))?;
        let cutoff = self.reads_cutoff(time_ms);
        let mut seen = HashSet::new();
        let fresh: Vec<PlateRead> = reads
            .into_iter()
            .filter(|r| r.captured_at_ms >= cutoff && !self.read_ids.contains(&r.read_id) && seen.insert(r.read_id.clone()))
            .collect();
        let batch = reads_to_batch(&fresh);
        self.log_and_apply(time_ms, WalOp::Insert, READS, batch)?;
        Ok(fresh.len())
    }

    /// Pushes pre-arrival records from the neighbour's post
    /// ([`pre_arrival_schema`]) committed at `time_ms`: rows of a `read_id`
    /// already received, or captured before the reads' retention, are
    /// dropped; the rest are logged, then applied. Returns (new rows,
    /// dropped rows). Pushing the same batch again is safe.
    pub fn push_pre_arrival_at(&mut self, batch: &RecordBatch, time_ms: u64) -> Result<(usize, usize), EngineError> {
        self.check_time(time_ms)?;
        if batch.schema().fields() != pre_arrival_schema().fields() {
            return Err(EngineError::Input(format!("pre-arrival batch: schema {:?} is not the pre-arrival schema", batch.schema())));
        }
        let ids = batch.column(0).as_any().downcast_ref::<StringArray>().ok_or_else(|| EngineError::Input("pre-arrival batch: read_id is not text".into()))?;
        let captured = batch
            .column_by_name("captured_at")
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::TimestampMillisecondArray>())
            .ok_or_else(|| EngineError::Input("pre-arrival batch: captured_at is not a timestamp".into()))?;
        let cutoff = self.reads_cutoff(time_ms);
        let keep: arrow::array::BooleanArray =
            (0..batch.num_rows()).map(|i| Some(!self.pre_arrival_ids.contains(ids.value(i)) && captured.value(i) >= cutoff)).collect();
        let fresh = arrow::compute::filter_record_batch(batch, &keep).map_err(|e| EngineError::Input(format!("pre-arrival batch: {e}")))?;
        let new = fresh.num_rows();
        self.log_and_apply(time_ms, WalOp::Insert, PRE_ARRIVAL, fresh)?;
        Ok((new, batch.num_rows() - new))
    }

    /// Like [`push_pre_arrival_at`](Self::push_pre_arrival_at), committed
    /// just after the last commit.
    pub fn push_pre_arrival(&mut self, batch: &RecordBatch) -> Result<(usize, usize), EngineError> {
        let time = self.log_time_ms().max(self.views.now()) + 1;
        self.push_pre_arrival_at(batch, time)
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
    pub fn attach_exchange(&mut self, status: borderflow_connectors::exchange::StatusHandle) {
        self.exchange = Some(status);
    }

    /// The exchange with the neighbour's post: peer state, outbox depth,
    /// lag, records received (`None`: no exchange attached).
    pub fn exchange_status(&self) -> Option<borderflow_connectors::exchange::ExchangeStatus> {
        self.exchange.as_ref().map(|s| s.get())
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
        let folder = path.rsplit_once('/').map_or("", |(folder, _)| folder);
        let listed = self.runtime.block_on(self.storage.list(folder))?;
        if !listed.iter().any(|o| o.path == path) {
            return Ok(None);
        }
        Ok(Some(self.runtime.block_on(self.storage.get(path))?))
    }

    /// Files of the reads' history this engine has written since it opened.
    pub fn history_files_written(&self) -> usize {
        self.history.files_written()
    }

    /// Replaces the watchlist rows that have the same `plate` (first column)
    /// as the batch's rows with them, at the current wall-clock time.
    pub fn upsert_watchlist(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        let wall = chrono::Utc::now().timestamp_millis().max(0) as u64;
        self.upsert_watchlist_at(batch, wall.max(self.log_time_ms() + 1))
    }

    /// [`upsert_watchlist`](Self::upsert_watchlist) committed at `time_ms`.
    pub fn upsert_watchlist_at(&mut self, batch: &RecordBatch, time_ms: u64) -> Result<(), EngineError> {
        self.check_time(time_ms)?;
        let batch = conform_watchlist(batch, "watchlist upsert").map_err(EngineError::Input)?;
        self.log_and_apply(time_ms, WalOp::Upsert, WATCHLIST, batch)
    }

    /// Reads the configured watchlist file (`[watchlist]`, see
    /// [`crate::watchlist_file`]) and, if its bytes changed since the last
    /// read, makes the `watchlist` table say what it says, committed at
    /// `time_ms`: new and changed entries are upserted, entries that left
    /// the file are closed at `time_ms` (`valid_to`). `None` when the config
    /// has no `[watchlist]` or the file is unchanged. A file that cannot be
    /// read or parsed is an [`EngineError::Input`] naming it, logged once
    /// (not at every reload while it stays so), and the watchlist stays as
    /// it was; the same refused bytes are not parsed again.
    pub fn reload_watchlist_at(&mut self, time_ms: u64) -> Result<Option<WatchlistChange>, EngineError> {
        let Some(watchlist) = &self.config.watchlist else { return Ok(None) };
        let file = match self.runtime.block_on(crate::watchlist_file::fetch(&watchlist.from, &self.storage)) {
            Ok(file) => file,
            Err(message) => return Err(self.refuse_watchlist(None, message)),
        };
        if self.watchlist_digest == Some(file.digest) {
            self.watchlist_refusal = None;
            return Ok(None);
        }
        if let Some((Some(digest), message)) = &self.watchlist_refusal
            && *digest == file.digest
        {
            return Err(EngineError::Input(message.clone()));
        }
        let change = match crate::watchlist_file::parse(&file).map(|batch| self.replace_watchlist_at(&batch, time_ms)) {
            Ok(Ok(change)) => change,
            Err(message) | Ok(Err(EngineError::Input(message))) => return Err(self.refuse_watchlist(Some(file.digest), message)),
            Ok(Err(error)) => return Err(error),
        };
        self.watchlist_digest = Some(file.digest);
        self.watchlist_refusal = None;
        tracing::info!(
            post = %self.config.post.id,
            file = %file.origin,
            entries = change.entries,
            upserted = change.upserted,
            closed = change.closed,
            "watchlist read"
        );
        Ok(Some(change))
    }

    /// Remembers a refused watchlist file and logs the refusal unless it
    /// is the one already logged.
    fn refuse_watchlist(&mut self, digest: Option<[u8; 32]>, message: String) -> EngineError {
        if self.watchlist_refusal.as_ref().is_none_or(|(_, logged)| *logged != message) {
            tracing::error!(
                post = %self.config.post.id,
                error = %message,
                entries = self.watchlist_entries(),
                "the watchlist file was not taken; the watchlist stays as it was"
            );
        }
        self.watchlist_refusal = Some((digest, message.clone()));
        EngineError::Input(message)
    }

    /// [`reload_watchlist_at`](Self::reload_watchlist_at) at the current
    /// wall-clock time (after the last commit).
    pub fn reload_watchlist(&mut self) -> Result<Option<WatchlistChange>, EngineError> {
        let wall = chrono::Utc::now().timestamp_millis().max(0) as u64;
        self.reload_watchlist_at(wall.max(self.log_time_ms() + 1))
    }

    /// Makes the watchlist `batch` (the whole list), committed at `time_ms`:
    /// entries whose rows differ from the held ones are upserted, and the
    /// open entries of plates not in `batch` are closed at `time_ms`. Nothing
    /// is logged when nothing changes.
    pub fn replace_watchlist_at(&mut self, batch: &RecordBatch, time_ms: u64) -> Result<WatchlistChange, EngineError> {
        self.check_time(time_ms)?;
        let batch = conform_watchlist(batch, "watchlist").map_err(EngineError::Input)?;
        let plates = batch.column(0).as_any().downcast_ref::<StringArray>().expect("conformed: plate is Utf8");
        let mut listed: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for row in 0..batch.num_rows() {
            listed.entry(plates.value(row)).or_default().push(row);
        }
        let schema = batch.schema();
        let concat = |rows: &[RecordBatch]| arrow::compute::concat_batches(&schema, rows).map_err(|e| EngineError::Input(format!("watchlist: {e}")));
        let mut changes: Vec<RecordBatch> = Vec::new();
        let mut change = WatchlistChange { entries: batch.num_rows(), ..WatchlistChange::default() };
        for (plate, rows) in &listed {
            let new = concat(&rows.iter().map(|&row| batch.slice(row, 1)).collect::<Vec<_>>())?;
            let held = self.watchlist.get(*plate).map(|rows| concat(rows)).transpose()?;
            if held.as_ref() != Some(&new) {
                change.upserted += new.num_rows();
                changes.push(new);
            }
        }
        let closed_at = time_ms as i64;
        for (plate, rows) in &self.watchlist {
            if listed.contains_key(plate.as_str()) {
                continue;
            }
            let held = concat(rows)?;
            let valid_to = held.column(4).as_any().downcast_ref::<TimestampMillisecondArray>().expect("conformed: valid_to");
            if (0..held.num_rows()).all(|row| valid_to.is_valid(row) && valid_to.value(row) <= closed_at) {
                continue;
            }
            let closed: TimestampMillisecondArray = (0..held.num_rows())
                .map(|row| Some(if valid_to.is_valid(row) { valid_to.value(row).min(closed_at) } else { closed_at }))
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC");
            let mut columns = held.columns().to_vec();
            columns[4] = Arc::new(closed);
            change.closed += held.num_rows();
            changes.push(RecordBatch::try_new(schema.clone(), columns).map_err(|e| EngineError::Input(format!("watchlist: {e}")))?);
        }
        if !changes.is_empty() {
            let all = concat(&changes)?;
            self.log_and_apply(time_ms, WalOp::Upsert, WATCHLIST, all)?;
        }
        Ok(change)
    }

    /// Entries the watchlist holds now (rows of the `watchlist` table).
    pub fn watchlist_entries(&self) -> usize {
        self.watchlist.values().map(|rows| rows.iter().map(RecordBatch::num_rows).sum::<usize>()).sum()
    }

    fn check_time(&self, time_ms: u64) -> Result<(), EngineError> {
        if time_ms <= self.log_time_ms() || time_ms <= self.views.now() {
            return Err(EngineError::Input(format!(
                "commit time {time_ms} is not after the last commit ({})",
                self.log_time_ms().max(self.views.now())
            )));
        }
        Ok(())
    }

    fn reads_cutoff(&self, time_ms: u64) -> i64 {
        time_ms as i64 - self.config.storage.retention.reads.as_millis() as i64
    }

    fn log_and_apply(&mut self, time_ms: u64, op: WalOp, table: &str, batch: RecordBatch) -> Result<(), EngineError> {
        let seq = self.runtime.block_on(self.wal.append(time_ms, op, table, &batch))?;
        self.apply(&WalRecord { seq, time_ms, op, table: table.to_string(), batch })?;
        self.drain_sinks();
        self.commits_since_flush += 1;
        if self.commits_since_flush >= self.options.sink_every_commits {
            // The change is durable and applied whatever happens here: a
            // sink or sweep that fails (the store is down) is tried again at
            // the next commit, and the changes wait in memory meanwhile.
            if let Err(error) = self.flush() {
                tracing::warn!(%error, "writing view changes failed; trying again at the next commit");
            } else if self.flushed_through >= self.last_sweep_ms + self.options.retention_sweep_ms
                && let Err(error) = self.sweep()
            {
                tracing::warn!(%error, "retention sweep failed; trying again after the next flush");
            }
        }
        Ok(())
    }

    /// Applies one logged change and commits at its time: the same code runs
    /// live and in replay, so both reach the same states.
    fn apply(&mut self, record: &WalRecord) -> Result<(), EngineError> {
        match (record.op, record.table.as_str()) {
            (WalOp::Insert, READS) => {
                let reads = reads_from_batch(&record.batch).map_err(|e| EngineError::Input(format!("log record {}: {e}", record.seq)))?;
                if !reads.is_empty() {
                    self.views.insert(READS, &record.batch)?;
                    self.views.insert(READ_KEYS, &read_keys_batch(&reads, &self.keys))?;
                    self.history.add(record.time_ms, &reads);
                }
                for read in reads {
                    self.read_ids.insert(read.read_id.clone());
                    self.reads.insert((read.captured_at_ms, read.read_id.clone()), read);
                }
            }
            (WalOp::Upsert, WATCHLIST) => self.apply_upsert(&record.batch)?,
            (WalOp::Insert, PRE_ARRIVAL) => self.apply_pre_arrival(&record.batch)?,
            (op, table) => return Err(EngineError::Input(format!("log record {}: cannot apply {op:?} to `{table}`", record.seq))),
        }
        // Retention: reads captured before the cutoff leave the table.
        let cutoff = self.reads_cutoff(record.time_ms);
        let live = self.reads.split_off(&(cutoff, String::new()));
        let expired = std::mem::replace(&mut self.reads, live);
        if !expired.is_empty() {
            let expired: Vec<PlateRead> = expired.into_values().collect();
            for read in &expired {
                self.read_ids.remove(&read.read_id);
            }
            self.views.retract(READS, &reads_to_batch(&expired))?;
            self.views.retract(READ_KEYS, &read_keys_batch(&expired, &self.keys))?;
        }
        let live = self.pre_arrival.split_off(&(cutoff, String::new()));
        let expired = std::mem::replace(&mut self.pre_arrival, live);
        for ((_, read_id), rows) in expired {
            self.pre_arrival_ids.remove(&read_id);
            self.views.retract(PRE_ARRIVAL, &rows)?;
        }
        self.views.commit_at(record.time_ms);
        Ok(())
    }

    fn apply_pre_arrival(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.views.insert(PRE_ARRIVAL, batch)?;
        let ids = batch.column(0).as_any().downcast_ref::<StringArray>().ok_or_else(|| EngineError::Input("pre-arrival: read_id is not text".into()))?;
        let captured = batch
            .column_by_name("captured_at")
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::TimestampMillisecondArray>())
            .ok_or_else(|| EngineError::Input("pre-arrival: captured_at is not a timestamp".into()))?;
        // Rows of one read are contiguous (pre_arrival_records writes them so); group runs.
        let mut start = 0;
        for i in 1..=batch.num_rows() {
            if i == batch.num_rows() || ids.value(i) != ids.value(start) {
                let key = (captured.value(start), ids.value(start).to_string());
                let rows = batch.slice(start, i - start);
                self.pre_arrival_ids.insert(key.1.clone());
                match self.pre_arrival.remove(&key) {
                    Some(old) => {
                        let joined = arrow::compute::concat_batches(&batch.schema(), &[old, rows]).map_err(|e| EngineError::Input(e.to_string()))?;
                        self.pre_arrival.insert(key, joined);
                    }
                    None => {
                        self.pre_arrival.insert(key, rows);
                    }
                }
                start = i;
            }
        }
        Ok(())
    }

    fn apply_upsert(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        let plates = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| EngineError::Input("watchlist: the first column (plate) is not text".into()))?;
        let mut replaced = HashSet::new();
        for i in 0..batch.num_rows() {
            let plate = plates.value(i).to_string();
            if replaced.insert(plate.clone())
                && let Some(old) = self.watchlist.remove(&plate)
            {
                for row in old {
                    self.views.retract(WATCHLIST, &row)?;
                }
            }
            let row = batch.slice(i, 1);
            self.views.insert(WATCHLIST, &row)?;
            self.watchlist.entry(plate).or_default().push(row);
        }
        Ok(())
    }

    /// Moves each commit's changes into the sinks, leaving out those the
    /// store holds already.
    fn drain_sinks(&mut self) {
        for sink in self.sinks.values_mut() {
            while let Ok(batch) = sink.changes.try_recv() {
                if let Some(batch) = after_time(&batch, sink.written_through) {
                    sink.pending.push(batch);
                }
            }
        }
    }

    /// Writes every view's pending changes as one Parquet part each.
    pub fn flush(&mut self) -> Result<(), EngineError> {
        self.drain_sinks();
        let now = self.views.now();
        for (name, sink) in &mut self.sinks {
            if sink.pending.is_empty() {
                sink.written_through = sink.written_through.max(now);
                continue;
            }
            let schema = sink.pending[0].schema();
            let batch = arrow::compute::concat_batches(&schema, &sink.pending)
                .map_err(|e| EngineError::Sink { path: format!("views/{name}"), message: e.to_string() })?;
            let first = time_column(&batch).map(|t| t.values().iter().copied().min().unwrap_or(now)).unwrap_or(now);
            let path = format!("views/{name}/changes/part-{first:020}-{now:020}.parquet");
            let bytes = parquet_bytes(&batch).map_err(|message| EngineError::Sink { path: path.clone(), message })?;
            self.runtime.block_on(self.storage.put(&path, bytes))?;
            sink.pending.clear();
            sink.written_through = now;
        }
        self.runtime.block_on(self.history.flush(&self.storage, now))?;
        self.flushed_through = now;
        self.commits_since_flush = 0;
        Ok(())
    }

    /// Deletes what retention says must go, and records it (see the module doc).
    fn sweep(&mut self) -> Result<(), EngineError> {
        let through = self.flushed_through;
        let retention = &self.config.storage.retention;
        let reads_cutoff = self.reads_cutoff(through);
        let expired = self.runtime.block_on(self.wal.expire(READS, reads_cutoff))?;
        let flags_cutoff = through.saturating_sub(retention.flags.as_millis() as u64);
        let mut parts = Vec::new();
        for object in self.runtime.block_on(self.storage.list("views"))? {
            let Some((_, rest)) = object.path.split_once("/changes/") else { continue };
            if part_range(rest).is_some_and(|(_, to)| to < flags_cutoff) {
                self.runtime.block_on(self.storage.delete(&object.path))?;
                parts.push(object.path);
            }
        }
        let post_id = self.config.post.id.clone();
        let history = self.runtime.block_on(sweep_history(&self.storage, &post_id, reads_cutoff))?;
        // A crop never outlives its read.
        let crops_cutoff = through as i64 - retention.crops.min(retention.reads).as_millis() as i64;
        let day_start = crops_cutoff - crops_cutoff.rem_euclid(DAY_MS);
        let on_cutoff_day: HashMap<&str, i64> =
            self.reads.range((day_start, String::new())..(day_start + DAY_MS, String::new())).map(|((t, id), _)| (id.as_str(), *t)).collect();
        let crops = self.runtime.block_on(sweep_crops(&self.storage, &post_id, crops_cutoff, |id| on_cutoff_day.get(id).copied()))?;
        self.last_sweep_ms = through;
        if expired.rows == 0 && expired.deleted_segments.is_empty() && parts.is_empty() && history.files_deleted == 0 && history.files_rewritten.is_empty() && crops.files_deleted == 0 {
            return Ok(());
        }
        let audit = serde_json::json!({
            "post_id": self.config.post.id,
            "engine_time_ms": through,
            "engine_time": iso(through as i64),
            "wall_time": chrono::Utc::now().to_rfc3339(),
            "reads": {
                "retention_s": retention.reads.as_secs(),
                "cutoff": iso(reads_cutoff),
                "rows_deleted": expired.rows,
                "captured_from": expired.earliest_ms.map(iso),
                "captured_to": expired.latest_ms.map(iso),
                "partitions_deleted": expired.deleted_partitions,
                "segments_deleted": expired.deleted_segments.iter().map(|(p, n)| serde_json::json!({"path": p, "rows": n})).collect::<Vec<_>>(),
                "segments_rewritten": expired.rewritten_segments.iter().map(|(p, n)| serde_json::json!({"path": p, "rows_removed": n})).collect::<Vec<_>>(),
            },
            "reads_history": {
                "cutoff": iso(reads_cutoff),
                "partitions_deleted": history.partitions_deleted,
                "files_deleted": history.files_deleted,
                "files_rewritten": history.files_rewritten.iter().map(|(p, n)| serde_json::json!({"path": p, "rows_removed": n})).collect::<Vec<_>>(),
            },
            "crops": {
                "retention_s": retention.crops.min(retention.reads).as_secs(),
                "cutoff": iso(crops_cutoff),
                "partitions_deleted": crops.partitions_deleted,
                "files_deleted": crops.files_deleted,
            },
            "view_changes": {
                "retention_s": retention.flags.as_secs(),
                "cutoff": iso(flags_cutoff as i64),
                "parts_deleted": parts,
            },
        });
        let path = format!("audit/{}/retention/{through:020}.json", self.config.post.id);
        let text = serde_json::to_vec_pretty(&audit).map_err(|e| EngineError::Sink { path: path.clone(), message: e.to_string() })?;
        self.runtime.block_on(self.storage.put(&path, text))?;
        tracing::info!(rows = expired.rows, parts = parts.len(), audit = %path, "retention sweep");
        Ok(())
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
        let mut names: Vec<String> = borderflow_engine::ENGINE_TABLES.iter().map(|t| t.to_string()).collect();
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

fn time_column(batch: &RecordBatch) -> Option<&UInt64Array> {
    batch.column_by_name("_time")?.as_any().downcast_ref::<UInt64Array>()
}

/// The rows of a changes batch after `time` (none: `None`).
fn after_time(batch: &RecordBatch, time: u64) -> Option<RecordBatch> {
    let times = time_column(batch)?;
    let keep: arrow::array::BooleanArray = times.iter().map(|t| Some(t.is_some_and(|t| t > time))).collect();
    let kept = arrow::compute::filter_record_batch(batch, &keep).ok()?;
    (kept.num_rows() > 0).then_some(kept)
}

/// A view's rows as changes: its columns plus `_diff` and `_time`.
fn with_change_columns(batch: &RecordBatch, diff: i64, time: u64) -> Result<RecordBatch, EngineError> {
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("_diff", DataType::Int64, false));
    fields.push(Field::new("_time", DataType::UInt64, false));
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(Int64Array::from(vec![diff; batch.num_rows()])));
    columns.push(Arc::new(UInt64Array::from(vec![time; batch.num_rows()])));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| EngineError::Input(e.to_string()))
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339()).unwrap_or_else(|| ms.to_string())
}

/// The schema of pushed reads.
pub fn reads_schema() -> arrow::datatypes::SchemaRef {
    plate_read_schema()
}
