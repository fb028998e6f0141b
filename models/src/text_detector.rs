//! The text detector: PaddleOCR's DB (differentiable binarisation) network.
//!
//! An image is resized so its longer side is at most `max_side` and both
//! sides are multiples of 32, normalised, and run once; the network returns a
//! per-pixel probability of "inside a (shrunk) text region". The map is
//! thresholded and slightly dilated, its connected components become
//! candidate words, each scored by its mean probability, fitted with an
//! oriented rectangle (principal axes of its pixels) and grown back
//! ("unclipped") by DB's rule: each side moves out by area × ratio / perimeter.
//! Boxes come back in the input image's pixels.

use image::RgbImage;
use image::imageops::{FilterType, resize, thumbnail};
use ort::session::Session;
use ort::value::Tensor;

use crate::session::{ModelError, build_session, write_bgr_planes};

const MODEL: &str = "text_detector";

/// Settings of the detector; the defaults are PaddleOCR's, except `max_side`.
#[derive(Clone, Debug)]
pub struct TextDetectorOptions {
    /// Longer side of the network input, in pixels (rounded to a multiple of 32).
    /// Larger finds smaller text and costs quadratically more.
    pub max_side: u32,
    /// Inputs smaller than this (longer side) are scaled up to it: the
    /// detector misses small, slanted plates in small images otherwise.
    pub min_side: u32,
    /// Probability above which a map pixel is text.
    pub threshold: f32,
    /// Mean probability a component needs to be kept.
    pub box_threshold: f32,
    /// How far boxes are grown back (DB's unclip ratio).
    pub unclip_ratio: f32,
    /// Boxes whose shorter side (network pixels, before unclipping) is below this are dropped.
    pub min_size: f32,
    /// Threads inside each operator (0: ONNX Runtime decides).
    pub intra_threads: usize,
}

impl Default for TextDetectorOptions {
    fn default() -> Self {
        TextDetectorOptions {
            max_side: 1280,
            min_side: 960,
            threshold: 0.3,
            box_threshold: 0.5,
            unclip_ratio: 1.6,
            min_size: 3.0,
            intra_threads: 1,
        }
    }
}

/// A detected word: an oriented rectangle in image pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct TextBox {
    pub center_x: f32,
    pub center_y: f32,
    /// Along the text direction.
    pub width: f32,
    /// Across the text direction.
    pub height: f32,
    /// Direction of the text, radians, clockwise from the x axis (image y points down); within ±π/2.
    pub angle: f32,
    /// Mean text probability inside the box, 0..1.
    pub score: f32,
}

impl TextBox {
    /// The four corners: top-left, top-right, bottom-right, bottom-left (for an unrotated box).
    pub fn corners(&self) -> [(f32, f32); 4] {
        let (s, c) = self.angle.sin_cos();
        let (hw, hh) = (self.width / 2.0, self.height / 2.0);
        [(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)]
            .map(|(u, v)| (self.center_x + u * c - v * s, self.center_y + u * s + v * c))
    }

    /// The axis-aligned bounds `(x0, y0, x1, y1)`.
    pub fn bounds(&self) -> (f32, f32, f32, f32) {
        let corners = self.corners();
        let xs = corners.map(|p| p.0);
        let ys = corners.map(|p| p.1);
        let min = |v: [f32; 4]| v.into_iter().fold(f32::INFINITY, f32::min);
        let max = |v: [f32; 4]| v.into_iter().fold(f32::NEG_INFINITY, f32::max);
        (min(xs), min(ys), max(xs), max(ys))
    }
}

/// The DB text detector, one ONNX Runtime session.
pub struct TextDetector {
    session: Session,
    options: TextDetectorOptions,
}

impl TextDetector {
    /// Loads the manifest's `text_detector` model.
    pub fn new(options: TextDetectorOptions) -> Result<Self, ModelError> {
        Ok(TextDetector { session: build_session(MODEL, options.intra_threads)?, options })
    }

    pub fn options(&self) -> &TextDetectorOptions {
        &self.options
    }

    /// The words in `image`, best score first.
    pub fn detect(&mut self, image: &RgbImage) -> Result<Vec<TextBox>, ModelError> {
        self.detect_sized(image, self.options.max_side, self.options.min_side)
    }

