//! Lowering DataFusion's optimised `LogicalPlan` to the plan that standing
//! views run in differential dataflow.
//!
//! DataFusion parses, resolves and optimises the SQL; this module walks the
//! resulting plan and keeps only what can be maintained incrementally:
//! projection and filter (one [`Plan::Map`], whose expressions are DataFusion
//! `PhysicalExpr`s evaluated over Arrow batches), inner/left/semi/anti
//! equi-joins with residual predicates, GROUP BY with DataFusion's own
//! aggregate functions, DISTINCT, UNION ALL, window functions (DataFusion's
//! own `WindowExpr`s, evaluated per partition) and temporal filters, where a
//! row's visibility depends on `now()` (see [`Plan::Temporal`]). Everything
//! else is refused
//! here, when the view is created, with an error that names the construct
//! and where it stands in the SQL.
//!
//! Every node knows the Arrow schema of its rows; expressions refer to the
//! columns of their input by index, so aliases and qualifiers play no part
//! once a plan is lowered.

use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use datafusion::common::{DFSchema, NullEquality};
use datafusion::common::tree_node::TreeNode;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::expr::{BinaryExpr, Cast};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Distinct, Expr, ExprSchemable, JoinType, LogicalPlan, Operator};
use datafusion::physical_expr::window::WindowExpr;
use datafusion::physical_planner::create_window_expr;
use datafusion::physical_expr::aggregate::{AggregateExprBuilder, AggregateFunctionExpr};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr, create_physical_expr};

/// A construct outside what standing views maintain, or a plan that failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LowerError {
    #[error("{construct} is not supported in a standing view{}", at_position(.position))]
    Unsupported { construct: String, position: Option<(usize, usize)> },
    #[error("planning: {0}")]
    Plan(String),
}

fn at_position(position: &Option<(usize, usize)>) -> String {
    match position {
        Some((line, column)) => format!(" (line {line}, column {column})"),
        None => String::new(),
    }
}

/// Which rows of the left input a join keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Semi,
    Anti,
}

/// A lowered plan. Every node's rows have the node's `schema()`.
#[derive(Debug, Clone)]
pub enum Plan {
    /// All rows of an input table.
    Scan { table: String, schema: SchemaRef },
    /// Keep the rows where `filter` is true, then compute `exprs`.
    Map { input: Box<Plan>, filter: Option<Arc<dyn PhysicalExpr>>, exprs: Vec<Arc<dyn PhysicalExpr>>, schema: SchemaRef },
    /// Equi-join on `left_keys = right_keys`, then `residual` over the
    /// concatenated row. Semi and anti joins output left rows.
    Join {
        left: Box<Plan>,
        right: Box<Plan>,
        kind: JoinKind,
        left_keys: Vec<Arc<dyn PhysicalExpr>>,
        right_keys: Vec<Arc<dyn PhysicalExpr>>,
        key_schema: SchemaRef,
        residual: Option<Arc<dyn PhysicalExpr>>,
        /// Keys with NULLs match each other (`IS NOT DISTINCT FROM`,
        /// INTERSECT, EXCEPT); otherwise a NULL key matches nothing.
        nulls_equal: bool,
        /// `NOT IN` semantics for an anti join: a NULL on the right removes
        /// every left row, and a left row with a NULL key is removed
        /// whenever the right side has rows.
        null_aware: bool,
        /// A join on a range instead of an equality: both sides are keyed
        /// by time buckets (see [`Buckets`]) and the range stays in `residual`.
        buckets: Option<Buckets>,
        /// Schema of the left row followed by the right row.
        joined_schema: SchemaRef,
        schema: SchemaRef,
    },
    /// GROUP BY `groups`, computing `aggregates` (DataFusion's accumulators)
    /// over the `arguments` evaluated on each input row.
    Aggregate {
        input: Box<Plan>,
        groups: Vec<Arc<dyn PhysicalExpr>>,
        group_schema: SchemaRef,
        arguments: Vec<Arc<dyn PhysicalExpr>>,
        argument_schema: SchemaRef,
        /// Each aggregate and the indices of its arguments in `arguments`.
        aggregates: Vec<(Arc<AggregateFunctionExpr>, Vec<usize>)>,
        schema: SchemaRef,
    },
    Distinct { input: Box<Plan> },
    Union { inputs: Vec<Plan>, schema: SchemaRef },
    /// The input's rows, each extended with `functions` evaluated over its
    /// partition (the rows with equal `partition_by`), in the functions' own
    /// order.
    Window {
        input: Box<Plan>,
        partition_by: Vec<Arc<dyn PhysicalExpr>>,
        partition_schema: SchemaRef,
        functions: Vec<Arc<dyn WindowExpr>>,
        schema: SchemaRef,
    },
    /// A temporal filter: a row is in the output while every
    /// `now() <op> bound` holds, `now()` being the view's time in
    /// milliseconds. Each bound evaluates, per row, to nanoseconds since the
    /// epoch. Rows enter and leave at the times their bounds give, so a
    /// sliding window (`WHERE t > now() - INTERVAL '1 hour'`) retracts rows
    /// as they age and its state stays bounded.
    Temporal { input: Box<Plan>, bounds: Vec<(TemporalOp, Arc<dyn PhysicalExpr>)> },
}

