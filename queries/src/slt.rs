//! Sqllogictest files run against standing views: the `borderflow slt`
//! command and the `.slt` suite under `queries/tests/slt/` share this runner.
//!
//! Files are in the format of the `sqllogictest` crate (as DataFusion and
//! SQLite use it); the crate parses them and validates results. The runner
//! works incrementally:
//!
//! - `statement` records change the input tables: `CREATE TABLE` (DataFusion
//!   plans it, which gives the schema), `INSERT`, `UPDATE` and `DELETE`. Their
//!   rows are computed by DataFusion in batch over the current tables, then
//!   inserted into or retracted from [`StandingViews`] and committed.
//!   `SET borderflow.now = '<RFC 3339 timestamp>'` sets the time of this and
//!   later commits, so temporal filters over `now()` can be tested.
//! - each `query` record becomes a standing view. Its contents are checked
//!   against the record's expected rows when it is created, and against
//!   DataFusion's batch answer then and after every later statement.
//!
//! A standing view is a multiset, so rows are compared order-insensitively
//! whatever the record's sort mode (`valuesort` compares values). A query
//! outside the supported subset is *refused*, counted apart from failures; a
//! `query error <regex>` record whose query is refused with a matching
//! message is refused as expected. A file declares how many refusals it
//! expects with a comment line `# refused-queries: N`. Records under
//! `skipif borderflow` are skipped (and counted as such).
//!
//! Values are written as the sqllogictest convention has them: `NULL`, the
//! empty string as `(empty)`, booleans `true`/`false`, floating point rounded
//! to 12 decimals without trailing zeros, everything else as Arrow displays
//! it (timestamps `2026-11-28T10:00:00Z`).
//!
//! [`complete_file`] rewrites a file's expected rows with DataFusion's batch
//! answer (for review), as DataFusion's own `--complete` does.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Float64Type, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{DdlStatement, DmlStatement, LogicalPlan, WriteOp};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, FromTable, ObjectName, ObjectNamePart, Statement, TableFactor, TableWithJoins,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use sqllogictest::{
    Condition, Control, DefaultColumnType, QueryExpect, Record, ResultMode, SortMode, StatementExpect,
};

use crate::{StandingViews, ViewError};

/// The label `onlyif` / `skipif` conditions test for.
pub const LABEL: &str = "borderflow";

/// The comment line by which a file declares how many queries it expects refused.
const DECLARE_REFUSED: &str = "refused-queries:";

/// Why a file could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum SltError {
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{0}")]
    Parse(String),
    #[error("{path}: {message}")]
    Write { path: String, message: String },
}

/// One failed check: a query whose rows differ from what was expected or
/// from DataFusion's, or a statement that did not do what it should.
#[derive(Debug, Clone)]
pub struct Failure {
    /// `file:line` of the record.
    pub location: String,
    pub sql: String,
    pub message: String,
}

/// What running one file found.
#[derive(Debug, Clone, Default)]
pub struct FileReport {
    pub file: String,
    /// Queries whose rows were right at creation and after every statement
    /// (and `query error` records that failed as expected).
    pub passed: usize,
    /// Queries that failed a check, plus statements that failed.
    pub failed: usize,
    /// Queries the engine refused to maintain.
    pub refused: usize,
    /// Queries a `skipif borderflow` (or `onlyif` another label) skipped.
    pub skipped: usize,
    /// The refusals the file declares (`# refused-queries: N`).
    pub declared_refused: Option<usize>,
    pub failures: Vec<Failure>,
    /// Refused queries whose record expected rows, with the refusal.
    pub refusals: Vec<Failure>,
}

impl FileReport {
    /// No failure, and as many refusals as the file declares.
    pub fn is_success(&self) -> bool {
        self.failed == 0 && self.declared_refused.is_none_or(|n| n == self.refused)
    }
}

