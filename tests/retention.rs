//! Retention: with a one-day retention and a three-day scenario, after the
//! run no read older than a day before the last commit is in the object
//! store (the write-ahead log and the reads' Parquet history) or in any
//! view, old changelog parts are gone, plate crops older than their own
//! (shorter) retention are gone, and the audit records say what went and
//! when.

mod common;

use std::collections::HashMap;

use borderflow::{Engine, EngineOptions};
use borderflow::engine::{PostConfig, Storage, reads_to_batch};
use common::{outputs, write_config};

const DAY_MS: i64 = 86_400_000;

#[test]
fn a_one_day_retention_keeps_one_day() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_config(
        dir.path(),
        "post.toml",
        "url = \"file://./store\"\nretention = { reads = \"1d\", flags = \"1d\", crops = \"12h\" }",
        3,
        0.15,
    );
    // The scenario fed as `run --follow` feeds it, each read's crop written
    // just before the read is pushed, as the cameras do.
    let config = PostConfig::from_file(&path).expect("config");
    let (ticks, watchlist) = borderflow::cli::run::follow::scenario_ticks(&config, 300_000).expect("ticks");
    let mut engine = Engine::open(config.clone(), EngineOptions::default()).expect("engine opens");
    let mut captured: HashMap<String, i64> = HashMap::new();
    for (i, (time, reads)) in ticks.iter().enumerate() {
        if i == 0 {
            engine.upsert_watchlist_at(&watchlist, *time).expect("watchlist");
            continue;
        }
        for read in reads {
            let date = chrono::DateTime::from_timestamp_millis(read.captured_at_ms).expect("time").date_naive();
            engine.put_object(&format!("crops/otaci/{date}/{}.jpg", read.read_id), b"crop".to_vec()).expect("crop written");
            captured.insert(read.read_id.clone(), read.captured_at_ms);
        }
        engine.push_reads_at(&reads_to_batch(reads), *time).expect("reads pushed");
    }
    engine.flush().expect("flush");
    engine.shutdown().expect("shutdown");
    let out = outputs(&config);

    let last_commit = out.logged_reads.iter().map(|(t, _)| *t as i64).max().expect("reads were logged");
    let cutoff = last_commit - DAY_MS;
    assert!(!out.logged_captured_at.is_empty());
    let oldest = *out.logged_captured_at.iter().min().expect("reads");
    assert!(oldest >= cutoff, "a read captured {} ms before the cutoff is still in the log", cutoff - oldest);
    // Only the last day's reads are left: far fewer than three days'.
    let first_commit = out.logged_reads.iter().map(|(t, _)| *t as i64).min().expect("reads");
    assert!(first_commit >= cutoff - 300_000, "log starts {} ms before the cutoff", cutoff - first_commit);

    // Every view: all_reads holds exactly the reads the log holds, none old.
    let all_reads = &out.snapshots["all_reads"];
    assert_eq!(all_reads.len(), out.logged_reads.len(), "the view holds what the log holds");
    for row in all_reads {
        let captured: i64 = row.rsplit('|').next().and_then(|t| t.parse().ok()).expect("captured_at");
        assert!(captured >= cutoff, "view all_reads still holds {row}");
    }
    for row in &out.snapshots["last_hour_exits"] {
        let captured: i64 = row.rsplit('|').next().and_then(|t| t.parse().ok()).expect("captured_at");
        assert!(captured >= cutoff, "view last_hour_exits still holds {row}");
    }

    // Changelog parts older than a day (flags) were deleted; newer ones stay.
    let storage = Storage::open(&config.storage).expect("storage");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let parts = runtime.block_on(storage.list("views")).expect("views");
    let part_ends: Vec<i64> = parts
        .iter()
        .filter_map(|o| o.path.rsplit_once("-").and_then(|(_, to)| to.strip_suffix(".parquet")).and_then(|t| t.parse().ok()))
        .collect();
    assert!(!part_ends.is_empty());
    assert!(part_ends.iter().all(|&to| to >= cutoff), "a changelog part ending before the cutoff is left");

    // The audit records: what went (the first days' partitions), and when.
    let audits = runtime.block_on(storage.list("audit/otaci/retention")).expect("audit");
    assert!(audits.len() >= 2, "one audit record per sweep that deleted something: {audits:?}");
    let mut partitions = Vec::new();
    let mut rows_deleted = 0;
    for audit in &audits {
        let text = runtime.block_on(storage.get(&audit.path)).expect("audit record");
        let record: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
        assert!(record["wall_time"].is_string() && record["engine_time"].is_string(), "{record}");
        rows_deleted += record["reads"]["rows_deleted"].as_u64().expect("rows_deleted");
        for p in record["reads"]["partitions_deleted"].as_array().expect("partitions") {
            partitions.push(p.as_str().expect("path").to_string());
        }
    }
    // The scenario's days are local (UTC+2): the log starts on 2026-11-26
    // UTC with the watchlist upsert, which has no retention and stays; the
    // first whole UTC day's partition went whole.
    assert!(partitions.contains(&"wal/otaci/2026-11-27".to_string()), "{partitions:?}");
    assert!(!dir.path().join("store/wal/otaci/2026-11-27").exists());
    // The reads' history: what the log holds, each once, nothing older than a day.
    let logged: Vec<&String> = {
        let mut ids: Vec<&String> = out.logged_reads.iter().map(|(_, id)| id).collect();
        ids.sort();
        ids
    };
    assert_eq!(out.history.iter().map(|(id, _)| id).collect::<Vec<_>>(), logged, "the history holds the logged reads");
    assert!(out.history.iter().all(|(_, at)| *at >= cutoff), "the history holds a read older than a day");
    let mut history_partitions = Vec::new();
    for audit in &audits {
        let record: serde_json::Value = serde_json::from_slice(&runtime.block_on(storage.get(&audit.path)).expect("audit")).expect("JSON");
        for p in record["reads_history"]["partitions_deleted"].as_array().expect("history partitions") {
            history_partitions.push(p.as_str().expect("path").to_string());
        }
    }
    assert!(history_partitions.contains(&"reads/otaci/2026-11-27".to_string()), "{history_partitions:?}");
    assert!(!dir.path().join("store/reads/otaci/2026-11-27").exists());

    // Crops: exactly those of reads captured in the last 12 hours before the last commit are left.
    let last_tick = ticks.last().expect("ticks").0 as i64;
    let mut crops_left: Vec<String> = Vec::new();
    for day in std::fs::read_dir(dir.path().join("store/crops/otaci")).expect("crops") {
        for crop in std::fs::read_dir(day.expect("day").path()).expect("day folder") {
            let name = crop.expect("crop").file_name().to_string_lossy().to_string();
            crops_left.push(name.trim_end_matches(".jpg").to_string());
        }
    }
    crops_left.sort();
    let mut crops_kept: Vec<String> = captured.iter().filter(|(_, at)| **at >= last_tick - DAY_MS / 2).map(|(id, _)| id.clone()).collect();
    crops_kept.sort();
    assert!(!crops_kept.is_empty() && crops_kept.len() < out.logged_reads.len(), "12 hours of crops is a part of a day's reads");
    assert_eq!(crops_left, crops_kept, "crops left after the 12-hour crop retention");

    // What was deleted and what is left add up to what the scenario produced.
    let total = captured.len();
    assert_eq!(rows_deleted as usize + out.logged_reads.len(), total, "deleted + kept = all reads");
}
