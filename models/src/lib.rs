//! Borderflow's models: the ONNX Runtime library the engine loads, the
//! manifest of ONNX models (`models/manifest.toml`), and the code that runs
//! them: a text detector and text recognizers (PaddleOCR's PP-OCRv4 DB
//! detector, PP-OCRv6 small CTC recognizer and, for second opinions, the
//! English PP-OCRv4 recognizer), with their pre- and post-processing.
//!
//! Entry points: [`TextDetector::detect`] (an RGB image in, oriented word
//! boxes out) and [`TextRecognizer::recognize`] (word crops in, text in the
//! plate alphabet with per-character confidences and per-step probabilities
//! out, so [`TextLine::likelihood`] can score any other text). Both load ONNX Runtime
//! through [`init_onnx_runtime`] and their model file through [`model_path`];
//! each holds one ort session, so a worker owns one of each.

pub use image;
pub use manifest::{ModelEntry, ModelFileError, alphabet_path, manifest, model_entry, model_path};
pub use runtime::{ONNX_RUNTIME_VERSION, OnnxRuntimeError, init_onnx_runtime, onnx_runtime_path};
pub use session::ModelError;
pub use text_detector::{TextBox, TextDetector, TextDetectorOptions};
pub use text_recognizer::{PLATE_ALPHABET, RecognizedChar, TextLine, TextRecognizer, TextRecognizerOptions};

mod manifest;
mod runtime;
mod session;
mod text_detector;
mod text_recognizer;
