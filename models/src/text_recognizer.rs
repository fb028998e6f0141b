//! The text recognizer: PaddleOCR's CTC line recognizer, decoded greedily
//! into the plate alphabet.
//!
//! Crops are scaled to height 48 (aspect kept; bilinear, which read plates
//! better than bicubic in `eval-images`), normalised, right-padded to the
//! widest crop of their batch and run together. The network gives, per time
//! step (8 input pixels), a probability for each of its classes (18 710 for
//! PP-OCRv6 small, 6625 for PP-OCRv4): the CTC blank, the characters of the
//! model's metadata key `character`, and the space. Decoding is restricted to the plate alphabet (A–Z, 0–9) by
//! pooling the classes: a lower-case letter or a Cyrillic look-alike counts
//! for its upper-case Latin letter, and every other class (punctuation, CJK,
//! the space) counts as the blank. Greedy CTC over the pooled classes then
//! gives each character a confidence (its best step's probability) and a
//! runner-up (the second plate character at that step), which the plate
//! grammars use to repair a reading.

use image::RgbImage;
use image::imageops::{FilterType, resize};
use ort::session::Session;
use ort::value::Tensor;

use crate::manifest::alphabet_path;
use crate::session::{ModelError, build_session, write_bgr_planes};

const MODEL: &str = "text_recognizer";
const HEIGHT: u32 = 48;
/// The plate alphabet, in pooled-class order (pooled class 0 is the blank).
pub const PLATE_ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Settings of the recognizer.
#[derive(Clone, Debug)]
pub struct TextRecognizerOptions {
    /// Crops run together in one call.
    pub batch_size: usize,
    /// Narrowest input, pixels (PaddleOCR: 320).
    pub min_width: u32,
    /// Widest input, pixels; wider crops are squeezed.
    pub max_width: u32,
    /// Threads inside each operator (0: ONNX Runtime decides).
    pub intra_threads: usize,
}

impl Default for TextRecognizerOptions {
    fn default() -> Self {
        TextRecognizerOptions { batch_size: 8, min_width: 160, max_width: 640, intra_threads: 1 }
    }
}

/// One decoded character.
#[derive(Clone, Debug, PartialEq)]
pub struct RecognizedChar {
    pub ch: char,
    /// Probability of `ch` at its best time step, 0..1.
    pub confidence: f32,
    /// The most likely other plate character at that step, with its probability.
    pub runner_up: Option<(char, f32)>,
}

/// One crop's reading.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TextLine {
    /// Characters of the plate alphabet only.
    pub text: String,
    pub chars: Vec<RecognizedChar>,
    /// Per time step, the probabilities of the pooled classes (0: blank,
    /// i: `PLATE_ALPHABET[i-1]`), for scoring other texts against the crop
    /// ([`TextLine::likelihood`]).
    pub steps: Vec<[f32; 37]>,
}

impl TextLine {
    /// Mean character confidence (0 for an empty reading).
    pub fn confidence(&self) -> f32 {
        if self.chars.is_empty() {
            0.0
        } else {
            self.chars.iter().map(|c| c.confidence).sum::<f32>() / self.chars.len() as f32
        }
    }

    /// How well `text` explains this crop: the CTC probability of `text`
    /// given the per-step probabilities (summed over every alignment, the
    /// CTC forward pass), as a geometric mean per character so texts of
    /// different lengths compare. 0 when `text` has a character outside the
    /// plate alphabet or is longer than the steps allow.
    pub fn likelihood(&self, text: &str) -> f32 {
        self.forward(text, |step, label| step[label])
    }

    /// [`TextLine::likelihood`] with O and 0 taken for one glyph: either
    /// is as likely as the two together. US plates print them alike (a
    /// Missouri `SH0-R7X`), so which of the two such a plate has is the
    /// format's call (a letter or a digit position), not the recognizer's. I and 1
    /// stay apart: plate fonts draw the 1 with a flag, and folding them let
    /// Illinois' letter-and-six-digits format claim seven-digit plates
    /// (`1049338` read `I049338`; measured on the US set: exact plates
    /// 88.7 → 86.5 %, folded unchanged).
    pub fn likelihood_folded(&self, text: &str) -> f32 {
        const O: usize = 15; // 1 + the index in PLATE_ALPHABET
        const ZERO: usize = 27;
        self.forward(text, |step, label| match label {
            O | ZERO => step[O] + step[ZERO],
            _ => step[label],
        })
    }

