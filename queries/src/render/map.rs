//! Projection and filter: a chain of [`Plan::Map`] steps as one operator
//! over Arrow batches.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;

use crate::plan::Plan;
use crate::row::{Row, RowCodec};

use super::batches::{as_mask, evaluate, itself, map_batches};
use super::{Error, Inputs, Rows, render};

/// Renders a chain of [`Plan::Map`]s.
pub(super) fn render_map<'scope>(plan: &Plan, inputs: &dyn Inputs<'scope>) -> Result<Rows<'scope>, Error> {
    let Plan::Map { schema, .. } = plan else {
        unreachable!("render_map is given a map")
    };
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
    Ok(map_batches(rows, "Map", codec, itself, move |batch, _| apply_steps(&steps, &out_codec, batch)))
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
