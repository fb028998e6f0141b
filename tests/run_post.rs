//! `borderflow run --config` runs a post on its scenario source and keeps the
//! config's SQL views, whose snapshots match a count over the post's reads;
//! on its cameras, it reads a rendered clip into the post's reads and views
//! while a broken camera is reported and the post carries on; `serve` reads
//! the same cameras and answers analysts' SQL on their reads, and a post
//! killed with SIGKILL mid-recording and run again reads every vehicle once.

mod common;
mod video;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arrow::array::{Int64Array, RecordBatch, UInt16Array};
use borderflow::engine::{Direction, Point, reads_from_batch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn batches(path: &Path) -> Vec<RecordBatch> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet").build().expect("reader").map(|b| b.expect("batch")).collect()
}

#[test]
fn a_post_runs_its_scenario_and_its_config_views() {
    let out = tempfile::tempdir().expect("temp dir");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/otaci-md.toml");
    let run = Command::new(env!("CARGO_BIN_EXE_borderflow"))
        .args(["--workers", "2", "run", "--config"])
        .arg(&config)
        .arg("--storage")
        .arg(out.path())
        .output()
        .expect("borderflow runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("exits_per_lane"), "{stdout}");

    // Only this post's reads were written.
    let mut exits_per_lane = std::collections::BTreeMap::new();
    for day in std::fs::read_dir(out.path().join("reads/otaci")).expect("otaci's reads") {
        for file in std::fs::read_dir(day.expect("day").path()).expect("files") {
            for batch in batches(&file.expect("file").path()) {
                for read in reads_from_batch(&batch).expect("contract schema") {
                    assert_eq!(read.post_id, "otaci");
                    if read.direction == Direction::Exit && read.point == Point::Departure {
                        *exits_per_lane.entry(read.lane).or_insert(0i64) += 1;
                    }
                }
            }
        }
    }
    assert!(std::fs::read_dir(out.path().join("reads")).expect("reads").count() == 1, "one post folder");
    assert_eq!(exits_per_lane.len(), 3, "Otaci has three lanes");

    let mut from_view = std::collections::BTreeMap::new();
    for batch in batches(&out.path().join("views/exits_per_lane/snapshot.parquet")) {
        let lanes: &UInt16Array = batch.column_by_name("lane").and_then(|c| c.as_any().downcast_ref()).expect("lane");
        let n: &Int64Array = batch.column_by_name("passages").and_then(|c| c.as_any().downcast_ref()).expect("count");
        for i in 0..batch.num_rows() {
            from_view.insert(lanes.value(i), n.value(i));
        }
    }
    assert_eq!(from_view, exits_per_lane);
}

/// A `[[table]]` from a CSV beside the config joins the post's reads in a
/// view, and the view is checked against DataFusion's batch answer by the job.
#[test]
fn a_config_table_joins_the_reads_in_a_view() {
    let dir = tempfile::tempdir().expect("temp dir");
    let example = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/otaci-md.toml")).expect("example");
    let config = format!(
        "{example}\n[[table]]\nname = \"lane_kinds\"\npath = \"lane_kinds.csv\"\n\n[[view]]\nname = \"exits_by_kind\"\n\
         sql = \"SELECT k.kind, count(*) AS passages FROM reads r JOIN lane_kinds k ON r.lane = k.lane \
         WHERE r.direction = 'exit' AND r.point = 'departure' GROUP BY k.kind\"\n"
    );
    std::fs::write(dir.path().join("post.toml"), config).expect("config");
    std::fs::write(dir.path().join("lane_kinds.csv"), "lane,kind\n1,cars\n2,cars\n3,trucks\n").expect("csv");
    // The example's `[peer] hmac_keys` names a file beside the config.
    std::fs::create_dir(dir.path().join("secrets")).expect("secrets dir");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/secrets/exchange-keys.toml"),
        dir.path().join("secrets/exchange-keys.toml"),
    )
    .expect("key file");
    let out = dir.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_borderflow"))
        .args(["run", "--config"])
        .arg(dir.path().join("post.toml"))
        .arg("--storage")
        .arg(&out)
        .output()
        .expect("borderflow runs");
    assert!(run.status.success(), "{}\n{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    let mut kinds = std::collections::BTreeMap::new();
    for batch in batches(&out.join("views/exits_by_kind/snapshot.parquet")) {
        let kind = arrow::compute::cast(batch.column_by_name("kind").expect("kind"), &arrow::datatypes::DataType::Utf8).expect("cast");
        let kind = kind.as_any().downcast_ref::<arrow::array::StringArray>().expect("text");
        let n: &Int64Array = batch.column_by_name("passages").and_then(|c| c.as_any().downcast_ref()).expect("count");
        for i in 0..batch.num_rows() {
            kinds.insert(kind.value(i).to_string(), n.value(i));
        }
    }
    // Lanes 1 and 2 are cars, lane 3 trucks: both kinds have exits, and the
    // two counts add up to every exit of the post.
    let per_lane: i64 = batches(&out.join("views/exits_per_lane/snapshot.parquet"))
        .iter()
        .map(|b| b.column_by_name("passages").and_then(|c| c.as_any().downcast_ref::<Int64Array>()).expect("count").iter().flatten().sum::<i64>())
        .sum();
    assert_eq!(kinds.keys().cloned().collect::<Vec<_>>(), ["cars", "trucks"]);
    assert_eq!(kinds.values().sum::<i64>(), per_lane);
}

/// Every read under `reads/` of a storage folder.
fn stored_reads(root: &Path) -> Vec<borderflow::engine::PlateRead> {
    let mut reads = Vec::new();
    for post in std::fs::read_dir(root.join("reads")).expect("reads/") {
        for day in std::fs::read_dir(post.expect("post").path()).expect("days") {
            for file in std::fs::read_dir(day.expect("day").path()).expect("files") {
                for batch in batches(&file.expect("file").path()) {
                    reads.extend(reads_from_batch(&batch).expect("contract schema"));
                }
            }
        }
    }
    reads
}

/// The read ids in a post's write-ahead log (a torn tail is left out).
fn logged_read_ids(root: &Path, post: &str) -> Vec<String> {
    // wal/<post>/<date>/<first sequence number>.bfwal
    let mut segments = Vec::new();
    for day in std::fs::read_dir(root.join("wal").join(post)).into_iter().flatten() {
        segments.extend(std::fs::read_dir(day.expect("day").path()).expect("day folder").map(|e| e.expect("segment").path()));
    }
    segments.sort();
    let mut ids = Vec::new();
    for segment in segments {
        let (records, _) = borderflow::engine::wal::decode_segment(&std::fs::read(&segment).expect("segment"));
        for record in records.into_iter().filter(|r| r.table == "reads") {
            ids.extend(reads_from_batch(&record.batch).expect("reads").into_iter().map(|r| r.read_id));
        }
    }
    ids
}

#[test]
fn a_post_runs_on_its_cameras_and_a_broken_camera_does_not_stop_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The scene of tests/video_cameras.rs's RTSP test: four vehicles, the last driving away.
    let scene = video::four_vehicles_one_leaving();
    let (clip, truth) = video::render(&scene, dir.path(), "lane1.mp4", 0.0, 24.0);
    assert_eq!(truth.len(), 4);
    let camera = |id: &str, uri: &str| {
        format!(
            "[[camera]]\nid = \"{id}\"\nuri = \"{uri}\"\nlane = 1\ndirection = \"entry\"\npoint = \"arrival\"\n\
             counting_line = [[0.0, 0.6], [1.0, 0.6]]\nfrom_side = \"top\"\n\n"
        )
    };
    let port = common::free_port();
    let token = "camera-test-token";
    common::write_token(dir.path(), "analyst", token);
    let config = format!(
        "[post]\nid = \"otaci\"\nname = \"Otaci\"\ncountry = \"MD\"\ncrossing = \"otaci-mohyliv-podilskyi\"\n\n\
         [serve]\nsql_listen = \"127.0.0.1:{port}\"\ntokens = \"tokens.toml\"\n\n\
         [storage]\nurl = \"file://./data\"\n\n{}{}\
         [[view]]\nname = \"passages_per_camera\"\nsql = \"SELECT camera_id, direction, count(*) AS passages FROM reads GROUP BY camera_id, direction\"\n",
        camera("otaci-entry-arrival-1", &format!("file://{}", clip.display())),
        camera("otaci-entry-arrival-2", "file://clips/missing.mp4"),
    );
    std::fs::write(dir.path().join("post.toml"), config).expect("config");
    let post = |command: &str| {
        let mut post = Command::new(env!("CARGO_BIN_EXE_borderflow"));
        post.args(["--workers", "2", command, "--config"]).arg(dir.path().join("post.toml")).args(["--pace-ms", "200"]);
        post
    };
    let data = dir.path().join("data");

    // First life: `serve` on the cameras, asked over Flight SQL until a read is there, then killed with SIGKILL.
    let mut first = post("serve").stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("borderflow starts");
    let deadline = Instant::now() + Duration::from_secs(240);
    let served_reads = || {
        let sql = Command::new(env!("CARGO_BIN_EXE_borderflow"))
            .args(["sql", "SELECT count(*) AS n FROM reads", "--server", &format!("grpc://127.0.0.1:{port}"), "--format", "csv"])
            .env("BORDERFLOW_TOKEN", token)
            .output()
            .expect("sql runs");
        let out = String::from_utf8_lossy(&sql.stdout);
        out.lines().nth(1).and_then(|n| n.trim().parse::<usize>().ok()).unwrap_or(0)
    };
    let served = loop {
        assert!(first.try_wait().expect("try_wait").is_none(), "serve ended before reading a plate");
        assert!(Instant::now() < deadline, "no read served within 4 minutes");
        match served_reads() {
            0 => std::thread::sleep(Duration::from_millis(500)),
            n => break n,
        }
    };
    first.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
    first.wait().expect("reaped");
    let before_restart = logged_read_ids(&data, "otaci");
    eprintln!("serve answered {served} read(s); killed with {} read(s) logged", before_restart.len());
    assert!(before_restart.len() >= served, "a read served is not in the log");

    // Second life: `run` to the end of the recording.
    let run = post("run").output().expect("borderflow runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    eprintln!("{stdout}\n{stderr}");
    // The broken camera (its relative path is beside the config) is named with its cause, in the exit status too.
    assert_eq!(run.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains("reading 2 camera(s)"), "{stdout}");
    assert!(stdout.contains("camera otaci-entry-arrival-2: failed") && stdout.contains("no such file"), "{stdout}");
    assert!(stdout.contains(&dir.path().join("clips/missing.mp4").display().to_string()), "{stdout}");
    assert!(stdout.contains("recordings already started at"), "{stdout}");
    assert!(stderr.contains("1 camera(s) failed"), "{stderr}");

    // Every vehicle once, over both lives: in the log and in the history.
    let mut logged = logged_read_ids(&data, "otaci");
    assert!(before_restart.iter().all(|id| logged.contains(id)), "a read of the first life is gone");
    logged.sort();
    let all = logged.len();
    logged.dedup();
    assert_eq!(all, logged.len(), "a read is in the log twice: {logged:?}");
    let reads = stored_reads(&data);
    let mut history: Vec<&String> = reads.iter().map(|r| &r.read_id).collect();
    history.sort();
    assert_eq!(history, logged.iter().collect::<Vec<_>>(), "the history holds the logged reads, each once");
    assert!(reads.iter().all(|r| r.post_id == "otaci" && r.camera_id == "otaci-entry-arrival-1" && r.lane == 1 && r.point == Point::Arrival), "{reads:?}");
    let score = video::score(&truth, &reads);
    eprintln!("truth: {truth:?}\nreads: {:?}", reads.iter().map(|r| (&r.plate_norm, r.confidence, r.captured_at_ms, r.bbox)).collect::<Vec<_>>());
    assert_eq!(score.right, truth.len(), "{score:?}");
    assert!(score.strays.is_empty(), "{score:?}");
    assert!(score.doubles.is_empty(), "{score:?}");
    // The reads went through the write-ahead log, and the view counts them.
    assert!(std::fs::read_dir(data.join("wal/otaci")).expect("the log").count() >= 1);
    let mut from_view = 0;
    for batch in batches(&data.join("views/passages_per_camera/snapshot.parquet")) {
        let n: &Int64Array = batch.column_by_name("passages").and_then(|c| c.as_any().downcast_ref()).expect("count");
        from_view += n.iter().flatten().sum::<i64>();
    }
    assert_eq!(from_view, reads.len() as i64);
    // Each read has its plate crop, a JPEG beside the reads.
    for read in &reads {
        let uri = read.crop_uri.as_deref().unwrap_or_else(|| panic!("no crop: {read:?}"));
        let path = url::Url::parse(uri).ok().and_then(|u| u.to_file_path().ok()).unwrap_or_else(|| panic!("{uri}"));
        assert!(path.starts_with(data.join("crops/otaci")), "{uri}");
        let jpeg = std::fs::read(&path).unwrap_or_else(|e| panic!("{uri}: {e}"));
        assert!(jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.len() > 500, "{uri}: {} bytes", jpeg.len());
    }
}