    /// The CTC forward pass for `text` with `emit(step, class)` the
    /// probability of a class at a step.
    fn forward(&self, text: &str, emit: impl Fn(&[f32; 37], usize) -> f32) -> f32 {
        let Some(labels) = text.chars().map(|c| PLATE_ALPHABET.find(c).map(|i| i + 1)).collect::<Option<Vec<usize>>>() else {
            return 0.0;
        };
        if labels.is_empty() || self.steps.is_empty() {
            return 0.0;
        }
        // States: blank, l1, blank, l2, …, blank (2L+1), in log space.
        let states = 2 * labels.len() + 1;
        let label = |s: usize| if s.is_multiple_of(2) { 0 } else { labels[s / 2] };
        let ln = |p: f32| (p.max(1e-12) as f64).ln();
        let mut alpha = vec![f64::NEG_INFINITY; states];
        alpha[0] = ln(self.steps[0][0]);
        alpha[1] = ln(emit(&self.steps[0], label(1)));
        let mut next = vec![f64::NEG_INFINITY; states];
        for step in &self.steps[1..] {
            for s in 0..states {
                let mut sum = log_add(alpha[s], if s >= 1 { alpha[s - 1] } else { f64::NEG_INFINITY });
                if s >= 2 && label(s) != 0 && label(s) != label(s - 2) {
                    sum = log_add(sum, alpha[s - 2]);
                }
                next[s] = sum + ln(emit(step, label(s)));
            }
            std::mem::swap(&mut alpha, &mut next);
        }
        let total = log_add(alpha[states - 1], alpha[states - 2]);
        if !total.is_finite() {
            return 0.0;
        }
        (total / labels.len() as f64).exp() as f32
    }
}

fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

/// The CTC recognizer, one ONNX Runtime session.
pub struct TextRecognizer {
    session: Session,
    options: TextRecognizerOptions,
    /// For each network class, its pooled class (0 = blank/other, i = PLATE_ALPHABET[i-1]).
    pooled: Vec<u8>,
}

impl TextRecognizer {
    /// Loads the manifest's `text_recognizer` model and its alphabet.
    pub fn new(options: TextRecognizerOptions) -> Result<Self, ModelError> {
        Self::with_model(MODEL, options)
    }

    /// Loads the manifest's model `model` (a CTC recognizer with the same contract).
    pub fn with_model(model: &str, options: TextRecognizerOptions) -> Result<Self, ModelError> {
        let session = build_session(model, options.intra_threads)?;
        let contract = |message: String| ModelError::Contract { model: model.to_string(), message };
        let character = match alphabet_path(model).map_err(|e| contract(e.to_string()))? {
            Some(path) => std::fs::read_to_string(&path).map_err(|e| contract(format!("{}: {e}", path.display())))?,
            None => session
                .metadata()
                .map_err(|e| contract(e.to_string()))?
                .custom("character")
                .ok_or_else(|| contract("no metadata key `character`".to_string()))?,
        };
        // Class 0 is the blank, then one class per line, then the space.
        let mut pooled = vec![0u8];
        pooled.extend(character.lines().map(pooled_class));
        pooled.push(0);
        Ok(TextRecognizer { session, options, pooled })
    }

    pub fn options(&self) -> &TextRecognizerOptions {
        &self.options
    }

