//! Encoding RGB frames to H.264 MP4 with GStreamer:
//! `appsrc ! videoconvert ! x264enc ! h264parse ! mp4mux ! filesink`.

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// Why a clip could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("font: {0}")]
    Font(String),
    #[error("encoding {path}: {message}")]
    Encode { path: String, message: String },
}

/// Encodes `frames` (packed RGB, `width × height × 3` bytes each) at `fps`
/// frames per second into an H.264 MP4 file at `path`.
pub fn encode_mp4(path: &Path, width: u32, height: u32, fps: u32, frames: impl Iterator<Item = Vec<u8>>) -> Result<(), RenderError> {
    let error = |message: String| RenderError::Encode { path: path.display().to_string(), message };
    gst::init().map_err(|e| error(e.to_string()))?;
    let location = path.to_str().ok_or_else(|| error("the path is not UTF-8".into()))?;
    // A key frame every two seconds, so a reader that joins mid-stream soon
    // decodes. One encoder thread: with more, x264's rate control writes a
    // different stream on every run, and a rendered clip must hold the same
    // frames whenever it is rendered (tests score the reads of it).
    let description = format!(
        "appsrc name=src format=time ! videoconvert ! video/x-raw,format=I420 ! \
         x264enc speed-preset=ultrafast key-int-max={gop} bframes=0 bitrate={kbps} threads=1 ! \
         video/x-h264,profile=constrained-baseline ! h264parse ! mp4mux ! filesink name=sink",
        gop = fps * 2,
        kbps = ((width as u64 * height as u64 * fps as u64) / 4000).clamp(500, 20_000),
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| error(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| error("not a pipeline".into()))?;
    let sink = pipeline.by_name("sink").ok_or_else(|| error("no filesink".into()))?;
    sink.set_property("location", location);
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| error("no appsrc".into()))?;
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "RGB")
        .field("width", width as i32)
        .field("height", height as i32)
        .field("framerate", gst::Fraction::new(fps as i32, 1))
        .build();
    src.set_caps(Some(&caps));
    src.set_property("block", true);
    src.set_property("max-bytes", (width as u64 * height as u64 * 3 * 8).max(1 << 20));
    pipeline.set_state(gst::State::Playing).map_err(|e| error(format!("cannot start: {e}")))?;

    let bus = pipeline.bus().ok_or_else(|| error("no bus".into()))?;
    let frame_ns = 1_000_000_000u64 / fps.max(1) as u64;
    let stride = width as usize * 3;
    let mut result = Ok(());
    for (i, rgb) in frames.enumerate() {
        if rgb.len() != stride * height as usize {
            result = Err(error(format!("frame {i} has {} bytes, expected {}", rgb.len(), stride * height as usize)));
            break;
        }
        let mut buffer = gst::Buffer::from_mut_slice(rgb);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(i as u64 * frame_ns));
            b.set_duration(gst::ClockTime::from_nseconds(frame_ns));
        }
        if let Err(flow) = src.push_buffer(buffer) {
            result = Err(error(format!("pushing frame {i}: {flow:?}{}", bus_error(&bus))));
            break;
        }
    }
    let _ = src.end_of_stream();
    if result.is_ok() {
        result = match bus.timed_pop_filtered(gst::ClockTime::from_seconds(120), &[gst::MessageType::Eos, gst::MessageType::Error]) {
            Some(message) => match message.view() {
                gst::MessageView::Eos(_) => Ok(()),
                gst::MessageView::Error(e) => Err(error(format!("{} ({:?})", e.error(), e.debug()))),
                _ => Ok(()),
            },
            None => Err(error("the encoder did not finish within 120 s".into())),
        };
    }
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// The first error on the bus, if any, as text to append to a message.
fn bus_error(bus: &gst::Bus) -> String {
    while let Some(message) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(e) = message.view() {
            return format!(": {}", e.error());
        }
    }
    String::new()
}

/// Encodes each of `frames` (packed RGB, `width × height × 3` bytes) as a
/// JPEG image of the given `quality` (1–100):
/// `appsrc ! videoconvert ! jpegenc ! appsink`, one image out per frame in.
pub fn encode_jpegs(width: u32, height: u32, quality: u32, frames: impl Iterator<Item = Vec<u8>>) -> Result<Vec<Vec<u8>>, RenderError> {
    let error = |message: String| RenderError::Encode { path: "(JPEG in memory)".into(), message };
    gst::init().map_err(|e| error(e.to_string()))?;
    let description = format!("appsrc name=src format=time ! videoconvert ! jpegenc quality={} ! appsink name=sink sync=false", quality.clamp(1, 100));
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| error(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| error("not a pipeline".into()))?;
    let src = pipeline.by_name("src").and_then(|e| e.downcast::<gst_app::AppSrc>().ok()).ok_or_else(|| error("no appsrc".into()))?;
    let sink = pipeline.by_name("sink").and_then(|e| e.downcast::<gst_app::AppSink>().ok()).ok_or_else(|| error("no appsink".into()))?;
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "RGB")
        .field("width", width as i32)
        .field("height", height as i32)
        .field("framerate", gst::Fraction::new(0, 1))
        .build();
    src.set_caps(Some(&caps));
    pipeline.set_state(gst::State::Playing).map_err(|e| error(format!("cannot start: {e}")))?;
    let bus = pipeline.bus().ok_or_else(|| error("no bus".into()))?;
    let expected = width as usize * height as usize * 3;
    let mut images = Vec::new();
    let mut result = Ok(());
    for (i, rgb) in frames.enumerate() {
        if rgb.len() != expected {
            result = Err(error(format!("frame {i} has {} bytes, expected {expected}", rgb.len())));
            break;
        }
        // GStreamer's RGB rows start at multiples of 4 bytes.
        let row = width as usize * 3;
        let stride = (row + 3) & !3;
        let rgb = if stride == row { rgb } else { rgb.chunks(row).flat_map(|r| r.iter().copied().chain(std::iter::repeat_n(0, stride - row))).collect() };
        let mut buffer = gst::Buffer::from_mut_slice(rgb);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_mseconds(i as u64));
        }
        if let Err(flow) = src.push_buffer(buffer) {
            result = Err(error(format!("pushing frame {i}: {flow:?}{}", bus_error(&bus))));
            break;
        }
        match sink.try_pull_sample(gst::ClockTime::from_seconds(10)).and_then(|s| s.buffer_owned()) {
            Some(buffer) => match buffer.map_readable() {
                Ok(map) => images.push(map.as_slice().to_vec()),
                Err(e) => {
                    result = Err(error(format!("frame {i}: {e}")));
                    break;
                }
            },
            None => {
                result = Err(error(format!("frame {i}: no JPEG came out{}", bus_error(&bus))));
                break;
            }
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    result.map(|()| images)
}
