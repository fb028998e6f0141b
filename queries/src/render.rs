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
//! is maintained with its exact batch semantics. Window functions work the
//! same way per partition: a changed partition is sorted and DataFusion's
//! `WindowExpr`s are evaluated over it. Temporal filters give each row the
//! interval of times during which it is visible, and emit its insertion and
//! its future retraction at those times.
//!
//! Join inputs are arranged by key through [`Inputs::arranged`], so views
//! that key the same collection the same way share one arrangement.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::compute::{SortColumn, lexsort_to_indices, take};
use arrow::datatypes::{Int64Type, Schema, SchemaRef};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::window::WindowExpr;
use differential_dataflow::VecCollection;
use differential_dataflow::collection::AsCollection;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::implementations::ValSpine;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;

use crate::lower::{JoinKind, Plan};
use crate::row::{Row, RowCodec};

/// A collection of rows in a timely scope with millisecond times.
pub type Rows<'scope> = VecCollection<'scope, u64, Row, isize>;

/// The trace of rows arranged by an encoded key (a join input).
pub type KeyedTrace = TraceAgent<ValSpine<Row, Row, u64, isize>>;

/// Rows arranged by an encoded key, in a scope.
pub type Keyed<'scope> = Arranged<'scope, KeyedTrace>;

/// Builds an arrangement when no view has built it yet.
pub type BuildArrangement<'a, 'scope> = &'a mut dyn FnMut() -> Result<Keyed<'scope>, Error>;

/// Looks up the collection of an input table.
pub trait Inputs<'scope> {
    fn table(&self, name: &str) -> Rows<'scope>;
    /// A collection holding one empty row, for global aggregates.
    fn unit(&self) -> Rows<'scope>;
    /// The arrangement known as `signature`: shared with the views that
    /// built it before, else built by `build` (and shared from then on).
    fn arranged(&self, signature: &str, build: BuildArrangement<'_, 'scope>) -> Result<Keyed<'scope>, Error> {
        let _ = signature;
        build()
    }
}

