//! GROUP BY: aggregates that keep a small state per group are maintained
//! by `accumulate.rs`; any other GROUP BY recomputes each changed group with
//! DataFusion's accumulators.

use std::sync::Arc;

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::take;

use crate::plan::Plan;
use crate::row::{Row, RowCodec};

use super::accumulate::{Finisher, accumulate, accumulated, contributions};
use super::batches::{evaluate, itself, map_batches};
use super::{Error, Inputs, Rows, render};

/// Renders a [`Plan::Aggregate`].
pub(super) fn render_aggregate<'scope>(plan: &Plan, inputs: &dyn Inputs<'scope>) -> Result<Rows<'scope>, Error> {
    let Plan::Aggregate { input, groups, group_schema, arguments, argument_schema, aggregates, schema } = plan else {
        unreachable!("render_aggregate is given a GROUP BY")
    };
    let codec = RowCodec::new(input.schema())?;
    let group_codec = RowCodec::new(Arc::clone(group_schema))?;
    let output_schema = Arc::new(arrow::datatypes::Schema::new(
        schema.fields().iter().skip(group_schema.fields().len()).cloned().collect::<Vec<_>>(),
    ));
    let rows = render(input, inputs)?;
    let (groups, arguments) = (groups.clone(), arguments.clone());
    let (per_group, empty_result) = if let Some(accumulating) = accumulated(aggregates, argument_schema)? {
        let plan = std::rc::Rc::new(accumulating);
        let finisher = Finisher::new(std::rc::Rc::clone(&plan), RowCodec::new(Arc::clone(&output_schema))?);
        let empty_result = finisher.empty()?;
        let keyed = map_batches(rows, "GroupBy", codec, itself, move |batch, _| {
            let keys: Vec<ArrayRef> = groups.iter().map(|g| evaluate(g, batch)).collect::<Result<_, _>>()?;
            let values: Vec<ArrayRef> = arguments.iter().map(|a| evaluate(a, batch)).collect::<Result<_, _>>()?;
            let keys = group_codec.encode(&keys, batch.num_rows())?;
            let parts = contributions(&plan, &values, batch.num_rows())?;
            Ok(keys.into_iter().zip(parts).map(Some).collect())
        });
        (accumulate(keyed, finisher), empty_result)
    } else {
        let argument_codec = RowCodec::new(Arc::clone(argument_schema))?;
        let keyed = map_batches(rows, "GroupBy", codec, itself, move |batch, _| {
            let keys: Vec<ArrayRef> = groups.iter().map(|g| evaluate(g, batch)).collect::<Result<_, _>>()?;
            let values: Vec<ArrayRef> = arguments.iter().map(|a| evaluate(a, batch)).collect::<Result<_, _>>()?;
            let keys = group_codec.encode(&keys, batch.num_rows())?;
            let values = argument_codec.encode(&values, batch.num_rows())?;
            Ok(keys.into_iter().zip(values).map(Some).collect())
        });
        let reducer = Reducer {
            arguments: RowCodec::new(Arc::clone(argument_schema))?,
            output: RowCodec::new(output_schema)?,
            aggregates: aggregates.clone(),
        };
        let empty_result = reducer.reduce(&[])?;
        let reducer = std::rc::Rc::new(reducer);
        let errors = super::errors::current();
        let per_group = keyed.reduce(move |_key, values: &[(&Row, isize)], out: &mut Vec<(Row, isize)>| match reducer.reduce(values) {
            Ok(row) => out.push((row, 1)),
            Err(error) => errors.record("GroupBy (a group)", 1, &error),
        });
        (per_group, empty_result)
    };
    let result = per_group.clone().map(|(k, v)| k.concat(&v));
    Ok(if group_schema.fields().is_empty() {
        // A global aggregate has one row even over no input.
        let present = per_group.map(|(k, _)| k).distinct();
        let missing = inputs.unit().map(|u| (u, ())).antijoin(present).map(|(u, ())| u);
        result.concat(missing.map(move |u| u.concat(&empty_result)))
    } else {
        result
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