    /// The words in `image`, with the network input's longer side clamped to
    /// `[min_side, max_side]` instead of the options' (for a region the
    /// caller has already scaled).
    pub fn detect_sized(&mut self, image: &RgbImage, max_side: u32, min_side: u32) -> Result<Vec<TextBox>, ModelError> {
        let (w, h) = image.dimensions();
        if w == 0 || h == 0 {
            return Ok(Vec::new());
        }
        let (in_w, in_h) = input_size(w, h, max_side, min_side);
        // Scaling down by half or more (a video frame to the detector's
        // side), image's area average is as good as the triangle filter and
        // three times faster (1920×1080 to 512×288: 20 vs 65 ms, half of a
        // detection run); closer to the image's size, the triangle filter.
        let resized = if w >= 2 * in_w && h >= 2 * in_h { thumbnail(image, in_w, in_h) } else { resize(image, in_w, in_h, FilterType::Triangle) };
        let (in_w, in_h) = (in_w as usize, in_h as usize);
        let mut data = vec![0f32; 3 * in_w * in_h];
        write_bgr_planes(&resized, &mut data, in_w, in_h);
        let run = |message: String| ModelError::Run { model: MODEL.to_string(), message };
        let input = Tensor::from_array(([1usize, 3, in_h, in_w], data)).map_err(|e| run(e.to_string()))?;
        let started = std::time::Instant::now();
        let outputs = self.session.run(ort::inputs![input]).map_err(|e| run(e.to_string()))?;
        tracing::debug!(model = MODEL, width = in_w, height = in_h, ms = started.elapsed().as_secs_f64() * 1e3, "model run");
        let (shape, probabilities) = outputs[0].try_extract_tensor::<f32>().map_err(|e| run(e.to_string()))?;
        let (map_h, map_w) = match shape[..] {
            [1, 1, mh, mw] => (mh as usize, mw as usize),
            _ => {
                return Err(ModelError::Contract {
                    model: MODEL.to_string(),
                    message: format!("output shape {:?}, expected [1, 1, {in_h}, {in_w}]", &shape[..]),
                });
            }
        };
        let scale_x = w as f32 / map_w as f32;
        let scale_y = h as f32 / map_h as f32;
        let mut boxes: Vec<TextBox> = boxes_from_map(probabilities, map_w, map_h, &self.options)
            .into_iter()
            .map(|b| {
                // Back to image pixels: scale each axis of the oriented box.
                let (s, c) = b.angle.sin_cos();
                let width = b.width * ((c * scale_x).powi(2) + (s * scale_y).powi(2)).sqrt();
                let height = b.height * ((s * scale_x).powi(2) + (c * scale_y).powi(2)).sqrt();
                TextBox {
                    center_x: b.center_x * scale_x,
                    center_y: b.center_y * scale_y,
                    width,
                    height,
                    angle: (b.angle.sin() * scale_y).atan2(b.angle.cos() * scale_x),
                    score: b.score,
                }
            })
            .collect();
        boxes.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(boxes)
    }
}

/// The network input size for a `w`×`h` image: longer side clamped to
/// `[min_side, max_side]`, aspect kept, both sides rounded to multiples of 32.
pub fn input_size(w: u32, h: u32, max_side: u32, min_side: u32) -> (u32, u32) {
    let longer = w.max(h) as f32;
    let ratio = if longer > max_side as f32 {
        max_side as f32 / longer
    } else if longer < min_side as f32 {
        min_side as f32 / longer
    } else {
        1.0
    };
    let round = |v: u32| ((((v as f32 * ratio) / 32.0).round() as u32) * 32).max(32);
    (round(w), round(h))
}

