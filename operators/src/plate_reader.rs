//! Reading plates from a still image: detect words, group them into plate
//! candidates, crop each upright, recognise them in one batch, and keep the
//! readings the plate grammars like best.
//!
//! A candidate's final score is its best reading's score (see
//! [`crate::plate_text`]) times a plate prior: a plate has 4–9 characters,
//! at least one digit, and its text is among the tallest in the picture.
//! Readings come back best first, one per distinct text, so callers can take
//! the best or look at the top few.

use std::path::Path;

use borderflow_engine::plate_norm;
use borderflow_models::image::{ImageFormat, ImageReader, RgbImage};
use borderflow_models::{ModelError, TextBox, TextDetector, TextDetectorOptions, TextRecognizer, TextRecognizerOptions};

use crate::plate_crop::{crop_upright, plate_candidates};
use crate::plate_text::plate_texts;

/// Settings of the plate reader.
#[derive(Clone, Debug)]
pub struct PlateReaderOptions {
    pub detector: TextDetectorOptions,
    pub recognizer: TextRecognizerOptions,
    /// The country the camera stands in: its formats win ties.
    pub prefer_country: Option<String>,
    /// Candidates recognised per image at most (the best-scored words first).
    pub max_candidates: usize,
    /// Crop margin around a candidate, in candidate heights.
    pub crop_margin: f32,
}

impl Default for PlateReaderOptions {
    fn default() -> Self {
        PlateReaderOptions {
            detector: TextDetectorOptions::default(),
            recognizer: TextRecognizerOptions::default(),
            prefer_country: None,
            max_candidates: 24,
            crop_margin: 0.08,
        }
    }
}

/// One plate reading.
#[derive(Clone, Debug, PartialEq)]
pub struct PlateReading {
    /// The plate text (grammar-consistent where a grammar fits), normalised.
    pub text: String,
    /// The country whose grammar it fits.
    pub country: Option<&'static str>,
    /// The format it fits ("standard (2015)", …).
    pub format: Option<&'static str>,
    /// 0..1
    pub confidence: f32,
    /// What the recognizer read in this crop, before any grammar repair.
    pub raw: String,
    /// Axis-aligned box of the text in the image: x, y, width, height (pixels).
    pub bbox: [f32; 4],
}

#[derive(Debug, thiserror::Error)]
pub enum PlateReaderError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path}: not a readable image: {message}")]
    Image { path: String, message: String },
}

/// Detector and recognizer for one worker.
pub struct PlateReader {
    detector: TextDetector,
    recognizer: TextRecognizer,
    options: PlateReaderOptions,
}

impl PlateReader {
    pub fn new(options: PlateReaderOptions) -> Result<Self, PlateReaderError> {
        Ok(PlateReader {
            detector: TextDetector::new(options.detector.clone())?,
            recognizer: TextRecognizer::new(options.recognizer.clone())?,
            options,
        })
    }

    /// The readings of the image file at `path`, best first.
    pub fn read_file(&mut self, path: &Path) -> Result<Vec<PlateReading>, PlateReaderError> {
        let image = load_rgb(path)?;
        self.read(&image)
    }

    /// The readings of `image`, best first, one per distinct text.
    pub fn read(&mut self, image: &RgbImage) -> Result<Vec<PlateReading>, PlateReaderError> {
        let boxes = self.detector.detect(image)?;
        self.read_words(image, &boxes)
    }

    /// The readings of `image` given its detected words.
    pub fn read_words(&mut self, image: &RgbImage, boxes: &[TextBox]) -> Result<Vec<PlateReading>, PlateReaderError> {
        let mut candidates = plate_candidates(boxes);
        candidates.retain(|c| c.area.height >= 6.0 && c.area.width >= 1.2 * c.area.height);
        // Prefer confident, tall candidates when there are too many to read.
        candidates.sort_by(|a, b| (b.area.score * b.area.height).total_cmp(&(a.area.score * a.area.height)));
        candidates.truncate(self.options.max_candidates);
        let crops: Vec<RgbImage> = candidates.iter().map(|c| crop_upright(image, &c.area, self.options.crop_margin)).collect();
        let lines = self.recognizer.recognize(&crops)?;
        let tallest = candidates.iter().map(|c| c.area.height).fold(1.0f32, f32::max);
        let prefer = self.options.prefer_country.as_deref();
        let mut readings = Vec::new();
        for (candidate, line) in candidates.iter().zip(&lines) {
            let (x0, y0, x1, y1) = candidate.area.bounds();
            let size_prior = (candidate.area.height / tallest).powf(0.3);
            for text in plate_texts(line, prefer).into_iter().take(3) {
                let confidence = (text.score * plate_prior(&text.text) * size_prior).clamp(0.0, 1.0);
                readings.push(PlateReading {
                    text: plate_norm(&text.text),
                    country: text.format.map(|f| f.country),
                    format: text.format.map(|f| f.name),
                    confidence,
                    raw: line.text.clone(),
                    bbox: [x0, y0, x1 - x0, y1 - y0],
                });
            }
        }
        readings.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        let mut seen = std::collections::HashSet::new();
        readings.retain(|r| !r.text.is_empty() && seen.insert(r.text.clone()));
        Ok(readings)
    }
}

/// How plate-like a text is, regardless of country.
fn plate_prior(text: &str) -> f32 {
    let length = match text.len() {
        5..=8 => 1.0,
        4 | 9 => 0.6,
        _ => 0.25,
    };
    let digits = if text.chars().any(|c| c.is_ascii_digit()) { 1.0 } else { 0.4 };
    length * digits
}

/// Decodes the image file at `path` to RGB; the error names the file.
pub fn load_rgb(path: &Path) -> Result<RgbImage, PlateReaderError> {
    let error = |message: String| PlateReaderError::Image { path: path.display().to_string(), message };
    let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    if bytes.is_empty() {
        return Err(error("the file is empty".to_string()));
    }
    let reader = ImageReader::new(std::io::Cursor::new(&bytes[..]));
    let reader = reader.with_guessed_format().map_err(|e| error(e.to_string()))?;
    if reader.format() == Some(ImageFormat::Jpeg) && !has_jpeg_end(&bytes) {
        // The JPEG decoder fills a cut-off image with grey instead of failing.
        return Err(error("truncated JPEG (no end-of-image marker)".to_string()));
    }
    let image = reader.decode().map_err(|e| error(e.to_string()))?;
    if image.width() == 0 || image.height() == 0 {
        return Err(error("the image is empty".to_string()));
    }
    Ok(image.to_rgb8())
}

/// Whether a JPEG file's last 4 KiB hold the end-of-image marker (some
/// cameras append data after it).
fn has_jpeg_end(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}
