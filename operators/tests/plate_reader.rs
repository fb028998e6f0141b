//! The plate reader on plates the test renders itself (DejaVu Sans Bold from
//! the Debian package fonts-dejavu-core): Moldovan, Ukrainian and Polish
//! formats at several sizes, clean, blurred and slightly rotated; US plates
//! with a mark between their halves at a US camera; a plate in a full HD
//! frame detected at the video detector's side; square plates of two and
//! three lines; and files that are not images.

use std::path::Path;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};
use borderflow_models::image::{Rgb, RgbImage, imageops};
use borderflow_models::{TextRecognizer, TextRecognizerOptions};
use borderflow_operators::{PlateReader, PlateReaderError, PlateReaderOptions};

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

fn font() -> FontVec {
    let bytes = std::fs::read(FONT).unwrap_or_else(|e| panic!("{FONT}: {e} (install the Debian package fonts-dejavu-core)"));
    FontVec::try_from_vec(bytes).expect("DejaVu Sans Bold parses")
}

/// A street-like scene (grey, with a darker "bumper") holding a white plate
/// with a black rim and `text` in black, the plate `plate_height` pixels tall.
fn render_plate(font: &FontVec, text: &str, plate_height: u32) -> RgbImage {
    let scale = PxScale::from(plate_height as f32 * 0.72);
    let scaled = font.as_scaled(scale);
    let text_width: f32 = text.chars().map(|c| scaled.h_advance(scaled.glyph_id(c))).sum();
    let plate_w = (text_width + plate_height as f32 * 0.8) as u32;
    let (scene_w, scene_h) = (plate_w * 2 + 120, plate_height * 4 + 80);
    let mut image = RgbImage::from_fn(scene_w, scene_h, |_, y| if y > scene_h / 2 { Rgb([70, 72, 78]) } else { Rgb([150, 150, 145]) });
    let (px, py) = ((scene_w - plate_w) / 2, (scene_h - plate_height) / 2);
    let rim = (plate_height / 20).max(1);
    for y in py..py + plate_height {
        for x in px..px + plate_w {
            let edge = x < px + rim || x >= px + plate_w - rim || y < py + rim || y >= py + plate_height - rim;
            image.put_pixel(x, y, if edge { Rgb([20, 20, 20]) } else { Rgb([245, 245, 245]) });
        }
    }
    let baseline = py as f32 + plate_height as f32 * 0.5 + (scaled.ascent() + scaled.descent()) / 2.0;
    draw_text(&mut image, font, text, scale, px as f32 + plate_height as f32 * 0.4, baseline);
    image
}

/// Draws `text` in near-black at `scale`, starting at `left` on `baseline`.
fn draw_text(image: &mut RgbImage, font: &FontVec, text: &str, scale: PxScale, left: f32, baseline: f32) {
    let scaled = font.as_scaled(scale);
    let (w, h) = image.dimensions();
    let mut caret = left;
    for c in text.chars() {
        let glyph = scaled.glyph_id(c).with_scale_and_position(scale, ab_glyph::point(caret, baseline));
        caret += scaled.h_advance(scaled.glyph_id(c));
        if let Some(outlined) = font.outline_glyph(glyph) {
            let bounds = outlined.px_bounds();
            outlined.draw(|gx, gy, coverage| {
                let (x, y) = (bounds.min.x as i32 + gx as i32, bounds.min.y as i32 + gy as i32);
                if x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h {
                    let pixel = image.get_pixel_mut(x as u32, y as u32);
                    for k in 0..3 {
                        pixel[k] = (pixel[k] as f32 * (1.0 - coverage) + 15.0 * coverage) as u8;
                    }
                }
            });
        }
    }
}

