//! Reading a segment back: `filesrc ! parsebin ! appsink`, its access units
//! (compressed H.264 or H.265, as parsebin's parser gives them) in decode
//! order with their timestamps and key-frame flags.

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// One compressed frame of a segment.
pub(crate) struct AccessUnit {
    /// Timestamps in the segment's own stream time, ns.
    pub pts_ns: u64,
    pub dts_ns: Option<u64>,
    pub duration_ns: Option<u64>,
    pub key_frame: bool,
    pub buffer: gst::Buffer,
}

/// Calls `each` with every access unit of the segment at `path`, in order,
/// and the caps it comes with; returns how many there were. A segment cut
/// short (a process killed while writing it) is read up to where it ends:
/// an error after the first unit ends the reading, one before is returned.
pub(crate) fn read_units(path: &Path, mut each: impl FnMut(&gst::Caps, AccessUnit) -> Result<(), String>) -> Result<u64, String> {
    gst::init().map_err(|e| format!("GStreamer cannot start: {e}"))?;
    if !path.is_file() {
        return Err(format!("no such file: {}", path.display()));
    }
    let pipeline = gst::parse::launch("filesrc name=src ! parsebin ! appsink name=sink sync=false")
        .map_err(|e| format!("cannot build the reader: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the reader is not a pipeline".to_string())?;
    let src = pipeline.by_name("src").ok_or("the reader has no source")?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let sink = pipeline.by_name("sink").and_then(|e| e.downcast::<gst_app::AppSink>().ok()).ok_or("the reader has no appsink")?;
    // As parsebin gives it (avc or hvc1 with the parameter sets in the caps): the clip's parser takes it.
    let mut accepted = gst::Caps::builder("video/x-h264").field("alignment", "au").build();
    accepted.merge(gst::Caps::builder("video/x-h265").field("alignment", "au").build());
    sink.set_caps(Some(&accepted));
    let result = (|| {
        pipeline.set_state(gst::State::Playing).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let bus = pipeline.bus().ok_or("the reader has no bus")?;
        let mut units = 0u64;
        let mut last_progress = std::time::Instant::now();
        loop {
            if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(200)) {
                last_progress = std::time::Instant::now();
                let (Some(buffer), Some(caps)) = (sample.buffer_owned(), sample.caps_owned()) else { continue };
                let Some(pts) = buffer.pts().or(buffer.dts()) else { continue };
                let unit = AccessUnit {
                    pts_ns: pts.nseconds(),
                    dts_ns: buffer.dts().map(|t| t.nseconds()),
                    duration_ns: buffer.duration().map(|t| t.nseconds()),
                    key_frame: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                    buffer,
                };
                units += 1;
                each(&caps, unit)?;
                continue;
            }
            if sink.is_eos() {
                return Ok(units);
            }
            while let Some(message) = bus.pop() {
                if let gst::MessageView::Error(e) = message.view() {
                    if units > 0 {
                        return Ok(units);
                    }
                    return Err(format!("{}: {}", path.display(), e.error()));
                }
            }
            if last_progress.elapsed() > std::time::Duration::from_secs(30) {
                return Err(format!("{}: no video read for 30 s", path.display()));
            }
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// The segment's first timestamp and the end of its last access unit (its
/// timestamp plus its duration, or the interval before it), ns of its
/// stream time; `None` when it holds no video (an empty file, or one read
/// to its end without a frame). A file that cannot be read is an error.
pub(crate) fn time_span(path: &Path) -> Result<Option<(u64, u64)>, String> {
    let mut first: Option<u64> = None;
    let (mut last, mut end, mut interval) = (None::<u64>, 0u64, 0u64);
    let read = read_units(path, |_, unit| {
        first.get_or_insert(unit.pts_ns);
        if let Some(last) = last
            && unit.pts_ns > last
        {
            interval = unit.pts_ns - last;
        }
        last = Some(last.map_or(unit.pts_ns, |l| l.max(unit.pts_ns)));
        end = end.max(unit.pts_ns + unit.duration_ns.unwrap_or(interval));
        Ok(())
    });
    match read {
        Ok(_) => Ok(first.map(|f| (f, end.max(f)))),
        Err(_) if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) => Ok(None),
        Err(e) => Err(e),
    }
}
