//! Durability: write-ahead log append throughput with durable writes
//! (fdatasync before each append returns) and recovery time (reading the
//! log back and replaying it into a post's standing views) per million
//! reads. Prints one JSON object. Run with
//! `cargo bench --profile dev --bench durability` (`BENCH_READS`,
//! `BENCH_BATCH` to vary; defaults 200 000 reads in batches of 1 000).

use std::time::Instant;

use borderflow::{Engine, EngineOptions};
use borderflow_connectors::scenario::{ScenarioConfig, generate};
use borderflow_engine::wal::{Wal, WalOp, WalOptions};
use borderflow_engine::{PlateRead, PostConfig, Storage, reads_to_batch};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `n` reads: a scenario day for Otaci, repeated with fresh ids and times.
fn reads(n: usize) -> Vec<PlateRead> {
    let day = generate(&ScenarioConfig { traffic_scale: 2.0, ..ScenarioConfig::default() });
    let base: Vec<PlateRead> = day.reads.into_iter().collect();
    let span = 86_400_000;
    (0..n)
        .map(|i| {
            let mut read = base[i % base.len()].clone();
            let round = (i / base.len()) as i64;
            read.read_id = format!("{}-{i}", read.read_id);
            read.captured_at_ms += round * span / 8;
            read
        })
        .collect()
}

fn main() {
    let total = env("BENCH_READS", 200_000);
    let batch = env("BENCH_BATCH", 1_000).max(1);
    let mut reads = reads(total);
    reads.sort_by_key(|r| r.captured_at_ms);
    let batches: Vec<_> = reads.chunks(batch).map(reads_to_batch).collect();
    let dir = std::env::temp_dir().join(format!("borderflow-bench-durability-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench folder");
    let config_text = "[post]\nid = \"otaci\"\nname = \"Otaci\"\ncountry = \"MD\"\ncrossing = \"otaci-mohyliv-podilskyi\"\n\
        [storage]\nurl = \"file://./store\"\nretention = { reads = \"3650d\" }\n\
        [[view]]\nname = \"passages\"\nsql = \"SELECT post_id, direction, point, count(*) AS n FROM reads GROUP BY post_id, direction, point\"\n";
    let config = PostConfig::from_toml(config_text, &dir.join("post.toml")).expect("config");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");

    // Append: every batch is durable (fdatasync) before the next.
    let mut options = WalOptions::new("otaci");
    options.event_columns.insert("reads".into(), "captured_at".into());
    let storage = Storage::open(&config.storage).expect("storage");
    let (mut wal, _, _) = runtime.block_on(Wal::open(storage, options)).expect("log");
    let first_time = reads.first().map_or(1, |r| r.captured_at_ms.max(1) as u64);
    let started = Instant::now();
    for (i, b) in batches.iter().enumerate() {
        runtime.block_on(wal.append(first_time + i as u64, WalOp::Insert, "reads", b)).expect("append");
    }
    let append_s = started.elapsed().as_secs_f64();
    let (segments, bytes) = wal.size();
    drop(wal);

    // Recovery: open the engine on that log (read, check, replay into the views).
    let started = Instant::now();
    let engine = Engine::open(config, EngineOptions::default()).expect("recovery");
    let open_s = started.elapsed().as_secs_f64();
    let recovery = engine.recovery().clone();
    assert_eq!(recovery.reads, total);
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);

    let replay_s = recovery.duration.as_secs_f64();
    println!(
        r#"{{"bench": "durability", "reads": {total}, "batch": {batch}, "append": {{"seconds": {append_s:.3}, "reads_per_s": {:.0}, "appends_per_s": {:.0}, "segments": {segments}, "bytes_per_read": {:.1}}}, "recovery": {{"seconds": {replay_s:.3}, "engine_open_seconds": {open_s:.3}, "records": {}, "seconds_per_million_reads": {:.2}}}}}"#,
        total as f64 / append_s,
        batches.len() as f64 / append_s,
        bytes as f64 / total as f64,
        recovery.records,
        replay_s * 1e6 / total as f64,
    );
}