    /// Reads each crop; the result has one line per crop, in order.
    pub fn recognize(&mut self, crops: &[RgbImage]) -> Result<Vec<TextLine>, ModelError> {
        let mut lines = vec![TextLine::default(); crops.len()];
        // Batch crops of similar aspect together so little is padding.
        let mut order: Vec<usize> = (0..crops.len()).filter(|&i| crops[i].width() > 0 && crops[i].height() > 0).collect();
        order.sort_by_key(|&i| scaled_width(&crops[i], &self.options));
        for batch in order.chunks(self.options.batch_size.max(1)) {
            let width = batch.iter().map(|&i| scaled_width(&crops[i], &self.options)).max().unwrap_or(0) as usize;
            let plane = width * HEIGHT as usize;
            let mut data = vec![0f32; batch.len() * 3 * plane];
            for (slot, &i) in batch.iter().enumerate() {
                let scaled = resize(&crops[i], scaled_width(&crops[i], &self.options), HEIGHT, FilterType::Triangle);
                write_bgr_planes(&scaled, &mut data[slot * 3 * plane..(slot + 1) * 3 * plane], width, HEIGHT as usize);
            }
            let run = |message: String| ModelError::Run { model: MODEL.to_string(), message };
            let input = Tensor::from_array(([batch.len(), 3, HEIGHT as usize, width], data)).map_err(|e| run(e.to_string()))?;
            let started = std::time::Instant::now();
            let outputs = self.session.run(ort::inputs![input]).map_err(|e| run(e.to_string()))?;
            tracing::debug!(model = MODEL, crops = batch.len(), width, ms = started.elapsed().as_secs_f64() * 1e3, "model run");
            let (shape, probabilities) = outputs[0].try_extract_tensor::<f32>().map_err(|e| run(e.to_string()))?;
            let (n, steps, classes) = match shape[..] {
                [n, t, c] => (n as usize, t as usize, c as usize),
                _ => return Err(ModelError::Contract { model: MODEL.to_string(), message: format!("output shape {:?}", &shape[..]) }),
            };
            if n != batch.len() || classes != self.pooled.len() {
                return Err(ModelError::Contract {
                    model: MODEL.to_string(),
                    message: format!("output shape {:?} for {} crops and {} classes", &shape[..], batch.len(), self.pooled.len()),
                });
            }
            for (slot, &i) in batch.iter().enumerate() {
                let per_crop = &probabilities[slot * steps * classes..(slot + 1) * steps * classes];
                lines[i] = decode(per_crop, steps, classes, &self.pooled);
            }
        }
        Ok(lines)
    }
}

fn scaled_width(crop: &RgbImage, options: &TextRecognizerOptions) -> u32 {
    let w = (HEIGHT as f32 * crop.width() as f32 / crop.height() as f32).ceil() as u32;
    w.clamp(options.min_width.min(options.max_width), options.max_width).max(8)
}

/// The pooled class of one alphabet entry.
fn pooled_class(entry: &str) -> u8 {
    let mut chars = entry.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else { return 0 };
    let latin = match c {
        'А' | 'а' => 'A',
        'В' | 'в' => 'B',
        'Е' | 'е' => 'E',
        'І' | 'і' => 'I',
        'К' | 'к' => 'K',
        'М' | 'м' => 'M',
        'Н' | 'н' => 'H',
        'О' | 'о' => 'O',
        'Р' | 'р' => 'P',
        'С' | 'с' => 'C',
        'Т' | 'т' => 'T',
        'Х' | 'х' => 'X',
        other => other.to_ascii_uppercase(),
    };
    PLATE_ALPHABET.find(latin).map(|i| i as u8 + 1).unwrap_or(0)
}