/// A scene like [`render_plate`]'s holding a square plate `plate_height`
/// pixels tall whose `lines` stand one above the other, centred; with
/// `strip`, a small country code (a quarter of a line tall) left of the
/// top line, as Ukrainian square plates print it beside their flag.
fn render_stacked_plate(font: &FontVec, lines: &[&str], strip: Option<&str>, plate_height: u32) -> RgbImage {
    let line_h = plate_height as f32 / lines.len() as f32;
    let scale = PxScale::from(line_h * 0.8);
    let scaled = font.as_scaled(scale);
    let width = |text: &str, s: &ab_glyph::PxScaleFont<&FontVec>| text.chars().map(|c| s.h_advance(s.glyph_id(c))).sum::<f32>();
    let widest = lines.iter().map(|l| width(l, &scaled)).fold(0.0, f32::max);
    let plate_w = (widest + line_h * if strip.is_some() { 1.6 } else { 0.6 }) as u32;
    let (scene_w, scene_h) = (plate_w * 3 + 120, plate_height * 3 + 80);
    let mut image = RgbImage::from_fn(scene_w, scene_h, |_, y| if y > scene_h / 2 { Rgb([70, 72, 78]) } else { Rgb([150, 150, 145]) });
    let (px, py) = ((scene_w - plate_w) / 2, (scene_h - plate_height) / 2);
    let rim = (plate_height / 30).max(1);
    for y in py..py + plate_height {
        for x in px..px + plate_w {
            let edge = x < px + rim || x >= px + plate_w - rim || y < py + rim || y >= py + plate_height - rim;
            image.put_pixel(x, y, if edge { Rgb([20, 20, 20]) } else { Rgb([245, 245, 245]) });
        }
    }
    let text_left = px as f32 + if strip.is_some() { line_h * 1.1 } else { line_h * 0.3 };
    for (k, line) in lines.iter().enumerate() {
        let left = text_left + (widest - width(line, &scaled)) / 2.0;
        let baseline = py as f32 + line_h * (k as f32 + 0.5) + (scaled.ascent() + scaled.descent()) / 2.0;
        draw_text(&mut image, font, line, scale, left, baseline);
    }
    if let Some(code) = strip {
        draw_text(&mut image, font, code, PxScale::from(line_h * 0.25), px as f32 + line_h * 0.3, py as f32 + line_h * 0.8);
    }
    image
}

/// `image` rotated by `degrees` about its centre (bilinear, grey fill).
fn rotate(image: &RgbImage, degrees: f32) -> RgbImage {
    let (s, c) = degrees.to_radians().sin_cos();
    let (w, h) = image.dimensions();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        let (sx, sy) = (cx + dx * c + dy * s, cy - dx * s + dy * c);
        if sx < 0.0 || sy < 0.0 || sx >= (w - 1) as f32 || sy >= (h - 1) as f32 {
            return Rgb([128, 128, 128]);
        }
        let (x0, y0) = (sx as u32, sy as u32);
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        Rgb(std::array::from_fn(|k| {
            let p = |xx: u32, yy: u32| image.get_pixel(xx, yy)[k] as f32;
            let top = p(x0, y0) * (1.0 - fx) + p(x0 + 1, y0) * fx;
            let bottom = p(x0, y0 + 1) * (1.0 - fx) + p(x0 + 1, y0 + 1) * fx;
            (top * (1.0 - fy) + bottom * fy) as u8
        }))
    })
}

const PLATES: &[(&str, &str, &str)] = &[("ABC 123", "ABC123", "MD"), ("AA 1234 BB", "AA1234BB", "UA"), ("WA 12345", "WA12345", "PL")];
const HEIGHTS: &[u32] = &[40, 64, 100];

fn reader() -> PlateReader {
    PlateReader::new(PlateReaderOptions::default()).expect("make setup installs ONNX Runtime and the OCR models")
}

#[test]
fn clean_rendered_plates_are_read_exactly_with_their_country() {
    let font = font();
    let mut reader = reader();
    let mut failures = Vec::new();
    for &(text, want, country) in PLATES {
        for &height in HEIGHTS {
            let image = render_plate(&font, text, height);
            let readings = reader.read(&image).expect("reading works");
            match readings.first() {
                Some(best) if best.text == want && best.country == Some(country) => {}
                other => failures.push(format!("{text} at {height}px: {other:?}")),
            }
        }
    }
    assert!(failures.is_empty(), "misread:\n{}", failures.join("\n"));
}

