//! Standing views: SQL planned by DataFusion, lowered, and kept up to date by
//! differential dataflow as input tables change.
//!
//! [`StandingViews`] drives one timely worker inside the caller's thread:
//! tables are registered with their Arrow schemas; `create_view` plans the SQL
//! (refusing what cannot be maintained), builds the view's dataflow and feeds
//! it the tables' current contents; `insert` and `retract` change tables;
//! `commit` advances time and runs every view to that time. Each view keeps
//! its changelog (rows with `_diff` and `_time`) and its current contents.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::prelude::SessionContext;
use differential_dataflow::input::{Input, InputSession};
use timely::communication::Allocator;
use timely::dataflow::operators::probe::Handle;
use timely::worker::Worker;

use crate::lower::{LowerError, Plan, lower};
use crate::render::{Inputs, Rows, render};
use crate::row::{Row, RowCodec};

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
}

struct Table {
    codec: RowCodec,
    /// Current contents: row → multiplicity.
    rows: BTreeMap<Row, isize>,
}

struct View {
    codec: RowCodec,
    inputs: BTreeMap<String, InputSession<u64, Row, isize>>,
    /// Changes the dataflow produced and the view has not absorbed yet.
    pending: Rc<RefCell<Vec<(Row, u64, isize)>>>,
    probe: Handle<u64>,
    contents: BTreeMap<Row, isize>,
    changelog: Vec<(Row, u64, isize)>,
    sql: String,
}

/// Tables and the standing views over them, on one in-thread timely worker.
pub struct StandingViews {
    worker: Worker,
    ctx: SessionContext,
    tables: BTreeMap<String, Table>,
    views: BTreeMap<String, View>,
    time: u64,
}

struct ScopeInputs<'scope> {
    tables: BTreeMap<String, Rows<'scope>>,
    unit: Rows<'scope>,
}

impl<'scope> Inputs<'scope> for ScopeInputs<'scope> {
    fn table(&self, name: &str) -> Rows<'scope> {
        self.tables[name].clone()
    }
    fn unit(&self) -> Rows<'scope> {
        self.unit.clone()
    }
}

impl Default for StandingViews {
    fn default() -> Self {
        Self::new()
    }
}

impl StandingViews {
    /// No tables, no views; the first commit closes time 1.
    pub fn new() -> Self {
        let allocator = Allocator::Thread(timely::communication::allocator::thread::Thread::default());
        let worker = Worker::new(timely::WorkerConfig::default(), allocator, Some(std::time::Instant::now()));
        StandingViews { worker, ctx: SessionContext::new(), tables: BTreeMap::new(), views: BTreeMap::new(), time: 1 }
    }

    /// Registers an input table (planning sees it; its contents live here).
    pub fn register_table(&mut self, name: &str, schema: SchemaRef) -> Result<(), ViewError> {
        let data = |e: &dyn std::fmt::Display| ViewError::Data { table: name.to_string(), message: e.to_string() };
        let provider = MemTable::try_new(Arc::clone(&schema), vec![vec![]]).map_err(|e| data(&e))?;
        self.ctx.deregister_table(name).map_err(|e| data(&e))?;
        self.ctx.register_table(name, Arc::new(provider)).map_err(|e| data(&e))?;
        self.tables.insert(name.to_string(), Table { codec: RowCodec::new(schema).map_err(|e| data(&e))?, rows: BTreeMap::new() });
        Ok(())
    }

