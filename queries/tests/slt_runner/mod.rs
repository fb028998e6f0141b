//! Sqllogictest files run against standing views: the runner of the `.slt`
//! suite under `queries/tests/slt/` (see `tests/slt.rs`).
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
//! - a `query` of the catalog (`SHOW TABLES`, `SHOW COLUMNS FROM t`, or any
//!   query whose plan reads `information_schema`) is not a standing view:
//!   it runs once, in batch, in a DataFusion session of the analysts'
//!   settings ([`analyst_session_config`]) over the current input tables
//!   (not the standing views the file's queries became), and its rows are
//!   checked against the record's.
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
//! answer (for review), as DataFusion's own `--complete` does; `tests/slt.rs`
//! runs it instead of checking when `SLT_COMPLETE=1` is set.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::prelude::SessionContext;
use sqllogictest::{Condition, Control, DefaultColumnType, QueryExpect, Record, ResultMode, SortMode};

use self::values::{diff, expected_lines, format_rows};
use borderflow_queries::{StandingViews, ViewError, analyst_session_config};

mod statements;
mod values;

/// The label `onlyif` / `skipif` conditions test for.
pub const LABEL: &str = "borderflow";

/// The schema of the catalog's tables (`information_schema.tables`, …).
const INFORMATION_SCHEMA: &str = "information_schema";

/// The comment line by which a file declares how many queries it expects refused.
const DECLARE_REFUSED: &str = "refused-queries:";

/// Why a file could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum SltError {
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{0}")]
    Parse(String),
    /// [`complete_file`] could not compute or write a file's expected rows.
    #[error("{path}: {message}")]
    Complete { path: String, message: String },
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
        for refusal in &self.refusals {
            writeln!(f, "REFUSED {}: {}", refusal.location, refusal.message)?;
        }
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
            let rows = runner.batch_query(sql).await.map_err(|message| SltError::Complete { path: name.clone(), message })?;
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
    if let Some(failure) = runner.report.failures.first() {
        let message = format!("{}: {}: {} (nothing written)", failure.location, failure.sql, failure.message);
        return Err(SltError::Complete { path: name, message });
    }
    std::fs::write(path, out).map_err(|e| SltError::Complete { path: name, message: e.to_string() })?;
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


/// The rows a `query` record expects, and how it compares them.
struct Expected<'a> {
    types: &'a [DefaultColumnType],
    sort_mode: Option<SortMode>,
    result_mode: Option<ResultMode>,
    results: &'a [String],
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
    /// Statements and other records, not queries, that failed.
    failed_records: usize,
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
            failed_records: 0,
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
                                self.failed_records += 1;
                                self.fail(&file, &line, format!("`# {DECLARE_REFUSED} N` needs a number"));
                            }
                        }
                    }
                }
            }
            Record::Halt { .. } => return false,
            Record::HashThreshold { loc, threshold } if threshold > 0 => {
                self.failed_records += 1;
                self.fail(&loc.to_string(), "", "hash-threshold is not supported: write the expected rows".into());
            }
            Record::Include { loc, .. } | Record::System { loc, .. } | Record::Sleep { loc, .. } | Record::Let { loc, .. } => {
                self.failed_records += 1;
                self.fail(&loc.to_string(), "", "the runner runs only statement, query and control records".into());
            }
            _ => {}
        }
        true
    }

    fn finish(mut self) -> FileReport {
        self.report.failed = self.failed_records;
        for outcome in &self.outcomes {
            match outcome {
                Outcome::Passed => self.report.passed += 1,
                Outcome::Failed => self.report.failed += 1,
                Outcome::Refused => self.report.refused += 1,
            }
        }
        self.report
    }

    async fn query(&mut self, location: &str, sql: &str, expected: QueryExpect<DefaultColumnType>) -> Outcome {
        if let Some((ctx, plan)) = self.catalog_plan(sql).await {
            return self.catalog_query(location, sql, &ctx, plan, expected).await;
        }
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
                let expect = Expected { types: &types, sort_mode, result_mode, results: &results };
                let snapshot = self.views.snapshot(&view).map_err(|e| format!("snapshot: {e}")).and_then(|b| format_rows(&b));
                let mut problems = self.unexpected(&expect, schema.fields().len(), snapshot, "standing view");
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

    /// What is wrong with `rows` (of `columns` columns, produced by
    /// `source`) as the answer a record expects; empty when nothing is.
    fn unexpected(&self, expect: &Expected<'_>, columns: usize, rows: Result<Vec<Vec<String>>, String>, source: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if !expect.types.is_empty() && expect.types.len() != columns {
            problems.push(format!("the record declares {} columns, the query has {columns}", expect.types.len()));
        }
        match rows {
            Ok(rows) => {
                let value_wise = value_wise(expect.sort_mode.or(self.sort_mode), expect.result_mode.or(self.result_mode));
                let actual = expected_lines(rows, value_wise);
                let mut expected: Vec<String> = expect.results.iter().map(sqllogictest::default_normalizer).collect();
                expected.sort();
                let actual_rows: Vec<Vec<String>> = actual.iter().map(|line| vec![line.clone()]).collect();
                if !sqllogictest::default_validator(sqllogictest::default_normalizer, &actual_rows, &expected) {
                    problems.push(format!("rows differ from the record's (- expected, + {source}):\n{}", diff(&expected, &actual)));
                }
            }
            Err(error) => problems.push(error),
        }
        problems
    }

    /// A query of the catalog (`SHOW TABLES`, `SHOW COLUMNS FROM t`, or any
    /// query that reads `information_schema`), planned in a batch session
    /// with the analysts' settings over the current input tables; `None`
    /// for any other query, and for one DataFusion cannot plan.
    async fn catalog_plan(&self, sql: &str) -> Option<(SessionContext, LogicalPlan)> {
        let ctx = self.batch_context(analyst_session_config()).ok()?;
        let plan = ctx.state().create_logical_plan(sql).await.ok()?;
        let mut reads_catalog = false;
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                reads_catalog |= scan.table_name.schema() == Some(INFORMATION_SCHEMA);
            }
            Ok(if reads_catalog { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
        })
        .ok()?;
        reads_catalog.then_some((ctx, plan))
    }

    /// Runs a catalog query once, in batch, and checks its rows against
    /// the record's; it is not a standing view.
    async fn catalog_query(
        &mut self,
        location: &str,
        sql: &str,
        ctx: &SessionContext,
        plan: LogicalPlan,
        expected: QueryExpect<DefaultColumnType>,
    ) -> Outcome {
        let columns = plan.schema().fields().len();
        let rows = statements::collect(ctx, plan).await.and_then(|batch| format_rows(&batch));
        let problems = match (rows, expected) {
            (Err(error), QueryExpect::Error(pattern)) if pattern.is_match(&error, None) => Vec::new(),
            (Err(error), QueryExpect::Error(pattern)) => vec![format!("failed with `{error}`, which does not match {pattern}")],
            (Ok(_), QueryExpect::Error(pattern)) => vec![format!("expected an error matching {pattern}; the query ran")],
            (rows, QueryExpect::Results { types, sort_mode, result_mode, results, .. }) => {
                let expect = Expected { types: &types, sort_mode, result_mode, results: &results };
                self.unexpected(&expect, columns, rows.map_err(|e| format!("catalog query: {e}")), "DataFusion")
            }
        };
        if problems.is_empty() {
            return Outcome::Passed;
        }
        self.fail(location, sql, problems.join("\n"));
        Outcome::Failed
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
        let ctx = self.batch_context(analyst_session_config())?;
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