/// An interval join's index: one side's value must fall in the other
/// side's range (bounds included or not: the residual decides). Values are
/// integers (timestamps in nanoseconds). Each side is keyed by every bucket
/// of `width` that its `[from, to]` touches: the side with the value has
/// `from == to` (one bucket), the side with the range one or two buckets
/// when `width` is the range's span, so each matching pair meets in exactly
/// one bucket.
#[derive(Debug, Clone)]
pub struct Buckets {
    pub left: (Arc<dyn PhysicalExpr>, Arc<dyn PhysicalExpr>),
    pub right: (Arc<dyn PhysicalExpr>, Arc<dyn PhysicalExpr>),
    pub width: i64,
}

/// How `now()` compares with a row's bound in a temporal filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemporalOp {
    Lt,
    LtEq,
    Gt,
    GtEq,
    Eq,
}

impl TemporalOp {
    /// The milliseconds `[from, until)` during which `now() <op> bound`
    /// holds, `bound` in nanoseconds.
    pub fn interval(self, bound_ns: i64) -> (u64, u64) {
        let floor = bound_ns.div_euclid(1_000_000);
        let ceil = floor + i64::from(bound_ns.rem_euclid(1_000_000) != 0);
        let ms = |v: i64| v.max(0) as u64;
        match self {
            TemporalOp::Lt => (0, ms(ceil)),
            TemporalOp::LtEq => (0, ms(floor + 1)),
            TemporalOp::Gt => (ms(floor + 1), u64::MAX),
            TemporalOp::GtEq => (ms(ceil), u64::MAX),
            TemporalOp::Eq => (ms(ceil), ms(floor + 1)),
        }
    }
}

impl Plan {
    pub fn schema(&self) -> SchemaRef {
        match self {
            Plan::Scan { schema, .. }
            | Plan::Map { schema, .. }
            | Plan::Join { schema, .. }
            | Plan::Aggregate { schema, .. }
            | Plan::Union { schema, .. } => Arc::clone(schema),
            Plan::Window { schema, .. } => Arc::clone(schema),
            Plan::Distinct { input } | Plan::Temporal { input, .. } => input.schema(),
        }
    }

    /// The input tables the plan reads.
    pub fn tables(&self, into: &mut Vec<String>) {
        match self {
            Plan::Scan { table, .. } => {
                if !into.contains(table) {
                    into.push(table.clone());
                }
            }
            Plan::Map { input, .. }
            | Plan::Aggregate { input, .. }
            | Plan::Distinct { input }
            | Plan::Window { input, .. }
            | Plan::Temporal { input, .. } => input.tables(into),
            Plan::Join { left, right, .. } => {
                left.tables(into);
                right.tables(into);
            }
            Plan::Union { inputs, .. } => inputs.iter().for_each(|p| p.tables(into)),
        }
    }
}

/// Lowers an optimised logical plan; `sql` is only used to place errors.
pub fn lower(plan: &LogicalPlan, sql: &str) -> Result<Plan, LowerError> {
    Lowering { sql }.plan(plan)
}

struct Lowering<'a> {
    sql: &'a str,
}

fn arrow_schema(schema: &DFSchema) -> SchemaRef {
    Arc::new(schema.as_arrow().clone())
}

