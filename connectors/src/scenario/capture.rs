//! What a camera makes of a vehicle: one [`PlateRead`], possibly with wrong
//! characters, with a plausible confidence, frame count and plate box.

use borderflow_types::crossings::{PostInfo, camera_id};
use borderflow_types::plate_grammar::plate_country;
use borderflow_types::{BBox, PlateRead, plate_norm};
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use ulid::Ulid;

use super::ground_truth::Stage;
use super::plates::TruePlate;

/// Frame size the plate boxes are drawn in.
pub const FRAME_WIDTH: f32 = 1280.0;
pub const FRAME_HEIGHT: f32 = 720.0;

/// The character a camera most likely confuses `c` with.
fn confusable(rng: &mut ChaCha8Rng, c: char) -> Option<char> {
    Some(match c {
        'O' => '0',
        '0' => {
            if rng.random_bool(0.5) {
                'O'
            } else {
                'D'
            }
        }
        'D' | 'Q' => '0',
        'I' => '1',
        '1' => 'I',
        'B' => '8',
        '8' => 'B',
        'S' => '5',
        '5' => 'S',
        'Z' => '2',
        '2' => 'Z',
        'G' => '6',
        '6' => 'G',
        _ => return None,
    })
}

const ALPHANUMERIC: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `text` with `wrong` distinct alphanumeric characters replaced by other
/// alphanumeric characters. Visually confusable substitutions (O/0, I/1,
/// B/8, S/5, Z/2, D/0, G/6) are preferred; the rest are random. The result's
/// [`plate_norm`] differs from the original's in exactly `wrong` positions
/// (fewer only if the text has fewer characters).
pub fn corrupt(rng: &mut ChaCha8Rng, text: &str, wrong: usize) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let mut candidates: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i].is_ascii_alphanumeric())
        .collect();
    for _ in 0..wrong {
        if candidates.is_empty() {
            break;
        }
        let confusable_positions: Vec<usize> = (0..candidates.len())
            .filter(|&k| {
                matches!(
                    chars[candidates[k]],
                    'O' | '0'
                        | 'D'
                        | 'Q'
                        | 'I'
                        | '1'
                        | 'B'
                        | '8'
                        | 'S'
                        | '5'
                        | 'Z'
                        | '2'
                        | 'G'
                        | '6'
                )
            })
            .collect();
        let k = if !confusable_positions.is_empty() && rng.random_bool(0.6) {
            confusable_positions[rng.random_range(0..confusable_positions.len())]
        } else {
            rng.random_range(0..candidates.len())
        };
        let i = candidates.swap_remove(k);
        let original = chars[i];
        let replacement = match confusable(rng, original) {
            Some(c) if rng.random_bool(0.75) => c,
            _ => loop {
                let c = ALPHANUMERIC[rng.random_range(0..ALPHANUMERIC.len())] as char;
                if c != original {
                    break c;
                }
            },
        };
        chars[i] = replacement;
    }
    chars.into_iter().collect()
}

/// A read id: a ULID whose time part is the capture time and whose 80
/// random bits come from the scenario's generator.
pub fn new_ulid(rng: &mut ChaCha8Rng, at_ms: i64) -> String {
    let random = (u128::from(rng.next_u64()) << 16) | u128::from(rng.next_u32() & 0xffff);
    Ulid::from_parts(at_ms.max(0) as u64, random).to_string()
}

/// `bits` bits of `word` from bit `from`, as a fraction in [0, 1).
fn fraction(word: u64, from: u32, bits: u32) -> f32 {
    ((word >> from) & ((1 << bits) - 1)) as f32 / (1u64 << bits) as f32
}

/// The read the camera at `post`, `stage`, `lane` makes of `plate` at `at_ms`,
/// with `wrong_chars` characters misread.
pub fn plate_read(
    rng: &mut ChaCha8Rng,
    post: &PostInfo,
    stage: Stage,
    lane: u16,
    at_ms: i64,
    plate: &TruePlate,
    wrong_chars: usize,
) -> PlateRead {
    // The cosmetic details (spacing, confidence, frames, box) are cut from
    // one random word: bits 0–7 spacing, 8–23 confidence, 24–31 frames,
    // 32–43 box width, 44–53 x, 54–63 y.
    let word = rng.next_u64();
    // Some recognisers print plates without the separators.
    let compact = fraction(word, 0, 8) < 0.15;
    let printed = if compact { &plate.norm } else { &plate.text };
    let (plate_text, norm, matched) = if wrong_chars > 0 {
        let text = corrupt(rng, printed, wrong_chars);
        let norm = plate_norm(&text);
        let matched = plate_country(&norm, Some(post.country));
        (text, norm, matched)
    } else {
        (
            printed.clone(),
            plate.norm.clone(),
            plate.read_country(post.country),
        )
    };
    let u = fraction(word, 8, 16);
    let frames_bits = ((word >> 24) & 0xff) as u16;
    let (confidence, frames) = if wrong_chars > 0 {
        (0.55 + 0.30 * u, 3 + frames_bits % 8)
    } else {
        // Skewed towards high confidence: most reads are clean.
        (0.99 - 0.19 * u * u, 3 + frames_bits % 18)
    };
    let w = (90.0 + 90.0 * fraction(word, 32, 12)).round();
    let h = (w / 4.6).round();
    let x = (200.0 + (FRAME_WIDTH - 400.0 - w) * fraction(word, 44, 10)).round();
    let y = (360.0 + (FRAME_HEIGHT - 400.0 - h) * fraction(word, 54, 10)).round();
    PlateRead {
        read_id: new_ulid(rng, at_ms),
        post_id: post.id.to_string(),
        camera_id: camera_id(post.id, stage.direction(), stage.point(), lane),
        country: post.country.to_string(),
        lane,
        direction: stage.direction(),
        point: stage.point(),
        captured_at_ms: at_ms,
        plate_text,
        plate_norm: norm,
        plate_country: matched.map(str::to_string),
        confidence,
        frames,
        bbox: Some(BBox { x, y, w, h }),
        crop_uri: None,
    }
}
