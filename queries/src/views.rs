//! Standing views: SQL planned by DataFusion, lowered, and kept up to date by
//! differential dataflow as input tables change.
//!
//! [`StandingViews`] drives timely worker threads (see the `workers`
//! module): tables are registered with their Arrow schemas; `create_view`
//! plans the SQL (refusing what cannot be maintained) and builds the view's
//! dataflow over the tables' shared arrangements, so it starts from their
//! current contents; `insert` and `retract` change tables; `commit_at`
//! applies the changes at a time and runs every view to it. Each view keeps
//! its changelog (rows with `_diff` and `_time`) and its current contents,
//! pushes each commit's changes to subscribers, and can publish its snapshot
//! as a DataFusion table. `batch_answer` is the oracle: DataFusion's batch
//! result for the view's SQL over the current tables, at the same `now()`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use arrow::array::{ArrayRef, Int64Array, RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::MemTable;
use datafusion::catalog::view::ViewTable;
use datafusion::logical_expr::{
    ColumnarValue, DdlStatement, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use borderflow_types::ExchangeKeys;

use crate::plan::{LowerError, Plan, lower};
use crate::render::errors::ViewErrors;
use crate::row::{Row, RowCodec};
use crate::workers::Workers;
use borderflow_runtime::Runtime;

/// Why a view could not be created or a change not applied.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("view `{view}`: {source}")]
    Refused { view: String, source: LowerError },
    #[error("view `{view}`: {message}")]
    Sql { view: String, message: String },
    #[error("unknown table `{0}`")]
    UnknownTable(String),
    #[error("unknown view `{0}`")]
    UnknownView(String),
    #[error("view `{0}` already exists")]
    Exists(String),
    #[error("table `{table}`: {message}")]
    Data { table: String, message: String },
    #[error("dataflow: {0}")]
    Dataflow(String),
}

struct Table {
    codec: RowCodec,
    /// Current contents: row → multiplicity.
    rows: BTreeMap<Row, isize>,
}

struct View {
    codec: RowCodec,
    contents: BTreeMap<Row, isize>,
    changelog: Vec<(Row, u64, isize)>,
    sql: String,
    /// Receivers of each commit's changes.
    subscribers: Vec<Sender<RecordBatch>>,
    /// The snapshot as a DataFusion table, once asked for; refreshed on commit.
    published: Option<Arc<MemTable>>,
    /// Rows the view's operators could not evaluate.
    errors: Arc<ViewErrors>,
}

/// Tables and the standing views over them, run by timely workers.
///
/// Time is a `u64`, milliseconds since the epoch when views use `now()`:
/// changes made between commits happen at the time the next commit names,
/// and after it every view shows its contents at that time.
pub struct StandingViews {
    workers: Workers,
    ctx: SessionContext,
    /// Keys for `plate_hmac` (see [`crate::udf`]).
    keys: Arc<ExchangeKeys>,
    tables: BTreeMap<String, Table>,
    views: BTreeMap<String, View>,
    /// View names in creation order (a view may select from earlier ones).
    order: Vec<String>,
    /// The last committed time (0: nothing committed yet).
    time: u64,
    /// Changes since the last commit, per table.
    pending: BTreeMap<String, Vec<(Row, isize)>>,
    /// Whether views keep their changelogs in memory.
    keep_changelogs: bool,
    /// Whether tables keep a copy of their contents here (for retractions,
    /// upserts and batch answers).
    keep_table_contents: bool,
}

/// `now()` for planning standing views: volatile, so DataFusion's optimizer
/// leaves it in the plan (instead of folding it to the planning instant) and
/// lowering can turn `now()` conditions into temporal filters.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ViewNow {
    signature: Signature,
    aliases: Vec<String>,
}

impl ScalarUDFImpl for ViewNow {
    fn name(&self) -> &str {
        "now"
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, Some("+00:00".into())))
    }
    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        // Lowering never evaluates it: a `now()` it cannot turn into a
        // temporal filter is refused.
        Ok(ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(None, Some("+00:00".into()))))
    }
}

impl Default for StandingViews {
    fn default() -> Self {
        Self::new()
    }
}

