//! The `watchlist` table: upserts, and reloads of the configured watchlist
//! file that make the table say what the file says.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray, TimestampMillisecondArray};
use borderflow_types::conform_watchlist;

use crate::wal::WalOp;
use crate::engine::{Engine, EngineError, WATCHLIST};

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

impl Engine {
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
    pub(crate) fn refuse_watchlist(&mut self, digest: Option<[u8; 32]>, message: String) -> EngineError {
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

    pub(crate) fn apply_upsert(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
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
}
