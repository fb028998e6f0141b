//! Time in the plan: `now()` conditions become temporal bounds
//! ([`Plan::Temporal`](super::Plan::Temporal)), and a range between a join's
//! two sides becomes the time buckets of an interval join ([`Buckets`]).

use std::sync::Arc;

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::TreeNode;
use datafusion::logical_expr::expr::{BinaryExpr, Cast};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, ExprSchemable, Operator};
use datafusion::physical_expr::PhysicalExpr;

use super::{Buckets, Lowering, LowerError, TemporalOp, plan_error};

impl Lowering<'_> {
    /// A range between the two sides in a join's condition
    /// (`r BETWEEN l1 AND l2`, or `r >= l1 AND r < l2`, either way round),
    /// over timestamps, dates or integers, as [`Buckets`].
    /// With it, whether the bucket width is the range's span (not a default).
    pub(super) fn interval_buckets(&self, filter: &Expr, left: &DFSchema, right: &DFSchema) -> Result<Option<(Buckets, bool)>, LowerError> {
        if let Some((value, (from, to), width, spanned)) = self.value_in_range(filter, right, left)? {
            return Ok(Some((Buckets { left: (from, to), right: (Arc::clone(&value), value), width }, spanned)));
        }
        Ok(self.value_in_range(filter, left, right)?.map(|(value, (from, to), width, spanned)| {
            (Buckets { left: (Arc::clone(&value), value), right: (from, to), width }, spanned)
        }))
    }

    /// A value of the `right` schema's side within a range given by the
    /// `left` schema's side: the value, the range and the bucket width.
    #[allow(clippy::type_complexity)]
    fn value_in_range(
        &self,
        filter: &Expr,
        right: &DFSchema,
        left: &DFSchema,
    ) -> Result<Option<(Arc<dyn PhysicalExpr>, (Arc<dyn PhysicalExpr>, Arc<dyn PhysicalExpr>), i64, bool)>, LowerError> {
        let only = |e: &Expr, schema: &DFSchema, other: &DFSchema| {
            let columns = e.column_refs();
            !columns.is_empty() && columns.iter().all(|c| schema.has_column(c) && !other.has_column(c))
        };
        // (right value, lower bound from the left, upper bound from the left)
        let mut lower: Vec<(Expr, Expr)> = Vec::new();
        let mut upper: Vec<(Expr, Expr)> = Vec::new();
        for conjunct in split_conjunction(filter) {
            match conjunct {
                Expr::Between(between) if !between.negated && only(&between.expr, right, left) => {
                    if only(&between.low, left, right) && only(&between.high, left, right) {
                        lower.push((*between.expr.clone(), *between.low.clone()));
                        upper.push((*between.expr.clone(), *between.high.clone()));
                    }
                }
                Expr::BinaryExpr(BinaryExpr { left: l, op, right: r }) => {
                    let (value, op, bound) = if only(r, right, left) && only(l, left, right) {
                        (r.as_ref(), op.swap(), l.as_ref())
                    } else if only(l, right, left) && only(r, left, right) {
                        (l.as_ref(), Some(*op), r.as_ref())
                    } else {
                        continue;
                    };
                    match op {
                        Some(Operator::Gt | Operator::GtEq) => lower.push((value.clone(), bound.clone())),
                        Some(Operator::Lt | Operator::LtEq) => upper.push((value.clone(), bound.clone())),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        let key = |e: &Expr| format!("{e}");
        let Some(((value, from), to)) = lower
            .iter()
            .find_map(|(v, from)| upper.iter().find(|(u, _)| key(u) == key(v)).map(|(_, to)| ((v, from), to)))
        else {
            return Ok(None);
        };
        let nanos = DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into()));
        let as_integer = |e: &Expr, schema: &DFSchema| -> Result<Option<Expr>, LowerError> {
            let data_type = e.get_type(schema).map_err(plan_error)?;
            Ok(match data_type {
                DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => Some(Expr::Cast(Cast::new(
                    Box::new(Expr::Cast(Cast::new(Box::new(e.clone()), nanos.clone()))),
                    DataType::Int64,
                ))),
                t if t.is_integer() => Some(Expr::Cast(Cast::new(Box::new(e.clone()), DataType::Int64))),
                _ => None,
            })
        };
        let (Some(right_at), Some(left_from), Some(left_to)) =
            (as_integer(value, right)?, as_integer(from, left)?, as_integer(to, left)?)
        else {
            return Ok(None);
        };
        let is_time = matches!(value.get_type(right).map_err(plan_error)?, DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64);
        // The bucket width: the range's span when both bounds are one
        // expression plus constants (the usual `a.t` … `a.t + INTERVAL`),
        // else an hour (or 1 000 for integers).
        let (from_base, from_offset) = split_offset(from);
        let (to_base, to_offset) = split_offset(to);
        let span = match (from_offset, to_offset) {
            (Some(f), Some(t)) if key(&from_base) == key(&to_base) && t > f => Some(t - f),
            _ => None,
        };
        let width = match (span, is_time) {
            (Some(span), _) => span,
            (None, true) => 3_600_000_000_000,
            (None, false) => 1_000,
        };
        Ok(Some((self.expr(&right_at, right)?, (self.expr(&left_from, left)?, self.expr(&left_to, left)?), width, span.is_some())))
    }

    /// `now() <op> bound` (either way round; `now() ± interval` is moved to
    /// the bound's side) as the op and the bound in nanoseconds.
    pub(super) fn temporal_bound(&self, conjunct: &Expr, schema: &DFSchema) -> Result<(TemporalOp, Arc<dyn PhysicalExpr>), LowerError> {
        let refuse = || {
            self.refuse(
                "a now() condition other than `now() <op> expression` or `expression <op> now() ± interval` \
                 (<op> one of <, <=, >, >=, =)",
                &["NOW", "CURRENT_TIMESTAMP"],
            )
        };
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = conjunct else {
            return Err(refuse());
        };
        let (mut now_side, mut bound, op) = match (contains_now(left), contains_now(right)) {
            (true, false) => (left.as_ref().clone(), right.as_ref().clone(), *op),
            (false, true) => (right.as_ref().clone(), left.as_ref().clone(), op.swap().ok_or_else(refuse)?),
            _ => return Err(refuse()),
        };
        loop {
            match now_side {
                Expr::ScalarFunction(ref f) if f.func.name() == "now" => break,
                Expr::Cast(cast) => now_side = *cast.expr,
                Expr::TryCast(cast) => now_side = *cast.expr,
                Expr::BinaryExpr(BinaryExpr { left, op: Operator::Minus, right }) if !contains_now(&right) => {
                    bound = bound + *right;
                    now_side = *left;
                }
                Expr::BinaryExpr(BinaryExpr { left, op: Operator::Plus, right }) if !contains_now(&right) => {
                    bound = bound - *right;
                    now_side = *left;
                }
                Expr::BinaryExpr(BinaryExpr { left, op: Operator::Plus, right }) if !contains_now(&left) => {
                    bound = bound - *left;
                    now_side = *right;
                }
                _ => return Err(refuse()),
            }
        }
        let op = match op {
            Operator::Lt => TemporalOp::Lt,
            Operator::LtEq => TemporalOp::LtEq,
            Operator::Gt => TemporalOp::Gt,
            Operator::GtEq => TemporalOp::GtEq,
            Operator::Eq => TemporalOp::Eq,
            _ => return Err(refuse()),
        };
        let nanos = DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into()));
        let bound = Expr::Cast(Cast::new(Box::new(Expr::Cast(Cast::new(Box::new(bound), nanos))), DataType::Int64));
        Ok((op, self.expr(&bound, schema)?))
    }
}

