//! What the durability tests share: a post config with views, running
//! `borderflow run --follow` as a real process, and reading back everything
//! a post left in its object store (through the engine's own `Storage`, so
//! `file://` and `s3://` are read the same way).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use borderflow::engine::wal::{SegmentEnd, decode_segment};
use borderflow::engine::{PostConfig, Storage, reads_from_batch};
use borderflow::queries::row::sorted_rows;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The views every durability test keeps: an aggregate, a temporal filter
/// (rows leave as the clock moves), a join with the upserted watchlist, and
/// every read (for retention checks).
pub const VIEWS: &str = r#"
[[view]]
name = "passages"
sql = "SELECT direction, point, lane, count(*) AS n FROM reads GROUP BY direction, point, lane"

[[view]]
name = "last_hour_exits"
sql = "SELECT read_id, plate_norm, captured_at FROM reads WHERE direction = 'exit' AND captured_at > now() - INTERVAL '1 hour'"

[[view]]
name = "watchlist_hits"
sql = "SELECT r.read_id, r.plate_norm, w.reason FROM reads r JOIN watchlist w ON r.plate_norm = w.plate WHERE r.captured_at >= w.valid_from AND r.captured_at < w.valid_to"

[[view]]
name = "all_reads"
sql = "SELECT read_id, captured_at FROM reads"
"#;

/// A post config for Otaci with the test views, `storage` as its
/// `[storage]` body, and a scenario of `days` days.
pub fn write_config(dir: &Path, name: &str, storage: &str, days: u32, traffic_scale: f64) -> std::path::PathBuf {
    let text = format!(
        "[post]\nid = \"otaci\"\nname = \"Otaci\"\ncountry = \"MD\"\ncrossing = \"otaci-mohyliv-podilskyi\"\n\n\
         [storage]\n{storage}\n\n[scenario]\nseed = 11\nstart = \"2026-11-27\"\ndays = {days}\ntraffic_scale = {traffic_scale}\n{VIEWS}"
    );
    let path = dir.join(name);
    std::fs::write(&path, text).expect("config written");
    path
}

/// `borderflow run --config … --follow` with extra arguments, stdout piped
/// into a channel of lines.
pub fn spawn_follow(config: &Path, extra: &[&str]) -> (Child, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_borderflow"))
        .args(["--workers", "1", "run", "--follow", "--config"])
        .arg(config)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("borderflow starts");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, receiver) = channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    (child, receiver)
}

/// Runs `--follow` to the end and returns its output.
pub fn follow_to_end(config: &Path, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_borderflow"))
        .args(["--workers", "1", "run", "--follow", "--config"])
        .arg(config)
        .args(extra)
        .output()
        .expect("borderflow runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// Everything a post left in its store, in a form that compares.
#[derive(Debug, PartialEq)]
pub struct Outputs {
    /// Each view's snapshot, rows sorted.
    pub snapshots: BTreeMap<String, Vec<String>>,
    /// Each view's changelog: the union of its parts, rows (with `_diff` and `_time`) sorted.
    pub changes: BTreeMap<String, Vec<String>>,
    /// Every read in the write-ahead log: (commit time, read_id), in log order.
    pub logged_reads: Vec<(u64, String)>,
    /// Every read's `captured_at` in the log.
    pub logged_captured_at: Vec<i64>,
    /// Every row of the reads' Parquet history (`reads/<post>/`): (read_id, captured_at), sorted.
    pub history: Vec<(String, i64)>,
}

/// Reads back a post's outputs (see [`Outputs`]).
pub fn outputs(config: &PostConfig) -> Outputs {
    let storage = Storage::open(&config.storage).expect("storage opens");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mut snapshots = BTreeMap::new();
        let mut changes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for object in storage.list("views").await.expect("views listed") {
            let mut parts = object.path.split('/');
            let (Some("views"), Some(view)) = (parts.next(), parts.next()) else { continue };
            let bytes = storage.get(&object.path).await.expect("object");
            let rows = parquet_rows(bytes);
            if object.path.ends_with("/snapshot.parquet") {
                snapshots.insert(view.to_string(), rows);
            } else {
                changes.entry(view.to_string()).or_default().extend(rows);
            }
        }
        for rows in changes.values_mut() {
            rows.sort();
        }
        let mut segments: Vec<(u64, String)> = Vec::new();
        for object in storage.list(&format!("wal/{}", config.post.id)).await.expect("log listed") {
            let name = object.path.rsplit('/').next().unwrap_or_default();
            let seq = name.trim_end_matches(".bfwal").parse().expect("segment named by sequence");
            segments.push((seq, object.path));
        }
        segments.sort();
        let (mut logged_reads, mut logged_captured_at) = (Vec::new(), Vec::new());
        for (_, path) in segments {
            let (records, end) = decode_segment(&storage.get(&path).await.expect("segment"));
            assert_eq!(end, SegmentEnd::Clean, "{path}");
            for record in records.into_iter().filter(|r| r.table == "reads") {
                for read in reads_from_batch(&record.batch).expect("reads") {
                    logged_reads.push((record.time_ms, read.read_id));
                    logged_captured_at.push(read.captured_at_ms);
                }
            }
        }
        let mut history = Vec::new();
        for object in storage.list(&format!("reads/{}", config.post.id)).await.expect("history listed") {
            let bytes = storage.get(&object.path).await.expect("history file");
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).expect("parquet").build().expect("reader");
            for batch in reader {
                let reads = reads_from_batch(&batch.expect("batch")).unwrap_or_else(|e| panic!("{}: {e}", object.path));
                history.extend(reads.into_iter().map(|r| (r.read_id, r.captured_at_ms)));
            }
        }
        history.sort();
        Outputs { snapshots, changes, logged_reads, logged_captured_at, history }
    })
}

