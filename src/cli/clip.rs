//! `borderflow clip --config post.toml --read-id ID`: the evidence of one
//! read. The read is looked up in the post's history (`reads/<post>/`, the
//! Parquet the engine writes; its date folder first, from the time in its
//! ULID), and the recorded video of its camera from `--before` its
//! `captured_at` to `--after` it is cut into `ID.mp4`
//! ([`borderflow_connectors::recording::export_clip`]: the segments'
//! H.264 or H.265 as recorded, from the key frame at or before the window).
//! Beside it go the read's plate crop (`ID.jpg`, when the store has one)
//! and a sidecar `ID.json`: the read, the window, the clip, the segments it
//! was cut from and the crop, each file with its SHA-256, when and by whom
//! it was exported. An audit record,
//! `audit/<post>/clips/<exported_at_ms>-<read_id>.json`, goes into the
//! post's store with the same hashes (the sidecar's too), so a copy that
//! was changed after the export can be told from the original.

use std::path::PathBuf;
use std::time::Duration;

use borderflow_connectors::recording::{ClipReport, export_clip};
use borderflow_engine::{PlateRead, PostConfig, Storage, reads_from_batch};
use sha2::Digest;

/// What `clip` is asked for.
pub struct ClipRequest {
    pub config: PathBuf,
    pub read_id: String,
    pub before: Duration,
    pub after: Duration,
    /// The MP4 to write; default `<read_id>.mp4` in the current folder.
    pub out: Option<PathBuf>,
    /// Who exports (for the sidecar and the audit record); default the
    /// login name (`USER`, `LOGNAME`).
    pub user: Option<String>,
}