impl fmt::Display for FileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for failure in &self.failures {
            writeln!(f, "FAILED {}:\n  {}", failure.location, failure.sql.replace('\n', "\n  "))?;
            writeln!(f, "  {}", failure.message.replace('\n', "\n  "))?;
        }
        write!(f, "{}: {} passed, {} failed, {} refused", self.file, self.passed, self.failed, self.refused)?;
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        if let Some(declared) = self.declared_refused.filter(|&n| n != self.refused) {
            write!(f, " (the file declares {declared} refused)")?;
        }
        Ok(())
    }
}

/// Runs one `.slt` file from a fresh set of tables and views.
pub async fn run_file(path: &Path) -> Result<FileReport, SltError> {
    let name = path.display().to_string();
    let script = std::fs::read_to_string(path).map_err(|source| SltError::Read { path: name.clone(), source })?;
    run_script(&name, &script).await
}

/// Runs a script; `name` places its records in messages.
pub async fn run_script(name: &str, script: &str) -> Result<FileReport, SltError> {
    let records = parse(name, script)?;
    let mut runner = Runner::new(name);
    for record in records {
        if !runner.record(record).await {
            break;
        }
    }
    Ok(runner.finish())
}

/// Rewrites the expected rows of every `query` record that expects rows with
/// DataFusion's batch answer over the tables at that point of the file (not
/// the standing views' answer: the expected rows are then the oracle's).
/// Returns how many records changed.
pub async fn complete_file(path: &Path) -> Result<usize, SltError> {
    let name = path.display().to_string();
    let script = std::fs::read_to_string(path).map_err(|source| SltError::Read { path: name.clone(), source })?;
    let records = parse(&name, &script)?;
    let mut runner = Runner::new(&name);
    let mut out = String::new();
    let mut changed = 0;
    for mut record in records {
        // Every query, whatever its conditions: the answer is DataFusion's.
        if let Record::Query { sql, expected: QueryExpect::Results { sort_mode, result_mode, results, .. }, .. } = &mut record {
            let rows = runner.batch_query(sql).await.map_err(|message| SltError::Write { path: name.clone(), message })?;
            let lines = expected_lines(rows, value_wise(sort_mode.or(runner.sort_mode), result_mode.or(runner.result_mode)));
            if *results != lines {
                *results = lines;
                changed += 1;
            }
        } else if !matches!(record, Record::Query { .. }) {
            runner.record(record.clone()).await;
        }
        out.push_str(&format!("{record}\n"));
    }
    std::fs::write(path, out).map_err(|e| SltError::Write { path: name, message: e.to_string() })?;
    Ok(changed)
}

fn parse(name: &str, script: &str) -> Result<Vec<Record<DefaultColumnType>>, SltError> {
    sqllogictest::parse_with_name(script, name).map_err(|e| SltError::Parse(e.to_string()))
}

fn skipped(conditions: &[Condition]) -> bool {
    conditions.iter().any(|c| match c {
        Condition::OnlyIf { label } => label != LABEL,
        Condition::SkipIf { label } => label == LABEL,
    })
}

fn value_wise(sort_mode: Option<SortMode>, result_mode: Option<ResultMode>) -> bool {
    sort_mode == Some(SortMode::ValueSort) || result_mode == Some(ResultMode::ValueWise)
}

/// Rows as the lines a file holds: sorted, one value a line if `value_wise`.
fn expected_lines(rows: Vec<Vec<String>>, value_wise: bool) -> Vec<String> {
    let mut lines: Vec<String> = if value_wise {
        rows.into_iter().flatten().collect()
    } else {
        rows.into_iter().map(|row| row.join(" ")).collect()
    };
    lines.sort();
    lines
}

/// A query kept as a standing view.
struct StandingQuery {
    view: String,
    location: String,
    sql: String,
    /// Index of the query's outcome.
    outcome: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    Refused,
}

/// What a statement did.
enum Change {
    /// A table was created empty.
    Created,
    /// Rows were inserted, deleted or updated, and committed.
    Rows(usize),
    /// The time moved (`SET borderflow.now`), and was committed.
    Time,
}