impl StandingViews {
    /// No tables, no views, one worker.
    pub fn new() -> Self {
        Self::with_workers(1).expect("one timely worker starts")
    }

    /// No tables, no views, on a runtime of its own with `workers` timely
    /// worker threads.
    pub fn with_workers(workers: usize) -> Result<Self, ViewError> {
        Self::on(&Runtime::with_workers(workers))
    }

    /// No tables, no views; the views' dataflows run on `runtime`'s workers,
    /// beside the process's other dataflows.
    pub fn on(runtime: &Runtime) -> Result<Self, ViewError> {
        let ctx = SessionContext::new();
        ctx.register_udf(ScalarUDF::new_from_impl(ViewNow {
            signature: Signature::nullary(Volatility::Volatile),
            aliases: vec!["current_timestamp".to_string()],
        }));
        let keys = Arc::new(ExchangeKeys::default());
        crate::udf::register(&ctx, Arc::clone(&keys));
        Ok(StandingViews {
            workers: Workers::start(runtime).map_err(ViewError::Dataflow)?,
            ctx,
            keys,
            tables: BTreeMap::new(),
            views: BTreeMap::new(),
            order: Vec::new(),
            time: 0,
            pending: BTreeMap::new(),
            keep_changelogs: true,
            keep_table_contents: true,
        })
    }

    /// Whether each view keeps its whole changelog in memory for
    /// [`changes`](Self::changes) (the default). A long-running engine, whose
    /// changes leave through subscribers, turns it off so that its memory
    /// holds the views' contents, not their history.
    pub fn keep_changelogs(&mut self, keep: bool) {
        self.keep_changelogs = keep;
        if !keep {
            for view in self.views.values_mut() {
                view.changelog = Vec::new();
            }
        }
    }

    /// Whether tables keep a copy of their rows beside the dataflow (the
    /// default), which retractions, upserts, [`table`](Self::table) and the
    /// batch answers need. A backfill that only inserts (`borderflow replay`)
    /// turns it off: a million rows cost their copy's memory and a B-tree
    /// insertion each. Without it, retracting and reading a table are refused.
    pub fn keep_table_contents(&mut self, keep: bool) {
        self.keep_table_contents = keep;
        if !keep {
            for table in self.tables.values_mut() {
                table.rows = BTreeMap::new();
            }
        }
    }

    /// The exchange keys `plate_hmac` hashes with, in views created from now
    /// on and in batch queries.
    pub fn set_exchange_keys(&mut self, keys: ExchangeKeys) {
        self.keys = Arc::new(keys);
        crate::udf::register(&self.ctx, Arc::clone(&self.keys));
    }

    /// How many timely workers run the views.
    pub fn workers(&self) -> usize {
        self.workers.count()
    }

    /// Registers an input table (planning sees it; its contents live here).
    pub fn register_table(&mut self, name: &str, schema: SchemaRef) -> Result<(), ViewError> {
        let data = |e: &dyn std::fmt::Display| ViewError::Data { table: name.to_string(), message: e.to_string() };
        if self.tables.contains_key(name) {
            return Err(data(&"the table is already registered"));
        }
        if self.views.contains_key(name) {
            return Err(data(&"a view has this name"));
        }
        let provider = MemTable::try_new(Arc::clone(&schema), vec![vec![]]).map_err(|e| data(&e))?;
        self.ctx.register_table(name, Arc::new(provider)).map_err(|e| data(&e))?;
        self.workers.table(name).map_err(ViewError::Dataflow)?;
        self.tables.insert(name.to_string(), Table { codec: RowCodec::new(schema).map_err(|e| data(&e))?, rows: BTreeMap::new() });
        Ok(())
    }