#[test]
fn square_plates_of_two_and_three_lines_are_read_exactly_with_their_country() {
    // Moldova's square plate reads line after line; Ukraine's two-line
    // plate prints region and series on top and the number below, its
    // motorcycle plate one part per line; both with the UA strip.
    // `HFT 658` is of Moldova's H series, a format of its own with the
    // square plate's pattern.
    let plates: [(&[&str], Option<&str>, &str, &str); 4] = [
        (&["ABC", "123"], None, "ABC123", "MD"),
        (&["HFT", "658"], None, "HFT658", "MD"),
        (&["BH CE", "3978"], Some("UA"), "BH3978CE", "UA"),
        (&["BI", "7996", "AA"], Some("UA"), "BI7996AA", "UA"),
    ];
    let font = font();
    let mut failures = Vec::new();
    for country in [None, Some("MD"), Some("UA")] {
        let mut reader = PlateReader::new(PlateReaderOptions { prefer_country: country.map(str::to_string), ..Default::default() }).expect("reader");
        for &(lines, strip, want, plate_country) in &plates {
            for height in [72, 110, 160] {
                let readings = reader.read(&render_stacked_plate(&font, lines, strip, height)).expect("reading works");
                match readings.first() {
                    Some(best) if best.text == want && best.country == Some(plate_country) => {}
                    other => failures.push(format!("{lines:?} at {height}px, camera in {country:?}: {other:?}")),
                }
            }
        }
    }
    assert!(failures.is_empty(), "misread:\n{}", failures.join("\n"));
}

#[test]
fn blurred_and_slightly_rotated_plates_are_mostly_read() {
    let font = font();
    let mut reader = reader();
    let (mut right, mut total, mut misses) = (0, 0, Vec::new());
    for &(text, want, _) in PLATES {
        for &height in &HEIGHTS[1..] {
            let clean = render_plate(&font, text, height);
            for (what, image) in [
                ("blur 1.2", imageops::blur(&clean, 1.2)),
                ("rotated 3°", rotate(&clean, 3.0)),
                ("rotated -4° and blurred", imageops::blur(&rotate(&clean, -4.0), 0.8)),
            ] {
                total += 1;
                let best = reader.read(&image).expect("reading works").into_iter().next();
                if best.as_ref().is_some_and(|b| b.text == want) {
                    right += 1;
                } else {
                    misses.push(format!("{text} {height}px {what}: {best:?}"));
                }
            }
        }
    }
    assert!(right * 10 >= total * 8, "{right}/{total} read; misses:\n{}", misses.join("\n"));
}

#[test]
fn a_dim_plate_in_a_dark_picture_with_a_bright_band_is_read() {
    // Night: the scene at a 25th of its contrast, near black, under a
    // burnt-out strip of sky, so the picture spans the whole range and only
    // a local normalisation finds the plate.
    let font = font();
    let clean = render_plate(&font, "ABC 123", 64);
    let height = clean.height();
    let dim = RgbImage::from_fn(clean.width(), height, |x, y| {
        if y < height / 8 {
            return Rgb([255, 255, 250]);
        }
        let p = clean.get_pixel(x, y);
        Rgb(std::array::from_fn(|k| 12 + p[k] / 25))
    });
    let mut reader = reader();
    let best = reader.read(&dim).expect("reading works").into_iter().next();
    assert_eq!(best.as_ref().map(|b| b.text.as_str()), Some("ABC123"), "{best:?}");
    // Without the second, normalised look the reader found nothing here
    // (2026-11-29); printed, not asserted: that premise is the model's.
    let mut plain = PlateReader::new(PlateReaderOptions { enhance_below: 0.0, ..Default::default() }).expect("reader");
    let without = plain.read(&dim).expect("reading works").into_iter().next();
    eprintln!("without the second look: {without:?}");
}

