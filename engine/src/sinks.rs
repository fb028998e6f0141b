//! The views' changelog sinks: each commit's changes wait in memory and
//! are written as one Parquet part per view at every flush, idempotently
//! after a restart (a part says the commit time it holds changes through).

use std::sync::Arc;
use std::sync::mpsc::Receiver;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};

use crate::history::parquet_bytes;
use crate::engine::{Engine, EngineError};

/// One view's changelog sink.
pub(crate) struct Sink {
    pub(crate) changes: Receiver<RecordBatch>,
    pub(crate) pending: Vec<RecordBatch>,
    /// Changes up to this time are in the store already.
    pub(crate) written_through: u64,
}

impl Engine {
    /// Moves each commit's changes into the sinks, leaving out those the
    /// store holds already.
    pub(crate) fn drain_sinks(&mut self) {
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
}

fn time_column(batch: &RecordBatch) -> Option<&UInt64Array> {
    batch.column_by_name("_time")?.as_any().downcast_ref::<UInt64Array>()
}

/// The rows of a changes batch after `time` (none: `None`).
pub(crate) fn after_time(batch: &RecordBatch, time: u64) -> Option<RecordBatch> {
    let times = time_column(batch)?;
    let keep: arrow::array::BooleanArray = times.iter().map(|t| Some(t.is_some_and(|t| t > time))).collect();
    let kept = arrow::compute::filter_record_batch(batch, &keep).ok()?;
    (kept.num_rows() > 0).then_some(kept)
}

/// A view's rows as changes: its columns plus `_diff` and `_time`.
pub(crate) fn with_change_columns(batch: &RecordBatch, diff: i64, time: u64) -> Result<RecordBatch, EngineError> {
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("_diff", DataType::Int64, false));
    fields.push(Field::new("_time", DataType::UInt64, false));
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(Int64Array::from(vec![diff; batch.num_rows()])));
    columns.push(Arc::new(UInt64Array::from(vec![time; batch.num_rows()])));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| EngineError::Input(e.to_string()))
}
