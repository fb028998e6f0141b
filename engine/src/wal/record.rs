//! One log record in bytes, and reading a segment's records back.
//!
//! ```text
//! record  = magic "BFW1" | payload length (u32 LE) | CRC-32 of the payload (u32 LE) | payload
//! payload = seq (u64 LE) | time_ms (u64 LE) | op (u8) | table length (u16 LE) | table (UTF-8)
//!         | Arrow IPC stream of the batch (schema, one batch, end of stream)
//! ```
//!
//! A segment is records back to back. Reading stops at the first record that
//! is not whole: [`SegmentEnd::Truncated`] when the bytes end inside a record
//! (a crash in the middle of an append), [`SegmentEnd::Corrupt`] for anything
//! else (a wrong magic, a checksum that does not match, a payload that does
//! not decode), each with the byte offset of the record. A length is never
//! trusted past the bytes there are: a record's length is checked against
//! the segment before its payload is read, and the Arrow IPC stream inside
//! against the payload ([`crate::ipc_check`]) before arrow reads it.

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

const MAGIC: &[u8; 4] = b"BFW1";
const HEADER: usize = 12;

/// What a record does to its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalOp {
    /// The rows are inserted (an empty batch only advances time).
    Insert = 1,
    /// The rows replace the table's rows with the same key (the first column).
    Upsert = 2,
}

/// One durable change: rows for a table, at a commit time.
#[derive(Clone, Debug, PartialEq)]
pub struct WalRecord {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// The commit time the change happened at (ingestion time, ms since the epoch).
    pub time_ms: u64,
    pub op: WalOp,
    pub table: String,
    pub batch: RecordBatch,
}

/// How reading a segment ended.
#[derive(Debug, PartialEq)]
pub enum SegmentEnd {
    /// Every byte belongs to a whole record.
    Clean,
    /// The bytes end inside the record starting at `offset` (a torn append).
    Truncated { offset: usize },
    /// The record at `offset` is damaged.
    Corrupt { offset: usize, message: String },
}

/// The bytes of one record.
pub fn encode(record: &WalRecord) -> Result<Vec<u8>, arrow::error::ArrowError> {
    let mut payload = Vec::with_capacity(64 + record.batch.get_array_memory_size());
    payload.extend_from_slice(&record.seq.to_le_bytes());
    payload.extend_from_slice(&record.time_ms.to_le_bytes());
    payload.push(record.op as u8);
    let table = record.table.as_bytes();
    let table_len = u16::try_from(table.len()).map_err(|_| arrow::error::ArrowError::InvalidArgumentError("table name too long".into()))?;
    payload.extend_from_slice(&table_len.to_le_bytes());
    payload.extend_from_slice(table);
    {
        let mut writer = StreamWriter::try_new(&mut payload, &record.batch.schema())?;
        writer.write(&record.batch)?;
        writer.finish()?;
    }
    let length = u32::try_from(payload.len()).map_err(|_| arrow::error::ArrowError::InvalidArgumentError("record over 4 GiB".into()))?;
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Every whole record of a segment, and how the segment ended. The records
/// before a damaged or torn one are returned either way.
pub fn decode_segment(bytes: &[u8]) -> (Vec<WalRecord>, SegmentEnd) {
    let mut records = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        if rest.len() < HEADER {
            let end = if MAGIC.starts_with(&rest[..rest.len().min(4)]) {
                SegmentEnd::Truncated { offset }
            } else {
                SegmentEnd::Corrupt { offset, message: "bad record magic".into() }
            };
            return (records, end);
        }
        if &rest[..4] != MAGIC {
            return (records, SegmentEnd::Corrupt { offset, message: "bad record magic".into() });
        }
        let length = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let checksum = u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]);
        if rest.len() < HEADER + length {
            return (records, SegmentEnd::Truncated { offset });
        }
        let payload = &rest[HEADER..HEADER + length];
        let actual = crc32fast::hash(payload);
        if actual != checksum {
            let message = format!("checksum mismatch (stored {checksum:08x}, computed {actual:08x})");
            return (records, SegmentEnd::Corrupt { offset, message });
        }
        match decode_payload(payload) {
            Ok(record) => records.push(record),
            Err(message) => return (records, SegmentEnd::Corrupt { offset, message }),
        }
        offset += HEADER + length;
    }
    (records, SegmentEnd::Clean)
}

fn decode_payload(payload: &[u8]) -> Result<WalRecord, String> {
    let too_short = || "payload too short".to_string();
    let fixed = payload.get(..19).ok_or_else(too_short)?;
    let seq = u64::from_le_bytes(fixed[0..8].try_into().map_err(|_| too_short())?);
    let time_ms = u64::from_le_bytes(fixed[8..16].try_into().map_err(|_| too_short())?);
    let op = match fixed[16] {
        1 => WalOp::Insert,
        2 => WalOp::Upsert,
        other => return Err(format!("unknown operation {other}")),
    };
    let table_len = u16::from_le_bytes([fixed[17], fixed[18]]) as usize;
    let table = payload.get(19..19 + table_len).ok_or_else(too_short)?;
    let table = std::str::from_utf8(table).map_err(|e| format!("table name: {e}"))?.to_string();
    let ipc = &payload[19 + table_len..];
    // Checked first: arrow trusts the lengths a damaged stream declares.
    crate::ipc_check::check_stream(ipc).map_err(|e| format!("Arrow IPC: {e}"))?;
    let mut reader = StreamReader::try_new(std::io::Cursor::new(ipc), None).map_err(|e| format!("Arrow IPC: {e}"))?;
    let batch = match reader.next() {
        Some(batch) => batch.map_err(|e| format!("Arrow IPC: {e}"))?,
        None => return Err("Arrow IPC stream holds no batch".into()),
    };
    Ok(WalRecord { seq, time_ms, op, table, batch })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn record(seq: u64) -> WalRecord {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, false), Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(vec!["a", "b"])), Arc::new(Int64Array::from(vec![seq as i64, 2]))],
        )
        .expect("batch");
        WalRecord { seq, time_ms: 1000 + seq, op: WalOp::Insert, table: "t".into(), batch }
    }

    #[test]
    fn records_round_trip_and_damage_is_told_apart_from_a_torn_tail() {
        let mut bytes = encode(&record(1)).expect("encode");
        let second = encode(&record(2)).expect("encode");
        let first_len = bytes.len();
        bytes.extend_from_slice(&second);
        let (records, end) = decode_segment(&bytes);
        assert_eq!(records, vec![record(1), record(2)]);
        assert_eq!(end, SegmentEnd::Clean);

        for cut in [first_len + 3, first_len + 11, bytes.len() - 1] {
            let (records, end) = decode_segment(&bytes[..cut]);
            assert_eq!(records, vec![record(1)], "cut at {cut}");
            assert_eq!(end, SegmentEnd::Truncated { offset: first_len });
        }

        let mut flipped = bytes.clone();
        flipped[first_len + 40] ^= 0x20;
        let (records, end) = decode_segment(&flipped);
        assert_eq!(records.len(), 1);
        assert!(matches!(end, SegmentEnd::Corrupt { offset, ref message } if offset == first_len && message.contains("checksum")), "{end:?}");
    }
}
