//! Window functions: each changed partition sorted and evaluated with
//! DataFusion's `WindowExpr`s.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, UInt32Array};
use arrow::compute::{SortColumn, lexsort_to_indices, take};
use datafusion::physical_expr::window::WindowExpr;

use crate::plan::Plan;
use crate::row::{Row, RowCodec};

use super::batches::key_by;
use super::{Error, Inputs, Rows, render};

/// Renders a [`Plan::Window`].
pub(super) fn render_window<'scope>(plan: &Plan, inputs: &dyn Inputs<'scope>) -> Result<Rows<'scope>, Error> {
    let Plan::Window { input, partition_by, partition_schema, functions, schema } = plan else {
        unreachable!("render_window is given a window")
    };
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
    let errors = super::errors::current();
    Ok(keyed
        .reduce(move |_key, values: &[(&Row, isize)], out: &mut Vec<(Row, isize)>| match windower.apply(values) {
            Ok(rows) => {
                out.extend(rows.into_iter().map(|r| (r, 1)));
                differential_dataflow::consolidation::consolidate(out);
            }
            Err(error) => errors.record("Window (a partition)", 1, &error),
        })
        .map(|(_, row)| row))
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