struct Runner {
    file: String,
    views: StandingViews,
    /// Input tables with their schemas.
    tables: BTreeMap<String, SchemaRef>,
    standing: Vec<StandingQuery>,
    outcomes: Vec<Outcome>,
    failed_statements: usize,
    /// Set by `SET borderflow.now`: the time (ms since the epoch) of later commits.
    now_ms: Option<u64>,
    sort_mode: Option<SortMode>,
    result_mode: Option<ResultMode>,
    report: FileReport,
}

impl Runner {
    fn new(file: &str) -> Self {
        Runner {
            file: file.to_string(),
            views: StandingViews::new(),
            tables: BTreeMap::new(),
            standing: Vec::new(),
            outcomes: Vec::new(),
            failed_statements: 0,
            now_ms: None,
            sort_mode: None,
            result_mode: None,
            report: FileReport { file: file.to_string(), ..FileReport::default() },
        }
    }

    fn fail(&mut self, location: &str, sql: &str, message: String) {
        self.report.failures.push(Failure { location: location.to_string(), sql: sql.to_string(), message });
    }

    /// Runs one record; false at `halt`.
    async fn record(&mut self, record: Record<DefaultColumnType>) -> bool {
        match record {
            Record::Statement { loc, conditions, sql, expected, .. } => {
                if !skipped(&conditions) {
                    self.statement(&loc.to_string(), &sql, &expected).await;
                }
            }
            Record::Query { loc, conditions, sql, expected, .. } => {
                if skipped(&conditions) {
                    self.report.skipped += 1;
                } else {
                    let outcome = self.query(&loc.to_string(), &sql, expected).await;
                    self.outcomes.push(outcome);
                }
            }
            Record::Control(Control::SortMode(mode)) => self.sort_mode = Some(mode),
            Record::Control(Control::ResultMode(mode)) => self.result_mode = Some(mode),
            Record::Comment(lines) => {
                for line in lines {
                    if let Some(n) = line.trim().strip_prefix(DECLARE_REFUSED) {
                        match n.trim().parse() {
                            Ok(n) => self.report.declared_refused = Some(n),
                            Err(_) => {
                                let file = self.file.clone();
                                self.failed_statements += 1;
                                self.fail(&file, &line, format!("`# {DECLARE_REFUSED} N` needs a number"));
                            }
                        }
                    }
                }
            }
            Record::Halt { .. } => return false,
            Record::HashThreshold { loc, threshold } if threshold > 0 => {
                self.failed_statements += 1;
                self.fail(&loc.to_string(), "", "hash-threshold is not supported: write the expected rows".into());
            }
            Record::Include { loc, .. } | Record::System { loc, .. } | Record::Sleep { loc, .. } | Record::Let { loc, .. } => {
                self.failed_statements += 1;
                self.fail(&loc.to_string(), "", "the runner runs only statement, query and control records".into());
            }
            _ => {}
        }
        true
    }

    fn finish(mut self) -> FileReport {
        self.report.failed = self.failed_statements;
        for outcome in &self.outcomes {
            match outcome {
                Outcome::Passed => self.report.passed += 1,
                Outcome::Failed => self.report.failed += 1,
                Outcome::Refused => self.report.refused += 1,
            }
        }
        self.report
    }

    async fn statement(&mut self, location: &str, sql: &str, expected: &StatementExpect) {
        let result = self.execute(sql).await;
        let problem = match (&result, expected) {
            (Ok(_), StatementExpect::Ok) => None,
            (Ok(Change::Rows(n)), StatementExpect::Count(want)) if *n as u64 == *want => None,
            (Ok(Change::Rows(n)), StatementExpect::Count(want)) => Some(format!("expected {want} rows affected, got {n}")),
            (Ok(_), StatementExpect::Count(want)) => Some(format!("expected {want} rows affected, the statement changes no rows")),
            (Ok(_), StatementExpect::Error(pattern)) => Some(format!("expected an error matching {pattern}; the statement succeeded")),
            (Err(message), StatementExpect::Error(pattern)) if pattern.is_match(message, None) => None,
            (Err(message), StatementExpect::Error(pattern)) => {
                Some(format!("expected an error matching {pattern}; got: {message}"))
            }
            (Err(message), _) => Some(format!("error: {message}")),
        };
        if let Some(problem) = problem {
            self.failed_statements += 1;
            self.fail(location, sql, problem);
        }
        if matches!(result, Ok(Change::Rows(_) | Change::Time)) {
            self.recheck(location, sql).await;
        }
    }

