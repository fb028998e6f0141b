//! The Parquet sink: reads, view changelogs and snapshots, and scenario ground
//! truth, written as Parquet files to an `object_store` URL.
//!
//! Layout under the store's root (the post's `storage.url`):
//!
//! ```text
//! reads/<post_id>/<YYYY-MM-DD>/part-<first read_id>.parquet   plate reads, by post and event date
//! views/<view>/changes/part-<n>.parquet                       a view's changelog (+ `_diff`, `_time`)
//! views/<view>/snapshot.parquet                               a view's contents at the end of the run
//! ground_truth/<table>.parquet                                what the scenario planted
//! ```
//!
//! Every file is written whole with one `put`, which object stores make
//! atomic: a reader never sees half a file.

use std::sync::Arc;

use arrow::array::RecordBatch;
use borderflow_types::{PlateRead, reads_history_parts, reads_to_batch};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use url::Url;

/// What went wrong writing to or reading from the store, and where.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage URL `{url}`: {message}")]
    Url { url: String, message: String },
    #[error("encoding Parquet for `{path}`: {source}")]
    Parquet { path: String, source: parquet::errors::ParquetError },
    #[error("object store, `{path}`: {source}")]
    ObjectStore { path: String, source: object_store::Error },
}

/// A Parquet file written to the store.
#[derive(Clone, Debug, PartialEq)]
pub struct WrittenFile {
    /// Location inside the store, e.g. `reads/otaci/2026-11-27/part-….parquet`.
    pub path: String,
    pub rows: usize,
    pub bytes: usize,
}

/// An object store and the prefix Borderflow writes under.
#[derive(Clone, Debug)]
pub struct ParquetStore {
    url: Url,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl ParquetStore {
    /// Opens the store at `url` (`file:///abs/dir`, `s3://bucket/prefix`, …).
    /// A `file://` folder is created if it does not exist.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let bad = |message: String| StoreError::Url { url: url.to_string(), message };
        let parsed = Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if parsed.scheme() == "file" {
            let dir = parsed
                .to_file_path()
                .map_err(|()| bad("not an absolute local path".into()))?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| bad(format!("cannot create {}: {e}", dir.display())))?;
        }
        let (store, prefix) = object_store::parse_url(&parsed).map_err(|e| bad(e.to_string()))?;
        Ok(ParquetStore { url: parsed, store: Arc::from(store), prefix })
    }

    /// The store's URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The underlying object store and the prefix files live under.
    pub fn object_store(&self) -> (Arc<dyn ObjectStore>, &Path) {
        (Arc::clone(&self.store), &self.prefix)
    }

    /// The URL of a folder inside the store (for query engines).
    pub fn folder_url(&self, folder: &str) -> String {
        let base = self.url.as_str().trim_end_matches('/');
        format!("{base}/{}/", folder.trim_matches('/'))
    }

    /// Writes one record batch as one Parquet file at `relative` (under the prefix).
    pub async fn write_batch(&self, relative: &str, batch: &RecordBatch) -> Result<WrittenFile, StoreError> {
        let location = self.location(relative);
        let parquet_error = |source| StoreError::Parquet { path: location.to_string(), source };
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let mut buffer = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut buffer, batch.schema(), Some(props)).map_err(parquet_error)?;
        writer.write(batch).map_err(parquet_error)?;
        writer.close().map_err(parquet_error)?;
        let bytes = buffer.len();
        self.store
            .put(&location, PutPayload::from(buffer))
            .await
            .map_err(|source| StoreError::ObjectStore { path: location.to_string(), source })?;
        Ok(WrittenFile { path: relative.to_string(), rows: batch.num_rows(), bytes })
    }

    /// Writes reads partitioned by post and event date (UTC), one file per
    /// partition, named after the partition's first read id.
    pub async fn write_reads(&self, reads: &[PlateRead]) -> Result<Vec<WrittenFile>, StoreError> {
        let mut written = Vec::new();
        for (relative, rows) in reads_history_parts(reads) {
            written.push(self.write_batch(&relative, &reads_to_batch(&rows)).await?);
        }
        Ok(written)
    }

    fn location(&self, relative: &str) -> Path {
        let mut location = self.prefix.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            location = location.clone().join(part);
        }
        location
    }
}
