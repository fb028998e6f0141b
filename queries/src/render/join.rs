//! Joins: both sides arranged by key (or by time bucket for an interval
//! join), then the residual predicate, and the left/semi/anti variants built
//! from the matched left rows.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::Int64Type;
use datafusion::physical_expr::PhysicalExpr;
use differential_dataflow::VecCollection;

use crate::plan::{JoinKind, Plan};
use crate::row::{Key, Row, RowCodec};

use super::batches::{as_mask, evaluate, itself, key_by, map_batches, second};
use super::{Error, Inputs, Rows, render};

/// Renders a [`Plan::Join`].
pub(super) fn render_join<'scope>(plan: &Plan, inputs: &dyn Inputs<'scope>) -> Result<Rows<'scope>, Error> {
    let Plan::Join {
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
    } = plan else {
        unreachable!("render_join is given a join")
    };
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
    let mut joined = lk.join_core(rk, |_key: &Key, l: &Row, r: &Row| Some((l.clone(), l.concat(r))));
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
    Ok(match kind {
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
    })
}

/// Keys rows by `keys` (NULLs never match) plus every bucket of `width` that
/// the range `[from, to]` touches: one (key, row) pair per bucket. The
/// index of an interval join (see [`Buckets`](crate::plan::Buckets)).
fn bucket_by<'scope>(
    rows: Rows<'scope>,
    codec: RowCodec,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    key_codec: RowCodec,
    (from, to): (&Arc<dyn PhysicalExpr>, &Arc<dyn PhysicalExpr>),
    width: i64,
) -> VecCollection<'scope, u64, (Key, Row), isize> {
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
            .map(|((row, _, _), span)| span.map(|span| keys.by_ref().take(span.len()).map(|key| (Key::new(key), row.clone())).collect::<Vec<_>>()))
            .collect();
        Ok(out)
    })
    .flat_map(|pairs| pairs)
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
    let right_null = Row::from_bytes(&[1]);
    let right_any = Row::from_bytes(&[0]);
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