fn plan_error(e: impl std::fmt::Display) -> LowerError {
    LowerError::Plan(e.to_string())
}

impl Lowering<'_> {
    /// Where `keyword` (any of its spellings, case-insensitive) first stands
    /// in the SQL, as 1-based line and column. DataFusion's logical plans do
    /// not carry source spans, so the construct is found by its keyword.
    fn position(&self, keywords: &[&str]) -> Option<(usize, usize)> {
        let upper = self.sql.to_uppercase();
        let offset = keywords.iter().filter_map(|k| find_word(&upper, &k.to_uppercase())).min()?;
        let before = &self.sql[..offset.min(self.sql.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Some((line, column))
    }

    fn refuse(&self, construct: &str, keywords: &[&str]) -> LowerError {
        LowerError::Unsupported { construct: construct.to_string(), position: self.position(keywords) }
    }

    fn expr(&self, expr: &Expr, input: &DFSchema) -> Result<Arc<dyn PhysicalExpr>, LowerError> {
        let subquery = expr
            .exists(|e| Ok(matches!(e, Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_))))
            .unwrap_or(false);
        if subquery {
            return Err(self.refuse(
                "a subquery DataFusion could not rewrite into a join (a correlated or scalar subquery in this position)",
                &["(SELECT", "( SELECT", "EXISTS"],
            ));
        }
        if contains_now(expr) {
            return Err(self.refuse(
                "now() outside a WHERE condition that compares it with a row's value (a temporal filter)",
                &["NOW", "CURRENT_TIMESTAMP"],
            ));
        }
        create_physical_expr(expr, input, &ExecutionProps::new(), &PhysicalPlanningContext::default())
            .map_err(plan_error)
    }

    fn exprs(&self, exprs: &[Expr], input: &DFSchema) -> Result<Vec<Arc<dyn PhysicalExpr>>, LowerError> {
        exprs.iter().map(|e| self.expr(e, input)).collect()
    }

    fn plan(&self, plan: &LogicalPlan) -> Result<Plan, LowerError> {
        match plan {
            LogicalPlan::TableScan(scan) => {
                let table = scan.table_name.table().to_string();
                let source_schema = scan.source.schema();
                let mut lowered = Plan::Scan { table, schema: Arc::clone(&source_schema) };
                if !scan.filters.is_empty() {
                    let full = DFSchema::try_from(source_schema.as_ref().clone()).map_err(plan_error)?;
                    let conjunction = scan.filters.iter().cloned().reduce(Expr::and).expect("non-empty");
                    let filter = self.expr(&conjunction, &full)?;
                    lowered = Plan::Map {
                        exprs: identity(&source_schema),
                        input: Box::new(lowered),
                        filter: Some(filter),
                        schema: Arc::clone(&source_schema),
                    };
                }
                if let Some(projection) = &scan.projection {
                    let exprs = projection
                        .iter()
                        .map(|&i| Arc::new(Column::new(source_schema.field(i).name(), i)) as Arc<dyn PhysicalExpr>)
                        .collect();
                    lowered = Plan::Map {
                        input: Box::new(lowered),
                        filter: None,
                        exprs,
                        schema: Arc::new(source_schema.project(projection).map_err(plan_error)?),
                    };
                }
                if scan.fetch.is_some() {
                    return Err(self.refuse("LIMIT", &["LIMIT", "FETCH"]));
                }
                Ok(lowered)
            }
            LogicalPlan::Projection(p) => Ok(Plan::Map {
                exprs: self.exprs(&p.expr, p.input.schema())?,
                input: Box::new(self.plan(&p.input)?),
                filter: None,
                schema: arrow_schema(&p.schema),
            }),
            LogicalPlan::Filter(f) => {
                let mut lowered = self.plan(&f.input)?;
                let (temporal, ordinary): (Vec<&Expr>, Vec<&Expr>) =
                    split_conjunction(&f.predicate).into_iter().partition(|e| contains_now(e));
                if let Some(predicate) = ordinary.into_iter().cloned().reduce(Expr::and) {
                    let schema = lowered.schema();
                    lowered = Plan::Map {
                        filter: Some(self.expr(&predicate, f.input.schema())?),
                        exprs: identity(&schema),
                        input: Box::new(lowered),
                        schema,
                    };
                }
                if !temporal.is_empty() {
                    let bounds = temporal
                        .into_iter()
                        .map(|c| self.temporal_bound(c, f.input.schema()))
                        .collect::<Result<_, _>>()?;
                    lowered = Plan::Temporal { input: Box::new(lowered), bounds };
                }
                Ok(lowered)
            }
            LogicalPlan::SubqueryAlias(a) => self.plan(&a.input),
            LogicalPlan::Sort(s) if s.fetch.is_none() => self.plan(&s.input),
            LogicalPlan::Sort(_) | LogicalPlan::Limit(_) => Err(self.refuse(
                "LIMIT (for a top-k per group, filter on ROW_NUMBER() OVER (PARTITION BY … ORDER BY …))",
                &["LIMIT", "FETCH", "OFFSET"],
            )),
            LogicalPlan::Join(j) => self.join(j),
            LogicalPlan::Aggregate(a) => self.aggregate(a),
            LogicalPlan::Distinct(Distinct::All(input)) => Ok(Plan::Distinct { input: Box::new(self.plan(input)?) }),
            LogicalPlan::Distinct(Distinct::On(_)) => Err(self.refuse("DISTINCT ON", &["DISTINCT ON"])),
            LogicalPlan::Union(u) => Ok(Plan::Union {
                inputs: u.inputs.iter().map(|i| self.plan(i)).collect::<Result<_, _>>()?,
                schema: arrow_schema(&u.schema),
            }),
            LogicalPlan::Window(w) => self.window(w),
            LogicalPlan::Values(_) => Err(self.refuse("VALUES", &["VALUES"])),
            LogicalPlan::EmptyRelation(_) => Err(self.refuse("a query without a table (SELECT without FROM)", &["SELECT"])),
            LogicalPlan::Unnest(_) => Err(self.refuse("UNNEST", &["UNNEST"])),
            LogicalPlan::RecursiveQuery(_) => Err(self.refuse("recursive queries (WITH RECURSIVE)", &["RECURSIVE"])),
            LogicalPlan::Subquery(_) => Err(self.refuse("a subquery DataFusion could not rewrite into a join", &["SELECT"])),
            other => Err(self.refuse(&format!("the statement `{}`", other.display()), &[])),
        }
    }

    fn join(&self, j: &datafusion::logical_expr::Join) -> Result<Plan, LowerError> {
        let kind = match j.join_type {
            JoinType::Inner => JoinKind::Inner,
            JoinType::Left => JoinKind::Left,
            JoinType::LeftSemi => JoinKind::Semi,
            JoinType::LeftAnti => JoinKind::Anti,
            JoinType::Right | JoinType::RightSemi | JoinType::RightAnti => {
                return Err(self.refuse("RIGHT joins (write them as LEFT joins)", &["RIGHT"]));
            }
            JoinType::Full => return Err(self.refuse("FULL OUTER JOIN", &["FULL"])),
            other => return Err(self.refuse(&format!("{other} joins"), &["JOIN"])),
        };
        let (left_schema, right_schema) = (j.left.schema(), j.right.schema());
        // A range between the two sides indexes the join by time buckets:
        // required without an equality (else it would be a cross join), and
        // added to the keys of an equi-join when the range has a known span
        // (`b.t BETWEEN a.t AND a.t + INTERVAL …`), so that a key with a long
        // history (a post, a lane) is not compared with all of it.
        let found = j.filter.as_ref().map(|f| self.interval_buckets(f, left_schema, right_schema)).transpose()?.flatten();
        let buckets = match found {
            None if j.on.is_empty() => {
                return Err(self.refuse(
                    "joins without an equality or a range (`b.t BETWEEN a.t AND a.t + INTERVAL …`) between the two sides (cross joins)",
                    &["JOIN", ","],
                ));
            }
            Some((buckets, spanned)) if j.on.is_empty() || (spanned && j.null_equality != NullEquality::NullEqualsNull) => Some(buckets),
            _ => None,
        };
        let left_keys: Vec<_> = j.on.iter().map(|(l, _)| self.expr(l, left_schema)).collect::<Result<_, _>>()?;
        let right_keys: Vec<_> = j.on.iter().map(|(_, r)| self.expr(r, right_schema)).collect::<Result<_, _>>()?;
        let mut key_fields: Vec<_> = j
            .on
            .iter()
            .enumerate()
            .map(|(i, (l, _))| {
                let data_type = l.get_type(left_schema).map_err(plan_error)?;
                Ok(arrow::datatypes::Field::new(format!("k{i}"), data_type, true))
            })
            .collect::<Result<_, LowerError>>()?;
        if buckets.is_some() {
            key_fields.push(arrow::datatypes::Field::new("bucket", DataType::Int64, true));
        }
        let joined = left_schema.join(right_schema).map_err(plan_error)?;
        let residual = j.filter.as_ref().map(|f| self.expr(f, &joined)).transpose()?;
        let joined_schema = arrow_schema(&joined);
        let schema = match kind {
            JoinKind::Inner | JoinKind::Left => arrow_schema(&j.schema),
            JoinKind::Semi | JoinKind::Anti => arrow_schema(left_schema),
        };
        Ok(Plan::Join {
            left: Box::new(self.plan(&j.left)?),
            right: Box::new(self.plan(&j.right)?),
            kind,
            left_keys,
            right_keys,
            key_schema: Arc::new(Schema::new(key_fields)),
            residual,
            nulls_equal: j.null_equality == NullEquality::NullEqualsNull,
            null_aware: j.null_aware && kind == JoinKind::Anti,
            buckets,
            joined_schema,
            schema,
        })
    }

    /// A range between the two sides in a join's condition
    /// (`r BETWEEN l1 AND l2`, or `r >= l1 AND r < l2`, either way round),
    /// over timestamps, dates or integers, as [`Buckets`].
    /// With it, whether the bucket width is the range's span (not a default).
    fn interval_buckets(&self, filter: &Expr, left: &DFSchema, right: &DFSchema) -> Result<Option<(Buckets, bool)>, LowerError> {
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
    fn temporal_bound(&self, conjunct: &Expr, schema: &DFSchema) -> Result<(TemporalOp, Arc<dyn PhysicalExpr>), LowerError> {
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

    fn window(&self, w: &datafusion::logical_expr::Window) -> Result<Plan, LowerError> {
        let input_schema = w.input.schema();
        let mut functions = Vec::new();
        for expr in &w.window_expr {
            if contains_now(expr) {
                return Err(self.refuse("now() inside a window function", &["NOW", "CURRENT_TIMESTAMP"]));
            }
            let function = create_window_expr(expr, input_schema, &ExecutionProps::new(), &PhysicalPlanningContext::default())
                .map_err(plan_error)?;
            functions.push(function);
        }
        let first = functions.first().ok_or_else(|| LowerError::Plan("a window without functions".into()))?;
        let partition_by: Vec<Arc<dyn PhysicalExpr>> = first.partition_by().to_vec();
        let same = |f: &Arc<dyn WindowExpr>| format!("{:?}", f.partition_by()) == format!("{partition_by:?}");
        if !functions.iter().all(same) {
            return Err(self.refuse("window functions with different PARTITION BY in one step", &["OVER"]));
        }
        let input_arrow = arrow_schema(input_schema);
        let partition_fields = partition_by
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let data_type = p.data_type(&input_arrow).map_err(plan_error)?;
                Ok(arrow::datatypes::Field::new(format!("p{i}"), data_type, true))
            })
            .collect::<Result<Vec<_>, LowerError>>()?;
        Ok(Plan::Window {
            input: Box::new(self.plan(&w.input)?),
            partition_by,
            partition_schema: Arc::new(Schema::new(partition_fields)),
            functions,
            schema: arrow_schema(&w.schema),
        })
    }

    fn aggregate(&self, a: &datafusion::logical_expr::Aggregate) -> Result<Plan, LowerError> {
        if a.group_expr.iter().any(|e| matches!(e, Expr::GroupingSet(_))) {
            return Err(self.refuse("GROUPING SETS / ROLLUP / CUBE", &["ROLLUP", "CUBE", "GROUPING SETS"]));
        }
        let input_schema = a.input.schema();
        let groups = self.exprs(&a.group_expr, input_schema)?;
        let group_fields: Vec<_> = a.schema.fields().iter().take(a.group_expr.len()).cloned().collect();
        let mut arguments = Vec::new();
        let mut argument_fields = Vec::new();
        let mut aggregates = Vec::new();
        for (i, expr) in a.aggr_expr.iter().enumerate() {
            let inner = match expr {
                Expr::Alias(alias) => alias.expr.as_ref(),
                other => other,
            };
            let Expr::AggregateFunction(AggregateFunction { func, params }) = inner else {
                return Err(LowerError::Plan(format!("unexpected aggregate expression {inner}")));
            };
            if params.filter.is_some() {
                return Err(self.refuse("aggregate FILTER (WHERE …)", &["FILTER"]));
            }
            // `f(p) WITHIN GROUP (ORDER BY x)` (percentile_cont): the
            // ordering is a parameter of the function, whose accumulator
            // sorts by itself, not an order the input must arrive in.
            // DataFusion passes the ordering expression as the first
            // argument (coerced, so perhaps inside a cast).
            let within_group = params.order_by.len() == 1 && func.supports_within_group_clause() && !params.args.is_empty();
            if !params.order_by.is_empty() && !within_group {
                if matches!(func.name(), "first_value" | "last_value") && find_word(&self.sql.to_uppercase(), "DISTINCT ON").is_some() {
                    return Err(self.refuse("DISTINCT ON (use ROW_NUMBER() OVER (PARTITION BY …) = 1)", &["DISTINCT ON"]));
                }
                return Err(self.refuse("ordered aggregates (… ORDER BY inside an aggregate)", &["ORDER BY"]));
            }
            let physical_args = self.exprs(&params.args, input_schema)?;
            let mut indices = Vec::new();
            let mut columns = Vec::new();
            for (arg, physical) in params.args.iter().zip(&physical_args) {
                let data_type = arg.get_type(input_schema).map_err(plan_error)?;
                // The accumulator is given each argument as a column, in
                // order; constants (a percentile's fraction, a separator)
                // stay literals in the built expression too, because some
                // aggregates read them when they are built.
                columns.push(if matches!(arg, Expr::Literal(..)) {
                    Arc::clone(physical)
                } else {
                    Arc::new(Column::new(&format!("a{}", arguments.len()), indices.len())) as Arc<dyn PhysicalExpr>
                });
                indices.push(arguments.len());
                argument_fields.push(arrow::datatypes::Field::new(format!("a{}", arguments.len()), data_type, true));
                arguments.push(Arc::clone(physical));
            }
            // The accumulator sees only this aggregate's argument columns, in order.
            let own_schema = Arc::new(Schema::new(
                indices.iter().map(|&k| argument_fields[k].clone()).collect::<Vec<_>>(),
            ));
            let name = a.schema.field(a.group_expr.len() + i).name().clone();
            let order_by: Vec<PhysicalSortExpr> = if within_group {
                params
                    .order_by
                    .iter()
                    .map(|sort| {
                        PhysicalSortExpr {
                            expr: Arc::clone(&columns[0]),
                            options: arrow::compute::SortOptions { descending: !sort.asc, nulls_first: sort.nulls_first },
                        }
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let built = AggregateExprBuilder::new(Arc::clone(func), columns)
                .order_by(order_by)
                .schema(own_schema)
                .alias(name)
                .with_distinct(params.distinct)
                .build()
                .map_err(plan_error)?;
            aggregates.push((Arc::new(built), indices));
        }
        Ok(Plan::Aggregate {
            input: Box::new(self.plan(&a.input)?),
            groups,
            group_schema: Arc::new(Schema::new(group_fields)),
            arguments,
            argument_schema: Arc::new(Schema::new(argument_fields)),
            aggregates,
            schema: arrow_schema(&a.schema),
        })
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

/// Column expressions that pass every column of `schema` through.
pub fn identity(schema: &Schema) -> Vec<Arc<dyn PhysicalExpr>> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| Arc::new(Column::new(f.name(), i)) as Arc<dyn PhysicalExpr>)
        .collect()
}

/// Byte offset of `word` in `text` where it is not part of a longer word.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut from = 0;
    while let Some(found) = text[from..].find(word) {
        let at = from + found;
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let word_like = word.chars().next().is_some_and(char::is_alphanumeric);
        if !word_like || (!is_word(before) && !is_word(after)) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}
