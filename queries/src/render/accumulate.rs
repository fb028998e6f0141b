//! GROUP BY whose aggregates all keep a small state per group: count,
//! count DISTINCT, sum over integers, min and max. A changed group costs
//! its changes, not its size.
//!
//! Each input row is keyed by its encoded group and turned into one
//! [`Contribution`] per aggregate (computed over the chunk's Arrow batch).
//! One operator per worker, fed by an exchange on the group's hash, keeps
//! for every group its row count and one [`State`] per aggregate:
//!
//! - `count(x)`: the number of rows where `x` is not NULL, a sum of diffs;
//! - `sum(x)` over integers: the sum (in `i128`, so retractions never
//!   overflow) and the number of non-NULL values;
//! - `min(x)` / `max(x)`: the values as an ordered multiset (value → count),
//!   kept in Arrow's row encoding, whose bytes sort as the values do;
//! - `count(DISTINCT x)`: the same multiset, counted by its keys.
//!
//! Updates wait until the input frontier passes their time, then are
//! applied in time order; every group they touched emits the retraction of
//! its previous output row and its new one. A group whose row count falls
//! to zero is forgotten. Sums cast back to Int64 / UInt64 wrap as
//! DataFusion's do.
//!
//! Anything else (floating-point sums and averages, whose results depend on
//! the order values are added in, and every other aggregate function) goes
//! through `reduce.rs`, which recomputes a changed group with DataFusion's
//! own accumulators.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, UInt64Array};
use arrow::datatypes::{DataType, Int64Type, Schema, UInt64Type};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use differential_dataflow::VecCollection;
use differential_dataflow::collection::AsCollection;
use differential_dataflow::hashable::Hashable;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::{CapabilitySet, Operator};

use crate::row::{Row, RowCodec};

use super::Error;

/// What an aggregate keeps per group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Count,
    CountDistinct,
    /// `sum` over integers; `unsigned` when its result is UInt64.
    Sum { unsigned: bool },
    Min,
    Max,
}

/// One aggregate of a GROUP BY on the accumulating path.
pub(super) struct Accumulated {
    kind: Kind,
    /// Its argument columns (indices into the aggregate's arguments).
    arguments: Vec<usize>,
    /// The codec of its one argument (min, max, count DISTINCT).
    value_codec: Option<RowCodec>,
}

/// Which path each aggregate takes: `None` unless every one accumulates.
pub(super) fn accumulated(
    aggregates: &[(Arc<AggregateFunctionExpr>, Vec<usize>)],
    argument_schema: &Schema,
) -> Result<Option<Vec<Accumulated>>, Error> {
    let mut out = Vec::with_capacity(aggregates.len());
    for (aggregate, arguments) in aggregates {
        let output = aggregate.field();
        let single = |k: &[usize]| (k.len() == 1).then(|| argument_schema.field(k[0]).data_type().clone());
        let kind = match (aggregate.fun().name(), aggregate.is_distinct()) {
            ("count", false) if !arguments.is_empty() => Kind::Count,
            ("count", true) if arguments.len() == 1 => Kind::CountDistinct,
            ("sum", false) => match (single(arguments), output.data_type()) {
                (Some(t), DataType::Int64) if t.is_signed_integer() => Kind::Sum { unsigned: false },
                (Some(t), DataType::UInt64) if t.is_unsigned_integer() => Kind::Sum { unsigned: true },
                _ => return Ok(None),
            },
            ("min", _) if single(arguments).is_some() => Kind::Min,
            ("max", _) if single(arguments).is_some() => Kind::Max,
            _ => return Ok(None),
        };
        if matches!(kind, Kind::Count | Kind::CountDistinct) && output.data_type() != &DataType::Int64 {
            return Ok(None);
        }
        let value_codec = match kind {
            Kind::Min | Kind::Max | Kind::CountDistinct => {
                let field = argument_schema.field(arguments[0]).clone();
                Some(RowCodec::new(Arc::new(Schema::new(vec![field])))?)
            }
            _ => None,
        };
        out.push(Accumulated { kind, arguments: arguments.clone(), value_codec });
    }
    Ok(Some(out))
}

/// One input row's part in one aggregate.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub(super) enum Contribution {
    /// A NULL argument: counted in the group's rows, in no aggregate.
    Null,
    /// A row `count` counts.
    One,
    /// An integer `sum` adds.
    Int(i128),
    /// A value of `min`, `max` or count DISTINCT, row-encoded.
    Value(Row),
}

