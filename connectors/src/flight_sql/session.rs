//! One analyst request's DataFusion session: what it can see, within the
//! limits of `[serve]`.
//!
//! Each request gets its own session over the engine's tables and view
//! snapshots as of that moment (copies the engine thread hands over) and
//! the Parquet history in the post's store, under the catalog named after
//! the post and the schema `public` (`otaci.public.reads`; unqualified
//! names work too). The same session answers queries, prepared statements
//! and the catalog commands, so what a tool browses is what it can query.
//! A session holds only what the caller's role may read (`[[serve.role]]`):
//! a table it may not read is neither listed (catalog commands,
//! `information_schema`, `SHOW TABLES`) nor queryable, and naming it is
//! refused as such.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SQLOptions, SessionContext};
use datafusion::scalar::ScalarValue;

use borderflow_engine::storage::Storage;
use borderflow_types::{AUDIT_LOG_TABLE, RoleConfig};

use crate::engine_handle::EngineHandle;

/// The schema every table is in.
pub const SCHEMA: &str = "public";

/// What a table shown to analysts is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    /// One of the engine's tables, or Parquet history in the store.
    Table,
    /// A standing view's snapshot.
    View,
}

impl TableKind {
    /// The Flight SQL table type.
    pub fn as_str(self) -> &'static str {
        match self {
            TableKind::Table => "TABLE",
            TableKind::View => "VIEW",
        }
    }
}

/// The table types a session has, for `GetTableTypes`.
pub const TABLE_TYPES: [TableKind; 2] = [TableKind::Table, TableKind::View];

/// A session and what is in it.
pub struct Session {
    pub ctx: SessionContext,
    /// Every table the role may read by name, with its kind and schema, in name order.
    pub tables: Vec<(String, TableKind, SchemaRef)>,
    /// The role the session reads as.
    pub role: String,
    /// The tables and views there are that the role may not read.
    pub withheld: Vec<String>,
}

/// The limits every session runs under.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub memory_bytes: usize,
    pub timeout: Duration,
}

/// A new session over what the engine holds now and the store's history,
/// holding what `role` may read.
pub async fn open(engine: &EngineHandle, storage: &Storage, catalog: &str, role: &RoleConfig, limits: Limits) -> Result<Session, String> {
    let runtime = RuntimeEnvBuilder::new().with_memory_limit(limits.memory_bytes, 1.0).build_arc().map_err(|e| e.to_string())?;
    let config = borderflow_queries::analyst_session_config().with_default_catalog_and_schema(catalog, SCHEMA);
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    let held = engine.tables().await?;
    borderflow_queries::udf::register(&ctx, Arc::new(held.keys));
    let mut session = Session { ctx, tables: Vec::new(), role: role.name.clone(), withheld: Vec::new() };
    for (kind, list) in [(TableKind::Table, held.tables), (TableKind::View, held.views)] {
        for (name, batch) in list {
            if !role.may_read(&name) {
                session.withheld.push(name);
                continue;
            }
            let schema = batch.schema();
            let table = MemTable::try_new(schema.clone(), vec![vec![batch]]).map_err(|e| format!("table `{name}`: {e}"))?;
            session.ctx.register_table(name.as_str(), Arc::new(table)).map_err(|e| format!("table `{name}`: {e}"))?;
            session.tables.push((name, kind, schema));
        }
    }
    // The Parquet history (view changelogs and written reads) and the
    // audit records (JSON), on a local store.
    if let Some(root) = storage.local_path("") {
        let parquet = || ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let mut stored = Vec::new();
        if let Ok(views) = std::fs::read_dir(root.join("views")) {
            for view in views.flatten() {
                let changes = view.path().join("changes");
                let has_parts = std::fs::read_dir(&changes).map(|mut d| d.next().is_some()).unwrap_or(false);
                if has_parts {
                    stored.push((format!("{}_changes", view.file_name().to_string_lossy()), changes, parquet(), None));
                }
            }
        }
        if root.join("reads").is_dir() {
            stored.push(("reads_history".to_string(), root.join("reads"), parquet(), Some(borderflow_types::plate_read_schema())));
        }
        let audit = root.join("audit").join(catalog).join("sql");
        if audit.is_dir() {
            let json = ListingOptions::new(Arc::new(JsonFormat::default())).with_file_extension(".json");
            stored.push((AUDIT_LOG_TABLE.to_string(), audit, json, Some(audit_log_schema())));
        }
        for (name, folder, options, schema) in stored {
            if !role.may_read(&name) {
                session.withheld.push(name);
                continue;
            }
            let url = format!("file://{}/", folder.display());
            match session.ctx.register_listing_table(name.as_str(), &url, options, schema, None).await {
                Ok(()) => match session.ctx.table_provider(name.as_str()).await {
                    Ok(provider) => session.tables.push((name, TableKind::Table, provider.schema())),
                    Err(error) => tracing::debug!(%error, table = %name, "stored table not registered"),
                },
                Err(error) => tracing::debug!(%error, table = %name, "stored table not registered"),
            }
        }
    }
    session.tables.sort_by(|a, b| a.0.cmp(&b.0));
    session.withheld.sort();
    Ok(session)
}

