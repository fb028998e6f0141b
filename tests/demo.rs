//! `borderflow demo` end to end, as a user runs it: the process finishes,
//! prints per-post counts, and leaves Parquet that the parquet crate and duckdb
//! read back with the same contents, consistent with the scenario's ground truth.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow::array::{Array, Int64Array, ListArray, RecordBatch, StringArray};
use borderflow::engine::{crossings, reads_from_batch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn parquet_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            parquet_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            found.push(path);
        }
    }
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = File::open(path).expect("parquet file opens");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet footer").build().expect("reader");
    reader.map(|b| b.expect("record batch")).collect()
}

fn strings<'a>(batch: &'a RecordBatch, name: &str) -> &'a StringArray {
    batch.column_by_name(name).and_then(|c| c.as_any().downcast_ref()).unwrap_or_else(|| panic!("{name} is Utf8"))
}

type Key = (String, String, String);

#[test]
fn demo_writes_parquet_that_parquet_and_duckdb_read_back() {
    let out = tempfile::tempdir().expect("temp dir");
    // A quarter of the default traffic (about 6 000 reads): the whole demo
    // with its standard views, at a cost `make test` can carry (the views
    // are scored against the ground truth at this scale in border_queries).
    let run = Command::new(env!("CARGO_BIN_EXE_borderflow"))
        .args(["--workers", "2", "demo", "--traffic-scale", "0.25", "--out"])
        .arg(out.path())
        .output()
        .expect("borderflow runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    for post in crossings::all_posts() {
        assert!(stdout.contains(post.id), "per-post counts name {}:\n{stdout}", post.id);
    }
    // One lane per crossing went through rendered video and the video operators.
    let video = stdout.lines().find(|l| l.starts_with("Video: ")).unwrap_or_else(|| panic!("a video line:\n{stdout}"));
    let from_video: usize = video["Video: ".len()..].split(' ').next().and_then(|n| n.parse().ok()).expect("a count");
    assert!(video.contains("of 16 passages on 4 lanes") && from_video >= 14, "{video}");

    // Reads, through the parquet crate and the engine's own contract.
    let mut files = Vec::new();
    parquet_files(&out.path().join("reads"), &mut files);
    let mut reads = Vec::new();
    for file in &files {
        for batch in read_parquet(file) {
            reads.extend(reads_from_batch(&batch).expect("reads keep the contract schema"));
        }
    }
    assert!(reads.len() > 4_000, "a day at four crossings (a quarter of the traffic), got {} reads", reads.len());
    let posts: BTreeSet<&str> = reads.iter().map(|r| r.post_id.as_str()).collect();
    assert_eq!(posts.len(), 8, "both sides of four crossings: {posts:?}");
    for file in &files {
        // reads/<post>/<date>/part-….parquet holds that post's reads of that day.
        let post = file.parent().and_then(Path::parent).and_then(Path::file_name).expect("post folder");
        assert!(read_parquet(file).iter().all(|b| strings(b, "post_id").iter().all(|p| p == post.to_str())));
    }

    // The view's snapshot equals a count over the written reads.
    let mut counted: BTreeMap<Key, i64> = BTreeMap::new();
    for r in &reads {
        *counted.entry((r.post_id.clone(), r.direction.to_string(), r.point.to_string())).or_default() += 1;
    }
    let mut snapshot: BTreeMap<Key, i64> = BTreeMap::new();
    for batch in read_parquet(&out.path().join("views/passages_per_post/snapshot.parquet")) {
        let passages: &Int64Array = batch.column_by_name("passages").and_then(|c| c.as_any().downcast_ref()).expect("Int64");
        for row in 0..batch.num_rows() {
            let key = (
                strings(&batch, "post_id").value(row).to_string(),
                strings(&batch, "direction").value(row).to_string(),
                strings(&batch, "point").value(row).to_string(),
            );
            snapshot.insert(key, passages.value(row));
        }
    }
    assert_eq!(snapshot, counted);

    // The demo ends with the standard views, scored against the ground
    // truth, and writes them to Parquet.
    let timings = stdout.find("Timings: ").unwrap_or_else(|| panic!("timings:\n{stdout}"));
    let standard = &stdout[timings..];
    for line in ["cross_border_matches: ", "against the ground truth: ", "match rate", "dwell_times: ", "risk_flags: ", "flags, precision"] {
        assert!(standard.contains(line), "`{line}` after the timings:\n{stdout}");
    }
    for view in ["cross_border_matches", "dwell_times", "dwell_percentiles", "transit_percentiles", "risk_flags"] {
        let rows: usize = read_parquet(&out.path().join(format!("views/{view}/snapshot.parquet"))).iter().map(|b| b.num_rows()).sum();
        assert!(rows > 0, "{view} has rows");
        assert!(out.path().join(format!("views/{view}/changes/part-0.parquet")).is_file());
    }
    // The demo's own scores (whole pipeline, video lanes included): every
    // rule precise and every planted anomaly found by its rule.
    for rule in ["watchlist_hit", "plate_cloning", "no_pre_arrival", "pre_arrival_mismatch", "long_dwell", "frequent_crossings"] {
        let line = standard.lines().find(|l| l.trim_start().starts_with(&format!("{rule} "))).unwrap_or_else(|| panic!("a score for {rule}:\n{stdout}"));
        let after = |key: &str| line.split(key).nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap_or_else(|| panic!("`{key}` in {line}"));
        let precision: f64 = after("precision ").parse().expect("a precision");
        let (found, planted) = after("planted found ").split_once('/').expect("found/planted");
        assert!(precision >= 0.95, "{line}");
        assert_eq!(found, planted, "{line}");
    }
    let matches: usize = read_parquet(&out.path().join("views/cross_border_matches/snapshot.parquet")).iter().map(|b| b.num_rows()).sum();
    assert!(matches > 1_000, "a day's cross-border matches at four crossings (a quarter of the traffic), got {matches}");

    // Nothing lost, nothing doubled: the reads are exactly the ground truth's emitted reads.
    let mut truth_ids = Vec::new();
    for batch in read_parquet(&out.path().join("ground_truth/passages.parquet")) {
        let lists: &ListArray = batch.column_by_name("read_ids").and_then(|c| c.as_any().downcast_ref()).expect("list");
        for row in 0..lists.len() {
            let ids = lists.value(row);
            let ids = ids.as_any().downcast_ref::<StringArray>().expect("Utf8 ids");
            truth_ids.extend(ids.iter().flatten().map(str::to_string));
        }
    }
    let mut written_ids: Vec<String> = reads.iter().map(|r| r.read_id.clone()).collect();
    written_ids.sort();
    truth_ids.sort();
    assert_eq!(written_ids.len(), truth_ids.len());
    assert!(written_ids == truth_ids, "written reads differ from the ground truth's reads");
    assert!(out.path().join("ground_truth/anomalies.parquet").is_file());

    // duckdb, from the project's Python environment, reads the same numbers.
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".local/venv/bin/python");
    let script = r#"
import sys, duckdb
root = sys.argv[1]
rows = duckdb.sql(f"""
    SELECT post_id, direction, point, count(*) FROM read_parquet('{root}/reads/*/*/*.parquet')
    GROUP BY ALL ORDER BY ALL""").fetchall()
for post, direction, point, n in rows:
    print(f"{post},{direction},{point},{n}")
"#;
    let duck = Command::new(&python).arg("-c").arg(script).arg(out.path()).output().expect("python runs (make setup)");
    assert!(duck.status.success(), "duckdb: {}", String::from_utf8_lossy(&duck.stderr));
    let mut from_duckdb: BTreeMap<Key, i64> = BTreeMap::new();
    for line in String::from_utf8_lossy(&duck.stdout).lines() {
        let parts: Vec<&str> = line.split(',').collect();
        let n: i64 = parts[3].parse().expect("count");
        from_duckdb.insert((parts[0].into(), parts[1].into(), parts[2].into()), n);
    }
    assert_eq!(from_duckdb, counted);
}