/// The contributions of a batch's rows: one `Vec` per row, one entry per
/// aggregate. `arguments` are the batch's argument columns.
pub(super) fn contributions(aggregates: &[Accumulated], arguments: &[ArrayRef], rows: usize) -> Result<Vec<Vec<Contribution>>, Error> {
    let mut out: Vec<Vec<Contribution>> = (0..rows).map(|_| Vec::with_capacity(aggregates.len())).collect();
    for aggregate in aggregates {
        let columns: Vec<&ArrayRef> = aggregate.arguments.iter().map(|&k| &arguments[k]).collect();
        match aggregate.kind {
            Kind::Count => {
                for (i, row) in out.iter_mut().enumerate() {
                    let null = columns.iter().any(|c| c.is_null(i));
                    row.push(if null { Contribution::Null } else { Contribution::One });
                }
            }
            Kind::Sum { unsigned } => {
                let column = columns[0];
                if unsigned {
                    let values = arrow::compute::cast(column, &DataType::UInt64)?;
                    let values = values.as_primitive::<UInt64Type>();
                    for (i, row) in out.iter_mut().enumerate() {
                        row.push(if values.is_null(i) { Contribution::Null } else { Contribution::Int(i128::from(values.value(i))) });
                    }
                } else {
                    let values = arrow::compute::cast(column, &DataType::Int64)?;
                    let values = values.as_primitive::<Int64Type>();
                    for (i, row) in out.iter_mut().enumerate() {
                        row.push(if values.is_null(i) { Contribution::Null } else { Contribution::Int(i128::from(values.value(i))) });
                    }
                }
            }
            Kind::Min | Kind::Max | Kind::CountDistinct => {
                let column = columns[0];
                let codec = aggregate.value_codec.as_ref().ok_or_else(|| Error::Internal("a value aggregate without its codec".into()))?;
                let encoded = codec.encode(std::slice::from_ref(column), rows)?;
                for (i, (row, value)) in out.iter_mut().zip(encoded).enumerate() {
                    row.push(if column.is_null(i) { Contribution::Null } else { Contribution::Value(value) });
                }
            }
        }
    }
    Ok(out)
}

/// What one group keeps for one aggregate.
#[derive(Clone, Debug)]
enum State {
    Count(i64),
    Sum { sum: i128, values: i64 },
    /// Value → multiplicity (min, max, count DISTINCT); no zero entries.
    Values(BTreeMap<Row, i64>),
}

struct Group {
    rows: i64,
    states: Vec<State>,
    /// The values row last emitted for the group.
    output: Option<Row>,
    /// Changed at the time being applied.
    dirty: bool,
}

/// Computes the groups' output rows from their states.
pub(super) struct Finisher {
    /// Shared with the operator that computes the contributions.
    aggregates: std::rc::Rc<Vec<Accumulated>>,
    /// The output's aggregate columns (the view's schema after the groups).
    output: RowCodec,
}

impl Finisher {
    pub(super) fn new(aggregates: std::rc::Rc<Vec<Accumulated>>, output: RowCodec) -> Self {
        Finisher { aggregates, output }
    }

    fn fresh(&self) -> Vec<State> {
        self.aggregates
            .iter()
            .map(|a| match a.kind {
                Kind::Count => State::Count(0),
                Kind::Sum { .. } => State::Sum { sum: 0, values: 0 },
                Kind::Min | Kind::Max | Kind::CountDistinct => State::Values(BTreeMap::new()),
            })
            .collect()
    }

    /// The aggregates over no rows (a global aggregate's row before any input).
    pub(super) fn empty(&self) -> Result<Row, Error> {
        self.finish(&self.fresh())
    }

    /// The aggregates' values for a group, encoded as the output's columns.
    fn finish(&self, states: &[State]) -> Result<Row, Error> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(states.len());
        for ((aggregate, state), field) in self.aggregates.iter().zip(states).zip(self.output.schema().fields()) {
            let column: ArrayRef = match (aggregate.kind, state) {
                (Kind::Count, State::Count(n)) => Arc::new(Int64Array::from(vec![*n])),
                (Kind::CountDistinct, State::Values(values)) => Arc::new(Int64Array::from(vec![values.len() as i64])),
                // Wrapping, as DataFusion's integer sums do.
                (Kind::Sum { unsigned: false }, State::Sum { sum, values }) => {
                    Arc::new(Int64Array::from(vec![(*values > 0).then_some(*sum as i64)]))
                }
                (Kind::Sum { unsigned: true }, State::Sum { sum, values }) => {
                    Arc::new(UInt64Array::from(vec![(*values > 0).then_some(*sum as u64)]))
                }
                (Kind::Min | Kind::Max, State::Values(values)) => {
                    let codec = aggregate.value_codec.as_ref().ok_or_else(|| Error::Internal("min/max without its codec".into()))?;
                    let chosen = if aggregate.kind == Kind::Min { values.keys().next() } else { values.keys().next_back() };
                    match chosen {
                        Some(row) => {
                            codec.decode_columns([row])?.pop().ok_or_else(|| Error::Internal("min/max decoded no column".into()))?
                        }
                        None => arrow::array::new_null_array(codec.schema().field(0).data_type(), 1),
                    }
                }
                _ => return Err(Error::Internal("an aggregate's state does not match its kind".into())),
            };
            columns.push(arrow::compute::cast(&column, field.data_type())?);
        }
        Ok(self.output.encode(&columns, 1)?.pop().unwrap_or_default())
    }
}

