//! The engine's Parquet history of reads, and the retention of what is
//! stored beside it (the reads' history and their plate crops).
//!
//! Every read the engine applies enters the history sink with its commit
//! time; a flush writes the pending reads of each event date (UTC) as one
//! file, `reads/<post>/<date>/part-<first commit time>-<flush time>.parquet`,
//! rows sorted by (captured_at, read_id). This is where `borderflow sql`,
//! the Flight SQL server and analysts' tools find the reads.
//!
//! The sink is idempotent the way the views' changelog sinks are: a file
//! holds every read of its date committed up to its flush time, so after a
//! restart (the log replayed) a read is written again only if it was
//! committed after the newest file of its date. A process killed between a
//! read's log append and the history flush loses nothing (the replay
//! writes it), and one killed in the middle of a flush writes each date at
//! most once more (a file is written whole or not at all).
//!
//! Retention ([`sweep_history`], [`sweep_crops`]): date partitions wholly
//! before the cutoff are deleted whole; the files of the date the cutoff
//! falls in are rewritten without their expired rows (or deleted when none
//! is left). Crops (`crops/<post>/<date>/<read_id>.jpg`) go by the same
//! rule, and on the cutoff's date a crop goes when its read is no longer in
//! the engine or was captured before the cutoff.

use std::collections::BTreeMap;

use arrow::array::{Array, BooleanArray, RecordBatch, TimestampMillisecondArray};
use crate::storage::{Storage, StorageError};
use borderflow_types::{PlateRead, reads_to_batch};
use chrono::NaiveDate;

/// Why a history file could not be written, read or swept.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("reads history `{path}`: {message}")]
    File { path: String, message: String },
}

/// The reads not yet in the history, and what each date's files hold.
pub struct HistorySink {
    post_id: String,
    /// (commit time, read), in commit order.
    pending: Vec<(u64, PlateRead)>,
    /// Per event date: the reads committed up to this time are written.
    written_through: BTreeMap<NaiveDate, u64>,
    files_written: usize,
}

impl HistorySink {
    /// The sink of `post_id`'s reads, knowing what the store holds already.
    pub async fn open(storage: &Storage, post_id: &str) -> Result<HistorySink, StorageError> {
        let mut written_through = BTreeMap::new();
        for object in storage.list(&format!("reads/{post_id}")).await? {
            let Some((date, name)) = date_and_name(&object.path) else { continue };
            if let Some((_, to)) = part_range(name) {
                let through = written_through.entry(date).or_insert(0);
                *through = (*through).max(to);
            }
        }
        Ok(HistorySink { post_id: post_id.to_string(), pending: Vec::new(), written_through, files_written: 0 })
    }

    /// Reads applied at commit `time_ms`; those the store holds already are left out.
    pub fn add(&mut self, time_ms: u64, reads: &[PlateRead]) {
        for read in reads {
            let written = event_date(read.captured_at_ms).and_then(|d| self.written_through.get(&d)).is_some_and(|&to| time_ms <= to);
            if !written {
                self.pending.push((time_ms, read.clone()));
            }
        }
    }

    /// Files this sink wrote since it opened.
    pub fn files_written(&self) -> usize {
        self.files_written
    }

    /// Writes the pending reads, one file per event date, as of commit
    /// `now_ms`; returns the files' paths. On an error the reads stay
    /// pending (a date written before the error is not written twice).
    pub async fn flush(&mut self, storage: &Storage, now_ms: u64) -> Result<Vec<String>, HistoryError> {
        let mut by_date: BTreeMap<Option<NaiveDate>, (u64, Vec<PlateRead>)> = BTreeMap::new();
        for (time, read) in &self.pending {
            let entry = by_date.entry(event_date(read.captured_at_ms)).or_insert((*time, Vec::new()));
            entry.0 = entry.0.min(*time);
            entry.1.push(read.clone());
        }
        let mut written = Vec::new();
        for (date, (first, mut rows)) in by_date {
            rows.sort_by(|a, b| (a.captured_at_ms, &a.read_id).cmp(&(b.captured_at_ms, &b.read_id)));
            let folder = folder_of(date);
            let path = format!("reads/{}/{folder}/part-{first:020}-{now_ms:020}.parquet", self.post_id);
            let bytes = parquet_bytes(&reads_to_batch(&rows)).map_err(|message| HistoryError::File { path: path.clone(), message })?;
            storage.put(&path, bytes).await?;
            // This date is written: its reads leave the pending ones.
            self.pending.retain(|(_, r)| event_date(r.captured_at_ms) != date);
            if let Some(date) = date {
                self.written_through.insert(date, now_ms);
            }
            self.files_written += 1;
            written.push(path);
        }
        Ok(written)
    }
}

/// What a sweep of the reads' history removed.
#[derive(Debug, Default)]
pub struct HistorySwept {
    /// Date folders deleted whole.
    pub partitions_deleted: Vec<String>,
    pub files_deleted: usize,
    /// Files rewritten without their expired rows: (path, rows removed).
    pub files_rewritten: Vec<(String, usize)>,
}