fn parquet_rows(bytes: Vec<u8>) -> Vec<String> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).expect("parquet").build().expect("reader");
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    let mut rows = Vec::new();
    for batch in &batches {
        rows.extend(sorted_rows(batch).expect("rows"));
    }
    rows.sort();
    rows
}

/// Checks two runs' outputs are the same, view by view, with readable failures.
pub fn assert_same_outputs(expected: &Outputs, actual: &Outputs) {
    assert_eq!(expected.snapshots.keys().collect::<Vec<_>>(), actual.snapshots.keys().collect::<Vec<_>>(), "views with snapshots");
    for (view, rows) in &expected.snapshots {
        assert!(!rows.is_empty() || view == "watchlist_hits", "view {view} is empty: the test shows nothing");
        assert_eq!(rows, &actual.snapshots[view], "snapshot of {view}");
    }
    assert_eq!(expected.changes.keys().collect::<Vec<_>>(), actual.changes.keys().collect::<Vec<_>>(), "views with changelogs");
    for (view, rows) in &expected.changes {
        let got = &actual.changes[view];
        assert_eq!(rows.len(), got.len(), "changelog of {view}: {} changes expected, {} found", rows.len(), got.len());
        assert_eq!(rows, got, "changelog of {view}");
    }
    assert_eq!(expected.logged_reads, actual.logged_reads, "reads in the write-ahead log");
    let mut ids: Vec<&String> = actual.logged_reads.iter().map(|(_, id)| id).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "a read is in the log twice");
    // The reads' history holds every logged read once, as the uninterrupted run's does.
    assert_eq!(expected.history.len(), actual.history.len(), "rows in the reads' history");
    assert_eq!(expected.history, actual.history, "the reads' history");
    let history_ids: Vec<&String> = actual.history.iter().map(|(id, _)| id).collect();
    assert_eq!(history_ids, ids, "the reads' history holds the logged reads, each once");
}

/// Starts `command` with its stdout and stderr copied, line by line, into
/// one shared log (what a test waits on and prints when it fails).
pub fn spawn_logged(command: &mut Command) -> (Child, Arc<Mutex<String>>) {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the process starts");
    let log = Arc::new(Mutex::new(String::new()));
    let streams: [Box<dyn std::io::Read + Send>; 2] =
        [Box::new(child.stdout.take().expect("stdout")), Box::new(child.stderr.take().expect("stderr"))];
    for stream in streams {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
                log.lock().expect("log").push_str(&format!("{line}\n"));
            }
        });
    }
    (child, log)
}

/// Every file under `dir`, at any depth (none if it is missing).
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A free TCP port on 127.0.0.1, for a listener a spawned post is told to use.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Writes `dir/tokens.toml` (`[serve] tokens`): `user` comes in with the
/// bearer token `token` (the file holds its SHA-256 only).
pub fn write_token(dir: &Path, user: &str, token: &str) {
    write_tokens(dir, &[(user, token)]);
}

/// Writes `tokens.toml` in `dir` admitting each `(user, token)`, stored as hashes.
pub fn write_tokens(dir: &Path, tokens: &[(&str, &str)]) {
    let entries: String = tokens
        .iter()
        .map(|(user, token)| {
            let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()));
            format!("[[token]]\nuser = \"{user}\"\nsha256 = \"{hash}\"\n\n")
        })
        .collect();
    std::fs::write(dir.join("tokens.toml"), entries).expect("tokens");
}

/// `GET /metrics` of a post on `port`, checked with the Prometheus
/// project's own OpenMetrics parser (Python `prometheus_client`); the text.
pub fn scrape(port: u16) -> String {
    let output = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(".local/venv/bin/python"))
        .args([
            "-c",
            "import sys, urllib.request\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families\ntext = urllib.request.urlopen(f'http://127.0.0.1:{sys.argv[1]}/metrics').read().decode()\nlist(text_string_to_metric_families(text))\nprint(text)",
            &port.to_string(),
        ])
        .output()
        .expect("python runs");
    assert!(output.status.success(), "/metrics does not parse: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}
