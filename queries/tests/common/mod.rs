//! Helpers shared by the standing-view tests.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// Rows as sorted strings, so two batches compare as multisets. Timestamps
/// print as integers (formatting a named time zone needs the time-zone
/// database).
pub fn rows(batch: &RecordBatch) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let columns: Vec<_> = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Timestamp(_, _) => arrow::compute::cast(c, &DataType::Int64).expect("cast"),
            _ => Arc::clone(c),
        })
        .collect();
    let formatters: Vec<ArrayFormatter> = columns.iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter")).collect();
    let mut out: Vec<String> = (0..batch.num_rows())
        .map(|i| formatters.iter().map(|f| f.value(i).to_string()).collect::<Vec<_>>().join("|"))
        .collect();
    out.sort();
    out
}
