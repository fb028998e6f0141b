//! Rendering a lowered [`Plan`] as differential dataflow over [`Row`]s.
//!
//! Expressions run batch-wise: an operator takes each chunk of updates that
//! timely hands it, decodes the rows into one Arrow record batch, evaluates
//! DataFusion's physical expressions over it, and encodes the results back
//! into rows, keeping every update's time and diff. A row that fails to
//! evaluate does not panic the worker: the chunk's error is logged and
//! counted, and its rows are dropped from the view.
//!
//! Joins key both sides by their encoded join keys (rows whose key has a NULL
//! never match, as in SQL) and concatenate the two encoded rows. Aggregates
//! group by the encoded group key and recompute each changed group with
//! DataFusion's own accumulators over the group's argument rows, so every
//! aggregate DataFusion has (count, sum, min, max, avg, count distinct, …)
//! is maintained with its exact batch semantics.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::take;
use datafusion::physical_expr::PhysicalExpr;
use differential_dataflow::VecCollection;
use differential_dataflow::collection::AsCollection;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;

use crate::lower::{JoinKind, Plan};
use crate::row::{Row, RowCodec};

/// A collection of rows in a timely scope with millisecond times.
pub type Rows<'scope> = VecCollection<'scope, u64, Row, isize>;

/// Looks up the collection of an input table.
pub trait Inputs<'scope> {
    fn table(&self, name: &str) -> Rows<'scope>;
    /// A collection holding one empty row, for global aggregates.
    fn unit(&self) -> Rows<'scope>;
}

fn evaluate(expr: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> datafusion::error::Result<ArrayRef> {
    expr.evaluate(batch)?.into_array(batch.num_rows())
}

/// Runs `logic` over each chunk of updates, decoded as one record batch
/// (with the chunk's items beside it), and emits, for every input update it
/// returns `Some(value)` for, that value with the update's time and diff.
/// `row_of` picks the row to decode out of an item.
fn map_batches<'scope, I, D, L>(
    rows: VecCollection<'scope, u64, I, isize>,
    name: &str,
    codec: RowCodec,
    row_of: fn(&I) -> &Row,
    mut logic: L,
) -> VecCollection<'scope, u64, D, isize>
where
    I: differential_dataflow::Data,
    D: differential_dataflow::Data,
    L: FnMut(&RecordBatch, &[I]) -> datafusion::error::Result<Vec<Option<D>>> + 'static,
{
    let name = name.to_string();
    rows.inner
        .unary(Pipeline, &name.clone(), move |_, _| {
            move |input, output| {
                input.for_each(|time, data| {
                    let chunk: Vec<I> = data.iter().map(|(item, _, _)| item.clone()).collect();
                    let result = codec
                        .decode(chunk.iter().map(row_of))
                        .map_err(datafusion::error::DataFusionError::from)
                        .and_then(|batch| logic(&batch, &chunk));
                    match result {
                        Ok(out) => {
                            let mut session = output.session(&time);
                            for ((_, t, r), value) in data.drain(..).zip(out) {
                                if let Some(value) = value {
                                    session.give((value, t, r));
                                }
                            }
                        }
                        Err(error) => {
                            tracing::error!(operator = %name, rows = data.len(), %error, "rows dropped: evaluation failed");
                            data.clear();
                        }
                    }
                })
            }
        })
        .as_collection()
}

fn itself(row: &Row) -> &Row {
    row
}

fn second(pair: &(Row, Row)) -> &Row {
    &pair.1
}

/// Rows of `columns`, `None` where `keep` is false or null.
fn encode_kept(
    codec: &RowCodec,
    columns: &[ArrayRef],
    num_rows: usize,
    keep: Option<&BooleanArray>,
) -> datafusion::error::Result<Vec<Option<Row>>> {
    let rows = codec.encode(columns, num_rows)?;
    Ok(rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| match keep {
            Some(mask) if !(mask.is_valid(i) && mask.value(i)) => None,
            _ => Some(row),
        })
        .collect())
}

fn as_mask(array: &ArrayRef) -> datafusion::error::Result<BooleanArray> {
    array
        .as_any()
        .downcast_ref::<BooleanArray>()
        .cloned()
        .ok_or_else(|| datafusion::error::DataFusionError::Internal("a filter is not boolean".into()))
}

