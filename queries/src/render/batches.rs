//! Running Arrow over chunks of updates: decoding a chunk into one record
//! batch, evaluating DataFusion's expressions, encoding the results back,
//! and keying rows by expressions.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch};
use datafusion::physical_expr::PhysicalExpr;
use differential_dataflow::VecCollection;
use differential_dataflow::collection::AsCollection;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;

use crate::row::{Key, Row, RowCodec};

use super::Rows;

pub(super) fn evaluate(expr: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> datafusion::error::Result<ArrayRef> {
    expr.evaluate(batch)?.into_array(batch.num_rows())
}

/// Runs `logic` over each chunk of updates, decoded as one record batch
/// (with the chunk's updates beside it, read in place), and emits, for every
/// input update it returns `Some(value)` for, that value with the update's
/// time and diff. `row_of` picks the row to decode out of an item.
pub(super) fn map_batches<'scope, I, D, L>(
    rows: VecCollection<'scope, u64, I, isize>,
    name: &str,
    codec: RowCodec,
    row_of: fn(&I) -> &Row,
    mut logic: L,
) -> VecCollection<'scope, u64, D, isize>
where
    I: differential_dataflow::Data,
    D: differential_dataflow::Data,
    L: FnMut(&RecordBatch, &[(I, u64, isize)]) -> datafusion::error::Result<Vec<Option<D>>> + 'static,
{
    let name = name.to_string();
    let errors = super::errors::current();
    rows.inner
        .unary(Pipeline, &name.clone(), move |_, _| {
            move |input, output| {
                input.for_each(|time, data| {
                    let result = codec
                        .decode(data.iter().map(|(item, _, _)| row_of(item)))
                        .map_err(datafusion::error::DataFusionError::from)
                        .and_then(|batch| logic(&batch, &data[..]));
                    let mut session = output.session(&time);
                    match result {
                        Ok(out) => {
                            for ((_, t, r), value) in data.drain(..).zip(out) {
                                if let Some(value) = value {
                                    session.give((value, t, r));
                                }
                            }
                        }
                        Err(_) => {
                            // One bad row must not take the chunk's other
                            // rows with it: evaluate the chunk row by row and
                            // leave out (count and log) only the rows that fail.
                            for update in data.drain(..) {
                                let one = codec
                                    .decode(std::iter::once(row_of(&update.0)))
                                    .map_err(datafusion::error::DataFusionError::from)
                                    .and_then(|batch| logic(&batch, std::slice::from_ref(&update)));
                                match one {
                                    Ok(mut out) => {
                                        if let Some(Some(value)) = out.pop() {
                                            session.give((value, update.1, update.2));
                                        }
                                    }
                                    Err(error) => errors.record(&name, 1, &error),
                                }
                            }
                        }
                    }
                })
            }
        })
        .as_collection()
}

pub(super) fn itself(row: &Row) -> &Row {
    row
}

pub(super) fn second(pair: &(Row, Row)) -> &Row {
    &pair.1
}

pub(super) fn as_mask(array: &ArrayRef) -> datafusion::error::Result<BooleanArray> {
    array
        .as_any()
        .downcast_ref::<BooleanArray>()
        .cloned()
        .ok_or_else(|| datafusion::error::DataFusionError::Internal("a filter is not boolean".into()))
}

/// Keys rows by the encoded values of `keys` (hashed once, see [`Key`]);
/// rows whose key has a NULL are dropped when `drop_null_keys` (NULL never
/// equals anything in SQL).
pub(super) fn key_by<'scope>(
    rows: Rows<'scope>,
    codec: RowCodec,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    key_codec: RowCodec,
    drop_null_keys: bool,
) -> VecCollection<'scope, u64, (Key, Row), isize> {
    map_batches(rows, "KeyBy", codec, itself, move |batch, chunk| {
        let columns: Vec<ArrayRef> = keys.iter().map(|k| evaluate(k, batch)).collect::<Result<_, _>>()?;
        let encoded = key_codec.encode(&columns, batch.num_rows())?;
        Ok(encoded
            .into_iter()
            .zip(chunk)
            .enumerate()
            .map(|(i, (key, (row, _, _)))| {
                let has_null = columns.iter().any(|c| c.is_null(i));
                (!(drop_null_keys && has_null)).then(|| (Key::new(key), row.clone()))
            })
            .collect())
    })
}
