//! Pushing reads and pre-arrival records: each change is logged, then
//! applied and committed at its time, the same code live and in replay;
//! retention of `reads` and `pre_arrival` is part of every commit.

use std::collections::HashSet;

use arrow::array::{Array, RecordBatch, StringArray};
use borderflow_types::{
    PlateRead, pre_arrival_schema, read_keys_batch, reads_from_batch, reads_to_batch,
};

use crate::wal::{WalOp, WalRecord};
use crate::engine::{Engine, EngineError, READS, PRE_ARRIVAL, READ_KEYS, WATCHLIST};

impl Engine {
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

    pub(crate) fn check_time(&self, time_ms: u64) -> Result<(), EngineError> {
        if time_ms <= self.log_time_ms() || time_ms <= self.views.now() {
            return Err(EngineError::Input(format!(
                "commit time {time_ms} is not after the last commit ({})",
                self.log_time_ms().max(self.views.now())
            )));
        }
        Ok(())
    }

    pub(crate) fn reads_cutoff(&self, time_ms: u64) -> i64 {
        time_ms as i64 - self.config.storage.retention.reads.as_millis() as i64
    }

    pub(crate) fn log_and_apply(&mut self, time_ms: u64, op: WalOp, table: &str, batch: RecordBatch) -> Result<(), EngineError> {
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
    pub(crate) fn apply(&mut self, record: &WalRecord) -> Result<(), EngineError> {
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

    pub(crate) fn apply_pre_arrival(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
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
}
