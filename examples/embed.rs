//! Borderflow embedded in an agency backend: open a post's engine, put a
//! plate on the watchlist, push the post's plate reads, watch `risk_flags`
//! change, ask ad-hoc SQL, shut down.
//!
//! ```text
//! cargo run --example embed
//! ```
//!
//! The post is Otaci's example configuration with its storage moved to a
//! temporary folder (the write-ahead log, the views' changelogs and the
//! reads' history land there). The reads are made up here; in a backend
//! they come from the post's cameras, a third-party ANPR feed or the
//! engine's own video workers.

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray, TimestampMillisecondArray, UInt8Array};
use arrow::util::pretty::pretty_format_batches;
use borderflow::engine::{Direction, PlateRead, Point, PostConfig, plate_norm, reads_to_batch, watchlist_schema};
use borderflow::{Engine, EngineOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/otaci-md.toml");
    let mut config = PostConfig::from_file(&path)?;
    config.storage.url = url::Url::from_directory_path(dir.path()).map_err(|()| "temporary folder")?.to_string();

    // The engine recovers whatever its log holds (nothing, the first time),
    // then keeps the standard views up to date.
    let mut engine = Engine::open(config, EngineOptions { standard_views: true, ..EngineOptions::default() })?;
    println!("opened post {} with views: {}", engine.config().post.id, engine.view_names().join(", "));
    let flags = engine.subscribe("risk_flags")?;

    let start_ms = 1_764_662_400_000; // 2025-12-02 08:00 UTC
    let watchlist = RecordBatch::try_new(
        watchlist_schema(),
        vec![
            Arc::new(StringArray::from(vec!["ABC123"])),
            Arc::new(StringArray::from(vec!["stolen vehicle report"])),
            Arc::new(UInt8Array::from(vec![3])),
            Arc::new(TimestampMillisecondArray::from(vec![Some(start_ms - 86_400_000)]).with_timezone("UTC")),
            Arc::new(TimestampMillisecondArray::from(vec![None::<i64>]).with_timezone("UTC")),
        ],
    )?;
    engine.upsert_watchlist_at(&watchlist, start_ms as u64)?;

    // Three vehicles enter Moldova at lane 1; the second is watchlisted.
    let reads: Vec<PlateRead> = ["KL 4521 AB", "ABC 123", "MDA 777"]
        .iter()
        .enumerate()
        .map(|(i, plate)| read(i, plate, start_ms + 60_000 * (i as i64 + 1)))
        .collect();
    let new = engine.push_reads_at(&reads_to_batch(&reads), (start_ms + 300_000) as u64)?;
    println!("pushed {new} reads (durable in the log before they were applied)");
    // Pushing the same reads again is safe: they are deduplicated by read_id.
    let again = engine.push_reads_at(&reads_to_batch(&reads), (start_ms + 300_001) as u64)?;
    println!("pushed them again: {again} new");

    for change in flags.try_iter() {
        let change = change.project(&[0, 1, 2, 6, 7, 8])?;
        println!("risk_flags changed:\n{}", pretty_format_batches(&[change])?);
    }

    let answer = engine.sql("SELECT direction, point, count(*) AS reads FROM reads GROUP BY direction, point ORDER BY direction, point")?;
    println!("ad-hoc SQL:\n{}", pretty_format_batches(&[answer])?);

    // Changelog parts and snapshots go to the post's storage, then the log is sealed.
    engine.shutdown()?;
    let written = walk(dir.path());
    println!("{} files written under {}, e.g. {}", written.len(), dir.path().display(), written.first().map_or("", String::as_str));
    Ok(())
}

/// A read of `plate` by Otaci's entry arrival camera of lane 1.
fn read(i: usize, plate: &str, captured_at_ms: i64) -> PlateRead {
    PlateRead {
        read_id: format!("01JEMBEDEXAMPLE000000000{i:02}"),
        post_id: "otaci".into(),
        camera_id: "otaci-entry-arrival-1".into(),
        country: "MD".into(),
        lane: 1,
        direction: Direction::Entry,
        point: Point::Arrival,
        captured_at_ms,
        plate_text: plate.into(),
        plate_norm: plate_norm(plate),
        plate_country: None,
        confidence: 0.93,
        frames: 12,
        bbox: None,
        crop_uri: None,
    }
}

/// The files under `dir`, relative, sorted.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                files.push(relative.display().to_string());
            }
        }
    }
    files.sort();
    files
}
