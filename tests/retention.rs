//! Retention: with a one-day retention and a three-day scenario, after the
//! run no read older than a day before the last commit is in the object
//! store (the write-ahead log) or in any view, old changelog parts are gone,
//! and the audit records say what went and when.

mod common;

use borderflow::engine::{PostConfig, Storage};
use common::{follow_to_end, outputs, write_config};

const DAY_MS: i64 = 86_400_000;

#[test]
fn a_one_day_retention_keeps_one_day() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_config(
        dir.path(),
        "post.toml",
        "url = \"file://./store\"\nretention = { reads = \"1d\", flags = \"1d\" }",
        3,
        0.15,
    );
    follow_to_end(&path, &[]);
    let config = PostConfig::from_file(&path).expect("config");
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
    // What was deleted and what is left add up to what the scenario produced.
    let total: usize = follow_total_reads(&config);
    assert_eq!(rows_deleted as usize + out.logged_reads.len(), total, "deleted + kept = all reads");
}

/// The scenario's reads for the post, as the follow run feeds them.
fn follow_total_reads(config: &PostConfig) -> usize {
    let (ticks, _) = borderflow::follow::scenario_ticks(config, 300_000).expect("ticks");
    ticks.iter().map(|(_, reads)| reads.len()).sum()
}
