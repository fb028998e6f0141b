//! From detected words to plate candidates: grouping words that sit on one
//! line into plates, and cutting an upright crop out of a rotated box.
//!
//! The text detector splits a plate into words ("ABC" and "123", or "AA",
//! "1234", "BB"), and a photo holds other text (dealer frames, stickers,
//! signs). Every chain of up to three words that are on the same line, of
//! similar height and close together is a candidate; the recognizer and the
//! plate grammars pick among them.

use borderflow_models::TextBox;
use borderflow_models::image::{Rgb, RgbImage};

/// How far apart words of one plate may be, in word heights.
const MAX_GAP_HEIGHTS: f32 = 1.6;
/// Largest ratio of the taller to the shorter word of one plate.
const MAX_HEIGHT_RATIO: f32 = 1.5;
/// Words per candidate at most.
const MAX_WORDS: usize = 3;

/// A plate candidate: one or more words, as one oriented box.
#[derive(Clone, Debug)]
pub struct PlateCandidate {
    pub area: TextBox,
    /// Indices of the words (into the detector's boxes), left to right.
    pub words: Vec<usize>,
    /// Whether a word that could belong to the same plate sits just left or
    /// right of the chain: the chain is then likely part of a longer text.
    pub extendable: bool,
}

/// The candidates for `boxes`: each word alone, and each chain of neighbouring words.
pub fn plate_candidates(boxes: &[TextBox]) -> Vec<PlateCandidate> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| boxes[a].center_x.total_cmp(&boxes[b].center_x));
    let extendable = |words: &[usize]| {
        let (first, last) = (words[0], words[words.len() - 1]);
        (0..boxes.len()).any(|j| !words.contains(&j) && (same_plate(&boxes[j], &boxes[first]) || same_plate(&boxes[last], &boxes[j])))
    };
    let mut candidates = Vec::new();
    for (position, &first) in order.iter().enumerate() {
        let mut words = vec![first];
        candidates.push(PlateCandidate { area: boxes[first].clone(), words: words.clone(), extendable: extendable(&words) });
        let mut last = first;
        while words.len() < MAX_WORDS {
            let next = order[position + 1..]
                .iter()
                .copied()
                .filter(|&j| same_plate(&boxes[last], &boxes[j]))
                .min_by(|&a, &b| boxes[a].center_x.total_cmp(&boxes[b].center_x));
            let Some(next) = next else { break };
            words.push(next);
            candidates.push(PlateCandidate {
                area: union(words.iter().map(|&i| &boxes[i])),
                words: words.clone(),
                extendable: extendable(&words),
            });
            last = next;
        }
    }
    candidates
}

/// Lines of text stacked like the lines of a square plate: for `lines`
/// (whole lines of text, such as candidates no neighbour extends), each
/// chain of two or three of them, top first, where each stands right
/// below the one before (a gap of under [`MAX_STACK_GAP_HEIGHTS`] line
/// heights, or boxes overlapping by up to half a line, as a detector's
/// boxes of close lines do; overlapping most of the narrower one
/// horizontally, of similar height and slant). The result holds indices into `lines`.
pub fn stacked_lines(lines: &[TextBox]) -> Vec<Vec<usize>> {
    let below = |upper: &TextBox, lower: &TextBox| {
        let (uh, lh) = (upper.height, lower.height);
        if uh.max(lh) > MAX_HEIGHT_RATIO * uh.min(lh) || (upper.angle - lower.angle).abs() > 0.15 {
            return false;
        }
        let (ux0, uy0, ux1, uy1) = upper.bounds();
        let (lx0, ly0, lx1, ly1) = lower.bounds();
        let _ = (uy0, ly1);
        let gap = ly0 - uy1;
        let height = (uh + lh) / 2.0;
        let overlap = ux1.min(lx1) - ux0.max(lx0);
        gap > -0.5 * height && gap < MAX_STACK_GAP_HEIGHTS * height && overlap > 0.6 * (ux1 - ux0).min(lx1 - lx0)
    };
    let mut stacks = Vec::new();
    for top in 0..lines.len() {
        for middle in (0..lines.len()).filter(|&j| j != top && below(&lines[top], &lines[j])) {
            stacks.push(vec![top, middle]);
            for bottom in (0..lines.len()).filter(|&k| k != top && k != middle && below(&lines[middle], &lines[k])) {
                stacks.push(vec![top, middle, bottom]);
            }
        }
    }
    stacks
}