/// Deletes `post_id`'s history rows captured before `cutoff_ms` (see the module documentation).
pub async fn sweep_history(storage: &Storage, post_id: &str, cutoff_ms: i64) -> Result<HistorySwept, HistoryError> {
    let mut swept = HistorySwept::default();
    let Some(cutoff_date) = event_date(cutoff_ms) else { return Ok(swept) };
    let mut partitions: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
    for object in storage.list(&format!("reads/{post_id}")).await? {
        if let Some((date, _)) = date_and_name(&object.path) {
            partitions.entry(date).or_default().push(object.path);
        }
    }
    for (date, paths) in partitions {
        if date < cutoff_date {
            for path in &paths {
                storage.delete(path).await?;
            }
            swept.files_deleted += paths.len();
            swept.partitions_deleted.push(format!("reads/{post_id}/{date}"));
        } else if date == cutoff_date {
            for path in paths {
                let batch = read_parquet(&storage.get(&path).await?).map_err(|message| HistoryError::File { path: path.clone(), message })?;
                let captured = batch
                    .column_by_name("captured_at")
                    .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>())
                    .ok_or_else(|| HistoryError::File { path: path.clone(), message: "no captured_at timestamp column".into() })?;
                let keep: BooleanArray = captured.iter().map(|t| Some(t.is_some_and(|t| t >= cutoff_ms))).collect();
                let kept = keep.true_count();
                if kept == batch.num_rows() {
                    continue;
                }
                if kept == 0 {
                    storage.delete(&path).await?;
                    swept.files_deleted += 1;
                } else {
                    let rest = arrow::compute::filter_record_batch(&batch, &keep).map_err(|e| HistoryError::File { path: path.clone(), message: e.to_string() })?;
                    let bytes = parquet_bytes(&rest).map_err(|message| HistoryError::File { path: path.clone(), message })?;
                    storage.put(&path, bytes).await?;
                }
                swept.files_rewritten.push((path, batch.num_rows() - kept));
            }
        }
    }
    Ok(swept)
}

/// What a sweep of the plate crops removed.
#[derive(Debug, Default)]
pub struct CropsSwept {
    pub partitions_deleted: Vec<String>,
    pub files_deleted: usize,
}

/// Deletes `post_id`'s crops of reads captured before `cutoff_ms`;
/// `captured_at` gives a read's capture time while the engine holds it
/// (see the module documentation).
pub async fn sweep_crops(storage: &Storage, post_id: &str, cutoff_ms: i64, captured_at: impl Fn(&str) -> Option<i64>) -> Result<CropsSwept, StorageError> {
    let mut swept = CropsSwept::default();
    let Some(cutoff_date) = event_date(cutoff_ms) else { return Ok(swept) };
    let mut partitions: BTreeMap<NaiveDate, Vec<(String, String)>> = BTreeMap::new();
    for object in storage.list(&format!("crops/{post_id}")).await? {
        if let Some((date, name)) = date_and_name(&object.path) {
            let read_id = name.strip_suffix(".jpg").unwrap_or(name).to_string();
            partitions.entry(date).or_default().push((object.path.clone(), read_id));
        }
    }
    for (date, crops) in partitions {
        if date > cutoff_date {
            break;
        }
        let whole = date < cutoff_date;
        for (path, read_id) in &crops {
            if whole || captured_at(read_id).is_none_or(|t| t < cutoff_ms) {
                storage.delete(path).await?;
                swept.files_deleted += 1;
            }
        }
        if whole {
            swept.partitions_deleted.push(format!("crops/{post_id}/{date}"));
        }
    }
    Ok(swept)
}

/// The UTC date of an event time.
fn event_date(ms: i64) -> Option<NaiveDate> {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.date_naive())
}

/// The date folder (`YYYY-MM-DD`, UTC) of an event at `ms`, as the history
/// and the crops are laid out and swept.
pub fn date_folder(ms: i64) -> String {
    folder_of(event_date(ms))
}

/// Where a read's plate crop is kept in the store,
/// `crops/<post>/<date>/<read_id>.jpg` (what [`sweep_crops`] sweeps).
pub fn crop_path(post_id: &str, captured_at_ms: i64, read_id: &str) -> String {
    format!("crops/{post_id}/{}/{read_id}.jpg", date_folder(captured_at_ms))
}

fn folder_of(date: Option<NaiveDate>) -> String {
    date.map_or_else(|| "invalid-date".to_string(), |d| d.to_string())
}

/// `<top>/<post>/<date>/<name>` → (date, name).
fn date_and_name(path: &str) -> Option<(NaiveDate, &str)> {
    let mut parts = path.rsplitn(3, '/');
    let name = parts.next()?;
    let date = parts.next()?.parse().ok()?;
    Some((date, name))
}

/// `part-<from>-<to>.parquet` → (from, to): the name of a part written by
/// a sink (the views' changelogs and the reads' history).
pub fn part_range(name: &str) -> Option<(u64, u64)> {
    let (from, to) = name.strip_prefix("part-")?.strip_suffix(".parquet")?.split_once('-')?;
    Some((from.parse().ok()?, to.parse().ok()?))
}

/// One batch as a Parquet file (Snappy).
pub fn parquet_bytes(batch: &RecordBatch) -> Result<Vec<u8>, String> {
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut buffer = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buffer, batch.schema(), Some(props)).map_err(|e| e.to_string())?;
    writer.write(batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(buffer)
}

/// A Parquet file's rows as one batch.
fn read_parquet(bytes: &[u8]) -> Result<RecordBatch, String> {
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(bytes)).map_err(|e| e.to_string())?;
    let schema = builder.schema().clone();
    let reader = builder.build().map_err(|e| e.to_string())?;
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    arrow::compute::concat_batches(&schema, &batches).map_err(|e| e.to_string())
}