#[test]
fn files_that_are_not_images_give_an_error_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("borderflow-plate-reader-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut jpeg = Vec::new();
    render_plate(&font(), "ABC 123", 40)
        .write_to(&mut std::io::Cursor::new(&mut jpeg), borderflow_models::image::ImageFormat::Jpeg)
        .expect("encode");
    let cases: [(&str, &[u8]); 3] = [("empty.jpg", b""), ("truncated.jpg", &jpeg[..jpeg.len() / 3]), ("notes.png", b"not an image at all")];
    let mut reader = reader();
    for (name, bytes) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        match reader.read_file(&path) {
            Err(e @ PlateReaderError::Image { .. }) => assert!(e.to_string().contains(name), "{e}"),
            other => panic!("{name}: expected an image error, got {other:?}"),
        }
    }
    let missing = dir.join("missing.jpg");
    let error = reader.read_file(Path::new(&missing)).expect_err("no such file");
    assert!(error.to_string().contains("missing.jpg"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn each_recognizer_alone_reads_a_rendered_plate_crop() {
    // The second recognizer's alphabet comes from its package's dictionary
    // file, not from the model: a file off by one line would turn every
    // character into its neighbour, which this catches.
    let font = font();
    for (text, want) in [("WTC 249", "WTC249"), ("AB1 C2D", "AB1C2D"), ("AA 1234 BB", "AA1234BB")] {
        let height = 64;
        let scene = render_plate(&font, text, height);
        // render_plate centres a plate (scene_w - 120) / 2 wide, `height` tall.
        let plate_w = (scene.width() - 120) / 2;
        let (px, py) = ((scene.width() - plate_w) / 2, (scene.height() - height) / 2);
        let crop = imageops::crop_imm(&scene, px, py, plate_w, height).to_image();
        for model in ["text_recognizer", "second_text_recognizer"] {
            let mut recognizer = TextRecognizer::with_model(model, TextRecognizerOptions::default()).expect("make setup installs the OCR models");
            let lines = recognizer.recognize(std::slice::from_ref(&crop)).expect("recognition runs");
            assert_eq!(lines[0].text, want, "{model} on {text}");
            // The text read is the one the per-step probabilities favour.
            assert!(lines[0].likelihood(want) > lines[0].likelihood(&want.replacen('W', "N", 1).replacen('A', "4", 1)), "{model}");
        }
    }
}

#[test]
fn us_plates_with_a_mark_between_their_halves_are_read_at_a_us_camera() {
    // A dash or a slim state graphic between the halves, which the
    // recognizer reads as a thin character or not at all (these clean
    // renders: not at all), and a number starting with 1 right after
    // where a mark could stand, which must keep its 1.
    let font = font();
    let mut reader = PlateReader::new(PlateReaderOptions { prefer_country: Some("US".into()), ..Default::default() }).expect("reader");
    let mut failures = Vec::new();
    for (text, want) in [("SH0-R7X", "SH0R7X"), ("ABC-1234", "ABC1234"), ("ABC|123", "ABC123"), ("AB1|C2D", "AB1C2D"), ("384|KMP", "384KMP"), ("ABC 1234", "ABC1234")] {
        for height in [40, 64] {
            let readings = reader.read(&render_plate(&font, text, height)).expect("reading works");
            match readings.first() {
                Some(best) if best.text == want && best.country == Some("US") => {}
                other => failures.push(format!("{text} at {height}px: {other:?}")),
            }
        }
    }
    assert!(failures.is_empty(), "misread:\n{}", failures.join("\n"));
}

#[test]
fn the_detector_finds_a_plate_in_a_full_hd_frame_scaled_down_to_its_side() {
    // A camera's 1920×1080 frame scaled to 512 px for the detector, as
    // video does (by area average: more than halved): the plate is found
    // where it is, and read from the full frame.
    let font = font();
    let scene = render_plate(&font, "AB 1234 CD", 72);
    let mut frame = RgbImage::from_pixel(1920, 1080, Rgb([120, 122, 118]));
    let (x0, y0) = (900, 640);
    imageops::overlay(&mut frame, &scene, x0, y0);
    let (plate_w, plate_h) = ((scene.width() - 120) / 2, 72);
    let (px, py) = (x0 as f32 + ((scene.width() - plate_w) / 2) as f32, y0 as f32 + ((scene.height() - plate_h) / 2) as f32);
    let mut reader = PlateReader::new(PlateReaderOptions { prefer_country: Some("UA".into()), ..Default::default() }).expect("reader");
    let words = reader.detect_words(&frame, 512).expect("detection runs");
    let on_plate: Vec<_> = words
        .iter()
        .filter(|w| w.center_x > px && w.center_x < px + plate_w as f32 && w.center_y > py && w.center_y < py + plate_h as f32)
        .collect();
    assert!(!on_plate.is_empty(), "no word on the plate at {px},{py}: {words:?}");
    let area = on_plate.iter().max_by(|a, b| (a.width * a.height).total_cmp(&(b.width * b.height))).expect("a word");
    let joined = borderflow_models::TextBox { center_x: px + plate_w as f32 / 2.0, center_y: py + plate_h as f32 / 2.0, width: plate_w as f32 * 0.9, height: area.height.max(plate_h as f32 * 0.6), ..**area };
    let readings = reader.read_area(&frame, &joined).expect("reading works");
    assert_eq!(readings.first().map(|r| r.text.as_str()), Some("AB1234CD"), "{readings:?}");
}
