//! The compact row encoding that standing views keep inside differential
//! dataflow: Arrow's row format (`arrow::row`), one byte string per row.
//!
//! Rows compare and hash as bytes, which is what differential's arrangements
//! and exchanges need, and a row of several columns is the concatenation of
//! its columns' encodings, so a join concatenates two rows without decoding
//! them. Batches cross in and out with [`RowCodec`]. An arrangement's key
//! is a [`Key`]: an encoded row and its hash.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::row::{RowConverter, SortField};

/// One encoded row: immutable bytes behind a shared pointer, so the
/// copies differential makes (a table's arrangement and every join's index
/// of it, each merge of an arrangement's batches, a join's output) share one
/// allocation instead of each allocating and copying the row again.
#[derive(Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Row(pub Arc<[u8]>);

/// Byte order, as the slices' own. Arrangements, merges and sorts compare
/// rows all the time, and most pairs differ in their first eight bytes: those
/// are compared as one integer, inline, before any call to `memcmp`.
impl Ord for Row {
    fn cmp(&self, other: &Row) -> std::cmp::Ordering {
        let (a, b) = (&*self.0, &*other.0);
        if let (Some(x), Some(y)) = (a.first_chunk::<8>(), b.first_chunk::<8>()) {
            let order = u64::from_be_bytes(*x).cmp(&u64::from_be_bytes(*y));
            if order.is_ne() {
                return order;
            }
        }
        a.cmp(b)
    }
}

impl PartialOrd for Row {
    fn partial_cmp(&self, other: &Row) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Row({} bytes)", self.0.len())
    }
}

impl Row {
    /// This row followed by `other`: a row of both rows' columns.
    pub fn concat(&self, other: &Row) -> Row {
        let mut bytes = Vec::with_capacity(self.0.len() + other.0.len());
        bytes.extend_from_slice(&self.0);
        bytes.extend_from_slice(&other.0);
        Row(bytes.into())
    }

    /// A row of these bytes.
    pub fn from_bytes(bytes: &[u8]) -> Row {
        Row(Arc::from(bytes))
    }
}

/// The key an arrangement indexes rows by (a join's or a partition's): the
/// encoded key and its hash, which orders keys first. Arrangements and joins
/// compare keys all the time (a join seeks each changed key in every batch
/// of the other side); most comparisons are decided by the integer, and
/// bytes are compared only where the hashes are equal. Exchanges route by
/// the same hash, computed once per key.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Debug, serde::Serialize, serde::Deserialize)]
pub struct Key {
    hash: u64,
    row: Row,
}

impl Key {
    /// The key of an encoded row, hashed as differential hashes the row
    /// for its exchanges (the same fixed seed in every process).
    pub fn new(row: Row) -> Key {
        Key { hash: differential_dataflow::Hashable::hashed(&row), row }
    }
}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Converts between record batches of one schema and [`Row`]s.
pub struct RowCodec {
    schema: SchemaRef,
    converter: RowConverter,
}

impl RowCodec {
    pub fn new(schema: SchemaRef) -> Result<Self, ArrowError> {
        let fields = schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
        Ok(RowCodec { converter: RowConverter::new(fields)?, schema })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Encodes `num_rows` rows of columns (of this codec's schema).
    pub fn encode(&self, columns: &[ArrayRef], num_rows: usize) -> Result<Vec<Row>, ArrowError> {
        if columns.is_empty() {
            return Ok(vec![Row::default(); num_rows]);
        }
        let rows = self.converter.convert_columns(columns)?;
        Ok((0..rows.num_rows()).map(|i| Row::from_bytes(rows.row(i).as_ref())).collect())
    }

    /// Decodes rows into columns.
    pub fn decode_columns<'a>(&self, rows: impl IntoIterator<Item = &'a Row>) -> Result<Vec<ArrayRef>, ArrowError> {
        let parser = self.converter.parser();
        let parsed: Vec<arrow::row::Row<'_>> = rows.into_iter().map(|r| parser.parse(&r.0)).collect();
        self.converter.convert_rows(parsed)
    }

    /// Decodes rows into a record batch of this codec's schema.
    pub fn decode<'a>(&self, rows: impl IntoIterator<Item = &'a Row>) -> Result<RecordBatch, ArrowError> {
        let rows: Vec<&Row> = rows.into_iter().collect();
        if self.schema.fields().is_empty() {
            let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len()));
            return RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options);
        }
        RecordBatch::try_new(Arc::clone(&self.schema), self.decode_columns(rows)?)
    }
}

/// A batch's rows as sorted text (`|` between values, NULL as `NULL`), so
/// two batches compare as multisets. Timestamps print as their integer
/// value (formatting a named time zone would need the time-zone database).
pub fn sorted_rows(batch: &RecordBatch) -> Result<Vec<String>, ArrowError> {
    use arrow::datatypes::DataType;
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let options = FormatOptions::default().with_null("NULL");
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Timestamp(_, _) => arrow::compute::cast(c, &DataType::Int64),
            _ => Ok(Arc::clone(c)),
        })
        .collect::<Result<_, _>>()?;
    let formatters = columns.iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options)).collect::<Result<Vec<_>, _>>()?;
    let mut rows: Vec<String> = (0..batch.num_rows())
        .map(|i| formatters.iter().map(|f| f.value(i).to_string()).collect::<Vec<_>>().join("|"))
        .collect();
    rows.sort();
    Ok(rows)
}

/// The batch's columns cast to `schema`'s types, under its names: a batch
/// DataFusion computed (which may choose Utf8View, or other nullability)
/// in the form a table or view declares.
pub fn cast_to_schema(batch: &RecordBatch, schema: SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.num_columns() != schema.fields().len() {
        return Err(ArrowError::SchemaError(format!(
            "{} columns where {} are expected",
            batch.num_columns(),
            schema.fields().len()
        )));
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| arrow::compute::cast(column, field.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema, columns)
}

#[cfg(test)]
mod tests {
    use super::Row;

    #[test]
    fn rows_order_as_their_bytes() {
        let rows: Vec<&[u8]> = vec![b"", b"a", b"abcdefgh", b"abcdefgh\x00", b"abcdefgi", b"abcdefghij", b"b", b"\xff\x00\x00\x00\x00\x00\x00\x00\x01", b"abc"];
        for a in &rows {
            for b in &rows {
                assert_eq!(Row::from_bytes(a).cmp(&Row::from_bytes(b)), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }
}