fn apply(state: &mut State, contribution: &Contribution, diff: i64) {
    match (state, contribution) {
        (_, Contribution::Null) => {}
        (State::Count(n), Contribution::One) => *n += diff,
        (State::Sum { sum, values }, Contribution::Int(v)) => {
            *sum += v * i128::from(diff);
            *values += diff;
        }
        (State::Values(values), Contribution::Value(value)) => {
            let entry = values.entry(value.clone()).or_insert(0);
            *entry += diff;
            if *entry == 0 {
                values.remove(value);
            }
        }
        _ => {}
    }
}

/// Maintains every group's aggregates: `(group, contributions)` updates in,
/// `(group, values)` rows out.
pub(super) fn accumulate<'scope>(
    keyed: VecCollection<'scope, u64, (Row, Vec<Contribution>), isize>,
    finisher: Finisher,
) -> VecCollection<'scope, u64, (Row, Row), isize> {
    let errors = super::errors::current();
    let exchange = Exchange::new(|update: &((Row, Vec<Contribution>), u64, isize)| (update.0).0.hashed());
    keyed
        .inner
        .unary_frontier(exchange, "AccumulateGroups", move |_, _| {
            let mut capabilities = CapabilitySet::new();
            let mut pending: BTreeMap<u64, Vec<(Row, Vec<Contribution>, isize)>> = BTreeMap::new();
            let mut groups: HashMap<Row, Group> = HashMap::new();
            move |(input, frontier), output| {
                input.for_each(|capability, data| {
                    if let Some(capability) = capability.retain_least(0) {
                        capabilities.insert(capability);
                    }
                    for ((group, contributions), time, diff) in data.drain(..) {
                        pending.entry(time).or_default().push((group, contributions, diff));
                    }
                });
                while let Some(entry) = pending.first_entry() {
                    let time = *entry.key();
                    if frontier.less_equal(&time) {
                        break;
                    }
                    let updates = entry.remove();
                    let capability = capabilities.delayed(&time);
                    let mut session = output.session(&capability);
                    // Each group this time changes, once, in the order first met.
                    let mut changed: Vec<Row> = Vec::new();
                    for (group, contributions, diff) in updates {
                        let diff = diff as i64;
                        // The key is cloned only for a group met for the first time.
                        if !groups.contains_key(&group) {
                            groups.insert(group.clone(), Group { rows: 0, states: finisher.fresh(), output: None, dirty: false });
                        }
                        let Some(state) = groups.get_mut(&group) else { continue };
                        state.rows += diff;
                        for (s, c) in state.states.iter_mut().zip(&contributions) {
                            apply(s, c, diff);
                        }
                        if !state.dirty {
                            state.dirty = true;
                            changed.push(group);
                        }
                    }
                    for group in changed {
                        let Some(state) = groups.get_mut(&group) else { continue };
                        state.dirty = false;
                        let new = if state.rows > 0 {
                            match finisher.finish(&state.states) {
                                Ok(row) => Some(row),
                                Err(error) => {
                                    errors.record("AccumulateGroups (a group)", 1, &error);
                                    None
                                }
                            }
                        } else {
                            None
                        };
                        if new != state.output {
                            if let Some(old) = state.output.take() {
                                session.give(((group.clone(), old), time, -1));
                            }
                            if let Some(row) = &new {
                                session.give(((group.clone(), row.clone()), time, 1));
                            }
                            state.output = new;
                        }
                        if state.rows == 0 {
                            groups.remove(&group);
                        }
                    }
                }
                // Hold capabilities only for the updates still waiting.
                match pending.keys().next() {
                    Some(&first) => capabilities.downgrade([first]),
                    None => capabilities = CapabilitySet::new(),
                }
            }
        })
        .as_collection()
}