/// `base ± constant` as the base and the constant in the units the
/// bucketing uses (nanoseconds for intervals, the value for integers);
/// `None` when the constant is not one (a month has no fixed length).
fn split_offset(e: &Expr) -> (Expr, Option<i64>) {
    use datafusion::common::ScalarValue;
    let constant = |e: &Expr| match e {
        Expr::Literal(ScalarValue::IntervalMonthDayNano(Some(v)), _) if v.months == 0 => {
            Some(i64::from(v.days) * 86_400_000_000_000 + v.nanoseconds)
        }
        Expr::Literal(ScalarValue::IntervalDayTime(Some(v)), _) => {
            Some(i64::from(v.days) * 86_400_000_000_000 + i64::from(v.milliseconds) * 1_000_000)
        }
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => Some(*v),
        Expr::Literal(ScalarValue::Int32(Some(v)), _) => Some(i64::from(*v)),
        _ => None,
    };
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Plus, right }) => match constant(right) {
            Some(c) => (left.as_ref().clone(), Some(c)),
            None => (e.clone(), None),
        },
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Minus, right }) => match constant(right) {
            Some(c) => (left.as_ref().clone(), Some(-c)),
            None => (e.clone(), None),
        },
        Expr::Cast(cast) => split_offset(&cast.expr),
        other => (other.clone(), Some(0)),
    }
}

/// Whether `expr` calls `now()` (or its alias `current_timestamp`).
pub fn contains_now(expr: &Expr) -> bool {
    expr.exists(|e| Ok(matches!(e, Expr::ScalarFunction(f) if f.func.name() == "now"))).unwrap_or(false)
}