/// The columns of `audit_log`: one row per audit record (see the Flight
/// SQL server's module documentation).
pub fn audit_log_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let count = |name: &str| Field::new(name, DataType::Int64, true);
    Arc::new(Schema::new(vec![
        text("post_id"),
        text("request"),
        text("user"),
        text("role"),
        text("auth"),
        text("remote"),
        text("at"),
        text("sql"),
        text("command"),
        Field::new("parameters", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
        count("rows"),
        count("bytes"),
        text("error"),
        count("duration_ms"),
    ]))
}

/// What analysts may run: queries only. DataFusion's statement options
/// refuse DDL (`CREATE EXTERNAL TABLE`, `DROP`, …), DML and `COPY`
/// (`INSERT`, `DELETE`, `COPY … TO` a server path) and statements (`SET`,
/// `PREPARE`, transactions).
fn read_only() -> SQLOptions {
    SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false)
}

/// The kind of the first node of `plan` that would change the server or
/// the session (a DDL, DML, `COPY` or statement node), if any.
pub fn write_kind(plan: &LogicalPlan) -> Option<String> {
    let mut kind = None;
    let _ = plan.apply(|node| {
        kind = match node {
            LogicalPlan::Ddl(ddl) => Some(format!("DDL ({})", ddl.name())),
            LogicalPlan::Dml(dml) => Some(format!("DML ({} on `{}`)", dml.op.name(), dml.table_name)),
            LogicalPlan::Copy(copy) => Some(format!("COPY TO `{}`", copy.output_url)),
            LogicalPlan::Statement(statement) => Some(format!("statement ({})", statement.name())),
            _ => None,
        };
        Ok(if kind.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    });
    kind
}

/// Plans `sql` as an analyst's query in `session`: a table the session's
/// role may not read, and anything that would write (a file, a table, a
/// setting), are refused with what was refused named, before it runs. The
/// plan is checked twice: by [`write_kind`], which names what was refused,
/// and by DataFusion's own [`SQLOptions`] check.
pub async fn analyst_frame(session: &Session, sql: &str) -> Result<DataFrame, String> {
    let state = session.ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state.sql_to_statement(sql, &dialect).map_err(|e| e.to_string())?;
    let references = state.resolve_table_references(&statement).map_err(|e| e.to_string())?;
    if let Some(table) = references.iter().map(|r| r.table()).find(|t| session.withheld.iter().any(|w| w == t)) {
        return Err(format!("refused: role `{}` may not read `{table}` (`[[serve.role]]` read)", session.role));
    }
    let plan = state.statement_to_plan(statement).await.map_err(|e| e.to_string())?;
    if let Some(kind) = write_kind(&plan) {
        return Err(format!("refused: {kind}; analysts' sessions are read-only (queries only)"));
    }
    read_only().verify_plan(&plan).map_err(|e| format!("refused: {e}"))?;
    session.ctx.execute_logical_plan(plan).await.map_err(|e| e.to_string())
}

/// A statement planned but not run: its result's schema and its
/// parameters (`$1`, `$2`, … in order; `Null` where the type cannot be told).
pub struct Planned {
    pub schema: SchemaRef,
    pub parameters: SchemaRef,
}

/// Plans `sql` (a prepared statement).
pub async fn plan(session: &Session, sql: &str) -> Result<Planned, String> {
    let frame = analyst_frame(session, sql).await?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let types = frame.logical_plan().get_parameter_types().map_err(|e| e.to_string())?;
    let parameters = positional(&types)?.into_iter().map(|(name, data_type)| Field::new(name, data_type.unwrap_or(DataType::Null), true)).collect::<Vec<_>>();
    Ok(Planned { schema, parameters: Arc::new(Schema::new(parameters)) })
}

/// Placeholders `$1` … `$n` in order, with their types.
fn positional(types: &HashMap<String, Option<DataType>>) -> Result<Vec<(String, Option<DataType>)>, String> {
    let mut numbered = Vec::with_capacity(types.len());
    for (name, data_type) in types {
        let index: usize = name
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("parameter `{name}`: only positional parameters ($1, $2, …) can be bound"))?;
        numbered.push((index, name.clone(), data_type.clone()));
    }
    numbered.sort_by_key(|p| p.0);
    for (i, (index, name, _)) in numbered.iter().enumerate() {
        if *index != i + 1 {
            return Err(format!("parameter `{name}`: parameters must be numbered $1 to ${} without gaps", numbered.len()));
        }
    }
    Ok(numbered.into_iter().map(|(_, name, data_type)| (name, data_type)).collect())
}

