//! Borderflow's connectors: where reads come from and where results go.
//!
//! Sources produce [`borderflow_engine::PlateRead`]s: the deterministic traffic
//! [`scenario`] (simulated crossings with planted anomalies and ground truth).
//! Sinks take reads and view changes as Arrow record batches and write them
//! out: [`ParquetStore`] writes Parquet to any `object_store` URL.

pub use parquet_store::{ParquetStore, StoreError, WrittenFile};

mod parquet_store;
pub mod scenario;
