//! The write-ahead log: every input change, durable before it is applied.
//!
//! A change (a batch of rows for a table, inserted or upserted at a commit
//! time) becomes a [`WalRecord`] with the next sequence number. Records are
//! framed with a length and a CRC-32 and hold the rows as an Arrow IPC
//! stream (see `record`). They are written to segments in the post's object
//! store, partitioned by post and by the UTC date of the commit time:
//!
//! ```text
//! wal/<post_id>/<YYYY-MM-DD>/<first seq, 20 digits>.bfwal
//! ```
//!
//! On a `file://` store the newest segment is appended to in place and each
//! append is `fdatasync`ed before [`Wal::append`] returns; a segment is
//! closed when it passes [`WalOptions::segment_bytes`] or the date changes.
//! An object store has no append, so on `s3://` every append is a segment of
//! its own, written whole with one PUT (retried with backoff by the client);
//! the name depends only on the sequence number, so retrying a failed append
//! rewrites the same object.
//!
//! [`Wal::open`] reads every segment in sequence order and returns the
//! records to replay. A torn append (the bytes of the newest segment end
//! inside a record) is cut back to the last whole record, in the store too.
//! Anything else that does not read back (a checksum mismatch, a bad frame, a
//! torn record in an older segment, sequence numbers out of order) stops
//! recovery with [`WalError::Corrupt`], which names the segment and the byte
//! offset.
//!
//! Retention: [`Wal::expire`] removes rows of a table whose event time is
//! before a cutoff. Segments left with no rows are deleted (a date partition
//! goes when its last segment does); segments with some expired rows are
//! rewritten without them. It never touches the segment being appended to
//! (it closes it first), and it says what it removed, for the audit log.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, BooleanArray, RecordBatch, TimestampMillisecondArray};

use crate::storage::{Storage, StorageError, sync_dir};

pub use record::{SegmentEnd, WalOp, WalRecord, decode_segment, encode};

mod record;

/// Why the log could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("write-ahead log segment {segment}, byte offset {offset}: {message}")]
    Corrupt { segment: String, offset: usize, message: String },
    #[error("write-ahead log: {0}")]
    Encode(String),
}

/// How the log is laid out and what it tracks for retention.
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// The post whose log this is (the first partition level).
    pub post_id: String,
    /// A local segment is closed once it is this long (default 16 MiB).
    pub segment_bytes: u64,
    /// For each table subject to retention, its event-time column
    /// (`Timestamp(ms)`), e.g. `reads` → `captured_at`.
    pub event_columns: BTreeMap<String, String>,
}

impl WalOptions {
    pub fn new(post_id: &str) -> Self {
        WalOptions { post_id: post_id.to_string(), segment_bytes: 16 << 20, event_columns: BTreeMap::new() }
    }
}

/// What the log knows about one segment without reading it again.
#[derive(Clone, Debug)]
struct Segment {
    path: String,
    date: String,
    bytes: u64,
    /// Per table with an event column: (rows, earliest, latest event time).
    events: BTreeMap<String, (u64, i64, i64)>,
    /// Whether it holds records of tables without an event column.
    other_tables: bool,
}

/// The segment being appended to (`file://` stores only).
struct Active {
    index: usize,
    file: std::fs::File,
}

/// What [`Wal::expire`] removed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expired {
    /// Segments deleted whole, with the rows they held.
    pub deleted_segments: Vec<(String, u64)>,
    /// Date partitions (`wal/<post>/<date>`) left with no segment.
    pub deleted_partitions: Vec<String>,
    /// Segments rewritten without their expired rows, with the rows removed.
    pub rewritten_segments: Vec<(String, u64)>,
    /// Rows removed in all, and the range of their event times.
    pub rows: u64,
    pub earliest_ms: Option<i64>,
    pub latest_ms: Option<i64>,
}

/// The write-ahead log of one post (see the module documentation).
pub struct Wal {
    storage: Storage,
    options: WalOptions,
    segments: Vec<Segment>,
    active: Option<Active>,
    next_seq: u64,
    last_time_ms: u64,
    stats: std::sync::Arc<borderflow_types::WalStats>,
}

