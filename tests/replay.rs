//! `borderflow replay` backfills standing views from Parquet: a simulated
//! day of Otaci's reads, written as two Parquet files in nested folders, fed
//! in capture order through four views (a filter, an interval self-join, a
//! GROUP BY, a view over a view). Each snapshot it writes must equal what
//! DataFusion computes in batch over the same files with the same SQL, and
//! its JSON line must count the rows and commits it made. Bad input is
//! refused with what and where.

mod common;

use std::process::Command;
use std::sync::Arc;

use borderflow::engine::{PostConfig, reads_to_batch};
use datafusion::prelude::{ParquetReadOptions, SessionContext};

const VIEWS: &str = "
-- Exit reads.
CREATE VIEW exits AS SELECT read_id, plate_norm, lane, captured_at FROM reads WHERE direction = 'exit';
-- Arrival to departure at the post within an hour, per vehicle.
CREATE VIEW dwell AS
  SELECT a.read_id AS arrival, d.read_id AS departure, a.plate_norm, a.direction
  FROM reads a JOIN reads d ON a.plate_norm = d.plate_norm AND a.direction = d.direction
  WHERE a.point = 'arrival' AND d.point = 'departure'
    AND d.captured_at BETWEEN a.captured_at AND a.captured_at + INTERVAL '1 hour';
CREATE VIEW per_hour AS
  SELECT direction, date_trunc('hour', captured_at) AS hour, count(*) AS reads, max(confidence) AS best
  FROM reads GROUP BY direction, date_trunc('hour', captured_at);
-- A view over a view.
CREATE VIEW busy_lanes AS SELECT lane, count(*) AS exits FROM exits GROUP BY lane HAVING count(*) > 10;
";

fn replay(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_borderflow")).args(["--workers", "2", "replay"]).args(args).output().expect("replay runs")
}

#[test]
fn replayed_views_equal_datafusion_over_the_same_parquet() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = common::write_config(dir.path(), "post.toml", "url = \"file://./data\"", 1, 0.3);
    let post = PostConfig::from_file(&config).expect("config");
    let (ticks, _) = borderflow::cli::run::follow::scenario_ticks(&post, 300_000).expect("ticks");
    let mut reads: Vec<_> = ticks.into_iter().flat_map(|(_, reads)| reads).collect();
    assert!(reads.len() > 1000, "the day has reads: {}", reads.len());
    // Stored out of capture order, in two files: replay must order them.
    reads.reverse();
    let half = reads.len() / 2;
    for (i, part) in [&reads[..half], &reads[half..]].into_iter().enumerate() {
        let folder = dir.path().join(format!("reads/part={i}"));
        std::fs::create_dir_all(&folder).expect("folder");
        let bytes = borderflow::engine::history::parquet_bytes(&reads_to_batch(part)).expect("parquet");
        std::fs::write(folder.join("reads.parquet"), bytes).expect("write parquet");
    }
    let views = dir.path().join("views.sql");
    std::fs::write(&views, VIEWS).expect("views");
    let out = dir.path().join("snapshots");
    let table = format!("reads={}", dir.path().join("reads").display());
    let output = replay(&[
        "--table",
        &table,
        "--views",
        views.to_str().expect("path"),
        "--order-by",
        "captured_at",
        "--batch-rows",
        "500",
        "--out",
        out.to_str().expect("path"),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let figures: serde_json::Value = serde_json::from_str(stdout.lines().last().expect("a JSON line")).expect("JSON");
    assert_eq!(figures["rows"], reads.len(), "{figures}");
    assert_eq!(figures["commits"], reads.len().div_ceil(500), "{figures}");
    assert_eq!(figures["views"], 4, "{figures}");
    assert!(figures["rows_per_s"].as_f64().is_some_and(|r| r > 0.0) && figures["peak_rss_mib"].as_f64().is_some_and(|m| m > 0.0), "{figures}");

    // The oracle: DataFusion, in batch, over the same files and SQL.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let ctx = SessionContext::new();
        ctx.register_parquet("reads", &format!("{}/", dir.path().join("reads").display()), ParquetReadOptions::default()).await.expect("reads");
        for statement in VIEWS.split(';').filter(|s| s.contains("CREATE")) {
            ctx.sql(statement).await.expect("view created in DataFusion");
        }
        for view in ["exits", "dwell", "per_hour", "busy_lanes"] {
            let snapshot = out.join(format!("{view}.parquet"));
            assert!(snapshot.is_file(), "no snapshot of {view}");
            let table = format!("replayed_{view}");
            ctx.register_parquet(&table, snapshot.to_str().expect("path"), ParquetReadOptions::default()).await.expect("snapshot");
            let count = |sql: String| {
                let ctx = ctx.clone();
                async move {
                    let batches = ctx.sql(&sql).await.expect("oracle query").collect().await.expect("oracle rows");
                    batches.iter().map(|b| b.num_rows()).sum::<usize>()
                }
            };
            let expected = count(format!("SELECT * FROM {view}")).await;
            let replayed = count(format!("SELECT * FROM {table}")).await;
            assert_eq!(replayed, expected, "{view}: row counts differ");
            assert!(expected > 0, "{view} is empty: the test would prove nothing");
            assert_eq!(count(format!("SELECT * FROM {table} EXCEPT ALL SELECT * FROM {view}")).await, 0, "{view}: replayed rows DataFusion does not have");
            assert_eq!(count(format!("SELECT * FROM {view} EXCEPT ALL SELECT * FROM {table}")).await, 0, "{view}: rows the replay lost");
        }
    });
}

#[test]
fn bad_replay_input_is_refused_with_what_and_where() {
    let dir = tempfile::tempdir().expect("temp dir");
    let views = dir.path().join("views.sql");
    std::fs::write(&views, "CREATE VIEW ok AS SELECT 1 AS x;\nINSERT INTO t VALUES (1);").expect("views");
    let table = dir.path().join("t.parquet");
    let batch = arrow::array::RecordBatch::try_from_iter([("x", Arc::new(arrow::array::Int64Array::from(vec![1, 2])) as arrow::array::ArrayRef)]).expect("batch");
    std::fs::write(&table, borderflow::engine::history::parquet_bytes(&batch).expect("parquet")).expect("write");
    let refused = |args: &[&str], expected: &str| {
        let output = replay(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains(expected), "expected `{expected}`, got:\n{stderr}");
    };
    let table_spec = format!("t={}", table.display());
    let views_path = views.to_str().expect("path");
    refused(&["--table", "t", "--views", views_path], "--table t: write NAME=PATH");
    refused(&["--table", "t=/nonexistent/folder", "--views", views_path], "does not exist");
    refused(&["--table", &table_spec, "--views", views_path], "statement 2: only `CREATE VIEW name AS SELECT …` is replayed");
    std::fs::write(&views, "CREATE VIEW ok AS SELECT x FROM t;").expect("views");
    refused(&["--table", &table_spec, "--views", views_path, "--order-by", "y"], "--order-by y: no table has such a column");
}
