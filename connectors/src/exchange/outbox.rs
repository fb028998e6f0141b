//! The sender's outbox: pre-arrival records, durable until the neighbour
//! acknowledges them.
//!
//! The outbox is a write-ahead log of its own ([`Wal`], post id
//! `<post>.outbox`, so `wal/<post>.outbox/<date>/…` in the post's store; a
//! `.` cannot occur in a post id, so it never collides with a post's log).
//! Two kinds of record: `pre_arrival` (a batch to send; its log sequence
//! number is its outbox number) and `acked` (one row: every record up to
//! this number is acknowledged by the peer). [`Outbox::open`] replays the
//! log and keeps the unacknowledged records in memory, in order.
//!
//! Acknowledgements are written lazily (a lost one only means the records
//! are sent again, and the receiver drops repeats by `read_id`). Once
//! everything before some capture time is acknowledged, [`Outbox::compact`]
//! expires those rows from the log, so it does not grow without bound.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, TimestampMillisecondArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use borderflow_engine::storage::Storage;
use borderflow_engine::wal::{Wal, WalError, WalOp, WalOptions};

const PRE_ARRIVAL: &str = "pre_arrival";
const ACKED: &str = "acked";

/// One record waiting for the peer's acknowledgement.
#[derive(Clone, Debug)]
pub struct OutboxRecord {
    /// Its number in the outbox (increasing, with gaps).
    pub seq: u64,
    /// When it entered the outbox (wall clock, ms since the epoch).
    pub queued_at_ms: u64,
    pub batch: RecordBatch,
}

/// The durable outbox of one post (see the module documentation).
pub struct Outbox {
    wal: Wal,
    pending: VecDeque<OutboxRecord>,
    acked_through: u64,
    /// The acknowledgement last written to the log.
    logged_ack: u64,
}

fn wall_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

impl Outbox {
    /// Opens `<post>.outbox` in `storage` and recovers what was not acknowledged.
    pub async fn open(storage: Storage, post_id: &str) -> Result<Outbox, WalError> {
        let mut options = WalOptions::new(&format!("{post_id}.outbox"));
        options.event_columns.insert(PRE_ARRIVAL.to_string(), "captured_at".to_string());
        let (wal, records, _) = Wal::open(storage, options).await?;
        let mut acked_through = 0;
        let mut pending = VecDeque::new();
        for record in records {
            match record.table.as_str() {
                PRE_ARRIVAL if record.batch.num_rows() > 0 => {
                    pending.push_back(OutboxRecord { seq: record.seq, queued_at_ms: record.time_ms, batch: record.batch })
                }
                ACKED => {
                    let through = record.batch.column(0).as_any().downcast_ref::<UInt64Array>().filter(|a| !a.is_empty()).map(|a| a.value(0));
                    acked_through = acked_through.max(through.unwrap_or(0));
                }
                _ => {}
            }
        }
        pending.retain(|r| r.seq > acked_through);
        Ok(Outbox { wal, pending, acked_through, logged_ack: acked_through })
    }

    /// Appends a batch of pre-arrival records; returns its number once durable.
    pub async fn push(&mut self, batch: RecordBatch) -> Result<u64, WalError> {
        let time = wall_ms().max(self.wal.last_time_ms());
        let seq = self.wal.append(time, WalOp::Insert, PRE_ARRIVAL, &batch).await?;
        self.pending.push_back(OutboxRecord { seq, queued_at_ms: time, batch });
        Ok(seq)
    }

    /// Records not yet acknowledged, oldest first.
    pub fn pending(&self) -> &VecDeque<OutboxRecord> {
        &self.pending
    }

    /// Records after `seq` (to send after `seq` was sent).
    pub fn after(&self, seq: u64) -> impl Iterator<Item = &OutboxRecord> {
        self.pending.iter().filter(move |r| r.seq > seq)
    }

    /// Every record up to `seq` is acknowledged: they leave the outbox.
    /// Written to the log by [`flush_ack`](Self::flush_ack).
    pub fn ack(&mut self, seq: u64) {
        self.acked_through = self.acked_through.max(seq);
        while self.pending.front().is_some_and(|r| r.seq <= seq) {
            self.pending.pop_front();
        }
    }

    /// The last acknowledged record's number.
    pub fn acked_through(&self) -> u64 {
        self.acked_through
    }

    /// Writes the latest acknowledgement to the log, if it is new.
    pub async fn flush_ack(&mut self) -> Result<(), WalError> {
        if self.acked_through == self.logged_ack {
            return Ok(());
        }
        let schema = Arc::new(Schema::new(vec![Field::new("through", DataType::UInt64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(UInt64Array::from(vec![self.acked_through]))])
            .map_err(|e| WalError::Encode(e.to_string()))?;
        let time = wall_ms().max(self.wal.last_time_ms());
        self.wal.append(time, WalOp::Insert, ACKED, &batch).await?;
        self.logged_ack = self.acked_through;
        Ok(())
    }

    /// Removes acknowledged rows from the log: those captured before the
    /// earliest capture time still pending (all of them when none is).
    pub async fn compact(&mut self) -> Result<u64, WalError> {
        self.flush_ack().await?;
        let earliest_pending = self
            .pending
            .iter()
            .filter_map(|r| r.batch.column_by_name("captured_at")?.as_any().downcast_ref::<TimestampMillisecondArray>().cloned())
            .flat_map(|a| a.iter().flatten().collect::<Vec<_>>())
            .min()
            .unwrap_or(i64::MAX);
        Ok(self.wal.expire(PRE_ARRIVAL, earliest_pending).await?.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderflow_types::{Direction, ExchangeKeys, PlateRead, Point, pre_arrival_records};

    fn read(id: &str, at: i64) -> PlateRead {
        PlateRead {
            read_id: id.to_string(),
            post_id: "mohyliv-podilskyi".into(),
            camera_id: "c".into(),
            country: "UA".into(),
            lane: 1,
            direction: Direction::Exit,
            point: Point::Departure,
            captured_at_ms: at,
            plate_text: "AA1234BB".into(),
            plate_norm: "AA1234BB".into(),
            plate_country: None,
            confidence: 0.9,
            frames: 3,
            bbox: None,
            crop_uri: None,
        }
    }

    #[tokio::test]
    async fn unacknowledged_records_survive_a_reopen_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = borderflow_types::StorageConfig {
            url: format!("file://{}", dir.path().display()),
            retention: Default::default(),
            s3: Default::default(),
        };
        let storage = Storage::open(&config).expect("store");
        let keys = ExchangeKeys::single(b"k");
        let mut outbox = Outbox::open(storage.clone(), "ua").await.expect("open");
        let a = outbox.push(pre_arrival_records(&[read("a", 1_000)], &keys)).await.expect("a");
        let b = outbox.push(pre_arrival_records(&[read("b", 2_000)], &keys)).await.expect("b");
        let c = outbox.push(pre_arrival_records(&[read("c", 3_000)], &keys)).await.expect("c");
        outbox.ack(a);
        outbox.flush_ack().await.expect("ack");
        drop(outbox);
        let mut outbox = Outbox::open(storage.clone(), "ua").await.expect("reopen");
        assert_eq!(outbox.pending().iter().map(|r| r.seq).collect::<Vec<_>>(), vec![b, c]);
        outbox.ack(b);
        assert!(outbox.compact().await.expect("compact") > 0, "a's and b's rows leave the log");
        drop(outbox);
        let outbox = Outbox::open(storage, "ua").await.expect("reopen");
        assert_eq!(outbox.pending().iter().map(|r| r.seq).collect::<Vec<_>>(), vec![c]);
    }
}