/// How a recovery went.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recovered {
    pub segments: usize,
    pub records: usize,
    /// A torn append cut back: the segment and the bytes dropped.
    pub cut_back: Option<(String, u64)>,
}

impl Wal {
    /// Opens the post's log, cutting back a torn tail, and returns the
    /// records to replay, in order.
    pub async fn open(storage: Storage, options: WalOptions) -> Result<(Wal, Vec<WalRecord>, Recovered), WalError> {
        let folder = format!("wal/{}", options.post_id);
        let mut listed: Vec<(u64, String, String, u64)> = Vec::new();
        for object in storage.list(&folder).await? {
            let rest = object.path.strip_prefix(&format!("{folder}/")).unwrap_or(&object.path);
            let Some((date, name)) = rest.split_once('/') else { continue };
            let Some(seq) = name.strip_suffix(".bfwal").and_then(|s| s.parse::<u64>().ok()) else { continue };
            listed.push((seq, object.path.clone(), date.to_string(), object.bytes));
        }
        listed.sort();
        let mut wal = Wal { storage, options, segments: Vec::new(), active: None, next_seq: 1, last_time_ms: 0, stats: Default::default() };
        let mut records = Vec::new();
        let mut report = Recovered { segments: listed.len(), ..Recovered::default() };
        let count = listed.len();
        for (i, (first_seq, path, date, _)) in listed.into_iter().enumerate() {
            let bytes = wal.storage.get(&path).await?;
            let (mut found, end) = decode_segment(&bytes);
            let mut length = bytes.len() as u64;
            match end {
                SegmentEnd::Clean => {}
                SegmentEnd::Truncated { offset } if i + 1 == count => {
                    tracing::warn!(segment = %wal.storage.describe(&path), offset, dropped = bytes.len() - offset, "torn append at the end of the log cut back to the last whole record");
                    wal.cut_back(&path, &bytes[..offset]).await?;
                    report.cut_back = Some((wal.storage.describe(&path), (bytes.len() - offset) as u64));
                    length = offset as u64;
                }
                SegmentEnd::Truncated { offset } => {
                    return Err(wal.corrupt(&path, offset, "the segment ends inside a record, but it is not the newest segment"));
                }
                SegmentEnd::Corrupt { offset, message } => return Err(wal.corrupt(&path, offset, &message)),
            }
            if found.first().is_some_and(|r| r.seq != first_seq) {
                return Err(wal.corrupt(&path, 0, &format!("the first record is number {}, the name says {first_seq}", found[0].seq)));
            }
            let mut segment = Segment { path: path.clone(), date, bytes: length, events: BTreeMap::new(), other_tables: false };
            for record in &found {
                if record.seq < wal.next_seq || record.time_ms < wal.last_time_ms {
                    return Err(wal.corrupt(&path, 0, &format!("record {} (time {}) is out of order", record.seq, record.time_ms)));
                }
                wal.next_seq = record.seq + 1;
                wal.last_time_ms = record.time_ms;
                wal.track(&mut segment, record);
            }
            if length == 0 {
                wal.storage.delete(&path).await?;
            } else {
                wal.segments.push(segment);
            }
            records.append(&mut found);
        }
        report.records = records.len();
        Ok((wal, records, report))
    }

    fn corrupt(&self, path: &str, offset: usize, message: &str) -> WalError {
        WalError::Corrupt { segment: self.storage.describe(path), offset, message: message.to_string() }
    }

    async fn cut_back(&self, path: &str, whole: &[u8]) -> Result<(), WalError> {
        match self.storage.local_path(path) {
            Some(file) => {
                let io = |e: std::io::Error| WalError::Storage(StorageError::Io { path: file.display().to_string(), message: e.to_string() });
                let handle = std::fs::OpenOptions::new().write(true).open(&file).map_err(io)?;
                handle.set_len(whole.len() as u64).map_err(io)?;
                handle.sync_all().map_err(io)?;
            }
            None if whole.is_empty() => self.storage.delete(path).await?,
            None => self.storage.put(path, whole.to_vec()).await?,
        }
        Ok(())
    }

    fn track(&self, segment: &mut Segment, record: &WalRecord) {
        track(&self.options, segment, record);
    }

