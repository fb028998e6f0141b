//! View maintenance against re-running the query: for a filter/projection
//! view, a two-way join view and two group-by views over a table of
//! `BENCH_ROWS` reads (default 1 000 000), updates arrive in batches (each
//! inserts `BENCH_BATCH` new reads and retracts as many old ones). The
//! standing view absorbs each batch incrementally; the baseline re-runs the
//! view's query in DataFusion over the whole table after each batch, as a
//! system without incremental maintenance would. Prints one JSON object:
//! per view, median milliseconds per batch and updates (row changes) per
//! second for both, and their ratio. Run with `make bench` or
//! `cargo bench --bench views` (add `--profile dev` for a quick build).

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use borderflow_queries::StandingViews;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

const POSTS: [&str; 8] = ["criva", "mamalyha", "otaci", "mohyliv-podilskyi", "tudora", "starokazachie", "vulcanesti", "vinogradovca"];

const VIEWS: &[(&str, &str)] = &[
    ("filter_project", "SELECT read_id, upper(post_id) AS post, dwell_s / 60 AS dwell_min FROM reads WHERE dwell_s > 3000 AND post_id <> 'otaci'"),
    ("join", "SELECT r.read_id, r.post_id, w.severity FROM reads r JOIN watchlist w ON r.plate = w.plate WHERE w.severity >= 2"),
    ("group_by_plate", "SELECT plate, count(*) AS n, max(dwell_s) AS longest FROM reads GROUP BY plate"),
    ("group_by_post", "SELECT post_id, count(*) AS n, sum(dwell_s) AS total, avg(dwell_s) AS mean FROM reads GROUP BY post_id"),
];

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn reads_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("read_id", DataType::Int64, false),
        Field::new("post_id", DataType::Utf8, false),
        Field::new("plate", DataType::Utf8, false),
        Field::new("dwell_s", DataType::Float64, false),
    ]))
}

fn watchlist_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("plate", DataType::Utf8, false), Field::new("severity", DataType::Int64, false)]))
}

fn plate(i: i64) -> String {
    format!("P{:06}", i % 200_000)
}

fn reads(ids: std::ops::Range<i64>) -> RecordBatch {
    RecordBatch::try_new(
        reads_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(ids.clone())),
            Arc::new(StringArray::from_iter_values(ids.clone().map(|i| POSTS[(i as usize * 7 + i as usize / 13) % 8]))),
            Arc::new(StringArray::from_iter_values(ids.clone().map(plate))),
            Arc::new(Float64Array::from_iter_values(ids.map(|i| ((i * 37) % 3600) as f64))),
        ],
    )
    .expect("batch")
}

fn watchlist() -> RecordBatch {
    let plates: Vec<i64> = (0..20_000).map(|i| i * 10).collect();
    RecordBatch::try_new(
        watchlist_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(plates.iter().map(|&i| plate(i)))),
            Arc::new(Int64Array::from_iter_values(plates.iter().map(|&i| i % 4))),
        ],
    )
    .expect("batch")
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The table as DataFusion would hold it: the initial chunks plus each
/// batch of changes applied (retracted ids filtered out).
struct Baseline {
    batches: Vec<RecordBatch>,
}

impl Baseline {
    fn apply(&mut self, insert: RecordBatch, retract_below: i64) {
        let keep = |b: &RecordBatch| {
            let ids = b.column(0).as_any().downcast_ref::<Int64Array>().expect("ids");
            let mask: arrow::array::BooleanArray = ids.iter().map(|id| Some(id.unwrap_or(0) >= retract_below)).collect();
            arrow::compute::filter_record_batch(b, &mask).expect("filter")
        };
        self.batches = self.batches.iter().map(keep).filter(|b| b.num_rows() > 0).collect();
        self.batches.push(insert);
    }

    async fn run(&self, sql: &str) -> usize {
        let ctx = SessionContext::new();
        let table = MemTable::try_new(reads_schema(), vec![self.batches.clone()]).expect("table");
        ctx.register_table("reads", Arc::new(table)).expect("register");
        ctx.register_batch("watchlist", watchlist()).expect("watchlist");
        let out = ctx.sql(sql).await.expect("plan").collect().await.expect("run");
        out.iter().map(|b| b.num_rows()).sum()
    }
}

fn main() {
    let rows = env("BENCH_ROWS", 1_000_000) as i64;
    let batch = env("BENCH_BATCH", 1_000) as i64;
    let batches = env("BENCH_BATCHES", 9);
    let workers = env("BENCH_WORKERS", 1);
    let chunk = 100_000;
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("tokio");
    let mut results = Vec::new();
    for (name, sql) in VIEWS {
        let mut views = StandingViews::with_workers(workers).expect("workers");
        views.register_table("reads", reads_schema()).expect("reads");
        views.register_table("watchlist", watchlist_schema()).expect("watchlist");
        views.insert("watchlist", &watchlist()).expect("watchlist");
        tokio.block_on(views.create_view(name, sql)).expect("view");
        let load = Instant::now();
        let mut start = 0;
        let mut initial = Vec::new();
        while start < rows {
            let part = reads(start..(start + chunk).min(rows));
            views.insert("reads", &part).expect("insert");
            views.commit();
            initial.push(part);
            start += chunk;
        }
        let load_s = load.elapsed().as_secs_f64();
        let mut baseline = Baseline { batches: initial };

        let (mut incremental_ms, mut rerun_ms) = (Vec::new(), Vec::new());
        for k in 0..batches as i64 {
            let insert = reads(rows + k * batch..rows + (k + 1) * batch);
            let retract = reads(k * batch..(k + 1) * batch);
            let started = Instant::now();
            views.insert("reads", &insert).expect("insert");
            views.retract("reads", &retract).expect("retract");
            views.commit();
            incremental_ms.push(started.elapsed().as_secs_f64() * 1000.0);

            baseline.apply(insert, (k + 1) * batch);
            let started = Instant::now();
            std::hint::black_box(tokio.block_on(baseline.run(sql)));
            rerun_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let updates = 2.0 * batch as f64;
        let (inc, rerun) = (median(incremental_ms), median(rerun_ms));
        let view_rows = views.snapshot(name).expect("snapshot").num_rows();
        results.push(format!(
            "{{\"view\":\"{name}\",\"view_rows\":{view_rows},\"initial_load_rows_per_s\":{:.0},\
             \"incremental_ms_per_batch\":{inc:.1},\"incremental_updates_per_s\":{:.0},\
             \"rerun_ms_per_batch\":{rerun:.1},\"rerun_updates_per_s\":{:.0},\"speedup\":{:.1}}}",
            rows as f64 / load_s,
            updates / inc * 1000.0,
            updates / rerun * 1000.0,
            rerun / inc,
        ));
    }
    println!(
        "{{\"bench\":\"views\",\"profile\":\"{}\",\"rows\":{rows},\"batch_inserts\":{batch},\"batch_retracts\":{batch},\"batches\":{batches},\
         \"workers\":{workers},\"peak_rss_mib\":{:.0},\"views\":[{}]}}",
        if cfg!(debug_assertions) { "dev" } else { "release" },
        peak_rss_mib(),
        results.join(",")
    );
}