    async fn execute(&mut self, sql: &str) -> Result<Change, String> {
        if let Some(now_ms) = set_now(sql)? {
            self.now_ms = Some(now_ms);
            self.commit();
            return Ok(Change::Time);
        }
        let statements = Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| e.to_string())?;
        let [statement] = statements.as_slice() else {
            return Err("a statement record holds one statement".into());
        };
        match statement {
            Statement::CreateTable(_) => self.create_table(sql).await,
            Statement::Insert(_) => self.insert(sql).await,
            Statement::Delete(delete) => {
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &delete.from;
                if !delete.tables.is_empty() || delete.using.is_some() || delete.limit.is_some() || from.len() != 1 {
                    return Err("the runner deletes from one table, with an optional WHERE".into());
                }
                let (table, relation) = single_table(&from[0])?;
                let old = self.old_rows(&table, &relation, delete.selection.as_ref()).await?;
                let count = self.views.retract(&table, &old).map_err(|e| e.to_string())?;
                self.commit();
                Ok(Change::Rows(count))
            }
            Statement::Update(update) => {
                if update.from.is_some() || update.limit.is_some() {
                    return Err("the runner updates one table, with an optional WHERE".into());
                }
                let (table, relation) = single_table(&update.table)?;
                let schema = self.schema(&table)?;
                let mut assigned = BTreeMap::new();
                for assignment in &update.assignments {
                    let AssignmentTarget::ColumnName(name) = &assignment.target else {
                        return Err("the runner assigns single columns".into());
                    };
                    let column = object_name(name)?;
                    if schema.field_with_name(&column).is_err() {
                        return Err(format!("table `{table}` has no column `{column}`"));
                    }
                    assigned.insert(column, assignment.value.to_string());
                }
                let new_values: Vec<String> = schema
                    .fields()
                    .iter()
                    .map(|f| match assigned.get(f.name()) {
                        Some(expr) => format!("({expr})"),
                        None => format!("\"{}\"", f.name().replace('"', "\"\"")),
                    })
                    .collect();
                let filter = where_clause(update.selection.as_ref());
                let old = self.old_rows(&table, &relation, update.selection.as_ref()).await?;
                let new = self.batch_sql(&format!("SELECT {} FROM {relation}{filter}", new_values.join(", "))).await?;
                let new = self.conform(&table, new)?;
                let count = self.views.retract(&table, &old).map_err(|e| e.to_string())?;
                self.views.insert(&table, &new).map_err(|e| e.to_string())?;
                self.commit();
                Ok(Change::Rows(count))
            }
            other => Err(format!(
                "the runner runs CREATE TABLE, INSERT, UPDATE, DELETE and SET borderflow.now, not `{other}`"
            )),
        }
    }

    /// Closes the current time, at `SET borderflow.now`'s time if one was set.
    fn commit(&mut self) {
        self.views.commit();
    }

    fn schema(&self, table: &str) -> Result<SchemaRef, String> {
        self.tables.get(table).cloned().ok_or_else(|| format!("no table `{table}`"))
    }

    /// A DataFusion session over the tables' current contents.
    fn batch_context(&self, config: SessionConfig) -> Result<SessionContext, String> {
        let ctx = SessionContext::new_with_config(config);
        for name in self.tables.keys() {
            let batch = self.views.table(name).map_err(|e| e.to_string())?;
            let provider = MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(|e| e.to_string())?;
            ctx.register_table(name.as_str(), Arc::new(provider)).map_err(|e| e.to_string())?;
        }
        Ok(ctx)
    }

    /// DataFusion's batch result of `sql` over the current tables.
    async fn batch_sql(&self, sql: &str) -> Result<RecordBatch, String> {
        let ctx = self.batch_context(SessionConfig::new())?;
        let plan = ctx.state().create_logical_plan(sql).await.map_err(|e| e.to_string())?;
        collect(&ctx, plan).await
    }

    /// The rows of `table` a DELETE or UPDATE with `selection` touches.
    async fn old_rows(
        &self,
        table: &str,
        relation: &str,
        selection: Option<&datafusion::sql::sqlparser::ast::Expr>,
    ) -> Result<RecordBatch, String> {
        let batch = self.batch_sql(&format!("SELECT * FROM {relation}{}", where_clause(selection))).await?;
        self.conform(table, batch)
    }

    /// The batch with the table's schema: its columns cast to the table's
    /// types, NOT NULL columns checked.
    fn conform(&self, table: &str, batch: RecordBatch) -> Result<RecordBatch, String> {
        let schema = self.schema(table)?;
        if batch.num_columns() != schema.fields().len() {
            return Err(format!("table `{table}` has {} columns, the rows {}", schema.fields().len(), batch.num_columns()));
        }
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(column, field)| arrow::compute::cast(column, field.data_type()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        RecordBatch::try_new(schema, columns).map_err(|e| format!("table `{table}`: {e}"))
    }

    async fn create_table(&mut self, sql: &str) -> Result<Change, String> {
        // Tables take the engine's types: Utf8 strings, timestamps in UTC.
        let mut config = SessionConfig::new();
        config.options_mut().sql_parser.map_string_types_to_utf8view = false;
        config.options_mut().execution.time_zone = Some("UTC".into());
        let ctx = self.batch_context(config)?;
        let plan = ctx.state().create_logical_plan(sql).await.map_err(|e| e.to_string())?;
        let LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(create)) = plan else {
            return Err(format!("expected CREATE TABLE, DataFusion planned {}", plan.display()));
        };
        let name = create.name.table().to_string();
        if self.tables.contains_key(&name) {
            return Err(format!("table `{name}` already exists"));
        }
        let schema: SchemaRef = Arc::new(create.input.schema().as_arrow().clone());
        let rows = match create.input.as_ref() {
            LogicalPlan::EmptyRelation(_) => None,
            input => Some(collect(&ctx, input.clone()).await?),
        };
        self.views.register_table(&name, Arc::clone(&schema)).map_err(|e| e.to_string())?;
        self.tables.insert(name.clone(), schema);
        match rows {
            None => Ok(Change::Created),
            Some(batch) => {
                let batch = self.conform(&name, batch)?;
                let count = self.views.insert(&name, &batch).map_err(|e| e.to_string())?;
                self.commit();
                Ok(Change::Rows(count))
            }
        }
    }

    async fn insert(&mut self, sql: &str) -> Result<Change, String> {
        let ctx = self.batch_context(SessionConfig::new())?;
        let plan = ctx.state().create_logical_plan(sql).await.map_err(|e| e.to_string())?;
        let LogicalPlan::Dml(DmlStatement { table_name, op: WriteOp::Insert(_), input, .. }) = plan else {
            return Err(format!("expected INSERT, DataFusion planned {}", plan.display()));
        };
        let table = table_name.table().to_string();
        let batch = collect(&ctx, input.as_ref().clone()).await?;
        let batch = self.conform(&table, batch)?;
        let count = self.views.insert(&table, &batch).map_err(|e| e.to_string())?;
        self.commit();
        Ok(Change::Rows(count))
    }

    async fn query(&mut self, location: &str, sql: &str, expected: QueryExpect<DefaultColumnType>) -> Outcome {
        let view = format!("q{}", self.outcomes.len() + 1);
        match (self.views.create_view(&view, sql).await, expected) {
            (Err(refusal @ ViewError::Refused { .. }), QueryExpect::Error(pattern)) => {
                let message = refusal.to_string();
                if pattern.is_match(&message, None) {
                    Outcome::Refused
                } else {
                    self.fail(location, sql, format!("refused with `{message}`, which does not match {pattern}"));
                    Outcome::Failed
                }
            }
            (Err(refusal @ ViewError::Refused { .. }), QueryExpect::Results { .. }) => {
                let refusal = Failure { location: location.into(), sql: sql.into(), message: refusal.to_string() };
                self.report.refusals.push(refusal);
                Outcome::Refused
            }
            (Err(error), QueryExpect::Error(pattern)) => {
                let message = error.to_string();
                if pattern.is_match(&message, None) {
                    Outcome::Passed
                } else {
                    self.fail(location, sql, format!("failed with `{message}`, which does not match {pattern}"));
                    Outcome::Failed
                }
            }
            (Err(error), QueryExpect::Results { .. }) => {
                self.fail(location, sql, format!("error: {error}"));
                Outcome::Failed
            }
            (Ok(_), QueryExpect::Error(pattern)) => {
                self.fail(location, sql, format!("expected an error matching {pattern}; the view was created"));
                Outcome::Failed
            }
            (Ok(schema), QueryExpect::Results { types, sort_mode, result_mode, results, .. }) => {
                let value_wise = value_wise(sort_mode.or(self.sort_mode), result_mode.or(self.result_mode));
                let mut problems = Vec::new();
                if !types.is_empty() && types.len() != schema.fields().len() {
                    problems.push(format!("the record declares {} columns, the query has {}", types.len(), schema.fields().len()));
                }
                match self.views.snapshot(&view).map_err(|e| e.to_string()).and_then(|b| format_rows(&b)) {
                    Ok(rows) => {
                        let actual = expected_lines(rows, value_wise);
                        let mut expected: Vec<String> = results.iter().map(sqllogictest::default_normalizer).collect();
                        expected.sort();
                        let actual_rows: Vec<Vec<String>> = actual.iter().map(|line| vec![line.clone()]).collect();
                        if !sqllogictest::default_validator(sqllogictest::default_normalizer, &actual_rows, &expected) {
                            problems.push(format!(
                                "rows differ from the record's (- expected, + standing view):\n{}",
                                diff(&expected, &actual)
                            ));
                        }
                    }
                    Err(error) => problems.push(format!("snapshot: {error}")),
                }
                match self.oracle_diff(&view).await {
                    Ok(None) => {}
                    Ok(Some(diff)) => problems.push(format!("differs from DataFusion's batch answer (- DataFusion, + standing view):\n{diff}")),
                    Err(error) => problems.push(format!("DataFusion's batch answer: {error}")),
                }
                let outcome = if problems.is_empty() { Outcome::Passed } else { Outcome::Failed };
                if !problems.is_empty() {
                    self.fail(location, sql, problems.join("\n"));
                }
                self.standing.push(StandingQuery {
                    view,
                    location: location.into(),
                    sql: sql.into(),
                    outcome: self.outcomes.len(),
                });
                outcome
            }
        }
    }

    /// The difference between a view's contents and DataFusion's batch
    /// answer, as multisets of rows; `None` when they are equal.
    async fn oracle_diff(&self, view: &str) -> Result<Option<String>, String> {
        let incremental = format_rows(&self.views.snapshot(view).map_err(|e| e.to_string())?)?;
        let batch = format_rows(&self.views.batch_answer(view).await.map_err(|e| e.to_string())?)?;
        let lines = |rows: Vec<Vec<String>>| -> Vec<String> { rows.into_iter().map(|r| r.join(" | ")).collect() };
        let (incremental, batch) = (lines(incremental), lines(batch));
        let mut a = incremental.clone();
        let mut b = batch.clone();
        a.sort();
        b.sort();
        Ok((a != b).then(|| diff(&batch, &incremental)))
    }

    /// After a statement: every standing query that has not failed yet is
    /// compared with DataFusion's batch answer.
    async fn recheck(&mut self, location: &str, sql: &str) {
        for i in 0..self.standing.len() {
            let query = &self.standing[i];
            if self.outcomes[query.outcome] != Outcome::Passed {
                continue;
            }
            let problem = match self.oracle_diff(&query.view).await {
                Ok(None) => continue,
                Ok(Some(diff)) => format!("differs from DataFusion's batch answer (- DataFusion, + standing view):\n{diff}"),
                Err(error) => format!("DataFusion's batch answer: {error}"),
            };
            let (at, query_sql, outcome) = (query.location.clone(), query.sql.clone(), query.outcome);
            self.outcomes[outcome] = Outcome::Failed;
            let statement = sql.split_whitespace().collect::<Vec<_>>().join(" ");
            self.fail(&at, &query_sql, format!("after the statement at {location} (`{statement}`), {problem}"));
        }
    }

    /// DataFusion's batch answer to a query, formatted, at the runner's time.
    async fn batch_query(&self, sql: &str) -> Result<Vec<Vec<String>>, String> {
        let ctx = self.batch_context(SessionConfig::new())?;
        let mut state = ctx.state();
        if let Some(now_ms) = self.now_ms {
            let now = chrono::DateTime::from_timestamp_millis(now_ms as i64).ok_or("borderflow.now out of range")?;
            state.execution_props_mut().query_execution_start_time = Some(now);
        }
        let error = |e: datafusion::error::DataFusionError| format!("{sql}: {e}");
        let mut plan = state.create_logical_plan(sql).await.map_err(error)?;
        if let LogicalPlan::Ddl(DdlStatement::CreateView(create)) = &plan {
            plan = create.input.as_ref().clone();
        }
        let physical = state.create_physical_plan(&plan).await.map_err(error)?;
        let batches = datafusion::physical_plan::collect(physical, state.task_ctx()).await.map_err(error)?;
        let mut rows = Vec::new();
        for batch in &batches {
            rows.extend(format_rows(batch)?);
        }
        Ok(rows)
    }
}

