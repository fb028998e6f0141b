//! The write-ahead log on a real folder: records come back as written; a torn
//! append at the end is cut back to the last whole record; damage anywhere
//! else stops recovery with an error naming the segment and the offset;
//! retention deletes whole date partitions and rewrites partly expired
//! segments.

use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use borderflow_engine::wal::{Wal, WalError, WalOp};
use crate::wal_store::{options, storage};

const DAY_MS: u64 = 86_400_000;
const START: u64 = 1_795_000_000_000 / DAY_MS * DAY_MS; // midnight UTC

fn reads(ids: &[&str], captured_at: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("read_id", DataType::Utf8, false),
        Field::new("captured_at", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
    ]));
    let times = TimestampMillisecondArray::from(vec![captured_at; ids.len()]).with_timezone("UTC");
    RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(ids.to_vec())), Arc::new(times)]).expect("batch")
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(future)
}

fn segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.join("store/wal")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn a_torn_tail_is_cut_back_and_other_damage_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    block_on(async {
        let (mut wal, records, _) = Wal::open(storage(dir.path()), options()).await.expect("open");
        assert!(records.is_empty());
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            wal.append(START + i as u64, WalOp::Insert, "reads", &reads(&[id], START as i64)).await.expect("append");
        }
        // A new day starts another segment.
        wal.append(START + DAY_MS, WalOp::Insert, "reads", &reads(&["d"], (START + DAY_MS) as i64)).await.expect("append");
    });
    let files = segments(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[0].to_string_lossy().contains("wal/otaci/"), "partitioned by post: {files:?}");

    // A crash in the middle of an append: half a record at the end.
    let whole = std::fs::metadata(&files[1]).expect("segment").len();
    let mut torn = std::fs::read(&files[1]).expect("segment");
    let tail = torn.clone();
    torn.extend_from_slice(&tail[..tail.len() / 2]);
    std::fs::write(&files[1], &torn).expect("tear");
    block_on(async {
        let (mut wal, records, recovered) = Wal::open(storage(dir.path()), options()).await.expect("a torn tail is not an error");
        assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert_eq!(records[3].batch, reads(&["d"], (START + DAY_MS) as i64));
        assert_eq!(recovered.cut_back.as_ref().map(|c| c.1), Some(torn.len() as u64 - whole));
        assert_eq!(wal.next_seq(), 5);
        wal.append(START + DAY_MS + 1, WalOp::Insert, "reads", &reads(&["e"], (START + DAY_MS) as i64)).await.expect("append");
    });
    assert_eq!(std::fs::metadata(&files[1]).expect("segment").len(), whole, "cut back in the file too");

    // A flipped bit inside the first segment is corruption, not a torn tail.
    let mut bytes = std::fs::read(&files[0]).expect("segment");
    let first_record = bytes.len() / 3;
    bytes[first_record + 30] ^= 0x01;
    std::fs::write(&files[0], &bytes).expect("damage");
    let error = block_on(Wal::open(storage(dir.path()), options())).err().expect("recovery stops");
    let message = error.to_string();
    assert!(matches!(error, WalError::Corrupt { .. }), "{message}");
    assert!(message.contains(&files[0].display().to_string()), "names the segment: {message}");
    assert!(message.contains("byte offset") && message.contains("checksum"), "{message}");
}

#[test]
fn retention_deletes_whole_partitions_and_rewrites_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    block_on(async {
        let (mut wal, _, _) = Wal::open(storage(dir.path()), options()).await.expect("open");
        for day in 0..3u64 {
            for hour in [1u64, 13] {
                let t = START + day * DAY_MS + hour * 3_600_000;
                let ids = [format!("d{day}h{hour}a"), format!("d{day}h{hour}b")];
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                wal.append(t, WalOp::Insert, "reads", &reads(&ids, t as i64)).await.expect("append");
            }
        }
        // Keep day 1 from 12:00 on: day 0 goes whole, day 1's 01:00 reads go.
        let cutoff = (START + DAY_MS + 12 * 3_600_000) as i64;
        let expired = wal.expire("reads", cutoff).await.expect("expire");
        assert_eq!(expired.rows, 6);
        assert_eq!(expired.deleted_partitions.len(), 1, "{expired:?}");
        assert!(expired.deleted_partitions[0].ends_with(&chrono_date(START)), "{expired:?}");
        assert_eq!(expired.rewritten_segments.len(), 1, "{expired:?}");
        assert_eq!(expired.earliest_ms, Some((START + 3_600_000) as i64));
        assert_eq!(expired.latest_ms, Some((START + DAY_MS + 3_600_000) as i64));

        let (_, records, _) = Wal::open(storage(dir.path()), options()).await.expect("reopen");
        let ids: Vec<String> = records
            .iter()
            .flat_map(|r| {
                let ids = r.batch.column(0).as_any().downcast_ref::<StringArray>().expect("ids").clone();
                (0..ids.len()).map(move |i| ids.value(i).to_string())
            })
            .collect();
        assert_eq!(ids, ["d1h13a", "d1h13b", "d2h1a", "d2h1b", "d2h13a", "d2h13b"]);
    });
    assert!(!dir.path().join("store/wal/otaci").join(chrono_date(START)).exists(), "the partition's folder is gone");
}

fn chrono_date(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64).expect("date").date_naive().to_string()
}