    /// The DataFusion session that plans views (tables are registered empty).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Plans `sql` (a query, or `CREATE VIEW name AS query`), refuses it if it
    /// cannot be maintained, and starts maintaining it over the current
    /// tables. The view is filled by a commit at the current time.
    pub async fn create_view(&mut self, name: &str, sql: &str) -> Result<SchemaRef, ViewError> {
        if self.views.contains_key(name) {
            return Err(ViewError::Exists(name.to_string()));
        }
        let sql_error = |e: datafusion::error::DataFusionError| ViewError::Sql { view: name.to_string(), message: e.to_string() };
        if self.tables.contains_key(name) {
            return Err(ViewError::Sql { view: name.to_string(), message: "a table has this name".into() });
        }
        let state = self.ctx.state();
        let mut plan = state.create_logical_plan(sql).await.map_err(sql_error)?;
        if let LogicalPlan::Ddl(DdlStatement::CreateView(create)) = &plan {
            plan = create.input.as_ref().clone();
        }
        // An uncorrelated scalar subquery becomes a LEFT join with its one
        // row, which lowering maintains, rather than a value the physical
        // plan computes once (`ScalarSubqueryExec`); batch answers keep
        // DataFusion's default. Where DataFusion fails to rewrite it so (its
        // column named like one of the outer query's, in HAVING), the plan
        // keeps the subquery and lowering refuses it.
        let mut joining = self.ctx.state();
        joining.config_mut().options_mut().optimizer.enable_physical_uncorrelated_scalar_subquery = false;
        let optimized = joining.optimize(&plan).or_else(|_| state.optimize(&plan)).map_err(sql_error)?;
        let lowered = lower(&optimized, sql).map_err(|source| ViewError::Refused { view: name.to_string(), source })?;
        let schema = self.build(name, sql, lowered)?;
        // Later views may select from this one: to DataFusion it is a table
        // (so their plans scan it rather than inline its query), and their
        // dataflows import its arranged rows rather than compute them again.
        let table = MemTable::try_new(Arc::clone(&schema), vec![vec![]]).map_err(sql_error)?;
        self.ctx.register_table(name, Arc::new(table)).map_err(sql_error)?;
        Ok(schema)
    }

    fn build(&mut self, name: &str, sql: &str, plan: Plan) -> Result<SchemaRef, ViewError> {
        let schema = plan.schema();
        let codec = RowCodec::new(Arc::clone(&schema)).map_err(|e| ViewError::Sql { view: name.to_string(), message: e.to_string() })?;
        let errors = ViewErrors::new(name);
        self.workers.view(name, &plan, &errors).map_err(|message| ViewError::Sql { view: name.to_string(), message })?;
        self.views.insert(
            name.to_string(),
            View {
                codec,
                contents: BTreeMap::new(),
                changelog: Vec::new(),
                sql: sql.to_string(),
                subscribers: Vec::new(),
                published: None,
                errors,
            },
        );
        self.order.push(name.to_string());
        self.commit();
        Ok(schema)
    }

    fn change(&mut self, table: &str, batch: &RecordBatch, sign: isize) -> Result<usize, ViewError> {
        let data = |e: &dyn std::fmt::Display| ViewError::Data { table: table.to_string(), message: e.to_string() };
        let entry = self.tables.get_mut(table).ok_or_else(|| ViewError::UnknownTable(table.to_string()))?;
        if batch.schema().fields() != entry.codec.schema().fields() {
            return Err(data(&format!("batch schema {:?} differs from the table's", batch.schema())));
        }
        let rows = entry.codec.encode(batch.columns(), batch.num_rows()).map_err(|e| data(&e))?;
        if sign < 0 && !self.keep_table_contents {
            return Err(data(&"retracting from a table whose contents are not kept here (keep_table_contents is off)"));
        }
        if sign < 0 {
            // Retracting a row that is not there would corrupt every view.
            let mut needed: BTreeMap<&Row, isize> = BTreeMap::new();
            for row in &rows {
                *needed.entry(row).or_default() += 1;
            }
            for (row, n) in needed {
                if entry.rows.get(row).copied().unwrap_or(0) < n {
                    return Err(data(&"retracting a row the table does not hold"));
                }
            }
        }
        if self.keep_table_contents {
            for row in &rows {
                let count = entry.rows.entry(row.clone()).or_default();
                *count += sign;
                if *count == 0 {
                    entry.rows.remove(row);
                }
            }
        }
        let count = rows.len();
        self.pending.entry(table.to_string()).or_default().extend(rows.into_iter().map(|r| (r, sign)));
        Ok(count)
    }

