//! `borderflow run --config` runs a post on its scenario source and keeps the
//! config's SQL views, whose snapshots match a count over the post's reads.

use std::fs::File;
use std::path::Path;
use std::process::Command;

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
