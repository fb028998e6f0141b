//! Statement records: the changes they make to the input tables, computed
//! by DataFusion in batch over the tables' current contents and applied to
//! the standing views, and `SET borderflow.now`.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{DdlStatement, DmlStatement, LogicalPlan, WriteOp};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, FromTable, ObjectName, ObjectNamePart, Statement, TableFactor, TableWithJoins,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use sqllogictest::StatementExpect;

use super::{Change, Runner};

impl Runner {
    pub(super) async fn statement(&mut self, location: &str, sql: &str, expected: &StatementExpect) {
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
            self.failed_records += 1;
            self.fail(location, sql, problem);
        }
        if matches!(result, Ok(Change::Rows(_) | Change::Time)) {
            self.recheck(location, sql).await;
        }
    }

    pub(super) async fn execute(&mut self, sql: &str) -> Result<Change, String> {
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

    /// Closes the current time. After `SET borderflow.now` commits happen
    /// at that time (each later one a millisecond after the last, as times
    /// only move forward), and `now_ms` follows the committed time, which is
    /// what batch answers evaluate `now()` at.
    pub(super) fn commit(&mut self) {
        match self.now_ms {
            Some(now) => self.now_ms = Some(self.views.commit_at(now)),
            None => {
                self.views.commit();
            }
        }
    }

    pub(super) fn schema(&self, table: &str) -> Result<SchemaRef, String> {
        self.tables.get(table).cloned().ok_or_else(|| format!("no table `{table}`"))
    }

    /// A DataFusion session over the tables' current contents.
    pub(super) fn batch_context(&self, config: SessionConfig) -> Result<SessionContext, String> {
        let ctx = SessionContext::new_with_config(config);
        for name in self.tables.keys() {
            let batch = self.views.table(name).map_err(|e| e.to_string())?;
            let provider = MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(|e| e.to_string())?;
            ctx.register_table(name.as_str(), Arc::new(provider)).map_err(|e| e.to_string())?;
        }
        Ok(ctx)
    }

    /// DataFusion's batch result of `sql` over the current tables.
    pub(super) async fn batch_sql(&self, sql: &str) -> Result<RecordBatch, String> {
        let ctx = self.batch_context(SessionConfig::new())?;
        let plan = ctx.state().create_logical_plan(sql).await.map_err(|e| e.to_string())?;
        collect(&ctx, plan).await
    }

    /// The rows of `table` a DELETE or UPDATE with `selection` touches.
    pub(super) async fn old_rows(
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
    pub(super) fn conform(&self, table: &str, batch: RecordBatch) -> Result<RecordBatch, String> {
        let schema = self.schema(table)?;
        if batch.num_columns() != schema.fields().len() {
            return Err(format!("table `{table}` has {} columns, the rows {}", schema.fields().len(), batch.num_columns()));
        }
        borderflow_queries::row::cast_to_schema(&batch, schema).map_err(|e| format!("table `{table}`: {e}"))
    }

    pub(super) async fn create_table(&mut self, sql: &str) -> Result<Change, String> {
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

    pub(super) async fn insert(&mut self, sql: &str) -> Result<Change, String> {
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
}

/// Executes a logical plan in `ctx`, as one batch.
pub(super) async fn collect(ctx: &SessionContext, plan: LogicalPlan) -> Result<RecordBatch, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_now_reads_a_timestamp() {
        assert_eq!(set_now("SET borderflow.now = '2026-11-28T10:00:00Z'"), Ok(Some(1_795_860_000_000)));
        assert_eq!(set_now("set BORDERFLOW.NOW to '1970-01-01T00:00:01Z';"), Ok(Some(1000)));
        assert_eq!(set_now("SET datafusion.execution.batch_size = 1"), Ok(None));
        assert!(set_now("SET borderflow.now = 5").is_err());
    }
}
