//! Helpers shared by the standing-view tests.

use arrow::array::RecordBatch;

/// Rows as sorted strings, so two batches compare as multisets.
pub fn rows(batch: &RecordBatch) -> Vec<String> {
    borderflow_queries::row::sorted_rows(batch).expect("rows format")
}