    /// Adds the batch's rows to `table` (visible to views at the next commit).
    pub fn insert(&mut self, table: &str, batch: &RecordBatch) -> Result<usize, ViewError> {
        self.change(table, batch, 1)
    }

    /// Removes the batch's rows from `table`; every row must be there.
    pub fn retract(&mut self, table: &str, batch: &RecordBatch) -> Result<usize, ViewError> {
        self.change(table, batch, -1)
    }

    /// Replaces the rows of `table` whose `key` columns equal those of a row
    /// of `batch` by `batch`'s rows (a watchlist entry updated in place, say),
    /// visible at the next commit. Returns the rows retracted and inserted.
    pub fn upsert(&mut self, table: &str, key: &[&str], batch: &RecordBatch) -> Result<(usize, usize), ViewError> {
        let data = |e: &dyn std::fmt::Display| ViewError::Data { table: table.to_string(), message: e.to_string() };
        let current = self.table(table)?;
        let key_columns = |b: &RecordBatch| -> Result<Vec<ArrayRef>, ViewError> {
            key.iter().map(|k| b.column_by_name(k).cloned().ok_or_else(|| data(&format!("no column `{k}`")))).collect()
        };
        let (old_keys, new_keys) = (key_columns(&current)?, key_columns(batch)?);
        let converter = arrow::row::RowConverter::new(
            old_keys.iter().map(|c| arrow::row::SortField::new(c.data_type().clone())).collect(),
        )
        .map_err(|e| data(&e))?;
        let (old_rows, new_rows) =
            (converter.convert_columns(&old_keys).map_err(|e| data(&e))?, converter.convert_columns(&new_keys).map_err(|e| data(&e))?);
        let replaced: std::collections::HashSet<_> = new_rows.iter().collect();
        let mask: arrow::array::BooleanArray = old_rows.iter().map(|r| Some(replaced.contains(&r))).collect();
        let stale = arrow::compute::filter_record_batch(&current, &mask).map_err(|e| data(&e))?;
        let retracted = self.retract(table, &stale)?;
        let inserted = self.insert(table, batch)?;
        Ok((retracted, inserted))
    }

    /// Commits at the next time (one after the last): see [`commit_at`](Self::commit_at).
    pub fn commit(&mut self) -> u64 {
        self.commit_at(self.time + 1)
    }

    /// The changes since the last commit happen at `now` (at least one
    /// after the last committed time), and every view catches up to `now`:
    /// rows that temporal filters admit or expire by then enter or leave.
    /// Returns the committed time.
    pub fn commit_at(&mut self, now: u64) -> u64 {
        let at = now.max(self.time + 1);
        let updates = std::mem::take(&mut self.pending);
        let changes = match self.workers.commit(at, updates) {
            Ok(changes) => changes,
            Err(error) => {
                tracing::error!(%error, "the dataflow workers stopped; views no longer change");
                Vec::new()
            }
        };
        self.time = at;
        for (name, mut rows) in changes {
            let Some(view) = self.views.get_mut(&name) else { continue };
            rows.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
            for (row, _, diff) in &rows {
                let count = view.contents.entry(row.clone()).or_default();
                *count += diff;
                if *count == 0 {
                    view.contents.remove(row);
                }
            }
            if rows.is_empty() {
                continue;
            }
            if !view.subscribers.is_empty() {
                match changes_batch(&view.codec, &rows) {
                    Ok(batch) => view.subscribers.retain(|s| s.send(batch.clone()).is_ok()),
                    Err(error) => tracing::error!(view = %name, %error, "changes not delivered to subscribers"),
                }
            }
            if let Some(table) = &view.published {
                publish(&name, view, table);
            }
            if self.keep_changelogs {
                view.changelog.extend(rows);
            }
        }
        at
    }

    /// The last committed time: what `now()` is in the views' contents.
    pub fn now(&self) -> u64 {
        self.time
    }