fn evaluate(expr: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> datafusion::error::Result<ArrayRef> {
    expr.evaluate(batch)?.into_array(batch.num_rows())
}

/// Runs `logic` over each chunk of updates, decoded as one record batch
/// (with the chunk's updates beside it, read in place), and emits, for every
/// input update it returns `Some(value)` for, that value with the update's
/// time and diff. `row_of` picks the row to decode out of an item.
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
    L: FnMut(&RecordBatch, &[(I, u64, isize)]) -> datafusion::error::Result<Vec<Option<D>>> + 'static,
{
    let name = name.to_string();
    rows.inner
        .unary(Pipeline, &name.clone(), move |_, _| {
            move |input, output| {
                input.for_each(|time, data| {
                    let result = codec
                        .decode(data.iter().map(|(item, _, _)| row_of(item)))
                        .map_err(datafusion::error::DataFusionError::from)
                        .and_then(|batch| logic(&batch, &data[..]));
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

/// One step of a chain of maps: keep the rows where `filter` holds, then
/// compute `exprs` (a batch of `schema`, every field nullable: only the
/// last step's rows are encoded under the declared schema).
struct MapStep {
    filter: Option<Arc<dyn PhysicalExpr>>,
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
}

/// Runs a chain of map steps over a batch: the output row of each input
/// row, `None` where a filter dropped it.
fn apply_steps(steps: &[MapStep], out_codec: &RowCodec, batch: &RecordBatch) -> datafusion::error::Result<Vec<Option<Row>>> {
    let num_rows = batch.num_rows();
    // Which input row each row of `current` came from.
    let mut origin: Vec<u32> = (0..num_rows as u32).collect();
    let mut current = batch.clone();
    for step in steps {
        if let Some(filter) = &step.filter {
            let mask = as_mask(&evaluate(filter, &current)?)?;
            // NULL is not true: it drops the row, as `filter` does.
            origin = origin.iter().enumerate().filter(|(i, _)| mask.is_valid(*i) && mask.value(*i)).map(|(_, o)| *o).collect();
            current = arrow::compute::filter_record_batch(&current, &mask)?;
        }
        if current.num_rows() == 0 {
            return Ok(vec![None; num_rows]);
        }
        let columns: Vec<ArrayRef> = step.exprs.iter().map(|e| evaluate(e, &current)).collect::<Result<_, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(current.num_rows()));
        current = RecordBatch::try_new_with_options(Arc::clone(&step.schema), columns, &options)?;
    }
    let mut out = vec![None; num_rows];
    for (row, o) in out_codec.encode(current.columns(), current.num_rows())?.into_iter().zip(origin) {
        out[o as usize] = Some(row);
    }
    Ok(out)
}

/// Whether `exprs` pass every column of `schema` through, in order.
fn is_identity(exprs: &[Arc<dyn PhysicalExpr>], schema: &Schema) -> bool {
    exprs.len() == schema.fields().len()
        && exprs.iter().enumerate().all(|(i, e)| e.downcast_ref::<Column>().is_some_and(|c| c.index() == i))
}

/// `schema` with every field nullable.
fn nullable(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>()))
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
            .map(|(i, (key, (row, _, _)))| {
                let has_null = columns.iter().any(|c| c.is_null(i));
                (!(drop_null_keys && has_null)).then(|| (key, row.clone()))
            })
            .collect())
    })
}

/// Keys rows by `keys` (NULLs never match) plus every bucket of `width` that
/// the range `[from, to]` touches: one (key, row) pair per bucket. The
/// index of an interval join (see `lower::Buckets`).
fn bucket_by<'scope>(
    rows: Rows<'scope>,
    codec: RowCodec,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    key_codec: RowCodec,
    (from, to): (&Arc<dyn PhysicalExpr>, &Arc<dyn PhysicalExpr>),
    width: i64,
) -> VecCollection<'scope, u64, (Row, Row), isize> {
    // A range spanning more buckets than this is joined through its first ones only; logged.
    const MAX_BUCKETS: i64 = 100_000;
    let (from, to) = (Arc::clone(from), Arc::clone(to));
    let width = width.max(1);
    map_batches(rows, "BucketBy", codec, itself, move |batch, chunk| {
        let columns: Vec<ArrayRef> = keys.iter().map(|k| evaluate(k, batch)).collect::<Result<_, _>>()?;
        let (lo, hi) = (evaluate(&from, batch)?, evaluate(&to, batch)?);
        let as_i64 = |a: &ArrayRef| a.as_primitive_opt::<Int64Type>().cloned().ok_or_else(|| Error::Internal("a range bound is not Int64".into()));
        let (lo, hi) = (as_i64(&lo)?, as_i64(&hi)?);
        // Every (row, bucket) pair, then all keys encoded in one go.
        let (mut rows_of, mut buckets) = (Vec::new(), Vec::new());
        let mut spans = Vec::with_capacity(chunk.len());
        for i in 0..chunk.len() {
            if lo.is_null(i) || hi.is_null(i) || columns.iter().any(|c| c.is_null(i)) {
                spans.push(None);
                continue;
            }
            let (first, last) = (lo.value(i).div_euclid(width), hi.value(i).div_euclid(width));
            if last - first >= MAX_BUCKETS {
                tracing::error!(first, last, "interval join range spans too many buckets; joined through the first {MAX_BUCKETS}");
            }
            let start = buckets.len();
            for bucket in first..=last.min(first + MAX_BUCKETS - 1) {
                rows_of.push(i as u32);
                buckets.push(bucket);
            }
            spans.push(Some(start..buckets.len()));
        }
        let indices = UInt32Array::from(rows_of);
        let mut key_columns: Vec<ArrayRef> = columns.iter().map(|c| take(c.as_ref(), &indices, None)).collect::<Result<_, _>>()?;
        key_columns.push(Arc::new(arrow::array::Int64Array::from(buckets)));
        let mut keys = key_codec.encode(&key_columns, indices.len())?.into_iter();
        let out = chunk
            .iter()
            .zip(spans)
            .map(|((row, _, _), span)| span.map(|span| keys.by_ref().take(span.len()).map(|key| (key, row.clone())).collect::<Vec<_>>()))
            .collect();
        Ok(out)
    })
    .flat_map(|pairs| pairs)
}