    /// The next record's sequence number.
    /// What this log has appended since it was opened (for `/metrics`).
    pub fn stats(&self) -> std::sync::Arc<borderflow_types::WalStats> {
        std::sync::Arc::clone(&self.stats)
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The commit time of the last record (0 for an empty log).
    pub fn last_time_ms(&self) -> u64 {
        self.last_time_ms
    }

    /// Segments and bytes in the log now.
    pub fn size(&self) -> (usize, u64) {
        (self.segments.len(), self.segments.iter().map(|s| s.bytes).sum())
    }

    /// Appends a change and returns once it is durable (see the module
    /// documentation). `time_ms` may not be before the last record's.
    pub async fn append(&mut self, time_ms: u64, op: WalOp, table: &str, batch: &RecordBatch) -> Result<u64, WalError> {
        if time_ms < self.last_time_ms {
            return Err(WalError::Encode(format!("time {time_ms} is before the log's last time {}", self.last_time_ms)));
        }
        let record = WalRecord { seq: self.next_seq, time_ms, op, table: table.to_string(), batch: batch.clone() };
        let bytes = encode(&record).map_err(|e| WalError::Encode(e.to_string()))?;
        let date = chrono::DateTime::from_timestamp_millis(time_ms as i64)
            .map(|t| t.date_naive().to_string())
            .unwrap_or_else(|| "invalid-date".to_string());
        let new_path = format!("wal/{}/{date}/{:020}.bfwal", self.options.post_id, record.seq);
        let started = std::time::Instant::now();
        if self.storage.local_path(&new_path).is_some() {
            self.append_local(&record, &bytes, &date, &new_path)?;
        } else {
            self.storage.put(&new_path, bytes.clone()).await?;
            let mut segment = Segment { path: new_path, date, bytes: bytes.len() as u64, events: BTreeMap::new(), other_tables: false };
            self.track(&mut segment, &record);
            self.segments.push(segment);
        }
        self.stats.sync_seconds.observe(started.elapsed().as_secs_f64());
        self.stats.bytes.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.stats.records.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.next_seq += 1;
        self.last_time_ms = time_ms;
        Ok(record.seq)
    }

    fn append_local(&mut self, record: &WalRecord, bytes: &[u8], date: &str, new_path: &str) -> Result<(), WalError> {
        let roll = match &self.active {
            Some(active) => {
                let segment = &self.segments[active.index];
                segment.date != date || segment.bytes >= self.options.segment_bytes
            }
            None => true,
        };
        if roll {
            self.active = None;
            let file = self.storage.local_path(new_path).ok_or_else(|| WalError::Encode("not a local store".into()))?;
            let io = |e: std::io::Error| WalError::Storage(StorageError::Io { path: file.display().to_string(), message: e.to_string() });
            let dir = file.parent().ok_or_else(|| WalError::Encode("segment without a folder".into()))?;
            std::fs::create_dir_all(dir).map_err(io)?;
            let handle = std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(&file).map_err(io)?;
            sync_dir(dir).map_err(io)?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent).map_err(io)?;
            }
            self.segments.push(Segment { path: new_path.to_string(), date: date.to_string(), bytes: 0, events: BTreeMap::new(), other_tables: false });
            self.active = Some(Active { index: self.segments.len() - 1, file: handle });
        }
        let Some(active) = self.active.as_mut() else { return Err(WalError::Encode("no active segment".into())) };
        let segment = &mut self.segments[active.index];
        let file_name = self.storage.describe(&segment.path);
        let written = active.file.write_all(bytes).and_then(|()| active.file.sync_data());
        if let Err(error) = written {
            // Leave no half record behind: the next append starts a new segment.
            let _ = active.file.set_len(segment.bytes);
            self.active = None;
            return Err(WalError::Storage(StorageError::Io { path: file_name, message: error.to_string() }));
        }
        segment.bytes += bytes.len() as u64;
        track(&self.options, segment, record);
        Ok(())
    }

    /// Closes the segment being appended to; the next append starts another.
    pub fn seal(&mut self) {
        self.active = None;
    }

    /// Removes the rows of `table` whose event time is before `cutoff_ms`
    /// from the store (see the module documentation).
    pub async fn expire(&mut self, table: &str, cutoff_ms: i64) -> Result<Expired, WalError> {
        let Some(column) = self.options.event_columns.get(table).cloned() else {
            return Err(WalError::Encode(format!("table `{table}` has no event-time column for retention")));
        };
        self.seal();
        let mut expired = Expired::default();
        let mut kept = Vec::with_capacity(self.segments.len());
        for segment in std::mem::take(&mut self.segments) {
            let Some(&(rows, earliest, latest)) = segment.events.get(table) else {
                kept.push(segment);
                continue;
            };
            if earliest >= cutoff_ms {
                kept.push(segment);
                continue;
            }
            expired.earliest_ms = Some(expired.earliest_ms.map_or(earliest, |e| e.min(earliest)));
            if latest < cutoff_ms && segment.events.len() == 1 && !segment.other_tables {
                self.storage.delete(&segment.path).await?;
                expired.rows += rows;
                expired.latest_ms = Some(expired.latest_ms.map_or(latest, |l| l.max(latest)));
                expired.deleted_segments.push((segment.path.clone(), rows));
                continue;
            }
            // Some rows stay: rewrite the segment without the expired ones.
            let bytes = self.storage.get(&segment.path).await?;
            let (records, end) = decode_segment(&bytes);
            if let SegmentEnd::Corrupt { offset, message } = end {
                return Err(self.corrupt(&segment.path, offset, &message));
            }
            let mut out = Vec::with_capacity(bytes.len());
            let mut removed = 0;
            let mut rewritten = Segment { events: BTreeMap::new(), other_tables: false, ..segment.clone() };
            for mut record in records {
                if record.table == table {
                    let Some(times) = event_times(&record.batch, &column) else { continue };
                    let keep: BooleanArray = (0..times.len()).map(|i| Some(!times.is_valid(i) || times.value(i) >= cutoff_ms)).collect();
                    for i in 0..times.len() {
                        if times.is_valid(i) && times.value(i) < cutoff_ms {
                            expired.latest_ms = Some(expired.latest_ms.map_or(times.value(i), |l| l.max(times.value(i))));
                        }
                    }
                    let before = record.batch.num_rows();
                    record.batch = arrow::compute::filter_record_batch(&record.batch, &keep).map_err(|e| WalError::Encode(e.to_string()))?;
                    removed += (before - record.batch.num_rows()) as u64;
                }
                self.track(&mut rewritten, &record);
                out.extend(encode(&record).map_err(|e| WalError::Encode(e.to_string()))?);
            }
            self.storage.put(&segment.path, out.clone()).await?;
            rewritten.bytes = out.len() as u64;
            expired.rows += removed;
            expired.rewritten_segments.push((segment.path.clone(), removed));
            kept.push(rewritten);
        }
        self.segments = kept;
        let dates: std::collections::BTreeSet<&str> = self.segments.iter().map(|s| s.date.as_str()).collect();
        let mut gone: Vec<String> = expired
            .deleted_segments
            .iter()
            .filter_map(|(path, _)| path.rsplit_once('/').map(|(folder, _)| folder.to_string()))
            .filter(|folder| folder.rsplit_once('/').is_none_or(|(_, date)| !dates.contains(date)))
            .collect();
        gone.dedup();
        expired.deleted_partitions = gone;
        Ok(expired)
    }
}

/// Adds a record's rows to what the segment's index knows.
fn track(options: &WalOptions, segment: &mut Segment, record: &WalRecord) {
    let Some(column) = options.event_columns.get(&record.table) else {
        segment.other_tables = true;
        return;
    };
    let Some(times) = event_times(&record.batch, column) else { return };
    for t in times.iter().flatten() {
        let entry = segment.events.entry(record.table.clone()).or_insert((0, i64::MAX, i64::MIN));
        entry.0 += 1;
        entry.1 = entry.1.min(t);
        entry.2 = entry.2.max(t);
    }
}

fn event_times(batch: &RecordBatch, column: &str) -> Option<Arc<TimestampMillisecondArray>> {
    let array = batch.column_by_name(column)?;
    array.as_any().downcast_ref::<TimestampMillisecondArray>().map(|a| Arc::new(a.clone()))
}