    fn view(&self, name: &str) -> Result<&View, ViewError> {
        self.views.get(name).ok_or_else(|| ViewError::UnknownView(name.to_string()))
    }

    /// The names of the views.
    /// How many rows (or groups, or partitions) of view `name` failed to
    /// evaluate and were left out of it, each logged; its other rows are
    /// unaffected.
    pub fn errors(&self, name: &str) -> Result<u64, ViewError> {
        Ok(self.view(name)?.errors.count())
    }

    pub fn view_names(&self) -> Vec<String> {
        self.views.keys().cloned().collect()
    }

    /// Every later commit's changes to the view, as batches of its columns
    /// plus `_diff` and `_time` (commits that change nothing send nothing).
    pub fn subscribe(&mut self, name: &str) -> Result<Receiver<RecordBatch>, ViewError> {
        let view = self.views.get_mut(name).ok_or_else(|| ViewError::UnknownView(name.to_string()))?;
        let (sender, receiver) = channel();
        view.subscribers.push(sender);
        Ok(receiver)
    }

    /// The view's snapshot as a DataFusion table that follows the view: each
    /// commit replaces its contents. Register it in any session (history's,
    /// say) to join the view with other tables in ad-hoc SQL.
    pub fn snapshot_table(&mut self, name: &str) -> Result<Arc<MemTable>, ViewError> {
        let view = self.views.get_mut(name).ok_or_else(|| ViewError::UnknownView(name.to_string()))?;
        if let Some(table) = &view.published {
            return Ok(Arc::clone(table));
        }
        let table = Arc::new(
            MemTable::try_new(Arc::clone(view.codec.schema()), vec![vec![]])
                .map_err(|e| ViewError::Sql { view: name.to_string(), message: e.to_string() })?,
        );
        publish(name, view, &table);
        view.published = Some(Arc::clone(&table));
        Ok(table)
    }

    /// Registers every view's snapshot table (see
    /// [`snapshot_table`](Self::snapshot_table)) in `ctx`, under the view's name.
    pub fn register_snapshots(&mut self, ctx: &SessionContext) -> Result<(), ViewError> {
        for name in self.view_names() {
            let table = self.snapshot_table(&name)?;
            ctx.deregister_table(name.as_str()).map_err(|e| ViewError::Sql { view: name.clone(), message: e.to_string() })?;
            ctx.register_table(name.as_str(), table).map_err(|e| ViewError::Sql { view: name.clone(), message: e.to_string() })?;
        }
        Ok(())
    }

    /// Runs ad-hoc SQL in batch over the tables' current contents and the
    /// views' snapshots (by their names), with `now()` at the last commit.
    pub async fn query(&mut self, sql: &str) -> Result<RecordBatch, ViewError> {
        let error = |e: &dyn std::fmt::Display| ViewError::Sql { view: "(query)".to_string(), message: e.to_string() };
        let ctx = self.batch_context(sql).await.map_err(|e| error(&e))?;
        self.register_snapshots(&ctx)?;
        self.run_batch(&ctx, sql).await.map_err(|e| error(&e))
    }

    /// A session over the tables' current contents, with the plate
    /// functions, in which every view `sql` selects from (directly or
    /// through other views) is a DataFusion view, planned anew, in batch,
    /// from its SQL.
    async fn batch_context(&self, sql: &str) -> datafusion::error::Result<SessionContext> {
        let ctx = SessionContext::new_with_config(crate::history::analyst_session_config());
        crate::udf::register(&ctx, Arc::clone(&self.keys));
        for name in self.tables.keys() {
            let batch = self.table(name).map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
            let provider = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
            ctx.register_table(name.as_str(), Arc::new(provider))?;
        }
        // A view can select only from views created before it: walking back
        // from the newest finds every view that `sql` needs. Planning all of
        // them for every batch answer would cost as many plans as views.
        let mut needed = vec![sql];
        let mut used = std::collections::BTreeSet::new();
        for name in self.order.iter().rev() {
            if needed.iter().any(|sql| mentions(sql, name)) {
                used.insert(name.as_str());
                needed.push(&self.views[name].sql);
            }
        }
        for name in self.order.iter().filter(|n| used.contains(n.as_str())) {
            let sql = &self.views[name].sql;
            let mut plan = ctx.state().create_logical_plan(sql).await?;
            if let LogicalPlan::Ddl(DdlStatement::CreateView(create)) = &plan {
                plan = create.input.as_ref().clone();
            }
            ctx.register_table(name.as_str(), Arc::new(ViewTable::new(plan, Some(sql.clone()))))?;
        }
        Ok(ctx)
    }