    /// The DataFusion session that plans views (tables are registered empty).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Plans `sql` (a query, or `CREATE VIEW name AS query`), refuses it if it
    /// cannot be maintained, and starts maintaining it over the current tables.
    pub async fn create_view(&mut self, name: &str, sql: &str) -> Result<SchemaRef, ViewError> {
        if self.views.contains_key(name) {
            return Err(ViewError::Exists(name.to_string()));
        }
        let sql_error = |e: datafusion::error::DataFusionError| ViewError::Sql { view: name.to_string(), message: e.to_string() };
        let state = self.ctx.state();
        let mut plan = state.create_logical_plan(sql).await.map_err(sql_error)?;
        if let LogicalPlan::Ddl(DdlStatement::CreateView(create)) = &plan {
            plan = create.input.as_ref().clone();
        }
        let plan = state.optimize(&plan).map_err(sql_error)?;
        let lowered = lower(&plan, sql).map_err(|source| ViewError::Refused { view: name.to_string(), source })?;
        self.build(name, sql, lowered)
    }

    fn build(&mut self, name: &str, sql: &str, plan: Plan) -> Result<SchemaRef, ViewError> {
        let schema = plan.schema();
        let mut tables = Vec::new();
        plan.tables(&mut tables);
        let pending = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&pending);
        let probe = Handle::new();
        let probe_in = probe.clone();
        let built = self.worker.dataflow::<u64, _, _>(move |scope| {
            let mut sessions = BTreeMap::new();
            let mut collections = BTreeMap::new();
            for table in &tables {
                let (session, collection) = scope.new_collection::<Row, isize>();
                sessions.insert(table.clone(), session);
                collections.insert(table.clone(), collection);
            }
            let (mut unit_session, unit) = scope.new_collection::<Row, isize>();
            unit_session.insert(Row::default());
            let inputs = ScopeInputs { tables: collections, unit };
            let rendered = render(&plan, &inputs).map(|rows| {
                rows.consolidate()
                    .inspect(move |(row, time, diff)| sink.borrow_mut().push((row.clone(), *time, *diff)))
                    .probe_with(&probe_in);
            });
            rendered.map(|()| sessions)
        });
        let mut inputs = built.map_err(|e| ViewError::Sql { view: name.to_string(), message: e.to_string() })?;
        for (table, session) in inputs.iter_mut() {
            let contents = self.tables.get(table).ok_or_else(|| ViewError::UnknownTable(table.clone()))?;
            session.advance_to(self.time);
            for (row, count) in &contents.rows {
                session.update(row.clone(), *count);
            }
        }
        let codec = RowCodec::new(Arc::clone(&schema)).map_err(|e| ViewError::Sql { view: name.to_string(), message: e.to_string() })?;
        self.views.insert(
            name.to_string(),
            View { codec, inputs, pending, probe, contents: BTreeMap::new(), changelog: Vec::new(), sql: sql.to_string() },
        );
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
        for row in &rows {
            let count = entry.rows.entry(row.clone()).or_default();
            *count += sign;
            if *count == 0 {
                entry.rows.remove(row);
            }
        }
        for view in self.views.values_mut() {
            if let Some(session) = view.inputs.get_mut(table) {
                for row in &rows {
                    session.update(row.clone(), sign);
                }
            }
        }
        Ok(rows.len())
    }

    /// Adds the batch's rows to `table` (visible to views at the next commit).
    pub fn insert(&mut self, table: &str, batch: &RecordBatch) -> Result<usize, ViewError> {
        self.change(table, batch, 1)
    }

    /// Removes the batch's rows from `table`; every row must be there.
    pub fn retract(&mut self, table: &str, batch: &RecordBatch) -> Result<usize, ViewError> {
        self.change(table, batch, -1)
    }

    /// Closes the current time: every view catches up with all changes so far.
    /// Returns the time that was closed; the next one is one later.
    pub fn commit(&mut self) -> u64 {
        self.commit_to(self.time + 1)
    }

    /// Like [`commit`](Self::commit), with the next time given (ingestion
    /// time in milliseconds, say); times only move forward.
    pub fn commit_to(&mut self, next: u64) -> u64 {
        let closed = self.time;
        self.time = next.max(closed + 1);
        for view in self.views.values_mut() {
            for session in view.inputs.values_mut() {
                session.advance_to(self.time);
                session.flush();
            }
        }
        let time = self.time;
        let views = &self.views;
        self.worker.step_while(|| views.values().any(|v| v.probe.less_than(&time)));
        for view in self.views.values_mut() {
            for (row, t, diff) in view.pending.borrow_mut().drain(..) {
                let count = view.contents.entry(row.clone()).or_default();
                *count += diff;
                if *count == 0 {
                    view.contents.remove(&row);
                }
                view.changelog.push((row, t, diff));
            }
        }
        closed
    }

    fn view(&self, name: &str) -> Result<&View, ViewError> {
        self.views.get(name).ok_or_else(|| ViewError::UnknownView(name.to_string()))
    }

    /// The view's current contents (a row appears as often as its multiplicity).
    pub fn snapshot(&self, name: &str) -> Result<RecordBatch, ViewError> {
        let view = self.view(name)?;
        let rows = view.contents.iter().flat_map(|(row, n)| std::iter::repeat_n(row, (*n).max(0) as usize));
        view.codec.decode(rows).map_err(|e| ViewError::Sql { view: name.to_string(), message: e.to_string() })
    }

    /// The view's changelog so far: its columns plus `_diff` and `_time`.
    pub fn changes(&self, name: &str) -> Result<RecordBatch, ViewError> {
        let view = self.view(name)?;
        let error = |e: &dyn std::fmt::Display| ViewError::Sql { view: name.to_string(), message: e.to_string() };
        let data = view.codec.decode(view.changelog.iter().map(|(r, _, _)| r)).map_err(|e| error(&e))?;
        let mut fields: Vec<Field> = data.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("_diff", DataType::Int64, false));
        fields.push(Field::new("_time", DataType::UInt64, false));
        let mut columns: Vec<ArrayRef> = data.columns().to_vec();
        columns.push(Arc::new(Int64Array::from_iter_values(view.changelog.iter().map(|(_, _, d)| *d as i64))));
        columns.push(Arc::new(UInt64Array::from_iter_values(view.changelog.iter().map(|(_, t, _)| *t))));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| error(&e))
    }

    /// The SQL a view was created from.
    pub fn sql(&self, name: &str) -> Result<&str, ViewError> {
        Ok(&self.view(name)?.sql)
    }

    /// A table's current contents.
    pub fn table(&self, name: &str) -> Result<RecordBatch, ViewError> {
        let table = self.tables.get(name).ok_or_else(|| ViewError::UnknownTable(name.to_string()))?;
        let rows = table.rows.iter().flat_map(|(row, n)| std::iter::repeat_n(row, (*n).max(0) as usize));
        table.codec.decode(rows).map_err(|e| ViewError::Data { table: name.to_string(), message: e.to_string() })
    }

    /// What DataFusion computes in batch for the view's SQL over the current
    /// tables: the oracle the incremental result must equal.
    pub async fn batch_answer(&self, name: &str) -> Result<RecordBatch, ViewError> {
        let view = self.view(name)?;
        let sql_error = |e: &dyn std::fmt::Display| ViewError::Sql { view: name.to_string(), message: e.to_string() };
        let ctx = SessionContext::new();
        for table in self.tables.keys() {
            let batch = self.table(table)?;
            let provider = MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(|e| sql_error(&e))?;
            ctx.register_table(table.as_str(), Arc::new(provider)).map_err(|e| sql_error(&e))?;
        }
        let mut plan = ctx.state().create_logical_plan(&view.sql).await.map_err(|e| sql_error(&e))?;
        if let LogicalPlan::Ddl(DdlStatement::CreateView(create)) = &plan {
            plan = create.input.as_ref().clone();
        }
        let batches = ctx.execute_logical_plan(plan).await.map_err(|e| sql_error(&e))?.collect().await.map_err(|e| sql_error(&e))?;
        arrow::compute::concat_batches(&Arc::new(view.codec.schema().as_ref().clone()), &batches).map_err(|e| sql_error(&e))
    }
}
