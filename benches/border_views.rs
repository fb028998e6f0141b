//! The standard views (`queries/sql/`: cross-border matches, dwell times,
//! risk flags and their helper views) over a simulated day at every
//! crossing, with read noise, fed tick by tick (5 minutes of traffic per
//! commit) as the demo feeds them. The baseline is DataFusion computing
//! every view in batch over the whole day once: what a system without
//! incremental maintenance would pay at every tick. Prints one JSON object:
//! reads, commits, reads per second through the views, median and p99
//! milliseconds per commit, and the batch baseline's milliseconds.
//!
//! `BENCH_SCALE` sets the traffic (default 0.1 of a normal day),
//! `BENCH_WORKERS` the timely workers (default 2), `BENCH_TICK_MS` the
//! traffic per commit (default 300 000: 5 minutes); `BENCH_TRACE=1` prints
//! each commit's reads and milliseconds to stderr. Run with
//! `cargo bench --bench border_views` (add `--profile dev` for a quick build).

use std::time::Instant;

use borderflow::engine::{PostTables, demo_exchange_keys, feed_reads, post_views};
use borderflow_connectors::scenario::{ReadNoise, ScenarioConfig, generate};
use borderflow_engine::{Direction, PlateRead, conform_watchlist};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let scale: f64 = env("BENCH_SCALE", 0.1);
    let workers: usize = env("BENCH_WORKERS", 2);
    let tick_ms: i64 = env("BENCH_TICK_MS", 300_000);
    let trace = env("BENCH_TRACE", 0) != 0;
    let scenario = generate(&ScenarioConfig {
        seed: 11,
        traffic_scale: scale,
        noise: ReadNoise { miss_rate: 0.01, wrong_char_rate: 0.02 },
        ..ScenarioConfig::default()
    });
    let keys = demo_exchange_keys();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let watchlist = conform_watchlist(&scenario.watchlist_batch(), "scenario").expect("scenario watchlist conforms");
    let post = PostTables { views: &[], tables: &[], watchlist: &watchlist, keys: &keys, standard: true };
    let mut views = rt.block_on(post_views(&post, &borderflow::engine::Runtime::with_workers(workers))).expect("standard views are created");

    let mut commit_ms = Vec::new();
    let started = Instant::now();
    let mut start = 0;
    while start < scenario.reads.len() {
        let tick = scenario.reads[start].captured_at_ms.div_euclid(tick_ms);
        let end = start + scenario.reads[start..].iter().take_while(|r| r.captured_at_ms.div_euclid(tick_ms) == tick).count();
        let reads = &scenario.reads[start..end];
        let exits: Vec<PlateRead> = reads.iter().filter(|r| r.direction == Direction::Exit).cloned().collect();
        let commit = Instant::now();
        feed_reads(&mut views, reads, &exits, &keys).expect("reads are accepted");
        views.commit_at(((tick + 1) * tick_ms) as u64);
        commit_ms.push(commit.elapsed().as_secs_f64() * 1e3);
        if trace {
            eprintln!("commit {tick} reads {} ms {:.1}", reads.len(), commit_ms[commit_ms.len() - 1]);
        }
        start = end;
    }
    let total_s = started.elapsed().as_secs_f64();

    let batch = Instant::now();
    let mut batch_rows = 0;
    for name in views.view_names() {
        batch_rows += rt.block_on(views.batch_answer(&name)).expect("batch answer").num_rows();
    }
    let batch_ms = batch.elapsed().as_secs_f64() * 1e3;
    let view_rows: usize = views.view_names().iter().map(|n| views.snapshot(n).expect("snapshot").num_rows()).sum();

    let reads = scenario.reads.len();
    let commits = commit_ms.len();
    println!(
        "{{\"bench\":\"border_views\",\"scale\":{scale},\"workers\":{workers},\"tick_ms\":{tick_ms},\"views\":{},\"reads\":{reads},\"commits\":{commits},\
\"reads_per_s\":{:.0},\"commit_ms_p50\":{:.1},\"commit_ms_p99\":{:.1},\"batch_all_views_ms\":{batch_ms:.0},\
\"view_rows\":{view_rows},\"batch_rows\":{batch_rows}}}",
        views.view_names().len(),
        reads as f64 / total_s,
        percentile(&mut commit_ms.clone(), 0.5),
        percentile(&mut commit_ms, 0.99),
    );
}