    /// Plans and runs `sql` in `ctx` with `now()` at the last commit.
    async fn run_batch(&self, ctx: &SessionContext, sql: &str) -> datafusion::error::Result<RecordBatch> {
        let mut state = ctx.state();
        state.execution_props_mut().query_execution_start_time =
            chrono::DateTime::from_timestamp_millis(self.time as i64);
        let mut plan = state.create_logical_plan(sql).await?;
        if let LogicalPlan::Ddl(DdlStatement::CreateView(create)) = &plan {
            plan = create.input.as_ref().clone();
        }
        let planned = Arc::new(plan.schema().as_arrow().clone());
        let batches = DataFrame::new(state, plan).collect().await?;
        // The physical plan may choose other string types (Utf8View) than the logical one.
        let schema = batches.first().map_or(planned, |b| b.schema());
        Ok(arrow::compute::concat_batches(&schema, &batches)?)
    }

    /// The view's current contents (a row appears as often as its multiplicity).
    pub fn snapshot(&self, name: &str) -> Result<RecordBatch, ViewError> {
        let view = self.view(name)?;
        let rows = view.contents.iter().flat_map(|(row, n)| std::iter::repeat_n(row, (*n).max(0) as usize));
        view.codec.decode(rows).map_err(|e| ViewError::Sql { view: name.to_string(), message: e.to_string() })
    }

    /// The view's changelog so far: its columns plus `_diff` and `_time`
    /// (refused where changelogs are not kept: see
    /// [`keep_changelogs`](Self::keep_changelogs)).
    pub fn changes(&self, name: &str) -> Result<RecordBatch, ViewError> {
        let view = self.view(name)?;
        if !self.keep_changelogs {
            return Err(ViewError::Dataflow(format!("view `{name}`: changelogs are not kept in memory here; subscribe to the view")));
        }
        changes_batch(&view.codec, &view.changelog).map_err(|e| ViewError::Sql { view: name.to_string(), message: e.to_string() })
    }

    /// The SQL a view was created from.
    pub fn sql(&self, name: &str) -> Result<&str, ViewError> {
        Ok(&self.view(name)?.sql)
    }

    /// A table's current contents.
    pub fn table(&self, name: &str) -> Result<RecordBatch, ViewError> {
        let table = self.tables.get(name).ok_or_else(|| ViewError::UnknownTable(name.to_string()))?;
        if !self.keep_table_contents {
            return Err(ViewError::Data { table: name.to_string(), message: "the table's contents are not kept here (keep_table_contents is off)".into() });
        }
        let rows = table.rows.iter().flat_map(|(row, n)| std::iter::repeat_n(row, (*n).max(0) as usize));
        table.codec.decode(rows).map_err(|e| ViewError::Data { table: name.to_string(), message: e.to_string() })
    }

    /// What DataFusion computes in batch for the view's SQL over the current
    /// tables, with `now()` at the last commit: the oracle the incremental
    /// result must equal.
    pub async fn batch_answer(&self, name: &str) -> Result<RecordBatch, ViewError> {
        let view = self.view(name)?;
        let sql_error = |e: &dyn std::fmt::Display| ViewError::Sql { view: name.to_string(), message: e.to_string() };
        let ctx = self.batch_context(&view.sql).await.map_err(|e| sql_error(&e))?;
        let batch = self.run_batch(&ctx, &view.sql).await.map_err(|e| sql_error(&e))?;
        // The view's schema names the columns; DataFusion's batch plan may
        // differ in nullability, and in string representation (Utf8View
        // where the view's plan has Utf8).
        crate::row::cast_to_schema(&batch, Arc::clone(view.codec.schema())).map_err(|e| sql_error(&e))
    }