/// Oriented boxes (in map pixels) from a probability map.
fn boxes_from_map(prob: &[f32], w: usize, h: usize, options: &TextDetectorOptions) -> Vec<TextBox> {
    // Threshold, then dilate by a 2×2 kernel as PaddleOCR does (use_dilation).
    let mut mask = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            let on = |xx: usize, yy: usize| prob[yy * w + xx] > options.threshold;
            mask[y * w + x] = on(x, y) || (x > 0 && on(x - 1, y)) || (y > 0 && on(x, y - 1)) || (x > 0 && y > 0 && on(x - 1, y - 1));
        }
    }
    let mut seen = vec![false; w * h];
    let mut boxes = Vec::new();
    let mut stack = Vec::new();
    let mut pixels: Vec<(usize, usize)> = Vec::new();
    for start in 0..w * h {
        if !mask[start] || seen[start] {
            continue;
        }
        pixels.clear();
        seen[start] = true;
        stack.push(start);
        while let Some(at) = stack.pop() {
            let (x, y) = (at % w, at / w);
            pixels.push((x, y));
            let mut visit = |xx: usize, yy: usize| {
                let i = yy * w + xx;
                if mask[i] && !seen[i] {
                    seen[i] = true;
                    stack.push(i);
                }
            };
            if x > 0 {
                visit(x - 1, y);
            }
            if x + 1 < w {
                visit(x + 1, y);
            }
            if y > 0 {
                visit(x, y - 1);
            }
            if y + 1 < h {
                visit(x, y + 1);
            }
        }
        if pixels.len() < 4 {
            continue;
        }
        if let Some(b) = oriented_box(&pixels, prob, w, options) {
            boxes.push(b);
        }
    }
    boxes
}

/// The unclipped oriented rectangle of one component, or `None` if it is too
/// small or too faint.
fn oriented_box(pixels: &[(usize, usize)], prob: &[f32], w: usize, options: &TextDetectorOptions) -> Option<TextBox> {
    let n = pixels.len() as f32;
    let (mut mx, mut my, mut score) = (0f32, 0f32, 0f32);
    for &(x, y) in pixels {
        mx += x as f32;
        my += y as f32;
        score += prob[y * w + x];
    }
    mx /= n;
    my /= n;
    score /= n;
    if score < options.box_threshold {
        return None;
    }
    let (mut cxx, mut cyy, mut cxy) = (0f32, 0f32, 0f32);
    for &(x, y) in pixels {
        let (dx, dy) = (x as f32 - mx, y as f32 - my);
        cxx += dx * dx;
        cyy += dy * dy;
        cxy += dx * dy;
    }
    let mut angle = 0.5 * (2.0 * cxy).atan2(cxx - cyy);
    let (s, c) = angle.sin_cos();
    let (mut u0, mut u1, mut v0, mut v1) = (f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY, f32::NEG_INFINITY);
    for &(x, y) in pixels {
        let (dx, dy) = (x as f32 - mx, y as f32 - my);
        let u = dx * c + dy * s;
        let v = -dx * s + dy * c;
        u0 = u0.min(u);
        u1 = u1.max(u);
        v0 = v0.min(v);
        v1 = v1.max(v);
    }
    let (mut long, mut short) = (u1 - u0 + 1.0, v1 - v0 + 1.0);
    let center_x = mx + c * (u0 + u1) / 2.0 - s * (v0 + v1) / 2.0;
    let center_y = my + s * (u0 + u1) / 2.0 + c * (v0 + v1) / 2.0;
    if short > long {
        // A tall component: keep the text direction within ±45° of horizontal.
        std::mem::swap(&mut long, &mut short);
        angle += if angle > 0.0 { -std::f32::consts::FRAC_PI_2 } else { std::f32::consts::FRAC_PI_2 };
    }
    if short < options.min_size {
        return None;
    }
    let distance = long * short * options.unclip_ratio / (2.0 * (long + short));
    Some(TextBox {
        center_x,
        center_y,
        width: long + 2.0 * distance,
        height: short + 2.0 * distance,
        angle,
        score,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_sizes_are_multiples_of_32_within_limits() {
        assert_eq!(input_size(1280, 720, 960, 320), (960, 544));
        assert_eq!(input_size(100, 40, 960, 320), (320, 128));
        assert_eq!(input_size(500, 10, 960, 320), (512, 32));
    }

    #[test]
    fn a_rectangle_of_text_probability_becomes_one_unclipped_box() {
        let (w, h) = (64, 32);
        let mut prob = vec![0f32; w * h];
        for y in 10..20 {
            for x in 10..50 {
                prob[y * w + x] = 0.9;
            }
        }
        let boxes = boxes_from_map(&prob, w, h, &TextDetectorOptions::default());
        assert_eq!(boxes.len(), 1);
        let b = &boxes[0];
        assert!(b.angle.abs() < 0.05, "angle {}", b.angle);
        assert!(b.width > 41.0 && b.height > 11.0, "{b:?}");
        assert!((b.center_y - 15.0).abs() < 1.0, "{b:?}");
    }
}