/// The smallest box at the lines' mean angle that holds them all.
pub fn union_of(boxes: &[&TextBox]) -> TextBox {
    union(boxes.iter().copied())
}

/// How far apart the lines of a stacked plate may be, in line heights.
const MAX_STACK_GAP_HEIGHTS: f32 = 0.8;

/// Words joined into lines of text: every pair of words that could stand
/// next to each other on one plate is joined, transitively, whatever the
/// number of words (`OC AB 123`), so each line comes out once. The small
/// country code on a plate's strip is less than half as tall as the number
/// and stays apart.
pub fn plate_lines(boxes: &[TextBox]) -> Vec<TextBox> {
    let mut group: Vec<usize> = (0..boxes.len()).collect();
    fn root(group: &mut [usize], mut i: usize) -> usize {
        while group[i] != i {
            group[i] = group[group[i]];
            i = group[i];
        }
        i
    }
    for a in 0..boxes.len() {
        for b in 0..boxes.len() {
            if a != b && same_plate(&boxes[a], &boxes[b]) {
                let (ra, rb) = (root(&mut group, a), root(&mut group, b));
                group[ra] = rb;
            }
        }
    }
    let mut lines: Vec<Vec<usize>> = Vec::new();
    let mut roots: Vec<usize> = Vec::new();
    for i in 0..boxes.len() {
        let r = root(&mut group, i);
        match roots.iter().position(|&x| x == r) {
            Some(k) => lines[k].push(i),
            None => {
                roots.push(r);
                lines.push(vec![i]);
            }
        }
    }
    lines.into_iter().map(|words| union(words.iter().map(|&i| &boxes[i]))).collect()
}

/// Whether `right` can continue the plate whose last word is `left`.
fn same_plate(left: &TextBox, right: &TextBox) -> bool {
    let (lh, rh) = (left.height, right.height);
    if lh.max(rh) > MAX_HEIGHT_RATIO * lh.min(rh) {
        return false;
    }
    let height = (lh + rh) / 2.0;
    let (lx0, ly0, lx1, ly1) = left.bounds();
    let (rx0, ry0, rx1, ry1) = right.bounds();
    let _ = (lx0, rx1);
    // Same line: the vertical extents overlap by most of the shorter one.
    let overlap = ly1.min(ry1) - ly0.max(ry0);
    if overlap < 0.5 * (ly1 - ly0).min(ry1 - ry0) {
        return false;
    }
    let gap = rx0 - lx1;
    right.center_x > left.center_x && gap < MAX_GAP_HEIGHTS * height && gap > -0.5 * height
}

/// The smallest box at the words' mean angle that holds all their corners.
fn union<'a>(words: impl Iterator<Item = &'a TextBox>) -> TextBox {
    let words: Vec<&TextBox> = words.collect();
    let angle = words.iter().map(|w| w.angle).sum::<f32>() / words.len() as f32;
    let score = words.iter().map(|w| w.score).sum::<f32>() / words.len() as f32;
    let (s, c) = angle.sin_cos();
    let (mut u0, mut u1, mut v0, mut v1) = (f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY, f32::NEG_INFINITY);
    for (x, y) in words.iter().flat_map(|w| w.corners()) {
        let u = x * c + y * s;
        let v = -x * s + y * c;
        u0 = u0.min(u);
        u1 = u1.max(u);
        v0 = v0.min(v);
        v1 = v1.max(v);
    }
    let (um, vm) = ((u0 + u1) / 2.0, (v0 + v1) / 2.0);
    TextBox { center_x: um * c - vm * s, center_y: um * s + vm * c, width: u1 - u0, height: v1 - v0, angle, score }
}