    /// What DataFusion computes in batch for the view's SQL over the current
    /// tables and the current contents of the views it selects from (as
    /// tables: their queries are not run again), with `now()` at the last
    /// commit. One step of the oracle: when every view equals this answer,
    /// each also equals its full [`batch_answer`](Self::batch_answer), by
    /// induction over the views it selects from, and checking all of them
    /// runs each view's query once instead of once per view that uses it.
    pub async fn batch_step_answer(&self, name: &str) -> Result<RecordBatch, ViewError> {
        let view = self.view(name)?;
        let sql_error = |e: &dyn std::fmt::Display| ViewError::Sql { view: name.to_string(), message: e.to_string() };
        let ctx = SessionContext::new();
        crate::udf::register(&ctx, Arc::clone(&self.keys));
        let register = |table: &str, batch: RecordBatch| -> datafusion::error::Result<()> {
            let provider = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
            ctx.register_table(table, Arc::new(provider)).map(|_| ())
        };
        // Only the tables the query names: decoding a large table it does
        // not read (the hashed keys, say) would cost more than the query.
        for table in self.tables.keys().filter(|t| mentions(&view.sql, t)) {
            register(table, self.table(table)?).map_err(|e| sql_error(&e))?;
        }
        for other in self.order.iter().filter(|o| o.as_str() != name && mentions(&view.sql, o)) {
            register(other, self.snapshot(other)?).map_err(|e| sql_error(&e))?;
        }
        let batch = self.run_batch(&ctx, &view.sql).await.map_err(|e| sql_error(&e))?;
        crate::row::cast_to_schema(&batch, Arc::clone(view.codec.schema())).map_err(|e| sql_error(&e))
    }
}

/// Whether `sql` names `name` as a whole word (case-insensitively): a
/// superset of the tables and views it selects from.
fn mentions(sql: &str, name: &str) -> bool {
    let (sql, name) = (sql.to_ascii_lowercase(), name.to_ascii_lowercase());
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    sql.match_indices(&name).any(|(at, _)| !word(sql[..at].chars().next_back()) && !word(sql[at + name.len()..].chars().next()))
}

/// Rows with their times and diffs as a batch: the view's columns plus
/// `_diff` and `_time`.
fn changes_batch(codec: &RowCodec, rows: &[(Row, u64, isize)]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let data = codec.decode(rows.iter().map(|(r, _, _)| r))?;
    let mut fields: Vec<Field> = data.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("_diff", DataType::Int64, false));
    fields.push(Field::new("_time", DataType::UInt64, false));
    let mut columns: Vec<ArrayRef> = data.columns().to_vec();
    columns.push(Arc::new(Int64Array::from_iter_values(rows.iter().map(|(_, _, d)| *d as i64))));
    columns.push(Arc::new(UInt64Array::from_iter_values(rows.iter().map(|(_, t, _)| *t))));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// Replaces the published snapshot table's contents with the view's.
fn publish(name: &str, view: &View, table: &MemTable) {
    let rows = view.contents.iter().flat_map(|(row, n)| std::iter::repeat_n(row, (*n).max(0) as usize));
    match view.codec.decode(rows) {
        Ok(batch) => match table.batches.first().map(|p| p.try_write()) {
            Some(Ok(mut partition)) => *partition = vec![batch],
            _ => tracing::warn!(view = %name, "snapshot table busy; it keeps the previous snapshot"),
        },
        Err(error) => tracing::error!(view = %name, %error, "snapshot not published"),
    }
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn a_view_is_mentioned_as_a_whole_word_only() {
        assert!(mentions("SELECT * FROM dwell_times WHERE x", "dwell_times"));
        assert!(mentions("select * from \"Dwell_Times\"", "dwell_times"));
        assert!(mentions("JOIN dwell_times\n", "dwell_times"));
        assert!(!mentions("SELECT * FROM dwell_times_by_hour", "dwell_times"));
        assert!(!mentions("SELECT * FROM my_dwell_times", "dwell_times"));
        assert!(!mentions("SELECT 1", "dwell_times"));
    }
}