/// Executes a logical plan in `ctx`, as one batch.
async fn collect(ctx: &SessionContext, plan: LogicalPlan) -> Result<RecordBatch, String> {
    let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
    let frame = ctx.execute_logical_plan(plan).await.map_err(|e| e.to_string())?;
    let batches = frame.collect().await.map_err(|e| e.to_string())?;
    let schema = batches.first().map_or(schema, |b| b.schema());
    arrow::compute::concat_batches(&schema, &batches).map_err(|e| e.to_string())
}

/// `SET borderflow.now = '<timestamp>'` (or `TO`): the time in milliseconds.
fn set_now(sql: &str) -> Result<Option<u64>, String> {
    let text = sql.trim().trim_end_matches(';').trim_end();
    let lower = text.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("set").filter(|r| r.starts_with(char::is_whitespace)) else {
        return Ok(None);
    };
    let Some(rest) = rest.trim_start().strip_prefix("borderflow.now") else {
        return Ok(None);
    };
    let value = text[text.len() - rest.len()..].trim_start();
    let value = value
        .strip_prefix('=')
        .or_else(|| value.get(..2).filter(|to| to.eq_ignore_ascii_case("to")).map(|_| &value[2..]))
        .map(str::trim)
        .and_then(|v| v.strip_prefix('\'')?.strip_suffix('\''))
        .ok_or("write SET borderflow.now = '2026-11-28T10:00:00Z'")?;
    let nanos = arrow::compute::kernels::cast_utils::string_to_timestamp_nanos(value)
        .map_err(|e| format!("borderflow.now `{value}`: {e}"))?;
    u64::try_from(nanos / 1_000_000).map(Some).map_err(|_| format!("borderflow.now `{value}` is before 1970"))
}

