//! The GStreamer pipeline behind each kind of camera URI. Every pipeline
//! ends in `videoconvert ! video/x-raw,format=RGB ! appsink name=sink`.
//!
//! | URI | pipeline head |
//! |---|---|
//! | `file://PATH` | `filesrc ! decodebin` (whatever the installed plugins decode) |
//! | `rtsp://…` | `rtspsrc protocols=tcp\|udp latency=N ! decodebin` |
//! | `http(s)://…` (MJPEG) | `souphttpsrc is-live=true do-timestamp=true ! multipartdemux ! jpegdec` (a multipart part has no timestamp: each frame is stamped when it arrives) |
//! | `dir://PATH` | one `filesrc ! decodebin` per image, in name order |

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

/// The pipeline for a stream URI, with its source configured.
pub fn build(uri: &str, kind: SourceKind, options: &CameraSourceOptions) -> Result<(gst::Pipeline, gst_app::AppSink), String> {
    let (pipeline, sink) = launch(&pipeline_description(kind))?;
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
    Ok((pipeline, sink))
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
