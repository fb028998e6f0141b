//! Temporal filters: each row inserted when it becomes visible and retracted,
//! ahead of time, when it stops being visible.


use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use differential_dataflow::collection::AsCollection;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;

use crate::plan::Plan;
use crate::row::RowCodec;

use super::batches::{evaluate, itself, map_batches};
use super::{Error, Inputs, Rows, render};

/// Renders a [`Plan::Temporal`].
pub(super) fn render_temporal<'scope>(plan: &Plan, inputs: &dyn Inputs<'scope>) -> Result<Rows<'scope>, Error> {
    let Plan::Temporal { input, bounds } = plan else {
        unreachable!("render_temporal is given a temporal filter")
    };
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
    Ok(with_interval
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
        .as_collection())
}
