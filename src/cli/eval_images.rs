//! `borderflow eval-images DIR`: plate recognition measured on a labelled
//! set of photographs.
//!
//! Two label forms are understood (see `../shared/data/README.md`):
//! one `.txt` per image with an OpenALPR benchmark line
//! (`file<TAB>x<TAB>y<TAB>w<TAB>h<TAB>TEXT`, the plate's box and text), or one
//! `groundtruth.json` mapping file names to lists of plate texts (no boxes).
//! Every image is read by a [`PlateReader`]; the summary gives exact-plate
//! accuracy (raw, and with O/0 and I/1 folded), top-3 accuracy, detection
//! recall (IoU ≥ 0.5 between the best reading's box and the labelled box,
//! over images with a box), milliseconds per image (median and p95) and
//! images per second over the run, and a CSV has one row per image (in
//! file-name order). An image that cannot be read is an error row and
//! counts as a miss; the run carries on.
//!
//! `--workers N` reads N images at a time, each worker thread with its own
//! plate reader (its own ONNX Runtime sessions, one intra-op thread each):
//! images are independent, so this scales with cores where one session's
//! intra-op threads do not (the models are small and their operators short).

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use borderflow_operators::{PlateReader, PlateReaderOptions, PlateReading};

/// Settings of one evaluation run.
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    /// Where to write the per-image CSV (`None`: `eval-images.csv` in the
    /// working directory, never into the data set).
    pub csv: Option<PathBuf>,
    /// Evaluate only the first N images (in file-name order).
    pub limit: Option<usize>,
    /// The reader's settings (detector size, threads, preferred country).
    pub reader: PlateReaderOptions,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Images read at a time, each by its own reader (0 or 1: one).
    pub workers: usize,
}

/// One labelled image.
#[derive(Clone, Debug)]
pub struct LabelledImage {
    pub path: PathBuf,
    /// Acceptable plate texts (normalised).
    pub truths: Vec<String>,
    /// The labelled plate box x, y, w, h, where the set has one.
    pub bbox: Option<[f32; 4]>,
}

/// The figures of one run.
#[derive(Clone, Debug, Default)]
pub struct EvalSummary {
    pub images: usize,
    pub errors: usize,
    pub exact: usize,
    pub exact_folded: usize,
    pub top3: usize,
    pub top3_folded: usize,
    pub with_box: usize,
    pub detected: usize,
    pub ms_median: f64,
    pub ms_p95: f64,
    /// Images per second of wall time over the whole run.
    pub images_per_s: f64,
    pub workers: usize,
    pub csv: PathBuf,
}

impl fmt::Display for EvalSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |n: usize, d: usize| if d == 0 { 0.0 } else { 100.0 * n as f64 / d as f64 };
        writeln!(f, "images                      {} ({} unreadable)", self.images, self.errors)?;
        writeln!(f, "exact plate                 {:5.1}% ({}/{})", pct(self.exact, self.images), self.exact, self.images)?;
        writeln!(f, "exact plate, O/0 I/1 folded {:5.1}% ({}/{})", pct(self.exact_folded, self.images), self.exact_folded, self.images)?;
        writeln!(f, "top-3                       {:5.1}% ({}/{})", pct(self.top3, self.images), self.top3, self.images)?;
        writeln!(f, "top-3, folded               {:5.1}% ({}/{})", pct(self.top3_folded, self.images), self.top3_folded, self.images)?;
        if self.with_box > 0 {
            writeln!(f, "detection recall (IoU>=0.5) {:5.1}% ({}/{})", pct(self.detected, self.with_box), self.detected, self.with_box)?;
        } else {
            writeln!(f, "detection recall            n/a (no labelled boxes)")?;
        }
        writeln!(f, "ms per image                median {:.0}, p95 {:.0}", self.ms_median, self.ms_p95)?;
        writeln!(f, "images per second           {:.2} ({} worker{})", self.images_per_s, self.workers, if self.workers == 1 { "" } else { "s" })?;
        write!(f, "per-image CSV               {}", self.csv.display())
    }
}