fn where_clause(selection: Option<&datafusion::sql::sqlparser::ast::Expr>) -> String {
    selection.map(|e| format!(" WHERE {e}")).unwrap_or_default()
}

/// An identifier as DataFusion resolves it: unquoted ones in lower case.
fn object_name(name: &ObjectName) -> Result<String, String> {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(ident)) if ident.quote_style.is_some() => Ok(ident.value.clone()),
        Some(ObjectNamePart::Identifier(ident)) => Ok(ident.value.to_lowercase()),
        _ => Err(format!("`{name}` is not a plain name")),
    }
}

/// The table a DELETE or UPDATE changes, and its text (with any alias).
fn single_table(from: &TableWithJoins) -> Result<(String, String), String> {
    match &from.relation {
        TableFactor::Table { name, .. } if from.joins.is_empty() => Ok((object_name(name)?, from.to_string())),
        _ => Err(format!("the runner changes one table, not `{from}`")),
    }
}

/// Lines of `expected` missing from `actual` (`- `) and extra in it (`+ `),
/// as multisets.
fn diff(expected: &[String], actual: &[String]) -> String {
    let mut counts: BTreeMap<&str, isize> = BTreeMap::new();
    for line in expected {
        *counts.entry(line).or_default() -= 1;
    }
    for line in actual {
        *counts.entry(line).or_default() += 1;
    }
    let mut out = Vec::new();
    for (line, count) in counts {
        let sign = if count < 0 { '-' } else { '+' };
        for _ in 0..count.unsigned_abs() {
            out.push(format!("{sign} {line}"));
        }
    }
    if out.is_empty() {
        return "(the same rows)".into();
    }
    const SHOWN: usize = 20;
    if out.len() > SHOWN {
        let more = out.len() - SHOWN;
        out.truncate(SHOWN);
        out.push(format!("… and {more} more"));
    }
    out.join("\n")
}

