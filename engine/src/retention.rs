//! The retention sweep: expired reads leave the log and the reads' history,
//! old plate crops and changelog parts are deleted, and an audit record
//! says what went and when.

use std::collections::HashMap;


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
        self.last_sweep_ms = through;
        if expired.rows == 0 && expired.deleted_segments.is_empty() && parts.is_empty() && history.files_deleted == 0 && history.files_rewritten.is_empty() && crops.files_deleted == 0 {
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
        });
        let path = format!("audit/{}/retention/{through:020}.json", self.config.post.id);
        let text = serde_json::to_vec_pretty(&audit).map_err(|e| EngineError::Sink { path: path.clone(), message: e.to_string() })?;
        self.runtime.block_on(self.storage.put(&path, text))?;
        tracing::info!(rows = expired.rows, parts = parts.len(), audit = %path, "retention sweep");
        Ok(())
    }
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339()).unwrap_or_else(|| ms.to_string())
}