/// Evaluates the labelled set in `dir`.
pub fn run(dir: &Path, options: &EvalOptions) -> Result<EvalSummary, String> {
    let mut set = load_labels(dir)?;
    if let Some(limit) = options.limit {
        set.truncate(limit);
    }
    if set.is_empty() {
        return Err(format!("{}: no labelled images (expected OpenALPR .txt lines or groundtruth.json)", dir.display()));
    }
    let workers = options.workers.max(1).min(set.len());
    let mut readers = Vec::with_capacity(workers);
    for _ in 0..workers {
        readers.push(PlateReader::new(options.reader.clone()).map_err(|e| e.to_string())?);
    }
    let csv_path = options.csv.clone().unwrap_or_else(|| PathBuf::from("eval-images.csv"));
    let mut csv = std::fs::File::create(&csv_path)
        .map(std::io::BufWriter::new)
        .map_err(|e| format!("{}: {e}", csv_path.display()))?;
    let csv_error = |e: std::io::Error| format!("{}: {e}", csv_path.display());
    writeln!(csv, "file,truth,read,confidence,ms,exact,exact_folded,top3,iou,raw,country,candidates,error").map_err(csv_error)?;
    let bar = if options.progress {
        let bar = indicatif::ProgressBar::new(set.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} images, {eta} left") {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut summary = EvalSummary { csv: csv_path.clone(), workers, ..EvalSummary::default() };
    let mut times = Vec::with_capacity(set.len());
    let run_started = Instant::now();
    // Each worker takes the next image not taken; results are put back in order.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<(Result<Vec<PlateReading>, String>, f64)>> = (0..set.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = readers
            .into_iter()
            .map(|mut reader| {
                let (next, set, bar) = (&next, &set, &bar);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(image) = set.get(i) else { return mine };
                        let started = Instant::now();
                        let result = reader.read_file(&image.path).map_err(|e| e.to_string());
                        mine.push((i, result, started.elapsed().as_secs_f64() * 1e3));
                        bar.inc(1);
                    }
                })
            })
            .collect();
        for handle in handles {
            for (i, result, ms) in handle.join().unwrap_or_default() {
                results[i] = Some((result, ms));
            }
        }
    });
    summary.images_per_s = set.len() as f64 / run_started.elapsed().as_secs_f64().max(1e-9);
    for (image, result) in set.iter().zip(results) {
        let (result, ms) = result.unwrap_or_else(|| (Err("the worker reading it stopped".to_string()), 0.0));
        times.push(ms);
        summary.images += 1;
        let (readings, error) = match result {
            Ok(readings) => (readings, String::new()),
            Err(e) => {
                summary.errors += 1;
                (Vec::new(), e)
            }
        };
        let best = readings.first();
        let hit = |reading: Option<&PlateReading>, fold: fn(&str) -> String| {
            reading.is_some_and(|r| image.truths.iter().any(|t| fold(t) == fold(&r.text)))
        };
        let exact = hit(best, |s| s.to_string());
        let exact_folded = hit(best, fold_o0_i1);
        let top3 = readings.iter().take(3).any(|r| hit(Some(r), |s| s.to_string()));
        let top3_folded = readings.iter().take(3).any(|r| hit(Some(r), fold_o0_i1));
        let iou = match (image.bbox, best) {
            (Some(truth), Some(read)) => Some(iou(truth, read.bbox)),
            (Some(_), None) => Some(0.0),
            _ => None,
        };
        summary.exact += exact as usize;
        summary.exact_folded += exact_folded as usize;
        summary.top3 += top3 as usize;
        summary.top3_folded += top3_folded as usize;
        if let Some(iou) = iou {
            summary.with_box += 1;
            summary.detected += (iou >= 0.5) as usize;
        }
        writeln!(
            csv,
            "{},{},{},{:.3},{:.1},{},{},{},{},{},{},{},{}",
            csv_field(&file_name(&image.path)),
            csv_field(&image.truths.join("|")),
            csv_field(best.map(|r| r.text.as_str()).unwrap_or("")),
            best.map(|r| r.confidence).unwrap_or(0.0),
            ms,
            exact as u8,
            exact_folded as u8,
            top3 as u8,
            iou.map(|v| format!("{v:.2}")).unwrap_or_default(),
            csv_field(best.map(|r| r.raw.as_str()).unwrap_or("")),
            best.and_then(|r| r.country).unwrap_or(""),
            csv_field(&candidates(&readings)),
            csv_field(&error),
        )
        .map_err(csv_error)?;
    }
    bar.finish_and_clear();
    csv.flush().map_err(csv_error)?;
    times.sort_by(f64::total_cmp);
    summary.ms_median = percentile(&times, 0.5);
    summary.ms_p95 = percentile(&times, 0.95);
    Ok(summary)
}

/// The first readings after the best, as `TEXT:confidence` separated by spaces.
fn candidates(readings: &[PlateReading]) -> String {
    readings.iter().skip(1).take(4).map(|r| format!("{}:{:.2}", r.text, r.confidence)).collect::<Vec<_>>().join(" ")
}

