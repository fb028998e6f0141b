//! The watchlist table: plates a customs service wants to know about, why,
//! how urgently, and when the entry applies.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::plate_norm;

/// `plate` (normalised on load), `reason`, `severity` (1 low, 2 medium,
/// 3 high), and the entry applies to reads captured in
/// `[valid_from, valid_to)`; a NULL bound is open.
pub fn watchlist_schema() -> SchemaRef {
    let timestamp = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("plate", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("severity", DataType::UInt8, false),
        Field::new("valid_from", timestamp.clone(), true),
        Field::new("valid_to", timestamp, true),
    ]))
}

/// `batch` (from a CSV or Parquet file, the API, the scenario) in the
/// [`watchlist_schema`]: its columns picked by name and cast, plates
/// normalised. `valid_from`/`valid_to` may be missing (open); errors name
/// `origin`, the column and, for bad values, the row (1-based).
pub fn conform_watchlist(batch: &RecordBatch, origin: &str) -> Result<RecordBatch, String> {
    let schema = watchlist_schema();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for field in schema.fields() {
        let column = match batch.column_by_name(field.name()) {
            Some(column) => column,
            None if field.is_nullable() => {
                columns.push(arrow::array::new_null_array(field.data_type(), batch.num_rows()));
                continue;
            }
            None => return Err(format!("{origin}: the watchlist has no column `{}`", field.name())),
        };
        let cast = arrow::compute::cast(column, field.data_type())
            .map_err(|e| format!("{origin}: column `{}`: {e}", field.name()))?;
        // A value the cast could not read became NULL: say which row. (The
        // logical nulls: a column of type Null, all empty, has no null buffer.)
        let given_nulls = column.logical_nulls();
        let given = |i: usize| given_nulls.as_ref().is_none_or(|nulls| nulls.is_valid(i));
        if let Some(row) = (0..cast.len()).find(|&i| cast.is_null(i) && given(i)) {
            return Err(format!("{origin}: row {}: column `{}`: not a {}", row + 1, field.name(), field.data_type()));
        }
        if !field.is_nullable() && let Some(row) = (0..cast.len()).find(|&i| cast.is_null(i)) {
            return Err(format!("{origin}: row {}: column `{}` is empty", row + 1, field.name()));
        }
        columns.push(cast);
    }
    let plates = columns[0].as_any().downcast_ref::<StringArray>().expect("cast to Utf8");
    columns[0] = Arc::new(plates.iter().map(|p| p.map(plate_norm)).collect::<StringArray>());
    if let Some(severity) = columns[2].as_any().downcast_ref::<arrow::array::UInt8Array>()
        && let Some(row) = (0..severity.len()).find(|&i| !(1..=3).contains(&severity.value(i)))
    {
        return Err(format!("{origin}: row {}: severity {} is not 1, 2 or 3", row + 1, severity.value(row)));
    }
    RecordBatch::try_new(schema, columns).map_err(|e| format!("{origin}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    #[test]
    fn conforms_names_and_types_and_says_which_row_is_bad() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("severity", DataType::Int64, false),
            Field::new("plate", DataType::Utf8, false),
            Field::new("reason", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(vec![3, 1])),
                Arc::new(StringArray::from(vec!["ab 1234 ce", "OC-AB-123"])),
                Arc::new(StringArray::from(vec!["stolen", "unpaid duty"])),
            ],
        )
        .unwrap();
        let conformed = conform_watchlist(&batch, "watchlist.csv").unwrap();
        let plates = conformed.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(plates.value(0), "AB1234CE");
        assert_eq!(conformed.column(3).null_count(), 2);
        let bad = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![2, 7])),
                Arc::new(StringArray::from(vec!["A", "B"])),
                Arc::new(StringArray::from(vec!["x", "y"])),
            ],
        )
        .unwrap();
        assert_eq!(conform_watchlist(&bad, "w.csv").unwrap_err(), "w.csv: row 2: severity 7 is not 1, 2 or 3");
    }
}