/// Keys rows by the encoded values of `keys`; rows whose key has a NULL are
/// dropped when `drop_null_keys` (NULL never equals anything in SQL).
fn key_by<'scope>(
    rows: Rows<'scope>,
    codec: RowCodec,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    key_codec: RowCodec,
    drop_null_keys: bool,
) -> VecCollection<'scope, u64, (Row, Row), isize> {
    map_batches(rows, "KeyBy", codec, itself, move |batch, chunk| {
        let columns: Vec<ArrayRef> = keys.iter().map(|k| evaluate(k, batch)).collect::<Result<_, _>>()?;
        let encoded = key_codec.encode(&columns, batch.num_rows())?;
        Ok(encoded
            .into_iter()
            .zip(chunk)
            .enumerate()
            .map(|(i, (key, row))| {
                let has_null = columns.iter().any(|c| c.is_null(i));
                (!(drop_null_keys && has_null)).then(|| (key, row.clone()))
            })
            .collect())
    })
}

type Error = datafusion::error::DataFusionError;

/// Renders `plan` in the scope of `inputs`.
pub fn render<'scope>(plan: &Plan, inputs: &dyn Inputs<'scope>) -> Result<Rows<'scope>, Error> {
    Ok(match plan {
        Plan::Scan { table, .. } => inputs.table(table),
        Plan::Map { input, filter, exprs, schema } => {
            let codec = RowCodec::new(input.schema())?;
            let out_codec = RowCodec::new(Arc::clone(schema))?;
            let (filter, exprs) = (filter.clone(), exprs.clone());
            map_batches(render(input, inputs)?, "Map", codec, itself, move |batch, _| {
                let mask = filter.as_ref().map(|f| evaluate(f, batch).and_then(|a| as_mask(&a))).transpose()?;
                let columns: Vec<ArrayRef> = exprs.iter().map(|e| evaluate(e, batch)).collect::<Result<_, _>>()?;
                encode_kept(&out_codec, &columns, batch.num_rows(), mask.as_ref())
            })
        }
        Plan::Distinct { input } => render(input, inputs)?.distinct(),
        Plan::Union { inputs: parts, .. } => {
            let mut rendered = parts.iter().map(|p| render(p, inputs));
            let first = rendered.next().ok_or_else(|| Error::Internal("UNION without inputs".into()))??;
            let mut all = first;
            for part in rendered {
                all = all.concat(part?);
            }
            all
        }
        Plan::Join { left, right, kind, left_keys, right_keys, key_schema, residual, joined_schema, schema } => {
            let keep_null_left = matches!(kind, JoinKind::Left | JoinKind::Anti);
            let left_rows = render(left, inputs)?;
            let lk = key_by(
                left_rows.clone(),
                RowCodec::new(left.schema())?,
                left_keys.clone(),
                RowCodec::new(Arc::clone(key_schema))?,
                !keep_null_left,
            );
            let rk = key_by(
                render(right, inputs)?,
                RowCodec::new(right.schema())?,
                right_keys.clone(),
                RowCodec::new(Arc::clone(key_schema))?,
                true,
            );
            let mut joined = lk.join_map(rk, |_key, l, r| (l.clone(), l.concat(r)));
            if let Some(residual) = residual.clone() {
                let codec = RowCodec::new(Arc::clone(joined_schema))?;
                // Filter on the joined row, keeping the (left, joined) pairs.
                joined = map_batches(joined, "JoinResidual", codec, second, move |batch, chunk| {
                    let mask = as_mask(&evaluate(&residual, batch)?)?;
                    Ok(chunk
                        .iter()
                        .enumerate()
                        .map(|(i, pair)| (mask.is_valid(i) && mask.value(i)).then(|| pair.clone()))
                        .collect())
                });
            }
            match kind {
                JoinKind::Inner => joined.map(|(_, j)| j),
                JoinKind::Semi | JoinKind::Anti | JoinKind::Left => {
                    let matched = joined.clone().map(|(l, _)| l).distinct();
                    let semi = left_rows.clone().map(|l| (l, ())).semijoin(matched).map(|(l, ())| l);
                    match kind {
                        JoinKind::Semi => semi,
                        JoinKind::Anti => left_rows.concat(semi.negate()),
                        _ => {
                            let unmatched = left_rows.concat(semi.negate());
                            let right_schema = right.schema();
                            let nulls: Vec<ArrayRef> = right_schema
                                .fields()
                                .iter()
                                .map(|f| arrow::array::new_null_array(f.data_type(), 1))
                                .collect();
                            let null_row = RowCodec::new(Arc::clone(&right_schema))?
                                .encode(&nulls, 1)?
                                .pop()
                                .unwrap_or_default();
                            let _ = schema;
                            joined.map(|(_, j)| j).concat(unmatched.map(move |l| l.concat(&null_row)))
                        }
                    }
                }
            }
        }
        Plan::Aggregate { input, groups, group_schema, arguments, argument_schema, aggregates, schema } => {
            let codec = RowCodec::new(input.schema())?;
            let group_codec = RowCodec::new(Arc::clone(group_schema))?;
            let argument_codec = RowCodec::new(Arc::clone(argument_schema))?;
            let (groups, arguments) = (groups.clone(), arguments.clone());
            let keyed = map_batches(render(input, inputs)?, "GroupBy", codec, itself, move |batch, _| {
                let keys: Vec<ArrayRef> = groups.iter().map(|g| evaluate(g, batch)).collect::<Result<_, _>>()?;
                let values: Vec<ArrayRef> = arguments.iter().map(|a| evaluate(a, batch)).collect::<Result<_, _>>()?;
                let keys = group_codec.encode(&keys, batch.num_rows())?;
                let values = argument_codec.encode(&values, batch.num_rows())?;
                Ok(keys.into_iter().zip(values).map(Some).collect())
            });
            let aggregates = aggregates.clone();
            let reducer = Reducer {
                arguments: RowCodec::new(Arc::clone(argument_schema))?,
                output: RowCodec::new(Arc::new(arrow::datatypes::Schema::new(
                    schema.fields().iter().skip(group_schema.fields().len()).cloned().collect::<Vec<_>>(),
                )))?,
                aggregates,
            };
            let empty_result = reducer.reduce(&[])?;
            let reducer = std::rc::Rc::new(reducer);
            let per_group = {
                let reducer = std::rc::Rc::clone(&reducer);
                keyed.reduce(move |_key, values: &[(&Row, isize)], out: &mut Vec<(Row, isize)>| match reducer.reduce(values) {
                    Ok(row) => out.push((row, 1)),
                    Err(error) => tracing::error!(%error, "aggregate failed; group dropped"),
                })
            };
            let result = per_group.clone().map(|(k, v)| k.concat(&v));
            if group_schema.fields().is_empty() {
                // A global aggregate has one row even over no input.
                let present = per_group.map(|(k, _)| k).distinct();
                let missing = inputs.unit().map(|u| (u, ())).antijoin(present).map(|(u, ())| u);
                result.concat(missing.map(move |u| u.concat(&empty_result)))
            } else {
                result
            }
        }
    })
}

