//! Lowering DataFusion's optimised `LogicalPlan` to the plan that standing
//! views run in differential dataflow.
//!
//! DataFusion parses, resolves and optimises the SQL; this module walks the
//! resulting plan and keeps only what can be maintained incrementally:
//! projection and filter (one [`Plan::Map`], whose expressions are DataFusion
//! `PhysicalExpr`s evaluated over Arrow batches), inner/left/semi/anti
//! equi-joins with residual predicates, GROUP BY with DataFusion's own
//! aggregate functions, DISTINCT and UNION ALL. Everything else is refused
//! here, when the view is created, with an error that names the construct
//! and where it stands in the SQL.
//!
//! Every node knows the Arrow schema of its rows; expressions refer to the
//! columns of their input by index, so aliases and qualifiers play no part
//! once a plan is lowered.

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Distinct, Expr, ExprSchemable, JoinType, LogicalPlan};
use datafusion::physical_expr::aggregate::{AggregateExprBuilder, AggregateFunctionExpr};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{PhysicalExpr, create_physical_expr};

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
}

impl Plan {
    pub fn schema(&self) -> SchemaRef {
        match self {
            Plan::Scan { schema, .. }
            | Plan::Map { schema, .. }
            | Plan::Join { schema, .. }
            | Plan::Aggregate { schema, .. }
            | Plan::Union { schema, .. } => Arc::clone(schema),
            Plan::Distinct { input } => input.schema(),
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
            Plan::Map { input, .. } | Plan::Aggregate { input, .. } | Plan::Distinct { input } => input.tables(into),
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
                let input = self.plan(&f.input)?;
                let schema = input.schema();
                Ok(Plan::Map {
                    filter: Some(self.expr(&f.predicate, f.input.schema())?),
                    exprs: identity(&schema),
                    input: Box::new(input),
                    schema,
                })
            }
            LogicalPlan::SubqueryAlias(a) => self.plan(&a.input),
            LogicalPlan::Sort(s) if s.fetch.is_none() => self.plan(&s.input),
            LogicalPlan::Sort(_) | LogicalPlan::Limit(_) => Err(self.refuse(
                "LIMIT (a top-k; use ROW_NUMBER() over a partition when window functions land)",
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
            LogicalPlan::Window(_) => Err(self.refuse("window functions (OVER …)", &["OVER"])),
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
        if j.on.is_empty() {
            return Err(self.refuse("joins without an equality between the two sides (cross joins)", &["JOIN", ","]));
        }
        let (left_schema, right_schema) = (j.left.schema(), j.right.schema());
        let left_keys: Vec<_> = j.on.iter().map(|(l, _)| self.expr(l, left_schema)).collect::<Result<_, _>>()?;
        let right_keys: Vec<_> = j.on.iter().map(|(_, r)| self.expr(r, right_schema)).collect::<Result<_, _>>()?;
        let key_fields: Vec<_> = j
            .on
            .iter()
            .enumerate()
            .map(|(i, (l, _))| {
                let data_type = l.get_type(left_schema).map_err(plan_error)?;
                Ok(arrow::datatypes::Field::new(format!("k{i}"), data_type, true))
            })
            .collect::<Result<_, LowerError>>()?;
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
            joined_schema,
            schema,
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
            if !params.order_by.is_empty() {
                return Err(self.refuse("ordered aggregates (… ORDER BY inside an aggregate)", &["ORDER BY"]));
            }
            let physical_args = self.exprs(&params.args, input_schema)?;
            let mut indices = Vec::new();
            let mut columns = Vec::new();
            for (arg, physical) in params.args.iter().zip(&physical_args) {
                let data_type = arg.get_type(input_schema).map_err(plan_error)?;
                indices.push(arguments.len());
                columns.push(Arc::new(Column::new(&format!("a{}", arguments.len()), columns.len())) as Arc<dyn PhysicalExpr>);
                argument_fields.push(arrow::datatypes::Field::new(format!("a{}", arguments.len()), data_type, true));
                arguments.push(Arc::clone(physical));
            }
            // The accumulator sees only this aggregate's argument columns, in order.
            let own_schema = Arc::new(Schema::new(
                indices.iter().map(|&k| argument_fields[k].clone()).collect::<Vec<_>>(),
            ));
            let name = a.schema.field(a.group_expr.len() + i).name().clone();
            let built = AggregateExprBuilder::new(Arc::clone(func), columns)
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