/// The values of a parameter batch's one row, in column order, cast to the
/// types the statement's parameters have (`parameters`, from [`plan`]).
pub fn bind(batch: &RecordBatch, parameters: &Schema) -> Result<Vec<ScalarValue>, String> {
    if batch.num_rows() != 1 {
        return Err(format!("bound parameters: one row of values is bound at a time, got {} rows", batch.num_rows()));
    }
    if batch.num_columns() != parameters.fields().len() {
        return Err(format!("bound parameters: the statement has {} parameters, got {} values", parameters.fields().len(), batch.num_columns()));
    }
    let mut values = Vec::with_capacity(batch.num_columns());
    for (i, field) in parameters.fields().iter().enumerate() {
        let value = ScalarValue::try_from_array(batch.column(i), 0).map_err(|e| format!("bound parameter {}: {e}", field.name()))?;
        let value = match field.data_type() {
            DataType::Null => value,
            wanted => value.cast_to(wanted).map_err(|e| format!("bound parameter {} ({}): not a {wanted}: {e}", field.name(), batch.schema().field(i).data_type()))?,
        };
        values.push(value);
    }
    Ok(values)
}

/// Runs `sql` with `parameters` (if any) within the session's limits.
pub async fn run(session: &Session, sql: &str, parameters: Option<&[ScalarValue]>, limits: Limits) -> Result<RecordBatch, String> {
    let run = async {
        let mut frame = analyst_frame(session, sql).await?;
        if let Some(values) = parameters {
            frame = frame.with_param_values(ParamValues::from(values.to_vec())).map_err(|e| e.to_string())?;
        }
        let schema = Arc::new(frame.schema().as_arrow().clone());
        // The answer is held until its DoGet, outside DataFusion's memory
        // pool: it counts against the same limit, and the query stops as
        // soon as it is over.
        let mut stream = frame.execute_stream().await.map_err(|e| e.to_string())?;
        let (mut batches, mut bytes) = (Vec::new(), 0usize);
        while let Some(batch) = futures::StreamExt::next(&mut stream).await {
            let batch = batch.map_err(|e| e.to_string())?;
            bytes += batch.get_array_memory_size();
            if bytes > limits.memory_bytes {
                return Err(format!(
                    "the answer is larger than the query memory limit of {} MiB (`[serve] query_memory_mb`): select fewer rows or columns",
                    limits.memory_bytes >> 20
                ));
            }
            batches.push(batch);
        }
        arrow::compute::concat_batches(&schema, &batches).map_err(|e| e.to_string())
    };
    match tokio::time::timeout(limits.timeout, run).await {
        Ok(result) => result,
        Err(_) => Err(format!("the query ran longer than the limit of {:?} and was cancelled", limits.timeout)),
    }
}
