//! Reading plates from a still image: detect words, group them into plate
//! candidates, crop each upright, recognise them in one batch, and keep the
//! readings the plate grammars like best.
//!
//! Two passes. The first runs the detector over the whole image (scaled to
//! `detector.max_side`), where a plate is often only 15–25 pixels tall. The
//! second takes the few best regions of the first, cuts each out with some
//! context, scales it so its text is about `refine_text_height` pixels tall,
//! and detects and reads it again: the detector then draws tighter word
//! boxes, and words that the first pass merged with a frame or a sticker come
//! apart. Readings of both passes are pooled by text; a text read from
//! several crops gains confidence ([`VOTE_FACTOR`]).
//!
//! The few most plate-like candidates of each detection are read again by
//! a second recognizer of another training (PaddleOCR's English model
//! beside the multilingual PP-OCRv6): both recognizers' outputs score every
//! text either proposes (see [`crate::plate_text::second_opinion`]), which
//! mends single-character confusions (W read as N) where they disagree.
//!
//! A candidate's score is its best reading's score (see
//! [`crate::plate_text`]) times a plate prior: a plate has 4–9 characters,
//! at least one digit, is no date or time stamp, is the whole line of text it
//! stands in, and its text is among the tallest in the picture.
//! Readings come back best first, one per distinct text, so callers can take
//! the best or look at the top few.

use std::path::Path;

use borderflow_types::plate_norm;
use borderflow_models::image::imageops::{self, FilterType};
use borderflow_models::image::{ImageFormat, ImageReader, RgbImage};
use borderflow_models::{ModelError, TextBox, TextDetector, TextDetectorOptions, TextRecognizer, TextRecognizerOptions};

use crate::plate_crop::{crop_upright, plate_candidates, stacked_lines, union_of};
use crate::plate_text::{PlateText, plate_texts, second_opinion, stacked_plate_texts};

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
    /// Plate regions of the first pass read again at a larger scale (0: one pass only).
    pub refine_regions: usize,
    /// Height, in pixels, the second pass scales a region's text box to.
    pub refine_text_height: f32,
    /// The second pass runs only when no reading of the first is this
    /// confident (above 1: always).
    pub refine_below: f32,
    /// The longer side the second pass's detector scales a region up to
    /// (it is scaled so its text is `refine_text_height` first).
    pub refine_side: u32,
    /// When no reading of an image is this confident, it is read again
    /// with its contrast normalised locally (a dim plate in a dark
    /// picture); 0: never.
    pub enhance_below: f32,
    /// Candidates of each detection (the most plate-like first) read again
    /// by a second recognizer of another training (PaddleOCR's English
    /// model), whose opinion re-ranks the texts of the crop; 0: none.
    pub second_opinions: usize,
}

