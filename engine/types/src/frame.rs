//! A decoded video frame as it enters the dataflow.

use std::sync::Arc;

/// One RGB frame from one camera. Frames never cross timely workers: the
/// worker that owns the camera decodes, detects, tracks and recognises.
#[derive(Clone, Debug)]
pub struct Frame {
    pub camera_id: Arc<str>,
    /// Position of the frame in the camera's stream, from 0.
    pub index: u64,
    /// Event time, milliseconds since the Unix epoch (UTC).
    pub captured_at_ms: i64,
    pub width: u32,
    pub height: u32,
    /// Packed RGB, 3 bytes a pixel, rows top to bottom, `width * 3` bytes a row.
    pub rgb: Arc<[u8]>,
    /// Wall clock when the frame was made (decoded), ms since the epoch:
    /// how late the console draws it is measured from here.
    pub wall_ms: i64,
}

impl Frame {
    /// A frame, checking that the buffer holds `width × height` RGB pixels.
    pub fn new(
        camera_id: Arc<str>,
        index: u64,
        captured_at_ms: i64,
        width: u32,
        height: u32,
        rgb: Arc<[u8]>,
    ) -> Result<Self, String> {
        let expected = width as usize * height as usize * 3;
        if rgb.len() != expected {
            return Err(format!(
                "camera {camera_id}, frame {index}: {} bytes of RGB for {width}×{height} (expected {expected})",
                rgb.len()
            ));
        }
        let wall_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        Ok(Frame { camera_id, index, captured_at_ms, width, height, rgb, wall_ms })
    }

    /// The RGB bytes of pixel (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

/// What a camera source hands the video workers next.
#[derive(Clone, Debug)]
pub enum FrameEvent {
    Frame(Frame),
    /// The source failed (the cause, naming the camera); nothing more comes.
    Failed(String),
    /// A recording ended; nothing more comes.
    Ended,
}

/// A running camera source as the video workers poll it: a queue of frames
/// filled by the source's own thread (decoding never blocks a worker).
/// `borderflow-connectors` implements it for files, RTSP, MJPEG and image
/// folders.
pub trait FrameSource {
    fn camera_id(&self) -> &str;
    /// The next frame or end of stream, if one is waiting.
    fn try_next_event(&self) -> Option<FrameEvent>;
    /// Whether the source's thread has stopped.
    fn is_finished(&self) -> bool;
}

/// Opens a camera's source on the worker that owns the camera, counting
/// into the camera's stats.
pub type CameraOpener = Arc<dyn Fn(&crate::CameraConfig, Arc<crate::CameraStats>) -> Box<dyn FrameSource> + Send + Sync>;
