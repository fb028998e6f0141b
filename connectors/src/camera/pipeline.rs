//! The GStreamer pipeline behind each kind of camera URI. Every pipeline
//! ends in `videoconvert ! video/x-raw,format=RGB ! appsink name=sink`.
//!
//! | URI | pipeline head |
//! |---|---|
//! | `file://PATH` | `filesrc ! decodebin` (whatever the installed plugins decode) |
//! | `rtsp://…` | `rtspsrc protocols=tcp\|udp latency=N ! decodebin` |
//! | `http(s)://…` (MJPEG) | `souphttpsrc is-live=true do-timestamp=true ! multipartdemux ! jpegdec` (a multipart part has no timestamp: each frame is stamped when it arrives) |
//! | `dir://PATH` | one `filesrc ! decodebin` per image, in name order |
//!
//! A camera that records (`file://` and `rtsp://` only) parses its stream
//! first and splits it: `src ! parsebin ! tee ! queue ! decodebin ! …`, and
//! from the `tee`, through a leaky queue, the compressed video to a second
//! appsink, `record`, which feeds the recording's writer
//! ([`crate::recording`]). (Without that queue the `tee` would wait on the
//! record appsink, which waits in PAUSED until the decoder has prerolled,
//! which needs more than one frame: a deadlock.) The first video
//! stream `parsebin` finds goes to the `tee`; any other (audio, a second
//! video) is discarded.

use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::{CameraSourceOptions, RtspTransport};

/// What a camera URI points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    File,
    Rtsp,
    HttpMjpeg,
    ImageFolder,
}

impl SourceKind {
    /// The kind of `uri` by its scheme (anything unknown is read as a file path).
    pub fn of(uri: &str) -> SourceKind {
        let lower = uri.to_ascii_lowercase();
        if lower.starts_with("rtsp://") || lower.starts_with("rtsps://") {
            SourceKind::Rtsp
        } else if lower.starts_with("http://") || lower.starts_with("https://") {
            SourceKind::HttpMjpeg
        } else if lower.starts_with("dir://") {
            SourceKind::ImageFolder
        } else {
            SourceKind::File
        }
    }

    /// Live sources are reopened when they fail or end.
    pub fn is_live(self) -> bool {
        matches!(self, SourceKind::Rtsp | SourceKind::HttpMjpeg)
    }

    /// Sources whose compressed stream can be recorded as it arrives.
    pub fn is_recordable(self) -> bool {
        matches!(self, SourceKind::File | SourceKind::Rtsp)
    }
}

/// The file system path of a `file://` or `dir://` URI (or of a bare path).
pub fn path_of(uri: &str) -> PathBuf {
    let rest = uri.strip_prefix("file://").or_else(|| uri.strip_prefix("dir://")).unwrap_or(uri);
    PathBuf::from(rest)
}

/// Whether `path` names an image file a folder source reads.
pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png" | "bmp"))
}

const TAIL: &str = "videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false max-buffers=2";

/// The `gst-launch` description of the pipeline for `kind` (locations are set as properties).
pub fn pipeline_description(kind: SourceKind) -> String {
    match kind {
        SourceKind::File | SourceKind::ImageFolder => format!("filesrc name=src ! decodebin name=decode ! {TAIL}"),
        SourceKind::Rtsp => format!("rtspsrc name=src ! decodebin name=decode ! {TAIL}"),
        SourceKind::HttpMjpeg => format!("souphttpsrc name=src is-live=true do-timestamp=true ! multipartdemux ! jpegdec ! {TAIL}"),
    }
}

/// The description of a recording camera's pipeline (see the module
/// documentation); `None` for the kinds that cannot record.
pub fn recorded_pipeline_description(kind: SourceKind) -> Option<String> {
    let head = match kind {
        SourceKind::File => "filesrc name=src",
        SourceKind::Rtsp => "rtspsrc name=src",
        SourceKind::HttpMjpeg | SourceKind::ImageFolder => return None,
    };
    Some(format!(
        "{head} ! parsebin name=parse  tee name=split ! queue name=decode_queue ! decodebin name=decode ! {TAIL}  \
         split. ! queue name=record_queue leaky=downstream max-size-buffers=0 max-size-bytes=0 max-size-time=5000000000 ! \
         appsink name=record sync=false async=false"
    ))
}

