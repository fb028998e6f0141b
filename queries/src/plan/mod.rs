//! The plan standing views run, lowered from DataFusion's optimised
//! `LogicalPlan`.
//!
//! DataFusion parses, resolves and optimises the SQL; [`lower`] walks the
//! resulting plan and keeps only what can be maintained incrementally:
//! projection and filter (one [`Plan::Map`], whose expressions are DataFusion
//! `PhysicalExpr`s evaluated over Arrow batches), inner/left/semi/anti
//! equi-joins with residual predicates, GROUP BY with DataFusion's own
//! aggregate functions, DISTINCT, UNION ALL, window functions (DataFusion's
//! own `WindowExpr`s, evaluated per partition) and temporal filters, where a
//! row's visibility depends on `now()` (see [`Plan::Temporal`]). A join
//! whose condition holds a range between its two sides
//! (`b.t BETWEEN a.t AND a.t + INTERVAL …`) is indexed by time buckets
//! ([`Buckets`]), so it needs no equality; nor does a join with a side of
//! at most one row (an aggregate without GROUP BY), which is keyed by a
//! constant. That is what an uncorrelated scalar subquery becomes: views
//! are planned with DataFusion's `ScalarSubqueryToJoin` rewriting it into
//! a LEFT join with the subquery (`ON true`), rather than leaving it to the
//! physical plan.
//!
//! Everything else is refused here, when the view is created, with an error
//! ([`LowerError::Unsupported`]) that names the construct and where it stands
//! in the SQL: LIMIT / FETCH / OFFSET, RIGHT and FULL joins, cross joins
//! (a join with neither an equality nor a range, nor a side of at most one
//! row), scalar subqueries that may return more than one row, DISTINCT ON,
//! GROUPING SETS / ROLLUP / CUBE, aggregate FILTER, ordered aggregates
//! (other than `WITHIN GROUP`), window functions with different PARTITION
//! BY in one step, VALUES, SELECT without FROM, UNNEST, WITH RECURSIVE,
//! subqueries DataFusion could not rewrite into joins, and `now()` anywhere
//! but a WHERE condition comparing it with a row's value.
//!
//! Every node knows the Arrow schema of its rows; expressions refer to the
//! columns of their input by index, so aliases and qualifiers play no part
//! once a plan is lowered.
//!
//! - `walk.rs`: the lowering walk, operator by operator (scan, projection,
//!   filter, join, aggregate, window, …) and the expressions they evaluate;
//! - `temporal.rs`: `now()` conditions as temporal bounds, and ranges between
//!   a join's sides as interval-join buckets;
//! - `refusals.rs`: refusals and where the refused construct stands in the SQL.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::DFSchema;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::window::WindowExpr;

pub use temporal::contains_now;
pub use walk::identity;

use refusals::at_position;

mod refusals;
mod temporal;
mod walk;

/// A construct outside what standing views maintain, or a plan that failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LowerError {
    #[error("{construct} is not supported in a standing view{}", at_position(.position))]
    Unsupported { construct: String, position: Option<(usize, usize)> },
    #[error("planning: {0}")]
    Plan(String),
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
    /// concatenated row. Semi and anti joins output left rows. A join
    /// without an equality whose one side has at most one row has one
    /// constant key on both sides.
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