impl Default for PlateReaderOptions {
    fn default() -> Self {
        PlateReaderOptions {
            detector: TextDetectorOptions::default(),
            recognizer: TextRecognizerOptions::default(),
            prefer_country: None,
            max_candidates: 12,
            crop_margin: 0.08,
            refine_regions: 3,
            refine_text_height: 40.0,
            refine_below: 0.85,
            refine_side: 640,
            enhance_below: 0.5,
            second_opinions: 2,
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

impl PlateReading {
    /// A reading of `text`, its score times its plate prior and the prior
    /// `place` of where it stands in the picture; `bounds` x0, y0, x1, y1.
    fn of(text: &PlateText, place: f32, raw: String, (x0, y0, x1, y1): (f32, f32, f32, f32)) -> Self {
        PlateReading {
            text: plate_norm(&text.text),
            country: text.format.map(|f| f.country),
            format: text.format.map(|f| f.name),
            confidence: (text.score * plate_prior(&text.text) * place).clamp(0.0, 1.0),
            raw,
            bbox: [x0, y0, x1 - x0, y1 - y0],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlateReaderError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path}: not a readable image: {message}")]
    Image { path: String, message: String },
}

/// The manifest's name of the second recognizer.
const SECOND_RECOGNIZER: &str = "second_text_recognizer";

/// Detector and recognizers for one worker.
pub struct PlateReader {
    detector: TextDetector,
    recognizer: TextRecognizer,
    /// The second recognizer, when `second_opinions` > 0.
    second: Option<TextRecognizer>,
    options: PlateReaderOptions,
}

impl PlateReader {
    pub fn new(options: PlateReaderOptions) -> Result<Self, PlateReaderError> {
        Ok(PlateReader {
            detector: TextDetector::new(options.detector.clone())?,
            recognizer: TextRecognizer::new(options.recognizer.clone())?,
            second: match options.second_opinions {
                0 => None,
                _ => Some(TextRecognizer::with_model(SECOND_RECOGNIZER, options.recognizer.clone())?),
            },
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
        let readings = self.read_passes(image)?;
        // Best first: the first reading is the most confident.
        if readings.first().map_or(0.0, |r| r.confidence) >= self.options.enhance_below {
            return Ok(readings);
        }
        let enhanced = local_contrast(image, LOCAL_CONTRAST_RADIUS);
        let mut all = readings;
        all.extend(self.read_passes(&enhanced)?);
        Ok(vote(all))
    }

    /// The first pass and, unless `refine_regions` is 0, the second.
    fn read_passes(&mut self, image: &RgbImage) -> Result<Vec<PlateReading>, PlateReaderError> {
        let boxes = self.detector.detect(image)?;
        let first = self.read_words(image, &boxes)?;
        if self.options.refine_regions == 0 || first.first().is_some_and(|r| r.confidence >= self.options.refine_below) {
            return Ok(first);
        }
        // Second pass: the best regions, cut out with some context and
        // scaled so their text is large, detected and read again.
        let mut regions: Vec<[f32; 4]> = Vec::new();
        for reading in &first {
            if regions.len() >= self.options.refine_regions {
                break;
            }
            if regions.iter().any(|r| overlap(r, &reading.bbox) > 0.3) {
                continue;
            }
            regions.push(reading.bbox);
        }
        let mut all = first;
        for region in regions {
            let refined = self.refine(image, region)?;
            all.extend(refined);
        }
        Ok(vote(all))
    }

    /// Detects and reads the text around `bbox` (x, y, w, h) at a larger scale.
    fn refine(&mut self, image: &RgbImage, bbox: [f32; 4]) -> Result<Vec<PlateReading>, PlateReaderError> {
        let [x, y, w, h] = bbox;
        let (iw, ih) = (image.width() as f32, image.height() as f32);
        let pad_x = 0.3 * w + h;
        let pad_y = 1.0 * h;
        let x0 = (x - pad_x).floor().clamp(0.0, iw - 1.0);
        let y0 = (y - pad_y).floor().clamp(0.0, ih - 1.0);
        let x1 = (x + w + pad_x).ceil().clamp(x0 + 1.0, iw);
        let y1 = (y + h + pad_y).ceil().clamp(y0 + 1.0, ih);
        let scale = (self.options.refine_text_height / h.max(1.0)).clamp(1.0, 4.0);
        let region = imageops::crop_imm(image, x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32).to_image();
        let (rw, rh) = (((x1 - x0) * scale).round().max(1.0) as u32, ((y1 - y0) * scale).round().max(1.0) as u32);
        let zoomed = imageops::resize(&region, rw, rh, FilterType::CatmullRom);
        // The detector scales the region up further, to `refine_side`:
        // measured, that reads more plates than detecting at the zoom alone.
        let max_side = self.detector.options().max_side.max(self.options.refine_side);
        let boxes = self.detector.detect_sized(&zoomed, max_side, self.options.refine_side)?;
        let mapped: Vec<TextBox> = boxes
            .into_iter()
            .map(|b| TextBox {
                center_x: x0 + b.center_x / scale,
                center_y: y0 + b.center_y / scale,
                width: b.width / scale,
                height: b.height / scale,
                ..b
            })
            .collect();
        self.read_words(image, &mapped)
    }

    /// The words the detector finds in `image`, its longer side scaled to
    /// `side` pixels (up or down), in `image`'s pixels.
    pub fn detect_words(&mut self, image: &RgbImage, side: u32) -> Result<Vec<TextBox>, PlateReaderError> {
        Ok(self.detector.detect_sized(image, side, side)?)
    }

    /// The readings of one plate area (an oriented box in `image`'s pixels,
    /// such as a tracked plate's words joined), best first, one per text.
    pub fn read_area(&mut self, image: &RgbImage, area: &TextBox) -> Result<Vec<PlateReading>, PlateReaderError> {
        let crop = crop_upright(image, area, self.options.crop_margin);
        let lines = self.recognizer.recognize(std::slice::from_ref(&crop))?;
        let (x0, y0, x1, y1) = area.bounds();
        let prefer = self.options.prefer_country.as_deref();
        let mut readings: Vec<PlateReading> = lines
            .iter()
            .flat_map(|line| {
                plate_texts(line, prefer).into_iter().take(3).map(move |text| PlateReading::of(&text, 1.0, line.text.clone(), (x0, y0, x1, y1)))
            })
            .collect();
        readings.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        let mut seen = std::collections::HashSet::new();
        readings.retain(|r| !r.text.is_empty() && seen.insert(r.text.clone()));
        Ok(readings)
    }

    /// The readings of a square plate given its lines of text (oriented
    /// boxes in `image`'s pixels, top first), best first, one per text:
    /// each line recognised, the lines put together in the order of a
    /// stacked layout of the plate grammars ([`stacked_plate_texts`]).
    pub fn read_stacked(&mut self, image: &RgbImage, lines: &[TextBox]) -> Result<Vec<PlateReading>, PlateReaderError> {
        let crops: Vec<RgbImage> = lines.iter().map(|l| crop_upright(image, l, self.options.crop_margin)).collect();
        let read = self.recognizer.recognize(&crops)?;
        let (area, raw, texts) = stacked_readings_of(&read.iter().collect::<Vec<_>>(), &lines.iter().collect::<Vec<_>>(), self.options.prefer_country.as_deref());
        tracing::debug!(lines = %raw, "square plate read");
        Ok(texts.into_iter().map(|text| PlateReading::of(&text, 1.0, raw.clone(), area.bounds())).collect())
    }

    /// The readings of `image` given its detected words.
    pub fn read_words(&mut self, image: &RgbImage, boxes: &[TextBox]) -> Result<Vec<PlateReading>, PlateReaderError> {
        let mut candidates = plate_candidates(boxes);
        // A line of a square plate may be short ("BI" over "7996"): whole
        // lines that stack with another stay candidates however narrow.
        let whole: Vec<usize> = (0..candidates.len()).filter(|&i| !candidates[i].extendable && candidates[i].area.height >= 6.0).collect();
        let whole_areas: Vec<TextBox> = whole.iter().map(|&i| candidates[i].area.clone()).collect();
        let mut stacked = vec![false; candidates.len()];
        for k in stacked_lines(&whole_areas).into_iter().flatten() {
            stacked[whole[k]] = true;
        }
        let mut keep = stacked.into_iter();
        candidates.retain(|c| {
            let stacked = keep.next().unwrap_or(false);
            c.area.height >= 6.0 && (c.area.width >= 1.2 * c.area.height || stacked)
        });
        // Prefer confident, tall candidates when there are too many to read.
        candidates.sort_by(|a, b| (b.area.score * b.area.height).total_cmp(&(a.area.score * a.area.height)));
        candidates.truncate(self.options.max_candidates);
        let crops: Vec<RgbImage> = candidates.iter().map(|c| crop_upright(image, &c.area, self.options.crop_margin)).collect();
        let lines = self.recognizer.recognize(&crops)?;
        tracing::debug!(
            words = boxes.len(),
            candidates = candidates.len(),
            read = ?lines.iter().zip(&candidates).map(|(l, c)| format!("{}@{:.0},{:.0} h{:.0} {:.0}°", l.text, c.area.center_x, c.area.center_y, c.area.height, c.area.angle.to_degrees())).collect::<Vec<_>>(),
            "plate candidates read"
        );
        let tallest = candidates.iter().map(|c| c.area.height).fold(1.0f32, f32::max);
        let prefer = self.options.prefer_country.as_deref();
        // The priors of a candidate's place in the picture: its height
        // against the tallest text, and whether it is a line of its own.
        let place: Vec<f32> = candidates
            .iter()
            .map(|c| (c.area.height / tallest).powf(0.3) * if c.extendable { PART_OF_LINE_FACTOR } else { 1.0 })
            .collect();
        let mut texts: Vec<Vec<PlateText>> = lines.iter().map(|line| plate_texts(line, prefer)).collect();
        if let Some(second) = self.second.as_mut() {
            // The candidates most likely to be the plate get a second opinion.
            let best = |i: usize| texts[i].first().map_or(0.0, |t| t.score * plate_prior(&t.text) * place[i]);
            let mut picked: Vec<usize> = (0..crops.len()).filter(|&i| best(i) > 0.0).collect();
            picked.sort_by(|&a, &b| best(b).total_cmp(&best(a)));
            picked.truncate(self.options.second_opinions);
            let picked_crops: Vec<RgbImage> = picked.iter().map(|&i| crops[i].clone()).collect();
            let opinions = second.recognize(&picked_crops)?;
            for (&i, opinion) in picked.iter().zip(&opinions) {
                texts[i] = second_opinion(&lines[i], std::mem::take(&mut texts[i]), opinion, prefer);
            }
        }
        let mut readings = Vec::new();
        // Square plates: whole lines read above one another, their texts
        // put together in the order of a stacked layout. Among stacks, the
        // taller wins a tie (three lines read over the two lower ones).
        let whole: Vec<usize> = (0..candidates.len()).filter(|&i| !candidates[i].extendable).collect();
        let whole_areas: Vec<TextBox> = whole.iter().map(|&i| candidates[i].area.clone()).collect();
        let mut stacked_readings: Vec<(TextBox, String, PlateText)> = Vec::new();
        for stack in stacked_lines(&whole_areas) {
            let stack: Vec<usize> = stack.into_iter().map(|k| whole[k]).collect();
            let stack_lines: Vec<&borderflow_models::TextLine> = stack.iter().map(|&i| &lines[i]).collect();
            let boxes: Vec<&TextBox> = stack.iter().map(|&i| &candidates[i].area).collect();
            let (area, raw, texts) = stacked_readings_of(&stack_lines, &boxes, prefer);
            stacked_readings.extend(texts.into_iter().map(|text| (area.clone(), raw.clone(), text)));
        }
        let tallest_stack = stacked_readings.iter().map(|(area, _, _)| area.height).fold(tallest, f32::max);
        for (area, raw, text) in stacked_readings {
            let place = (area.height / tallest_stack).powf(0.3);
            readings.push(PlateReading::of(&text, place, raw, area.bounds()));
        }
        for ((candidate, line), (texts, place)) in candidates.iter().zip(&lines).zip(texts.into_iter().zip(place)) {
            for text in texts.into_iter().take(3) {
                readings.push(PlateReading::of(&text, place, line.text.clone(), candidate.area.bounds()));
            }
        }
        readings.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        let mut seen = std::collections::HashSet::new();
        readings.retain(|r| !r.text.is_empty() && seen.insert(r.text.clone()));
        Ok(readings)
    }
}

/// The lines of one square plate read (`lines`, top first, in `boxes`):
/// the area they cover, their raw texts joined by `/`, and the best three
/// texts the stacked layouts make of them.
fn stacked_readings_of(lines: &[&borderflow_models::TextLine], boxes: &[&TextBox], prefer: Option<&str>) -> (TextBox, String, Vec<PlateText>) {
    let raw = lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join("/");
    (union_of(boxes), raw, stacked_plate_texts(lines, prefer).into_iter().take(3).collect())
}

/// Readings of the same text merged: the best confidence, raised a little
/// for each further crop that read the same; best first.
fn vote(mut readings: Vec<PlateReading>) -> Vec<PlateReading> {
    readings.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let mut merged: Vec<(PlateReading, usize)> = Vec::new();
    for reading in readings {
        match merged.iter_mut().find(|(m, _)| m.text == reading.text) {
            Some((_, votes)) => *votes += 1,
            None => merged.push((reading, 1)),
        }
    }
    let mut out: Vec<PlateReading> = merged
        .into_iter()
        .map(|(mut r, votes)| {
            r.confidence = 1.0 - (1.0 - r.confidence) * VOTE_FACTOR.powi(votes as i32 - 1);
            r
        })
        .collect();
    out.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    out
}

/// Half the side of the window [`local_contrast`] normalises over: about a
/// plate's height in a 1280×720 picture. Measured on the US set (radius
/// 24: 85.1 %, 40: 85.6 % exact folded).
const LOCAL_CONTRAST_RADIUS: usize = 40;

/// `image`'s luminance normalised locally, as grey: each pixel's distance
/// from the mean of the (2·`radius`+1)² window around it, in units of the
/// window's standard deviation, so a dim, flat plate in a dark picture
/// with bright parts elsewhere (which defeat a global stretch) gets the
/// contrast of a lit one. Box sums come from integral images, so the cost
/// does not grow with the radius. (No image crate in the dependency tree
/// offers a local normalisation or CLAHE; this is a few lines.)
fn local_contrast(image: &RgbImage, radius: usize) -> RgbImage {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let luma: Vec<f64> = image.pixels().map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64).collect();
    // Integral images of the luminance and its square.
    let mut sum = vec![0f64; (w + 1) * (h + 1)];
    let mut sq = vec![0f64; (w + 1) * (h + 1)];
    for y in 0..h {
        let (mut row, mut row_sq) = (0f64, 0f64);
        for x in 0..w {
            let v = luma[y * w + x];
            row += v;
            row_sq += v * v;
            sum[(y + 1) * (w + 1) + x + 1] = sum[y * (w + 1) + x + 1] + row;
            sq[(y + 1) * (w + 1) + x + 1] = sq[y * (w + 1) + x + 1] + row_sq;
        }
    }
    let mut out = RgbImage::new(w as u32, h as u32);
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(radius), (y + radius + 1).min(h));
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(radius), (x + radius + 1).min(w));
            let at = |t: &[f64]| t[y1 * (w + 1) + x1] - t[y0 * (w + 1) + x1] - t[y1 * (w + 1) + x0] + t[y0 * (w + 1) + x0];
            let n = ((x1 - x0) * (y1 - y0)) as f64;
            let mean = at(&sum) / n;
            let deviation = (at(&sq) / n - mean * mean).max(0.0).sqrt().max(4.0);
            let v = (128.0 + 48.0 * (luma[y * w + x] - mean) / deviation).clamp(0.0, 255.0) as u8;
            out.put_pixel(x as u32, y as u32, borderflow_models::image::Rgb([v, v, v]));
        }
    }
    out
}

/// Score factor for a candidate that a neighbouring word could extend: a
/// plate is usually the whole line of text it stands in.
const PART_OF_LINE_FACTOR: f32 = 0.85;

/// How much of the remaining doubt each agreeing crop keeps.
const VOTE_FACTOR: f32 = 0.8;

/// Intersection over the smaller box's area, for x, y, w, h boxes.
fn overlap(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let iy = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    let smaller = (a[2] * a[3]).min(b[2] * b[3]);
    if smaller <= 0.0 { 0.0 } else { ix.max(0.0) * iy.max(0.0) / smaller }
}

/// How plate-like a text is, regardless of country: 4–9 characters, at
/// least one digit, and not a date or time stamp burnt into the picture.
fn plate_prior(text: &str) -> f32 {
    let length = match text.len() {
        5..=8 => 1.0,
        4 | 9 => 0.6,
        _ => 0.25,
    };
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let kind = if digits == 0 {
        0.4
    } else if digits == text.len() && looks_like_timestamp(text) {
        0.05
    } else {
        1.0
    };
    length * kind
}

/// An all-digit text that reads as a date (`20140502`, `140502`, …), a
/// time of day (`205014`, 20:50:14: overlays print the time beside the
/// date), or is too long for a plate.
fn looks_like_timestamp(digits: &str) -> bool {
    if digits.len() >= 9 {
        return true;
    }
    let below = |s: &str, limit: u32| s.parse::<u32>().is_ok_and(|n| n < limit);
    if digits.len() == 6 && below(&digits[..2], 24) && below(&digits[2..4], 60) && below(&digits[4..], 60) {
        return true;
    }
    let year = |s: &str| s.parse::<u32>().is_ok_and(|y| (1990..=2099).contains(&y));
    let month_day = |s: &str| {
        s.len() == 4 && s[..2].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m)) && s[2..].parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
    };
    let month = |s: &str| s.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m));
    match digits.len() {
        8 => year(&digits[..4]) && month_day(&digits[4..]),
        // A stamp cut short: year and month.
        6 | 7 => year(&digits[..4]) && month(&digits[4..6]),
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_stamps_are_not_plates() {
        assert!(plate_prior("20140502064017") < 0.05);
        assert!(plate_prior("20140502") < 0.1);
        assert!(plate_prior("2014050") < 0.1);
        assert!(plate_prior("205014") < 0.1);
        assert_eq!(plate_prior("206014"), 1.0);
        assert_eq!(plate_prior("5DJ0529"), 1.0);
        assert_eq!(plate_prior("8516841"), 1.0);
    }

    #[test]
    fn local_contrast_lifts_a_dim_patch_beside_a_bright_one() {
        // Left half: stripes of 20 and 26 (a dim plate); right half: white.
        let image = RgbImage::from_fn(200, 60, |x, _| {
            let v = if x >= 100 { 255 } else if (x / 4) % 2 == 0 { 20 } else { 26 };
            borderflow_models::image::Rgb([v, v, v])
        });
        let out = local_contrast(&image, 10);
        let (dark, light) = (out.get_pixel(40, 30)[0], out.get_pixel(44, 30)[0]);
        assert!(light as i32 - dark as i32 >= 60, "{dark} → {light}");
        // The same grey on every channel.
        assert!(out.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    }

    #[test]
    fn votes_raise_agreeing_readings() {
        let reading = |text: &str, confidence: f32| PlateReading {
            text: text.to_string(),
            country: None,
            format: None,
            confidence,
            raw: text.to_string(),
            bbox: [0.0; 4],
        };
        let voted = vote(vec![reading("ABC123", 0.6), reading("ABC128", 0.65), reading("ABC123", 0.55)]);
        assert_eq!(voted[0].text, "ABC123");
        assert!(voted[0].confidence > 0.65);
        assert_eq!(voted.len(), 2);
    }
}