fn launch(description: &str) -> Result<(gst::Pipeline, gst_app::AppSink), String> {
    let pipeline = gst::parse::launch(description)
        .map_err(|e| format!("cannot build the pipeline: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the description is not a pipeline".to_string())?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or("the pipeline has no appsink")?;
    Ok((pipeline, sink))
}

/// The pipeline for a stream URI, with its source configured; with
/// `record` (and a kind that records), also the appsink of its compressed video.
pub fn build(
    uri: &str,
    kind: SourceKind,
    options: &CameraSourceOptions,
    record: bool,
) -> Result<(gst::Pipeline, gst_app::AppSink, Option<gst_app::AppSink>), String> {
    let recorded = record.then(|| recorded_pipeline_description(kind)).flatten();
    let (pipeline, sink) = launch(recorded.as_deref().unwrap_or(&pipeline_description(kind)))?;
    let record_sink = match recorded {
        Some(_) => {
            link_parsed_video(&pipeline)?;
            Some(pipeline.by_name("record").and_then(|e| e.downcast::<gst_app::AppSink>().ok()).ok_or("the pipeline has no record appsink")?)
        }
        None => None,
    };
    let src = pipeline.by_name("src").ok_or("the pipeline has no source")?;
    match kind {
        SourceKind::File | SourceKind::ImageFolder => {
            let path = path_of(uri);
            if !path.is_file() {
                return Err(format!("no such file: {}", path.display()));
            }
            src.set_property("location", path.to_string_lossy().as_ref());
        }
        SourceKind::Rtsp => {
            src.set_property("location", uri);
            src.set_property("latency", options.latency_ms);
            let protocols = match options.rtsp_transport {
                RtspTransport::Tcp => "tcp",
                RtspTransport::Udp => "udp",
            };
            src.set_property_from_str("protocols", protocols);
        }
        SourceKind::HttpMjpeg => src.set_property("location", uri),
    }
    if options.decoder_threads > 0
        && let Some(decode) = pipeline.by_name("decode").and_then(|e| e.downcast::<gst::Bin>().ok())
    {
        let threads = options.decoder_threads as i32;
        decode.connect_deep_element_added(move |_, _, element| {
            if element.find_property("max-threads").is_some() {
                element.set_property("max-threads", threads);
            }
        });
    }
    Ok((pipeline, sink, record_sink))
}

/// Links the first video stream `parsebin` exposes to the `tee`; the
/// others go to fakesinks (an unlinked stream would stop the demuxer).
fn link_parsed_video(pipeline: &gst::Pipeline) -> Result<(), String> {
    let parse = pipeline.by_name("parse").ok_or("the pipeline has no parsebin")?;
    let split = pipeline.by_name("split").ok_or("the pipeline has no tee")?;
    let bin = pipeline.downgrade();
    let linked = std::sync::atomic::AtomicBool::new(false);
    parse.connect_pad_added(move |_, pad| {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let video = caps.structure(0).is_some_and(|s| s.name().starts_with("video/"));
        if video && !linked.swap(true, std::sync::atomic::Ordering::SeqCst)
            && let Some(sink) = split.static_pad("sink")
            && pad.link(&sink).is_ok()
        {
            return;
        }
        let Some(bin) = bin.upgrade() else { return };
        let Ok(discard) = gst::ElementFactory::make("fakesink").property("sync", false).property("async", false).build() else { return };
        if bin.add(&discard).is_ok()
            && let Some(sink) = discard.static_pad("sink")
        {
            let _ = discard.sync_state_with_parent();
            let _ = pad.link(&sink);
        }
    });
    Ok(())
}

/// The pipeline that decodes one image file.
pub fn build_image(path: &Path) -> Result<(gst::Pipeline, gst_app::AppSink), String> {
    let (pipeline, sink) = launch(&pipeline_description(SourceKind::File))?;
    let src = pipeline.by_name("src").ok_or("the pipeline has no source")?;
    src.set_property("location", path.to_string_lossy().as_ref());
    Ok((pipeline, sink))
}

/// The length of the recording at `path`, if GStreamer can tell (for progress bars).
pub fn recording_duration_ms(path: &Path) -> Option<u64> {
    gst::init().ok()?;
    let pipeline = gst::parse::launch("filesrc name=src ! decodebin ! fakesink")
        .ok()?
        .downcast::<gst::Pipeline>()
        .ok()?;
    pipeline.by_name("src")?.set_property("location", path.to_string_lossy().as_ref());
    let duration = (|| {
        pipeline.set_state(gst::State::Paused).ok()?;
        let bus = pipeline.bus()?;
        let message = bus.timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::AsyncDone, gst::MessageType::Error])?;
        match message.view() {
            gst::MessageView::AsyncDone(_) => pipeline.query_duration::<gst::ClockTime>().map(|d| d.mseconds()),
            _ => None,
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    duration
}