/// The labelled images of `dir`, in file-name order.
pub fn load_labels(dir: &Path) -> Result<Vec<LabelledImage>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let groundtruth = dir.join("groundtruth.json");
    if groundtruth.is_file() {
        let text = std::fs::read_to_string(&groundtruth).map_err(|e| format!("{}: {e}", groundtruth.display()))?;
        let labels: std::collections::BTreeMap<String, Vec<String>> =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", groundtruth.display()))?;
        return Ok(labels
            .into_iter()
            .map(|(file, truths)| LabelledImage {
                path: dir.join(file),
                truths: truths.iter().map(|t| borderflow_engine::plate_norm(t)).collect(),
                bbox: None,
            })
            // Some keys have no image; they are not part of the set.
            .filter(|l| l.path.is_file())
            .collect());
    }
    let mut set = Vec::new();
    for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "txt")) {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let Some(line) = text.lines().find(|l| !l.trim().is_empty()) else { continue };
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, x, y, w, h, plate] = fields[..] else {
            return Err(format!("{}:1: expected 6 tab-separated fields (file, x, y, w, h, text), found {}", file.display(), fields.len()));
        };
        let number = |v: &str, what: &str| v.trim().parse::<f32>().map_err(|e| format!("{}:1: field {what}: {e}", file.display()));
        set.push(LabelledImage {
            path: dir.join(name.trim()),
            truths: vec![borderflow_engine::plate_norm(plate)],
            bbox: Some([number(x, "x")?, number(y, "y")?, number(w, "width")?, number(h, "height")?]),
        });
    }
    set.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(set)
}

/// The scoring key of the OpenALPR benchmark: O and 0, I and 1 are one character each.
pub fn fold_o0_i1(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'O' => '0',
            'I' => '1',
            other => other,
        })
        .collect()
}

/// Intersection over union of two x, y, w, h boxes.
pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let ix = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let iy = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    let inter = ix.max(0.0) * iy.max(0.0);
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_and_disjoint_boxes() {
        assert!((iou([0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]) - 1.0).abs() < 1e-6);
        assert_eq!(iou([0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 10.0, 10.0]), 0.0);
    }

    #[test]
    fn unreadable_files_are_error_rows_naming_the_file_and_the_run_carries_on() {
        use borderflow_models::image::{ImageFormat, Rgb, RgbImage};
        let dir = std::env::temp_dir().join(format!("borderflow-eval-images-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut jpeg = Vec::new();
        RgbImage::from_fn(320, 200, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 128]))
            .write_to(&mut std::io::Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .expect("encode");
        std::fs::write(dir.join("a-empty.jpg"), b"").expect("write");
        std::fs::write(dir.join("b-truncated.jpg"), &jpeg[..jpeg.len() / 2]).expect("write");
        std::fs::write(dir.join("c-notes.jpg"), b"not an image at all").expect("write");
        std::fs::write(dir.join("d-good.jpg"), &jpeg).expect("write");
        let labels = r#"{"a-empty.jpg": ["ABC123"], "b-truncated.jpg": ["ABC123"], "c-notes.jpg": ["ABC123"], "d-good.jpg": ["ABC123"]}"#;
        std::fs::write(dir.join("groundtruth.json"), labels).expect("write");
        let csv = dir.join("out.csv");
        let options = EvalOptions { csv: Some(csv.clone()), ..Default::default() };
        let summary = run(&dir, &options).expect("the run carries on past unreadable files");
        assert_eq!((summary.images, summary.errors), (4, 3));
        // Three workers: the same rows, in the same (file-name) order, but for the times.
        let parallel_csv = dir.join("out-3.csv");
        let parallel = run(&dir, &EvalOptions { csv: Some(parallel_csv.clone()), workers: 3, ..Default::default() }).expect("3 workers");
        assert_eq!((parallel.images, parallel.errors, parallel.workers), (4, 3, 3));
        let without_ms = |path: &std::path::Path| -> Vec<String> {
            std::fs::read_to_string(path).expect("csv").lines().map(|l| l.split(',').enumerate().filter(|(i, _)| *i != 4).map(|(_, f)| f).collect::<Vec<_>>().join(",")).collect()
        };
        assert_eq!(without_ms(&csv), without_ms(&parallel_csv));
        let rows = std::fs::read_to_string(&csv).expect("csv written");
        let rows: Vec<&str> = rows.lines().skip(1).collect();
        assert_eq!(rows.len(), 4);
        for (row, name) in rows.iter().zip(["a-empty.jpg", "b-truncated.jpg", "c-notes.jpg"]) {
            // The file column, then the error column naming the file again.
            assert!(row.starts_with(name) && row[name.len()..].contains(name), "{row}");
        }
        assert!(rows[3].starts_with("d-good.jpg") && rows[3].ends_with(','), "{}", rows[3]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn folding_merges_o_with_0_and_i_with_1() {
        assert_eq!(fold_o0_i1("OI0AB1"), "010AB1");
    }
}

/// `borderflow eval-images`: reads a folder of labelled plate photos and
/// prints the accuracy.
#[allow(clippy::too_many_arguments)]
pub fn command(
    dir: &std::path::Path,
    csv: Option<std::path::PathBuf>,
    limit: Option<usize>,
    reader: PlateReaderOptions,
    workers: usize,
) -> Result<(), String> {
    let options = EvalOptions { csv, limit, progress: true, workers, reader };
    run(dir, &options).map(|summary| println!("{summary}"))
}
