//! The retention sweep: expired reads leave the log and the reads' history,
//! old plate crops and changelog parts are deleted, recorded video segments
//! that ended before `storage.retention.video` are deleted from the
//! recording folder (by their names, [`borderflow_types::video`]), and an
//! audit record says what went and when.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use borderflow_types::video;

use crate::history::{part_range, sweep_crops, sweep_history};
use crate::engine::{Engine, EngineError, READS, DAY_MS};

impl Engine {
    /// Deletes what retention says must go, and records it (see the module doc).
    pub(crate) fn sweep(&mut self) -> Result<(), EngineError> {
        let through = self.flushed_through;
        let retention = &self.config.storage.retention;
        let reads_cutoff = self.reads_cutoff(through);
        let expired = self.runtime.block_on(self.wal.expire(READS, reads_cutoff))?;
        let flags_cutoff = through.saturating_sub(retention.flags.as_millis() as u64);
        let mut parts = Vec::new();
        for object in self.runtime.block_on(self.storage.list("views"))? {
            let Some((_, rest)) = object.path.split_once("/changes/") else { continue };
            if part_range(rest).is_some_and(|(_, to)| to < flags_cutoff) {
                self.runtime.block_on(self.storage.delete(&object.path))?;
                parts.push(object.path);
            }
        }
        let post_id = self.config.post.id.clone();
        let history = self.runtime.block_on(sweep_history(&self.storage, &post_id, reads_cutoff))?;
        // A crop never outlives its read.
        let crops_cutoff = through as i64 - retention.crops.min(retention.reads).as_millis() as i64;
        let day_start = crops_cutoff - crops_cutoff.rem_euclid(DAY_MS);
        let on_cutoff_day: HashMap<&str, i64> =
            self.reads.range((day_start, String::new())..(day_start + DAY_MS, String::new())).map(|((t, id), _)| (id.as_str(), *t)).collect();
        let crops = self.runtime.block_on(sweep_crops(&self.storage, &post_id, crops_cutoff, |id| on_cutoff_day.get(id).copied()))?;
        let video_cutoff = through as i64 - retention.video.as_millis() as i64;
        let video = match &self.config.recording {
            Some(recording) => sweep_video(&recording.path, video_cutoff),
            None => VideoSwept::default(),
        };
        for error in &video.errors {
            tracing::warn!("retention of recorded video: {error}");
        }
        self.last_sweep_ms = through;
        if expired.rows == 0 && expired.deleted_segments.is_empty() && parts.is_empty() && history.files_deleted == 0 && history.files_rewritten.is_empty() && crops.files_deleted == 0 && video.files_deleted == 0 && video.errors.is_empty() {
            return Ok(());
        }
        let audit = serde_json::json!({
            "post_id": self.config.post.id,
            "engine_time_ms": through,
            "engine_time": iso(through as i64),
            "wall_time": chrono::Utc::now().to_rfc3339(),
            "reads": {
                "retention_s": retention.reads.as_secs(),
                "cutoff": iso(reads_cutoff),
                "rows_deleted": expired.rows,
                "captured_from": expired.earliest_ms.map(iso),
                "captured_to": expired.latest_ms.map(iso),
                "partitions_deleted": expired.deleted_partitions,
                "segments_deleted": expired.deleted_segments.iter().map(|(p, n)| serde_json::json!({"path": p, "rows": n})).collect::<Vec<_>>(),
                "segments_rewritten": expired.rewritten_segments.iter().map(|(p, n)| serde_json::json!({"path": p, "rows_removed": n})).collect::<Vec<_>>(),
            },
            "reads_history": {
                "cutoff": iso(reads_cutoff),
                "partitions_deleted": history.partitions_deleted,
                "files_deleted": history.files_deleted,
                "files_rewritten": history.files_rewritten.iter().map(|(p, n)| serde_json::json!({"path": p, "rows_removed": n})).collect::<Vec<_>>(),
            },
            "crops": {
                "retention_s": retention.crops.min(retention.reads).as_secs(),
                "cutoff": iso(crops_cutoff),
                "partitions_deleted": crops.partitions_deleted,
                "files_deleted": crops.files_deleted,
            },
            "view_changes": {
                "retention_s": retention.flags.as_secs(),
                "cutoff": iso(flags_cutoff as i64),
                "parts_deleted": parts,
            },
            "video": {
                "retention_s": retention.video.as_secs(),
                "cutoff": iso(video_cutoff),
                "folder": self.config.recording.as_ref().map(|r| r.path.display().to_string()),
                "files_deleted": video.files_deleted,
                "bytes_deleted": video.bytes_deleted,
                "cameras": video.cameras.iter().map(|(camera, swept)| (camera.clone(), serde_json::json!({
                    "files_deleted": swept.files.len(),
                    "bytes_deleted": swept.bytes,
                    "segments_deleted": swept.files,
                }))).collect::<serde_json::Map<_, _>>(),
                "errors": video.errors,
            },
        });
        let path = format!("audit/{}/retention/{through:020}.json", self.config.post.id);
        let text = serde_json::to_vec_pretty(&audit).map_err(|e| EngineError::Sink { path: path.clone(), message: e.to_string() })?;
        self.runtime.block_on(self.storage.put(&path, text))?;
        tracing::info!(rows = expired.rows, parts = parts.len(), audit = %path, "retention sweep");
        Ok(())
    }
}