type Error = datafusion::error::DataFusionError;

/// Renders `plan` in the scope of `inputs`.
pub fn render<'scope>(plan: &Plan, inputs: &dyn Inputs<'scope>) -> Result<Rows<'scope>, Error> {
    Ok(match plan {
        Plan::Scan { table, .. } => inputs.table(table),
        Plan::Map { schema, .. } => {
            // A chain of maps (a scan's filter and projection, a WHERE, a
            // SELECT list) runs as one operator that decodes once, applies
            // each step to the surviving rows and encodes once; a step that
            // only passes its input through is skipped.
            let mut steps = Vec::new();
            let mut below = plan;
            while let Plan::Map { input, filter, exprs, schema } = below {
                if filter.is_some() || !is_identity(exprs, &input.schema()) {
                    steps.push(MapStep { filter: filter.clone(), exprs: exprs.clone(), schema: nullable(schema) });
                }
                below = input;
            }
            steps.reverse();
            let rows = render(below, inputs)?;
            if steps.is_empty() {
                return Ok(rows);
            }
            let codec = RowCodec::new(below.schema())?;
            let out_codec = RowCodec::new(Arc::clone(schema))?;
            map_batches(rows, "Map", codec, itself, move |batch, _| apply_steps(&steps, &out_codec, batch))
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
        Plan::Join {
            left,
            right,
            kind,
            left_keys,
            right_keys,
            key_schema,
            residual,
            nulls_equal,
            null_aware,
            buckets,
            joined_schema,
            schema: _,
        } => {
            // With NULL = NULL, NULL keys join like any other; else a left row
            // with a NULL key is kept only where unmatched rows are output.
            let keep_null_left = *nulls_equal || matches!(kind, JoinKind::Left | JoinKind::Anti);
            let keep_null_right = *nulls_equal;
            let left_rows = render(left, inputs)?;
            let left_signature = format!("{left:?} keyed by {left_keys:?} {buckets:?} (left), nulls kept: {keep_null_left}");
            let lk = inputs.arranged(&left_signature, &mut || {
                let codec = RowCodec::new(left.schema())?;
                let key_codec = RowCodec::new(Arc::clone(key_schema))?;
                Ok(match buckets {
                    Some(b) => bucket_by(left_rows.clone(), codec, left_keys.clone(), key_codec, (&b.left.0, &b.left.1), b.width),
                    None => key_by(left_rows.clone(), codec, left_keys.clone(), key_codec, !keep_null_left),
                }
                .arrange_by_key())
            })?;
            let right_signature = format!("{right:?} keyed by {right_keys:?} {buckets:?} (right), nulls kept: {keep_null_right}");
            let rk = inputs.arranged(&right_signature, &mut || {
                let codec = RowCodec::new(right.schema())?;
                let key_codec = RowCodec::new(Arc::clone(key_schema))?;
                let rows = render(right, inputs)?;
                Ok(match buckets {
                    Some(b) => bucket_by(rows, codec, right_keys.clone(), key_codec, (&b.right.0, &b.right.1), b.width),
                    None => key_by(rows, codec, right_keys.clone(), key_codec, !keep_null_right),
                }
                .arrange_by_key())
            })?;
            let mut joined = lk.join_core(rk, |_key, l: &Row, r: &Row| Some((l.clone(), l.concat(r))));
            if let Some(residual) = residual.clone() {
                let codec = RowCodec::new(Arc::clone(joined_schema))?;
                // Filter on the joined row, keeping the (left, joined) pairs.
                joined = map_batches(joined, "JoinResidual", codec, second, move |batch, chunk| {
                    let mask = as_mask(&evaluate(&residual, batch)?)?;
                    Ok(chunk
                        .iter()
                        .enumerate()
                        .map(|(i, (pair, _, _))| (mask.is_valid(i) && mask.value(i)).then(|| pair.clone()))
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
                        JoinKind::Anti if *null_aware => {
                            let unmatched = left_rows.clone().concat(semi.negate());
                            null_aware_anti(unmatched, left, left_keys, render(right, inputs)?, right, right_keys)?
                        }
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
                            joined.map(|(_, j)| j).concat(unmatched.map(move |l| l.concat(&null_row)))
                        }
                    }
                }
            }
        }
        Plan::Window { input, partition_by, partition_schema, functions, schema } => {
            let keyed = key_by(
                render(input, inputs)?,
                RowCodec::new(input.schema())?,
                partition_by.clone(),
                RowCodec::new(Arc::clone(partition_schema))?,
                false,
            );
            let windower = std::rc::Rc::new(Windower {
                input: RowCodec::new(input.schema())?,
                output: RowCodec::new(Arc::clone(schema))?,
                functions: functions.clone(),
            });
            keyed
                .reduce(move |_key, values: &[(&Row, isize)], out: &mut Vec<(Row, isize)>| match windower.apply(values) {
                    Ok(rows) => {
                        out.extend(rows.into_iter().map(|r| (r, 1)));
                        differential_dataflow::consolidation::consolidate(out);
                    }
                    Err(error) => tracing::error!(%error, "window function failed; partition dropped"),
                })
                .map(|(_, row)| row)
        }
        Plan::Temporal { input, bounds } => {
            let bounds = bounds.clone();
            let with_interval = map_batches(render(input, inputs)?, "TemporalBounds", RowCodec::new(input.schema())?, itself, move |batch, chunk| {
                let n = batch.num_rows();
                let mut interval = vec![Some((0u64, u64::MAX)); n];
                for (op, bound) in &bounds {
                    let values = evaluate(bound, batch)?;
                    let values = values.as_primitive_opt::<Int64Type>().ok_or_else(|| Error::Internal("a temporal bound is not Int64".into()))?;
                    for (i, slot) in interval.iter_mut().enumerate() {
                        *slot = match (*slot, values.is_valid(i)) {
                            (Some((from, until)), true) => {
                                let (f, u) = op.interval(values.value(i));
                                Some((from.max(f), until.min(u)))
                            }
                            _ => None,
                        };
                    }
                }
                Ok(chunk
                    .iter()
                    .zip(interval)
                    .map(|((row, _, _), interval)| interval.filter(|(f, u)| f < u).map(|(f, u)| (row.clone(), f, u)))
                    .collect())
            });
            with_interval
                .inner
                .unary(Pipeline, "TemporalFilter", |_, _| {
                    move |input, output| {
                        input.for_each(|time, data| {
                            let mut session = output.session(&time);
                            for ((row, from, until), t, diff) in data.drain(..) {
                                // The update counts from when it happened or the row became
                                // visible, whichever is later, until the row stops being visible.
                                let start = from.max(t);
                                if start < until {
                                    if until != u64::MAX {
                                        session.give((row.clone(), until, -diff));
                                    }
                                    session.give((row, start, diff));
                                }
                            }
                        })
                    }
                })
                .as_collection()
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

/// `NOT IN` over the left rows no right row matched: if the right side has
/// a NULL key nothing is left; if it has any rows, left rows whose key is
/// NULL go too (their comparison is unknown, not false).
fn null_aware_anti<'scope>(
    unmatched: Rows<'scope>,
    left: &Plan,
    left_keys: &[Arc<dyn PhysicalExpr>],
    right_rows: Rows<'scope>,
    right: &Plan,
    right_keys: &[Arc<dyn PhysicalExpr>],
) -> Result<Rows<'scope>, Error> {
    let right_null = Row(vec![1]);
    let right_any = Row(vec![0]);
    let (right_null_key, right_any_key) = (right_null.clone(), right_any.clone());
    // One marker per right row: "has rows", and "has a NULL key" where it does.
    let right_markers = map_batches(right_rows, "NotInRight", RowCodec::new(right.schema())?, itself, {
        let keys = right_keys.to_vec();
        move |batch, _| {
            let columns: Vec<ArrayRef> = keys.iter().map(|k| evaluate(k, batch)).collect::<Result<_, _>>()?;
            Ok((0..batch.num_rows())
                .map(|i| Some(columns.iter().any(|c| c.is_null(i))))
                .collect())
        }
    })
    .flat_map(move |has_null| {
        let mut markers = vec![right_any.clone()];
        if has_null {
            markers.push(right_null.clone());
        }
        markers
    })
    .distinct();
    // Left rows tagged with whether their key is NULL.
    let tagged = map_batches(unmatched, "NotInLeft", RowCodec::new(left.schema())?, itself, {
        let keys = left_keys.to_vec();
        move |batch, chunk| {
            let columns: Vec<ArrayRef> = keys.iter().map(|k| evaluate(k, batch)).collect::<Result<_, _>>()?;
            Ok(chunk.iter().enumerate().map(|(i, (row, _, _))| Some((columns.iter().any(|c| c.is_null(i)), row.clone()))).collect())
        }
    });
    // A left row is removed by the marker that applies to it: "has a NULL key"
    // removes every row, "has rows" removes rows with a NULL key.
    let removers = right_markers.map(|m| (m, ()));
    let by_any_null = tagged.clone().map(move |(_, row)| (right_null_key.clone(), row));
    let by_own_null = tagged.clone().filter(|(null, _)| *null).map(move |(_, row)| (right_any_key.clone(), row));
    let removed = by_any_null.concat(by_own_null).semijoin(removers.map(|(m, ())| m)).map(|(_, row)| row).distinct();
    let all = tagged.map(|(_, row)| row);
    Ok(all.clone().concat(all.map(|r| (r, ())).semijoin(removed).map(|(r, ())| r).negate()))
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

/// Evaluates window functions over one partition.
struct Windower {
    input: RowCodec,
    output: RowCodec,
    functions: Vec<Arc<dyn WindowExpr>>,
}

impl Windower {
    /// The partition's rows (multiplicities expanded), each extended with
    /// the functions' values.
    fn apply(&self, values: &[(&Row, isize)]) -> Result<Vec<Row>, Error> {
        let mut indices = Vec::new();
        for (i, (_, count)) in values.iter().enumerate() {
            indices.extend(std::iter::repeat_n(i as u32, (*count).max(0) as usize));
        }
        if indices.is_empty() {
            return Ok(Vec::new());
        }
        let distinct = self.input.decode(values.iter().map(|(r, _)| *r))?;
        let batch = arrow::compute::take_record_batch(&distinct, &UInt32Array::from(indices))?;
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for function in &self.functions {
            // Each function sees the partition sorted by its own ORDER BY;
            // its values are put back in the batch's order.
            let order: Vec<SortColumn> =
                function.order_by().iter().map(|o| o.evaluate_to_sort_column(&batch)).collect::<Result<_, _>>()?;
            let values = if order.is_empty() {
                function.evaluate(&batch)?
            } else {
                let sorted = lexsort_to_indices(&order, None)?;
                let evaluated = function.evaluate(&arrow::compute::take_record_batch(&batch, &sorted)?)?;
                let mut back = vec![0u32; sorted.len()];
                for (position, &row) in sorted.values().iter().enumerate() {
                    back[row as usize] = position as u32;
                }
                take(evaluated.as_ref(), &UInt32Array::from(back), None)?
            };
            columns.push(values);
        }
        let columns: Vec<ArrayRef> = columns
            .into_iter()
            .zip(self.output.schema().fields())
            .map(|(a, f)| if a.data_type() == f.data_type() { Ok(a) } else { arrow::compute::cast(&a, f.data_type()) })
            .collect::<Result<_, _>>()?;
        Ok(self.output.encode(&columns, batch.num_rows())?)
    }
}