/// A period on the command line: a number and a unit, `ms`, `s` (the
/// default) or `m`: `5s`, `1.5s`, `500ms`, `2m`.
pub fn parse_period(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a period; write e.g. 5s, 1.5s, 500ms or 2m"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        other => return Err(format!("unknown unit `{other}` in `{text}`; use ms, s or m")),
    };
    if !seconds.is_finite() || !(0.0..=86_400.0).contains(&seconds) {
        return Err(format!("`{text}` is not a period from 0 to a day"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The files an export wrote.
pub struct ClipExport {
    pub clip: ClipReport,
    pub sidecar: PathBuf,
    pub crop: Option<PathBuf>,
    /// Where the audit record is, in words (a file or a URL).
    pub audit: String,
}

/// `borderflow clip`: exports and prints where everything went.
pub fn command(request: ClipRequest) -> Result<(), String> {
    let export = export(&request)?;
    let clip = &export.clip;
    println!(
        "clip: {} ({} frames, {:.1} s from {}, {} bytes, sha256 {})",
        clip.path.display(),
        clip.frames,
        (clip.end_ms - clip.start_ms) as f64 / 1000.0,
        iso(clip.start_ms),
        clip.bytes,
        clip.sha256
    );
    for gap in &clip.gaps {
        eprintln!("warning: no video recorded from {} to {}: the clip holds the last frame before it", iso(gap.from_ms), iso(gap.to_ms));
    }
    match &export.crop {
        Some(crop) => println!("crop: {}", crop.display()),
        None => println!("crop: none stored for this read"),
    }
    println!("sidecar: {}", export.sidecar.display());
    println!("audit: {}", export.audit);
    Ok(())
}

/// Exports the clip, the crop, the sidecar and the audit record (see the module documentation).
pub fn export(request: &ClipRequest) -> Result<ClipExport, String> {
    let config = PostConfig::from_file(&request.config).map_err(|e| e.to_string())?;
    export_from(&config, request)
}

/// [`export`] for a post whose configuration is loaded already (`serve`'s
/// console: its storage may be the one `--storage` gave); `request.config`
/// only names the file in messages.
pub fn export_from(config: &PostConfig, request: &ClipRequest) -> Result<ClipExport, String> {
    let post = config.post.id.clone();
    let recording = config.recording.as_ref().ok_or_else(|| {
        format!("{}: post `{post}` has no [recording] table: its cameras' video is not recorded, so there is no clip to cut", request.config.display())
    })?;
    let storage = Storage::open(&config.storage).map_err(|e| e.to_string())?;
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let read = tokio.block_on(find_read(&storage, &post, &request.read_id))?.ok_or_else(|| {
        format!(
            "read {} is not in post `{post}`'s history ({}); a read is there once the engine has flushed it",
            request.read_id,
            storage.describe(&format!("reads/{post}"))
        )
    })?;
    let (before_ms, after_ms) = (request.before.as_millis() as i64, request.after.as_millis() as i64);
    let (from_ms, to_ms) = (read.captured_at_ms - before_ms, read.captured_at_ms + after_ms.max(1));
    let out = match &request.out {
        Some(out) => out.clone(),
        None => std::env::current_dir().map_err(|e| format!("the current folder: {e}"))?.join(format!("{}.mp4", request.read_id)),
    };
    if let Some(folder) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    }
    let clip = export_clip(&recording.path, &read.camera_id, from_ms, to_ms, &out)
        .map_err(|e| format!("read {} (camera {}, captured {}): {e}", read.read_id, read.camera_id, iso(read.captured_at_ms)))?;

    // The crop, copied beside the clip.
    let crop_key = borderflow_engine::history::crop_path(&post, read.captured_at_ms, &read.read_id);
    let crop_bytes = tokio.block_on(storage.get_if_exists(&crop_key)).map_err(|e| e.to_string())?;
    let crop = match &crop_bytes {
        Some(bytes) => {
            let path = out.with_extension("jpg");
            std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            Some((path, sha256(bytes), bytes.len()))
        }
        None => None,
    };

    let exported_at = chrono::Utc::now();
    let exported_by = request
        .user
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    let window = serde_json::json!({
        "from": iso(from_ms),
        "to": iso(to_ms),
        "from_ms": from_ms,
        "to_ms": to_ms,
        "before_s": request.before.as_secs_f64(),
        "after_s": request.after.as_secs_f64(),
    });
    let segments: Vec<serde_json::Value> = clip
        .segments
        .iter()
        .map(|s| {
            serde_json::json!({
                "path": s.path.display().to_string(),
                "start": iso(s.start_ms),
                "end": iso(s.end_ms),
                "start_ms": s.start_ms,
                "end_ms": s.end_ms,
                "bytes": s.bytes,
                "sha256": s.sha256,
            })
        })
        .collect();
    let gaps: Vec<serde_json::Value> =
        clip.gaps.iter().map(|g| serde_json::json!({ "from": iso(g.from_ms), "to": iso(g.to_ms), "from_ms": g.from_ms, "to_ms": g.to_ms })).collect();
    let clip_json = serde_json::json!({
        "path": clip.path.display().to_string(),
        "start": iso(clip.start_ms),
        "end": iso(clip.end_ms),
        "start_ms": clip.start_ms,
        "end_ms": clip.end_ms,
        "frames": clip.frames,
        "bytes": clip.bytes,
        "sha256": clip.sha256,
    });
    let crop_json = match &crop {
        Some((path, hash, bytes)) => serde_json::json!({
            "path": path.display().to_string(),
            "source": storage.describe(&crop_key),
            "bytes": bytes,
            "sha256": hash,
        }),
        None => serde_json::Value::Null,
    };
    let sidecar_json = serde_json::json!({
        "post_id": post,
        "read_id": read.read_id,
        "camera_id": read.camera_id,
        "read": read,
        "window": window,
        "clip": clip_json,
        "segments": segments,
        "gaps": gaps,
        "crop": crop_json,
        "recording_dir": recording.path.display().to_string(),
        "exported_at": exported_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "exported_by": exported_by,
    });
    let sidecar = out.with_extension("json");
    let sidecar_bytes = serde_json::to_vec_pretty(&sidecar_json).map_err(|e| e.to_string())?;
    std::fs::write(&sidecar, &sidecar_bytes).map_err(|e| format!("{}: {e}", sidecar.display()))?;

    // The audit record: who exported which read, when, and the hash of every file given out.
    let mut files = vec![
        serde_json::json!({ "kind": "clip", "path": clip.path.display().to_string(), "bytes": clip.bytes, "sha256": clip.sha256 }),
        serde_json::json!({ "kind": "sidecar", "path": sidecar.display().to_string(), "bytes": sidecar_bytes.len(), "sha256": sha256(&sidecar_bytes) }),
    ];
    if let Some((path, hash, bytes)) = &crop {
        files.push(serde_json::json!({ "kind": "crop", "path": path.display().to_string(), "bytes": bytes, "sha256": hash }));
    }
    let audit_json = serde_json::json!({
        "action": "clip_export",
        "post_id": post,
        "read_id": read.read_id,
        "camera_id": read.camera_id,
        "captured_at": iso(read.captured_at_ms),
        "plate_norm": read.plate_norm,
        "exported_at": exported_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "exported_by": exported_by,
        "window": window,
        "files": files,
        "segments": segments,
        "gaps": gaps,
    });
    let audit_key = format!("audit/{post}/clips/{:020}-{}.json", exported_at.timestamp_millis(), read.read_id);
    let audit_bytes = serde_json::to_vec_pretty(&audit_json).map_err(|e| e.to_string())?;
    tokio.block_on(storage.put(&audit_key, audit_bytes)).map_err(|e| format!("the audit record: {e}"))?;
    Ok(ClipExport { clip, sidecar, crop: crop.map(|(path, ..)| path), audit: storage.describe(&audit_key) })
}

/// The read `read_id` from `post`'s history: the date folder its ULID's
/// time names first, then every other.
async fn find_read(storage: &Storage, post: &str, read_id: &str) -> Result<Option<PlateRead>, String> {
    let history = format!("reads/{post}");
    let objects = storage.list(&history).await.map_err(|e| e.to_string())?;
    let likely = ulid::Ulid::from_string(read_id)
        .ok()
        .map(|id| format!("{history}/{}/", borderflow_engine::history::date_folder(id.timestamp_ms() as i64)));
    let (first, rest): (Vec<_>, Vec<_>) = objects
        .into_iter()
        .filter(|o| o.path.ends_with(".parquet"))
        .partition(|o| likely.as_ref().is_some_and(|prefix| o.path.starts_with(prefix)));
    for object in first.iter().chain(&rest) {
        let bytes = storage.get(&object.path).await.map_err(|e| e.to_string())?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .and_then(|b| b.build())
            .map_err(|e| format!("{}: {e}", storage.describe(&object.path)))?;
        for batch in reader {
            let batch = batch.map_err(|e| format!("{}: {e}", storage.describe(&object.path)))?;
            let reads = reads_from_batch(&batch).map_err(|e| format!("{}: {e}", storage.describe(&object.path)))?;
            if let Some(read) = reads.into_iter().find(|r| r.read_id == read_id) {
                return Ok(Some(read));
            }
        }
    }
    Ok(None)
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::parse_period;
    use std::time::Duration;

    #[test]
    fn periods_take_a_unit() {
        assert_eq!(parse_period("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_period("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_period("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_period("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_period("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_period("soon").is_err() && parse_period("5h").is_err() && parse_period("-1s").is_err());
    }
}