/// What a sweep of the recorded video removed.
#[derive(Debug, Default)]
struct VideoSwept {
    files_deleted: usize,
    bytes_deleted: u64,
    cameras: BTreeMap<String, CameraVideoSwept>,
    /// Files or folders that could not be listed or deleted (the sweep goes on).
    errors: Vec<String>,
}

#[derive(Debug, Default)]
struct CameraVideoSwept {
    /// Paths of the segments deleted.
    files: Vec<String>,
    bytes: u64,
}

/// A segment still open is at most this long (`[recording] segment` at most).
const LONGEST_SEGMENT_MS: i64 = 3_600_000;

/// Deletes every camera's segments under `root` that ended before
/// `cutoff_ms`, and open segments (left by a killed process) that started
/// longer than the longest segment before it; date folders left empty go too.
fn sweep_video(root: &Path, cutoff_ms: i64) -> VideoSwept {
    let mut swept = VideoSwept::default();
    let cameras = match video::list_cameras(root) {
        Ok(cameras) => cameras,
        Err(e) => {
            swept.errors.push(format!("{}: {e}", root.display()));
            return swept;
        }
    };
    for camera in cameras {
        let segments = match video::list_segments(root, &camera) {
            Ok(segments) => segments,
            Err(e) => {
                swept.errors.push(format!("{}: {e}", video::camera_dir(root, &camera).display()));
                continue;
            }
        };
        let mut folders = Vec::new();
        for segment in segments {
            let expired = match segment.end_ms {
                Some(end) => end < cutoff_ms,
                None => segment.start_ms + LONGEST_SEGMENT_MS < cutoff_ms,
            };
            if !expired {
                continue;
            }
            let bytes = std::fs::metadata(&segment.path).map(|m| m.len()).unwrap_or(0);
            match std::fs::remove_file(&segment.path) {
                Ok(()) => {
                    swept.files_deleted += 1;
                    swept.bytes_deleted += bytes;
                    let entry = swept.cameras.entry(camera.clone()).or_default();
                    entry.files.push(segment.path.display().to_string());
                    entry.bytes += bytes;
                    if let Some(folder) = segment.path.parent()
                        && !folders.iter().any(|f: &std::path::PathBuf| f == folder)
                    {
                        folders.push(folder.to_path_buf());
                    }
                }
                Err(e) => swept.errors.push(format!("{}: {e}", segment.path.display())),
            }
        }
        for folder in folders {
            // Only an empty folder is removed; one still holding segments stays.
            let _ = std::fs::remove_dir(&folder);
        }
    }
    swept
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339()).unwrap_or_else(|| ms.to_string())
}
