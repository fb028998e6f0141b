//! The post's watchlist as a file (`[watchlist]`, [`WatchlistConfig`]): a
//! local file or an object in the post's store, Parquet or CSV with a
//! header row, read whole and conformed to [`watchlist_schema`].
//!
//! The file is the whole list. [`crate::Engine::reload_watchlist_at`]
//! reads it, and when its bytes changed since the last read makes the
//! `watchlist` table say what it says: new and changed entries are upserted,
//! entries that left the file are closed (`valid_to` set to the time of the
//! reload, so flags raised while they were on the list stay). `serve` reads
//! it when its post starts and every `[watchlist] reload`; `run --config`
//! and `run --follow` read it once.
//!
//! [`watchlist_schema`]: borderflow_types::watchlist_schema

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchReader, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use crate::storage::Storage;
use borderflow_types::{WatchlistSource, conform_watchlist};
use sha2::Digest;

/// A watchlist file as read: its bytes' digest, and where it came from.
pub struct WatchlistFile {
    pub bytes: Vec<u8>,
    pub digest: [u8; 32],
    /// The file's path or the object's URL, for messages.
    pub origin: String,
}

/// Reads the file or object `from` names.
pub async fn fetch(from: &WatchlistSource, storage: &Storage) -> Result<WatchlistFile, String> {
    let (bytes, origin) = match from {
        WatchlistSource::File(path) => {
            let origin = path.display().to_string();
            (std::fs::read(path).map_err(|e| format!("watchlist {origin}: {e}"))?, origin)
        }
        WatchlistSource::Object(key) => {
            let origin = storage.describe(key);
            (storage.get(key).await.map_err(|e| format!("watchlist {origin}: {e}"))?, origin)
        }
    };
    let digest = sha2::Sha256::digest(&bytes).into();
    Ok(WatchlistFile { bytes, digest, origin })
}

/// The entries of a watchlist file, in the watchlist's schema. Parquet if
/// `origin` ends in `.parquet`, else CSV with a header row. Errors name the
/// file and, where the reader says, the line or row.
pub fn parse(file: &WatchlistFile) -> Result<RecordBatch, String> {
    let origin = &file.origin;
    let batch = if origin.to_ascii_lowercase().ends_with(".parquet") {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(file.bytes.clone()))
            .and_then(|builder| builder.build())
            .map_err(|e| format!("watchlist {origin}: not a Parquet file: {e}"))?;
        let schema = reader.schema();
        let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|e| format!("watchlist {origin}: {e}"))?;
        arrow::compute::concat_batches(&schema, &batches).map_err(|e| format!("watchlist {origin}: {e}"))?
    } else {
        parse_csv(&file.bytes, origin)?
    };
    conform_watchlist(&batch, &format!("watchlist {origin}"))
}

/// CSV with a header row; column types are inferred, except that `plate`
/// and `reason` stay text (a plate of digits keeps its leading zeros).
fn parse_csv(bytes: &[u8], origin: &str) -> Result<RecordBatch, String> {
    let format = arrow_csv::reader::Format::default().with_header(true);
    let (inferred, _) = format.infer_schema(Cursor::new(bytes), None).map_err(|e| format!("watchlist {origin}: {e}"))?;
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "plate" | "reason" => Field::new(f.name(), DataType::Utf8, true),
            _ => f.as_ref().clone(),
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let reader = arrow_csv::ReaderBuilder::new(schema.clone())
        .with_format(format)
        .build(Cursor::new(bytes))
        .map_err(|e| format!("watchlist {origin}: {e}"))?;
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|e| format!("watchlist {origin}: {e}"))?;
    let batch = arrow::compute::concat_batches(&schema, &batches).map_err(|e| format!("watchlist {origin}: {e}"))?;
    // An empty field is no value (an open bound, a missing reason), not "".
    let columns = batch
        .columns()
        .iter()
        .map(|column| match column.as_any().downcast_ref::<StringArray>() {
            Some(text) => Arc::new(text.iter().map(|v| v.filter(|v| !v.is_empty())).collect::<StringArray>()) as ArrayRef,
            None => column.clone(),
        })
        .collect();
    RecordBatch::try_new(schema, columns).map_err(|e| format!("watchlist {origin}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{TimestampMillisecondArray, UInt8Array};

    fn file(name: &str, text: &str) -> WatchlistFile {
        WatchlistFile { bytes: text.as_bytes().to_vec(), digest: [0; 32], origin: name.to_string() }
    }

    #[test]
    fn a_csv_watchlist_keeps_plates_as_text_and_reads_open_bounds_as_null() {
        let batch = parse(&file(
            "w.csv",
            "plate,reason,severity,valid_from,valid_to\n0123 ab,stolen,3,2026-11-27T06:00:00Z,\nCZO 526,cloned,2,,2026-11-28T00:00:00Z\n",
        ))
        .unwrap();
        // A bound empty on every row is open on every row.
        let open = parse(&file("w.csv", "plate,reason,severity,valid_from,valid_to\nAB123,stolen,3,,\nCD456,cloned,2,,\n")).unwrap();
        assert_eq!((open.column(3).null_count(), open.column(4).null_count()), (2, 2));
        let plates = batch.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(plates.iter().flatten().collect::<Vec<_>>(), ["0123AB", "CZO526"]);
        let severity = batch.column(2).as_any().downcast_ref::<UInt8Array>().unwrap();
        assert_eq!(severity.values().to_vec(), [3, 2]);
        let from = batch.column(3).as_any().downcast_ref::<TimestampMillisecondArray>().unwrap();
        let to = batch.column(4).as_any().downcast_ref::<TimestampMillisecondArray>().unwrap();
        assert_eq!((from.value(0), from.is_null(1)), (1_795_759_200_000, true));
        assert_eq!((to.is_null(0), to.value(1)), (true, 1_795_824_000_000));
    }

    #[test]
    fn a_bad_watchlist_says_which_file_and_row() {
        let error = parse(&file("lists/w.csv", "plate,reason,severity\nAB123,stolen,3\nCD456,cloned,7\n")).unwrap_err();
        assert!(error.contains("lists/w.csv") && error.contains("row 2") && error.contains("severity 7"), "{error}");
        let error = parse(&file("w.csv", "plate,severity\nAB123,3\n")).unwrap_err();
        assert!(error.contains("w.csv") && error.contains("no column `reason`"), "{error}");
        let error = parse(&file("w.parquet", "plate,reason\n")).unwrap_err();
        assert!(error.contains("w.parquet") && error.contains("not a Parquet file"), "{error}");
    }
}