/// A batch's rows as sqllogictest values.
fn format_rows(batch: &RecordBatch) -> Result<Vec<Vec<String>>, String> {
    let columns: Vec<Vec<String>> = batch.columns().iter().map(format_column).collect::<Result<_, _>>()?;
    Ok((0..batch.num_rows()).map(|i| columns.iter().map(|c| c[i].clone()).collect()).collect())
}

fn format_column(array: &ArrayRef) -> Result<Vec<String>, String> {
    let options = FormatOptions::default().with_null("NULL");
    let formatter = ArrayFormatter::try_new(array.as_ref(), &options).map_err(|e| e.to_string())?;
    let is_string = matches!(array.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    Ok((0..array.len())
        .map(|i| {
            if array.is_null(i) {
                return "NULL".to_string();
            }
            match array.data_type() {
                DataType::Float64 => format_float(array.as_primitive::<Float64Type>().value(i)),
                DataType::Float32 => format_float(f64::from(array.as_primitive::<Float32Type>().value(i))),
                _ => {
                    let value = formatter.value(i).to_string();
                    if is_string && value.is_empty() { "(empty)".to_string() } else { value }
                }
            }
        })
        .collect())
}

/// Floating point rounded to 12 decimals, without trailing zeros: stable
/// whatever order a sum or average added its terms in.
fn format_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let fixed = format!("{value:.12}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" { "0".into() } else { trimmed.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_short_and_stable() {
        assert_eq!(format_float(2.0), "2");
        assert_eq!(format_float(0.1 + 0.2), "0.3");
        assert_eq!(format_float(-1.0 / 3.0), "-0.333333333333");
        assert_eq!(format_float(-0.0), "0");
        assert_eq!(format_float(f64::NAN), "NaN");
    }

    #[test]
    fn set_now_reads_a_timestamp() {
        assert_eq!(set_now("SET borderflow.now = '2026-11-28T10:00:00Z'"), Ok(Some(1_795_860_000_000)));
        assert_eq!(set_now("set BORDERFLOW.NOW to '1970-01-01T00:00:01Z';"), Ok(Some(1000)));
        assert_eq!(set_now("SET datafusion.execution.batch_size = 1"), Ok(None));
        assert!(set_now("SET borderflow.now = 5").is_err());
    }

    #[test]
    fn diff_shows_missing_and_extra_rows() {
        let expected = vec!["a 1".to_string(), "b 2".to_string(), "b 2".to_string()];
        let actual = vec!["b 2".to_string(), "c 3".to_string()];
        assert_eq!(diff(&expected, &actual), "- a 1\n- b 2\n+ c 3");
    }
}
