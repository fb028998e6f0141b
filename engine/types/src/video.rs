//! Recorded video: where a camera's segments are kept and how they are
//! named. The recorder (`borderflow_connectors::recording`) writes by this
//! contract, and the clip export and the engine's retention sweep read by it.
//!
//! ```text
//! <recording dir>/<camera id>/<YYYY-MM-DD>/<start_ms>-<end_ms>.ts   a closed segment
//! <recording dir>/<camera id>/<YYYY-MM-DD>/<start_ms>.part          the segment being written
//! ```
//!
//! `start_ms` is the event time of the segment's first frame and `end_ms`
//! the end of its last frame (the last frame's time plus its duration),
//! milliseconds since the Unix epoch, on the clock the camera's frames
//! carry (`Frame::captured_at_ms`): a recording's start plus the stream's
//! timestamp, or the wall clock for a live stream. The date folder is the
//! UTC date of `start_ms`. Closed segments of one camera do not overlap;
//! where one ends before the next starts, nothing was recorded.

use std::path::{Path, PathBuf};

/// The extension of a closed segment (MPEG transport stream).
pub const SEGMENT_EXTENSION: &str = "ts";
/// The extension of the segment a recorder is writing.
pub const OPEN_EXTENSION: &str = "part";

/// One segment file of a camera's recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentFile {
    pub path: PathBuf,
    pub camera_id: String,
    /// Event time of the first frame, ms since the epoch.
    pub start_ms: i64,
    /// End of the last frame, ms since the epoch; `None` while the segment is being written.
    pub end_ms: Option<i64>,
}

impl SegmentFile {
    /// Whether the segment is closed (its name says where it ends).
    pub fn is_closed(&self) -> bool {
        self.end_ms.is_some()
    }
}

/// The folder of `camera_id`'s segments.
pub fn camera_dir(root: &Path, camera_id: &str) -> PathBuf {
    root.join(camera_id)
}

/// The UTC date folder (`YYYY-MM-DD`) of a segment starting at `start_ms`.
pub fn date_folder(start_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(start_ms).map_or_else(|| "invalid-date".to_string(), |t| t.date_naive().to_string())
}

/// Where the closed segment `start_ms`..`end_ms` of `camera_id` is kept.
pub fn segment_path(root: &Path, camera_id: &str, start_ms: i64, end_ms: i64) -> PathBuf {
    camera_dir(root, camera_id).join(date_folder(start_ms)).join(format!("{start_ms}-{end_ms}.{SEGMENT_EXTENSION}"))
}

/// Where the segment of `camera_id` starting at `start_ms` is written while it is open.
pub fn open_segment_path(root: &Path, camera_id: &str, start_ms: i64) -> PathBuf {
    camera_dir(root, camera_id).join(date_folder(start_ms)).join(format!("{start_ms}.{OPEN_EXTENSION}"))
}

/// `(start_ms, end_ms)` of a segment's file name: `Some(end)` for a closed
/// segment (`<start>-<end>.ts`, end not before start), `None` for an open
/// one (`<start>.part`); `None` overall for any other name.
pub fn parse_segment_name(name: &str) -> Option<(i64, Option<i64>)> {
    let number = |text: &str| -> Option<i64> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    };
    if let Some(stem) = name.strip_suffix(&format!(".{SEGMENT_EXTENSION}")) {
        let (start, end) = stem.split_once('-')?;
        let (start, end) = (number(start)?, number(end)?);
        return (end >= start).then_some((start, Some(end)));
    }
    let stem = name.strip_suffix(&format!(".{OPEN_EXTENSION}"))?;
    Some((number(stem)?, None))
}

/// Every segment of `camera_id` under `root` (closed and open), by start
/// time; none when the camera has no folder. Files whose names do not
/// follow the contract are left out.
pub fn list_segments(root: &Path, camera_id: &str) -> std::io::Result<Vec<SegmentFile>> {
    let dir = camera_dir(root, camera_id);
    let mut segments = Vec::new();
    let dates = match std::fs::read_dir(&dir) {
        Ok(dates) => dates,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(segments),
        Err(e) => return Err(e),
    };
    for date in dates {
        let date = date?;
        if !date.file_type()?.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(date.path())? {
            let file = file?;
            let name = file.file_name();
            let Some((start_ms, end_ms)) = name.to_str().and_then(parse_segment_name) else { continue };
            if file.file_type()?.is_file() {
                segments.push(SegmentFile { path: file.path(), camera_id: camera_id.to_string(), start_ms, end_ms });
            }
        }
    }
    segments.sort_by(|a, b| (a.start_ms, a.end_ms.is_none(), &a.path).cmp(&(b.start_ms, b.end_ms.is_none(), &b.path)));
    Ok(segments)
}

/// The cameras with a folder under `root`, by id.
pub fn list_cameras(root: &Path) -> std::io::Result<Vec<String>> {
    let mut cameras = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cameras),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir()
            && let Some(name) = entry.file_name().to_str()
        {
            cameras.push(name.to_string());
        }
    }
    cameras.sort();
    Ok(cameras)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_refused() {
        let root = Path::new("/rec");
        let closed = segment_path(root, "lane-1", 1_795_000_000_000, 1_795_000_060_000);
        assert_eq!(closed, Path::new("/rec/lane-1/2026-11-18/1795000000000-1795000060000.ts"));
        let name = closed.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(parse_segment_name(name), Some((1_795_000_000_000, Some(1_795_000_060_000))));
        let open = open_segment_path(root, "lane-1", 1_795_000_000_000);
        assert_eq!(open, Path::new("/rec/lane-1/2026-11-18/1795000000000.part"));
        assert_eq!(parse_segment_name("1795000000000.part"), Some((1_795_000_000_000, None)));
        for bad in ["1-2.mp4", "2-1.ts", "-1-2.ts", "a-b.ts", "1.ts", ".part", "1-2.ts.part", "notes.txt"] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn segments_are_listed_by_start_and_a_missing_camera_has_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (start, end) in [(86_400_000 + 5, Some(86_400_000 + 9)), (1, Some(5)), (5, None)] {
            let path = match end {
                Some(end) => segment_path(dir.path(), "cam", start, end),
                None => open_segment_path(dir.path(), "cam", start),
            };
            std::fs::create_dir_all(path.parent().expect("parent")).expect("folder");
            std::fs::write(&path, b"x").expect("file");
        }
        std::fs::write(dir.path().join("cam").join("1970-01-01").join("notes.txt"), b"x").expect("file");
        let listed = list_segments(dir.path(), "cam").expect("listed");
        let times: Vec<(i64, Option<i64>)> = listed.iter().map(|s| (s.start_ms, s.end_ms)).collect();
        assert_eq!(times, vec![(1, Some(5)), (5, None), (86_400_005, Some(86_400_009))]);
        assert!(list_segments(dir.path(), "other").expect("listed").is_empty());
        assert_eq!(list_cameras(dir.path()).expect("cameras"), vec!["cam".to_string()]);
    }
}
