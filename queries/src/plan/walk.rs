//! The lowering walk: each operator of DataFusion's logical plan as a
//! [`Plan`] node, and its expressions as DataFusion physical expressions.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{DFSchema, NullEquality, ScalarValue};
use datafusion::common::tree_node::TreeNode;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Distinct, Expr, ExprSchemable, JoinType, LogicalPlan};
use datafusion::physical_expr::window::WindowExpr;
use datafusion::physical_planner::create_window_expr;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr, create_physical_expr};

use super::refusals::find_word;
use super::temporal::contains_now;
use super::{JoinKind, LowerError, Lowering, Plan, arrow_schema, plan_error};

impl Lowering<'_> {
    pub(super) fn expr(&self, expr: &Expr, input: &DFSchema) -> Result<Arc<dyn PhysicalExpr>, LowerError> {
        let subquery = expr
            .exists(|e| Ok(matches!(e, Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_))))
            .unwrap_or(false);
        let uncorrelated_scalar = expr
            .exists(|e| Ok(matches!(e, Expr::ScalarSubquery(s) if s.outer_ref_columns.is_empty())))
            .unwrap_or(false);
        if uncorrelated_scalar {
            return Err(self.refuse(
                "a scalar subquery DataFusion could not rewrite into a join (one inside an aggregate's argument, \
                 or one whose column is named like a column of the outer query: name it, `(SELECT avg(x) AS overall …)`)",
                &["(SELECT", "( SELECT"],
            ));
        }
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

    pub(super) fn exprs(&self, exprs: &[Expr], input: &DFSchema) -> Result<Vec<Arc<dyn PhysicalExpr>>, LowerError> {
        exprs.iter().map(|e| self.expr(e, input)).collect()
    }

    pub(super) fn plan(&self, plan: &LogicalPlan) -> Result<Plan, LowerError> {
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
        // Without an equality, a side that has at most one row (a global
        // aggregate: what an uncorrelated scalar subquery becomes) meets
        // every row of the other: both sides are keyed by one constant.
        let one_row = j.on.is_empty() && (at_most_one_row(&j.right) || at_most_one_row(&j.left));
        // A range between the two sides indexes the join by time buckets:
        // required without an equality (else it would be a cross join), and
        // added to the keys of an equi-join when the range has a known span
        // (`b.t BETWEEN a.t AND a.t + INTERVAL …`), so that a key with a long
        // history (a post, a lane) is not compared with all of it.
        let found = match &j.filter {
            Some(f) if !one_row => self.interval_buckets(f, left_schema, right_schema)?,
            _ => None,
        };
        let buckets = match found {
            None if j.on.is_empty() && !one_row => return Err(self.cross_join(right_schema)),
            Some((buckets, spanned)) if j.on.is_empty() || (spanned && j.null_equality != NullEquality::NullEqualsNull) => Some(buckets),
            _ => None,
        };
        let (left_keys, right_keys, mut key_fields) = if one_row {
            let constant = || Arc::new(Literal::new(ScalarValue::Boolean(Some(true)))) as Arc<dyn PhysicalExpr>;
            (vec![constant()], vec![constant()], vec![Field::new("k0", DataType::Boolean, false)])
        } else {
            let left_keys: Vec<_> = j.on.iter().map(|(l, _)| self.expr(l, left_schema)).collect::<Result<_, _>>()?;
            let right_keys: Vec<_> = j.on.iter().map(|(_, r)| self.expr(r, right_schema)).collect::<Result<_, _>>()?;
            let key_fields: Vec<_> = j
                .on
                .iter()
                .enumerate()
                .map(|(i, (l, _))| Ok(Field::new(format!("k{i}"), l.get_type(left_schema).map_err(plan_error)?, true)))
                .collect::<Result<_, LowerError>>()?;
            (left_keys, right_keys, key_fields)
        };
        if buckets.is_some() {
            key_fields.push(Field::new("bucket", DataType::Int64, true));
        }
        let joined = left_schema.join(right_schema).map_err(plan_error)?;
        // `ON true` (an uncorrelated scalar subquery's join) filters nothing.
        let residual = j
            .filter
            .as_ref()
            .filter(|f| !matches!(f, Expr::Literal(ScalarValue::Boolean(Some(true)), _)))
            .map(|f| self.expr(f, &joined))
            .transpose()?;
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

    /// The refusal of a join with neither an equality nor a range, and no
    /// side of at most one row. A scalar subquery DataFusion joined this way
    /// (its right side is named `__scalar_sq_…`) is refused as such.
    fn cross_join(&self, right_schema: &DFSchema) -> LowerError {
        let scalar_subquery = right_schema.iter().any(|(q, _)| q.is_some_and(|q| q.table().starts_with("__scalar_sq")));
        if scalar_subquery {
            return self.refuse(
                "a scalar subquery that may return more than one row (one that aggregates without GROUP BY, \
                 `(SELECT max(…) FROM …)`, is maintained)",
                &["(SELECT", "( SELECT"],
            );
        }
        self.refuse(
            "joins without an equality or a range (`b.t BETWEEN a.t AND a.t + INTERVAL …`) between the two sides (cross joins)",
            &["JOIN", ","],
        )
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
                Ok(Field::new(format!("p{i}"), data_type, true))
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
                argument_fields.push(Field::new(format!("a{}", arguments.len()), data_type, true));
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

/// Whether `plan` yields at most one row whatever its input: an aggregate
/// without GROUP BY (exactly one row), under operators that keep or drop
/// rows one by one.
fn at_most_one_row(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Aggregate(a) => a.group_expr.is_empty(),
        LogicalPlan::Projection(p) => at_most_one_row(&p.input),
        LogicalPlan::SubqueryAlias(a) => at_most_one_row(&a.input),
        LogicalPlan::Filter(f) => at_most_one_row(&f.input),
        LogicalPlan::Sort(s) if s.fetch.is_none() => at_most_one_row(&s.input),
        LogicalPlan::Distinct(Distinct::All(input)) => at_most_one_row(input),
        _ => false,
    }
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
