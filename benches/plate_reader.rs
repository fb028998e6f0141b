//! Plate reading per 1280×720 image: the text detector alone, recognition of
//! the detected words (grouping, cropping, the recognizers and the plate
//! grammars), and the whole reader (both passes); the last two also without
//! second opinions, as the baseline. Criterion measures each;
//! at the end one JSON object gives milliseconds per image (median, p95,
//! mean) for each stage.
//!
//! Images: the `.jpg` files of `$BORDERFLOW_BENCH_IMAGES` (default
//! `../shared/data/us`, real 1280×720 photos), scaled to 1280×720; where
//! there are none, a synthetic street scene with a plate. Needs ONNX Runtime
//! and the models (`make setup`).
//!
//! `cargo bench --bench plate_reader` (add `--profile dev` for a quick run).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use borderflow_models::image::imageops::{FilterType, resize};
use borderflow_models::image::{Rgb, RgbImage};
use borderflow_models::{TextBox, TextDetector};
use borderflow_operators::{PlateReader, PlateReaderOptions, load_rgb};
use criterion::Criterion;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
/// Images measured at most (each stage runs over all of them in turn).
const MAX_IMAGES: usize = 8;

fn images() -> Vec<(String, RgbImage)> {
    let dir = std::env::var_os("BORDERFLOW_BENCH_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/us"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "jpg"));
    files.sort();
    let mut images: Vec<(String, RgbImage)> = files
        .iter()
        .filter_map(|p| load_rgb(p).ok().map(|image| (p.display().to_string(), image)))
        .filter(|(_, image)| image.width() >= image.height())
        .take(MAX_IMAGES)
        .map(|(name, image)| (name, resize(&image, WIDTH, HEIGHT, FilterType::Triangle)))
        .collect();
    if images.is_empty() {
        images.push(("synthetic street scene".to_string(), synthetic_scene()));
    }
    images
}

/// A grey street with a darker car and a white plate holding black bars
/// shaped like characters: enough texture for the detector to find words.
fn synthetic_scene() -> RgbImage {
    RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let in_plate = (560..720).contains(&x) && (480..516).contains(&y);
        let glyph = in_plate && (x - 560) % 20 > 6 && (x - 560) % 20 < 16 && (486..510).contains(&y) && (x - 560) > 8;
        if glyph {
            Rgb([15, 15, 15])
        } else if in_plate {
            Rgb([240, 240, 240])
        } else if (300..980).contains(&x) && (300..600).contains(&y) {
            Rgb([60, 70, 90])
        } else {
            let v = 120 + ((x * 7 + y * 13) % 23) as u8;
            Rgb([v, v, v])
        }
    })
}

struct Stages {
    images: Vec<(String, RgbImage)>,
    boxes: Vec<Vec<TextBox>>,
    detector: TextDetector,
    reader: PlateReader,
    /// The same reader without second opinions (the baseline).
    one_recognizer: PlateReader,
    /// Milliseconds per image of each stage, every timed call.
    samples: Vec<(&'static str, Vec<f64>)>,
}

fn record(samples: &mut Vec<(&'static str, Vec<f64>)>, stage: &'static str, ms: f64) {
    match samples.iter_mut().find(|(s, _)| *s == stage) {
        Some((_, v)) => v.push(ms),
        None => samples.push((stage, vec![ms])),
    }
}

fn bench(c: &mut Criterion, stages: &mut Stages) {
    let mut group = c.benchmark_group("plate_reader_1280x720");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(20));
    let Stages { images, boxes, detector, reader, one_recognizer, samples } = stages;
    let n = images.len();
    let mut stage = |name: &str, key: &'static str, run: &mut dyn FnMut(usize)| {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for i in 0..iterations as usize {
                    let start = Instant::now();
                    run(i % n);
                    let elapsed = start.elapsed();
                    record(samples, key, elapsed.as_secs_f64() * 1e3);
                    total += elapsed;
                }
                total
            })
        });
    };
    stage("detect", "detect", &mut |i| {
        std::hint::black_box(detector.detect(&images[i].1).expect("detection runs"));
    });
    stage("recognize", "recognize", &mut |i| {
        std::hint::black_box(reader.read_words(&images[i].1, &boxes[i]).expect("recognition runs"));
    });
    stage("recognize (one recognizer)", "recognize_one_recognizer", &mut |i| {
        std::hint::black_box(one_recognizer.read_words(&images[i].1, &boxes[i]).expect("recognition runs"));
    });
    stage("read (both passes)", "read", &mut |i| {
        std::hint::black_box(reader.read(&images[i].1).expect("reading runs"));
    });
    stage("read (both passes, one recognizer)", "read_one_recognizer", &mut |i| {
        std::hint::black_box(one_recognizer.read(&images[i].1).expect("reading runs"));
    });
    group.finish();
}

fn summary(stages: &Stages) -> String {
    let stats = |v: &[f64]| {
        let mut sorted = v.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
        format!("{{\"median_ms\": {:.1}, \"p95_ms\": {:.1}, \"mean_ms\": {:.1}, \"samples\": {}}}", at(0.5), at(0.95), mean, sorted.len())
    };
    let per_stage: Vec<String> = stages.samples.iter().map(|(stage, v)| format!("\"{stage}\": {}", stats(v))).collect();
    let words: usize = stages.boxes.iter().map(Vec::len).sum();
    format!(
        "{{\"bench\": \"plate_reader\", \"image\": \"{WIDTH}x{HEIGHT}\", \"images\": {}, \"words_per_image\": {:.1}, \"profile\": \"{}\", \"ms_per_image\": {{{}}}}}",
        stages.images.len(),
        words as f64 / stages.images.len() as f64,
        if cfg!(debug_assertions) { "dev" } else { "release" },
        per_stage.join(", ")
    )
}

fn main() {
    let images = images();
    let options = PlateReaderOptions::default();
    let mut detector = TextDetector::new(options.detector.clone()).expect("make setup installs ONNX Runtime and the models");
    let one_recognizer = PlateReader::new(PlateReaderOptions { second_opinions: 0, ..options.clone() }).expect("models");
    let reader = PlateReader::new(options).expect("make setup installs ONNX Runtime and the models");
    let boxes = images.iter().map(|(_, image)| detector.detect(image).expect("detection runs")).collect();
    let mut stages = Stages { images, boxes, detector, reader, one_recognizer, samples: Vec::new() };
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion, &mut stages);
    criterion.final_summary();
    println!("{}", summary(&stages));
}