/// Greedy CTC decoding of one crop's `steps`×`classes` probabilities over pooled classes.
fn decode(probabilities: &[f32], steps: usize, classes: usize, pooled: &[u8]) -> TextLine {
    let alphabet: Vec<char> = PLATE_ALPHABET.chars().collect();
    let mut line = TextLine::default();
    let mut previous = 0u8;
    let mut sums = [0f32; 37];
    for step in 0..steps {
        sums.fill(0.0);
        for (p, &class) in probabilities[step * classes..(step + 1) * classes].iter().zip(pooled) {
            sums[class as usize] += p;
        }
        line.steps.push(sums);
        let best = (0..37).max_by(|&a, &b| sums[a].total_cmp(&sums[b])).unwrap_or(0) as u8;
        if best != 0 {
            let runner = (1..37).filter(|&c| c != best as usize).max_by(|&a, &b| sums[a].total_cmp(&sums[b]));
            let runner_up = runner.map(|c| (alphabet[c - 1], sums[c]));
            let confidence = sums[best as usize];
            if best == previous {
                if let Some(last) = line.chars.last_mut()
                    && confidence > last.confidence
                {
                    last.confidence = confidence;
                    last.runner_up = runner_up;
                }
            } else {
                line.chars.push(RecognizedChar { ch: alphabet[best as usize - 1], confidence, runner_up });
            }
        }
        previous = best;
    }
    line.text = line.chars.iter().map(|c| c.ch).collect();
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_maps_case_and_cyrillic_to_plate_letters_and_the_rest_to_blank() {
        assert_eq!(pooled_class("A"), 1);
        assert_eq!(pooled_class("a"), 1);
        assert_eq!(pooled_class("Н"), pooled_class("H"));
        assert_eq!(pooled_class("0"), 27);
        assert_eq!(pooled_class("-"), 0);
        assert_eq!(pooled_class("中"), 0);
    }

    #[test]
    fn greedy_decoding_collapses_repeats_and_drops_blanks() {
        // Classes: blank, "A", "-", "1"; pooled: 0, A, blank, 1.
        let pooled = [0u8, pooled_class("A"), 0, pooled_class("1")];
        #[rustfmt::skip]
        let probabilities = [
            0.1, 0.8, 0.05, 0.05, // A
            0.1, 0.9, 0.0, 0.0,   // A (repeat)
            0.2, 0.0, 0.7, 0.1,   // "-" pools into the blank
            0.0, 0.6, 0.0, 0.4,   // A again after a blank
            0.0, 0.0, 0.1, 0.9,   // 1
        ];
        let line = decode(&probabilities, 5, 4, &pooled);
        assert_eq!(line.text, "AA1");
        assert!((line.chars[0].confidence - 0.9).abs() < 1e-6);
        assert_eq!(line.chars[1].runner_up, Some(('1', 0.4)));
    }

    /// The CTC probability of `text` by brute force: every path of pooled
    /// classes over the steps, collapsed (repeats merged, blanks dropped).
    fn brute_force_probability(steps: &[[f32; 37]], text: &str) -> f64 {
        let used = [0usize, 1, 2, 27]; // blank, A, B, 0: the rest have probability 0
        let alphabet: Vec<char> = PLATE_ALPHABET.chars().collect();
        let mut total = 0f64;
        let paths = used.len().pow(steps.len() as u32);
        for mut index in 0..paths {
            let (mut p, mut collapsed, mut previous) = (1f64, String::new(), 0usize);
            for step in steps {
                let class = used[index % used.len()];
                index /= used.len();
                p *= step[class] as f64;
                if class != 0 && class != previous {
                    collapsed.push(alphabet[class - 1]);
                }
                previous = class;
            }
            if collapsed == text {
                total += p;
            }
        }
        total
    }

    #[test]
    fn the_likelihood_of_a_text_sums_every_alignment() {
        let mut line = TextLine::default();
        for probabilities in [[0.5, 0.3, 0.1, 0.1], [0.2, 0.6, 0.1, 0.1], [0.6, 0.1, 0.1, 0.2], [0.1, 0.2, 0.6, 0.1], [0.3, 0.1, 0.3, 0.3]] {
            let mut step = [0f32; 37];
            for (class, p) in [0usize, 1, 2, 27].into_iter().zip(probabilities) {
                step[class] = p;
            }
            line.steps.push(step);
        }
        for text in ["A", "AB", "AA", "B0", "AB0", "BA"] {
            let expected = brute_force_probability(&line.steps, text);
            let per_char = expected.powf(1.0 / text.len() as f64) as f32;
            assert!((line.likelihood(text) - per_char).abs() < 1e-5, "{text}: {} vs {per_char}", line.likelihood(text));
        }
        // Six characters cannot fit in five steps; a character outside the alphabet has no class.
        assert_eq!(line.likelihood("ABABAB"), 0.0);
        assert_eq!(line.likelihood("A-B"), 0.0);
    }

    #[test]
    fn the_folded_likelihood_takes_o_and_0_for_one_glyph() {
        // Steps over blank, A, O and 0; the folded likelihood of a text with
        // O or 0 is the likelihood on steps where O has both probabilities.
        let (o, zero) = (1 + PLATE_ALPHABET.find('O').unwrap(), 1 + PLATE_ALPHABET.find('0').unwrap());
        let mut line = TextLine::default();
        let mut merged = TextLine::default();
        for probabilities in [[0.5, 0.3, 0.1, 0.1], [0.2, 0.1, 0.5, 0.2], [0.6, 0.1, 0.1, 0.2], [0.1, 0.2, 0.1, 0.6]] {
            let mut step = [0f32; 37];
            for (class, p) in [0, 1, o, zero].into_iter().zip(probabilities) {
                step[class] = p;
            }
            line.steps.push(step);
            step[o] += step[zero];
            step[zero] = 0.0;
            merged.steps.push(step);
        }
        for (text, same) in [("AO", "AO"), ("A0", "AO"), ("0A", "OA"), ("A", "A")] {
            assert!((line.likelihood_folded(text) - merged.likelihood(same)).abs() < 1e-6, "{text}");
        }
        // Unfolded, the two differ.
        assert!((line.likelihood("AO") - line.likelihood("A0")).abs() > 0.05);
    }
}