/// An upright crop of `area` grown by `margin` × its height on every side,
/// sampled bilinearly (so a rotated box comes out level).
pub fn crop_upright(image: &RgbImage, area: &TextBox, margin: f32) -> RgbImage {
    let pad = margin * area.height;
    let out_w = (area.width + 2.0 * pad).round().max(1.0) as u32;
    let out_h = (area.height + 2.0 * pad).round().max(1.0) as u32;
    let (s, c) = area.angle.sin_cos();
    let (iw, ih) = (image.width() as f32, image.height() as f32);
    RgbImage::from_fn(out_w, out_h, |x, y| {
        let u = x as f32 + 0.5 - out_w as f32 / 2.0;
        let v = y as f32 + 0.5 - out_h as f32 / 2.0;
        let sx = (area.center_x + u * c - v * s - 0.5).clamp(0.0, iw - 1.0);
        let sy = (area.center_y + u * s + v * c - 0.5).clamp(0.0, ih - 1.0);
        bilinear(image, sx, sy)
    })
}

fn bilinear(image: &RgbImage, x: f32, y: f32) -> Rgb<u8> {
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(image.width() - 1), (y0 + 1).min(image.height() - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let (a, b, c, d) = (image.get_pixel(x0, y0), image.get_pixel(x1, y0), image.get_pixel(x0, y1), image.get_pixel(x1, y1));
    Rgb(std::array::from_fn(|k| {
        let top = a[k] as f32 * (1.0 - fx) + b[k] as f32 * fx;
        let bottom = c[k] as f32 * (1.0 - fx) + d[k] as f32 * fx;
        (top * (1.0 - fy) + bottom * fy).round() as u8
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(x0: f32, y0: f32, w: f32, h: f32) -> TextBox {
        TextBox { center_x: x0 + w / 2.0, center_y: y0 + h / 2.0, width: w, height: h, angle: 0.0, score: 0.9 }
    }

    #[test]
    fn words_on_one_line_group_and_distant_ones_do_not() {
        // "AA" "1234" "BB" on one line, a sticker far above.
        let boxes = [word(10.0, 50.0, 40.0, 30.0), word(60.0, 50.0, 80.0, 30.0), word(150.0, 52.0, 40.0, 28.0), word(60.0, 0.0, 30.0, 12.0)];
        let candidates = plate_candidates(&boxes);
        let all_three = candidates.iter().find(|c| c.words == vec![0, 1, 2]).expect("the plate is a candidate");
        assert!((all_three.area.width - 180.0).abs() < 1.0, "{:?}", all_three.area);
        assert!(!candidates.iter().any(|c| c.words.contains(&3) && c.words.len() > 1));
        assert!(!all_three.extendable);
        assert!(candidates.iter().find(|c| c.words == vec![1]).expect("a word alone").extendable);
        assert!(!candidates.iter().find(|c| c.words == vec![3]).expect("the sticker").extendable);
    }

    #[test]
    fn lines_of_a_square_plate_stack_and_side_by_side_words_do_not() {
        // "BH CE" over "3978" (a square plate), "7996" and "AA" under a
        // narrower "BI" (three lines), and a word far to the right.
        let boxes = [word(10.0, 10.0, 80.0, 30.0), word(12.0, 46.0, 76.0, 32.0), word(300.0, 46.0, 76.0, 32.0)];
        assert_eq!(stacked_lines(&boxes), vec![vec![0, 1]]);
        let three = [word(30.0, 10.0, 40.0, 30.0), word(10.0, 45.0, 80.0, 30.0), word(30.0, 80.0, 40.0, 30.0)];
        assert!(stacked_lines(&three).contains(&vec![0, 1, 2]));
        // A line far below, or much smaller, is no second line.
        let apart = [word(10.0, 10.0, 80.0, 30.0), word(12.0, 90.0, 76.0, 30.0), word(12.0, 44.0, 40.0, 12.0)];
        assert!(stacked_lines(&apart).is_empty());
    }

    #[test]
    fn an_upright_crop_of_a_rotated_box_is_level() {
        let image = RgbImage::from_fn(100, 100, |x, _| if x < 50 { Rgb([0, 0, 0]) } else { Rgb([255, 255, 255]) });
        let area = TextBox { center_x: 50.0, center_y: 50.0, width: 40.0, height: 20.0, angle: 0.0, score: 1.0 };
        let crop = crop_upright(&image, &area, 0.0);
        assert_eq!(crop.dimensions(), (40, 20));
        assert_eq!(crop.get_pixel(2, 10)[0], 0);
        assert_eq!(crop.get_pixel(37, 10)[0], 255);
    }
}