/// Computes a group's aggregates from its argument rows and multiplicities.
struct Reducer {
    arguments: RowCodec,
    output: RowCodec,
    aggregates: Vec<(Arc<datafusion::physical_expr::aggregate::AggregateFunctionExpr>, Vec<usize>)>,
}

impl Reducer {
    fn reduce(&self, values: &[(&Row, isize)]) -> Result<Row, Error> {
        // Expand multiplicities into repeated rows (take indices), as the
        // batch engine would see them.
        let distinct: Vec<&Row> = values.iter().map(|(r, _)| *r).collect();
        let mut indices = Vec::new();
        for (i, (_, count)) in values.iter().enumerate() {
            indices.extend(std::iter::repeat_n(i as u32, (*count).max(0) as usize));
        }
        let columns = if distinct.is_empty() {
            self.arguments.schema().fields().iter().map(|f| arrow::array::new_empty_array(f.data_type())).collect()
        } else {
            let decoded = self.arguments.decode_columns(distinct)?;
            let indices = UInt32Array::from(indices);
            decoded.iter().map(|c| take(c.as_ref(), &indices, None)).collect::<Result<Vec<_>, _>>()?
        };
        let mut results = Vec::with_capacity(self.aggregates.len());
        for (aggregate, argument_indices) in &self.aggregates {
            let mut accumulator = aggregate.create_accumulator()?;
            let own: Vec<ArrayRef> = argument_indices.iter().map(|&k| Arc::clone(&columns[k])).collect();
            accumulator.update_batch(&own)?;
            results.push(accumulator.evaluate()?.to_array()?);
        }
        // Cast to the declared output types (e.g. count's Int64).
        let results: Vec<ArrayRef> = results
            .into_iter()
            .zip(self.output.schema().fields())
            .map(|(a, f)| arrow::compute::cast(&a, f.data_type()))
            .collect::<Result<_, _>>()?;
        Ok(self.output.encode(&results, 1)?.pop().unwrap_or_default())
    }
}
