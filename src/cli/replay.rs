//! `borderflow replay`: backfill standing views from Parquet. Loads each
//! `--table NAME=PATH` (a Parquet file or a folder of them), creates the
//! views of each `--views FILE.sql` (`CREATE VIEW name AS SELECT …;`),
//! feeds the tables' rows in `--order-by` order in commits of
//! `--batch-rows` rows, writes each view's snapshot to `--out` and prints
//! one JSON line of figures last. It is how a new view is computed over
//! history, and the driver of the views benchmarks.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, UInt32Array};
use arrow::datatypes::DataType;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::engine::Runtime;
use crate::engine::queries::StandingViews;

/// What `replay` was asked.
pub struct ReplayOptions {
    pub tables: Vec<String>,
    pub views: Vec<PathBuf>,
    pub batch_rows: usize,
    pub order_by: Option<String>,
    pub out: Option<PathBuf>,
}

/// One table's rows, in feeding order.
struct Loaded {
    name: String,
    batch: RecordBatch,
}

pub fn command(runtime: Runtime, options: ReplayOptions) -> Result<(), String> {
    if options.batch_rows == 0 {
        return Err("--batch-rows: at least 1".into());
    }
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| format!("async runtime: {e}"))?;
    let tables = tokio.block_on(load_tables(&options.tables, options.order_by.as_deref()))?;
    let mut views = StandingViews::on(&runtime).map_err(|e| e.to_string())?;
    // Only the snapshots are written.
    views.keep_changelogs(false);
    views.keep_table_contents(false);
    for table in &tables {
        views.register_table(&table.name, table.batch.schema()).map_err(|e| format!("--table {}: {e}", table.name))?;
    }
    let mut names = Vec::new();
    for file in &options.views {
        for (name, sql) in view_statements(file)? {
            tokio.block_on(views.create_view(&name, &sql)).map_err(|e| format!("{}: view `{name}`: {e}", file.display()))?;
            names.push(name);
        }
    }
    if names.is_empty() {
        return Err("no views: give --views FILE.sql with `CREATE VIEW name AS SELECT …;` statements".into());
    }
    let order = feeding_order(&tables, options.order_by.as_deref())?;
    let rows = order.len();
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(rows as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows, {per_sec}, {eta} left") {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let started = Instant::now();
    let mut commit_ms = Vec::with_capacity(rows.div_ceil(options.batch_rows));
    for chunk in order.chunks(options.batch_rows) {
        let commit_started = Instant::now();
        for (t, table) in tables.iter().enumerate() {
            let indices: UInt32Array = chunk.iter().filter(|(i, _)| *i == t).map(|(_, row)| *row).collect();
            if indices.is_empty() {
                continue;
            }
            let batch = arrow::compute::take_record_batch(&table.batch, &indices).map_err(|e| format!("table {}: {e}", table.name))?;
            views.insert(&table.name, &batch).map_err(|e| format!("table {}: {e}", table.name))?;
        }
        views.commit();
        commit_ms.push(commit_started.elapsed().as_secs_f64() * 1e3);
        bar.inc(chunk.len() as u64);
    }
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if let Some(out) = &options.out {
        std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
        for name in &names {
            let snapshot = views.snapshot(name).map_err(|e| e.to_string())?;
            let path = out.join(format!("{name}.parquet"));
            let bytes = crate::engine::history::parquet_bytes(&snapshot)?;
            std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    commit_ms.sort_by(f64::total_cmp);
    let percentile = |p: f64| commit_ms.get(((commit_ms.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
    let figures = serde_json::json!({
        "rows": rows,
        "views": names.len(),
        "workers": views.workers(),
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows as f64 / seconds.max(1e-9), 0),
        "commits": commit_ms.len(),
        "commit_ms_p50": round(percentile(0.5), 2),
        "commit_ms_p99": round(percentile(0.99), 2),
        "peak_rss_mib": peak_rss_mib().map(|m| round(m, 1)),
    });
    println!("{figures}");
    Ok(())
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// Reads every `NAME=PATH` table, sorted by `order_by` when it has that column.
async fn load_tables(specs: &[String], order_by: Option<&str>) -> Result<Vec<Loaded>, String> {
    if specs.is_empty() {
        return Err("no tables: give --table NAME=PATH (a Parquet file or folder)".into());
    }
    // Nested folders (post, date) are listed in full, as analysts' sessions do.
    let ctx = SessionContext::new_with_config(borderflow_queries::analyst_session_config());
    let mut tables = Vec::with_capacity(specs.len());
    for spec in specs {
        let Some((name, path)) = spec.split_once('=') else {
            return Err(format!("--table {spec}: write NAME=PATH"));
        };
        let path = std::path::absolute(Path::new(path)).map_err(|e| format!("--table {spec}: {e}"))?;
        if !path.exists() {
            return Err(format!("--table {spec}: {} does not exist", path.display()));
        }
        let mut location = path.to_string_lossy().to_string();
        if path.is_dir() && !location.ends_with('/') {
            location.push('/');
        }
        ctx.register_parquet(name, &location, ParquetReadOptions::default()).await.map_err(|e| format!("--table {spec}: {e}"))?;
        let frame = ctx.table(name).await.map_err(|e| format!("--table {spec}: {e}"))?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.map_err(|e| format!("--table {spec}: {e}"))?;
        let batch = arrow::compute::concat_batches(&schema, &batches).map_err(|e| format!("--table {spec}: {e}"))?;
        tables.push(Loaded { name: name.to_string(), batch });
    }
    if let Some(column) = order_by
        && !tables.iter().any(|t| t.batch.schema().column_with_name(column).is_some())
    {
        return Err(format!("--order-by {column}: no table has such a column"));
    }
    Ok(tables)
}

/// The `CREATE VIEW name AS …` statements of `file`, as (name, SQL of the query).
fn view_statements(file: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let statements = DFParser::parse_sql_with_dialect(&text, &GenericDialect {}).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut views = Vec::with_capacity(statements.len());
    for (i, statement) in statements.into_iter().enumerate() {
        match statement {
            DfStatement::Statement(boxed) => match *boxed {
                Statement::CreateView(create) => views.push((create.name.to_string(), create.query.to_string())),
                other => return Err(format!("{}: statement {}: only `CREATE VIEW name AS SELECT …` is replayed, not `{other}`", file.display(), i + 1)),
            },
            other => return Err(format!("{}: statement {}: only `CREATE VIEW name AS SELECT …` is replayed, not `{other}`", file.display(), i + 1)),
        }
    }
    Ok(views)
}

/// Every row of every table as (table, row), in the order they are fed: by
/// `order_by` across the tables that have it (ties and tables without it
/// in the order given), else table after table.
fn feeding_order(tables: &[Loaded], order_by: Option<&str>) -> Result<Vec<(usize, u32)>, String> {
    let mut keyed: Vec<(i64, usize, u32)> = Vec::with_capacity(tables.iter().map(|t| t.batch.num_rows()).sum());
    for (t, table) in tables.iter().enumerate() {
        let keys = match order_by.and_then(|column| table.batch.column_by_name(column)) {
            Some(column) => Some(order_keys(column).map_err(|e| format!("--order-by on table {}: {e}", table.name))?),
            None => None,
        };
        let rows = u32::try_from(table.batch.num_rows()).map_err(|_| format!("table {}: more than 4 294 967 295 rows", table.name))?;
        for row in 0..rows {
            let key = match &keys {
                Some(keys) if keys.is_valid(row as usize) => keys.value(row as usize),
                Some(_) => i64::MIN,
                None => 0,
            };
            keyed.push((key, t, row));
        }
    }
    if order_by.is_some() {
        keyed.sort_by_key(|(key, t, row)| (*key, *t, *row));
    }
    Ok(keyed.into_iter().map(|(_, t, row)| (t, row)).collect())
}

/// A column's values as integers that sort like them: integers and
/// timestamps as they are, anything else refused.
fn order_keys(column: &ArrayRef) -> Result<Int64Array, String> {
    let integer = match column.data_type() {
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            arrow::compute::cast(column, &DataType::Int64).map_err(|e| e.to_string())?
        }
        t if t.is_integer() => arrow::compute::cast(column, &DataType::Int64).map_err(|e| e.to_string())?,
        other => return Err(format!("a column of {other} cannot order the feed; use an integer or a timestamp")),
    };
    integer.as_any().downcast_ref::<Int64Array>().cloned().ok_or_else(|| "not integers".to_string())
}

/// The process's peak resident memory, in MiB (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
