//! Building ort sessions for the manifest's models, and the errors of running them.

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use crate::manifest::{ModelFileError, model_path};
use crate::runtime::{OnnxRuntimeError, environment};

/// What can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Runtime(#[from] OnnxRuntimeError),
    #[error(transparent)]
    File(#[from] ModelFileError),
    #[error("loading model {model}: {message}")]
    Load { model: String, message: String },
    #[error("running model {model}: {message}")]
    Run { model: String, message: String },
    #[error("model {model} does not have the expected contract: {message}")]
    Contract { model: String, message: String },
}

/// One session for the manifest model `name`, with `intra_threads` threads
/// inside each operator (0 lets ONNX Runtime choose).
pub(crate) fn build_session(name: &str, intra_threads: usize) -> Result<Session, ModelError> {
    let environment = environment()?;
    let path = model_path(name)?;
    let load = |message: String| ModelError::Load { model: name.to_string(), message };
    let builder = Session::builder(&environment).map_err(|e| load(e.to_string()))?;
    let builder = builder
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| load(e.to_string()))?
        .with_intra_threads(intra_threads)
        .map_err(|e| load(e.to_string()))?;
    let mut builder = builder;
    builder.commit_from_file(&path).map_err(|e| load(format!("{}: {e}", path.display())))
}

/// Fills `out` (one image's CHW planes) from `image`, BGR order, scaled to
/// [-1, 1], into a `width`-wide canvas (columns past the image stay as they are).
pub(crate) fn write_bgr_planes(image: &image::RgbImage, out: &mut [f32], width: usize, height: usize) {
    let plane = width * height;
    for (x, y, pixel) in image.enumerate_pixels() {
        let (x, y) = (x as usize, y as usize);
        if x >= width || y >= height {
            continue;
        }
        let at = y * width + x;
        for (channel, value) in [pixel[2], pixel[1], pixel[0]].into_iter().enumerate() {
            out[channel * plane + at] = value as f32 / 127.5 - 1.0;
        }
    }
}
