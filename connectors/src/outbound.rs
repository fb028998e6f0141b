//! A view's rows as JSON messages, for what goes out of the post to
//! systems that do not speak Arrow: webhooks and the message bus.
//!
//! Each row gets an id, a hash of the view's name and the row's JSON, so the same flag has the same id after a restart, when
//! the view is rebuilt from the log, and receivers deduplicate by it.

use arrow::array::{Array, Int64Array, RecordBatch};
use sha2::{Digest, Sha256};

/// One row of a view, as sent out.
#[derive(Clone, Debug, PartialEq)]
pub struct OutRow {
    /// Stable across restarts (see the module documentation).
    pub id: String,
    pub view: String,
    /// The row's columns as a JSON object (times as RFC 3339 text).
    pub row: serde_json::Map<String, serde_json::Value>,
}

impl OutRow {
    /// The message body: `{"id", "view", "post", "row"}`.
    pub fn body(&self, post_id: &str) -> serde_json::Value {
        serde_json::json!({ "id": self.id, "view": self.view, "post": post_id, "row": self.row })
    }
}

/// A batch's rows as JSON objects, in order.
pub fn json_rows(batch: &RecordBatch) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, String> {
    if batch.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let mut writer = arrow_json::ArrayWriter::new(Vec::new());
    writer.write(batch).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&writer.into_inner()).map_err(|e| e.to_string())?;
    Ok(rows.into_iter().filter_map(|v| match v {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }).collect())
}

/// The rows of a view's snapshot (every row counts once per copy).
pub fn snapshot_rows(view: &str, batch: &RecordBatch) -> Result<Vec<OutRow>, String> {
    Ok(json_rows(batch)?.into_iter().map(|row| out_row(view, row)).collect())
}

/// The rows a change batch (the view's columns, `_diff`, `_time`) adds;
/// retractions are not sent.
pub fn added_rows(view: &str, change: &RecordBatch) -> Result<Vec<OutRow>, String> {
    let schema = change.schema();
    let diff_at = schema.index_of("_diff").map_err(|_| format!("changes of view `{view}` have no _diff column"))?;
    let diffs = change.column(diff_at).as_any().downcast_ref::<Int64Array>().ok_or_else(|| format!("_diff of view `{view}` is not Int64"))?.clone();
    let keep: Vec<usize> = (0..schema.fields().len()).filter(|&i| !schema.field(i).name().starts_with('_')).collect();
    let columns = change.project(&keep).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for (i, row) in json_rows(&columns)?.into_iter().enumerate() {
        if !diffs.is_null(i) && diffs.value(i) > 0 {
            rows.push(out_row(view, row));
        }
    }
    Ok(rows)
}

fn out_row(view: &str, row: serde_json::Map<String, serde_json::Value>) -> OutRow {
    // Keys come in the view's column order (or sorted, without serde_json's
    // `preserve_order`): the same row gives the same text either way.
    let text = serde_json::Value::Object(row.clone()).to_string();
    let digest = Sha256::digest(format!("{view}\u{1f}{text}").as_bytes());
    OutRow { id: hex::encode(&digest[..16]), view: view.to_string(), row }
}
